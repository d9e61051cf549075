"""The recipe's memory savers against measurements and DeepSpeed's own estimators (golden file).

`validation/recipes/measure_losses.py` runs each loss path on the CPU (the small Llama with LoRA on q, v;
torchtune's and TRL's code as shipped, pure-torch equivalents of Liger's and cut-cross-entropy's Triton
kernels) and records what stays alive after the forward. `validation/recipes/deepspeed_estimates.py` records
DeepSpeed's `estimate_zero2/3_model_states_mem_needs`.
"""

import json
from pathlib import Path

import pytest

from calculator.core import LoraSettings, TrainingSettings, architecture_from_config, count_lora
from calculator.core.activations import estimate_activations
from calculator.core.head import head_bytes
from calculator.core.memory import full_finetune_static_memory
from tests.core.conftest import preset_arch

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = json.loads((Path(__file__).parent / "golden" / "recipes_measured.json").read_text())
SMALL_LLAMA = json.loads((ROOT / "validation" / "configs" / "small" / "llama.json").read_text())
LOSSES = GOLDEN["losses"]


def settings(row, **extra):
    loss = row["loss"]
    return TrainingSettings(
        batch_size=row["batch"],
        seq_len=row["seq"],
        loss="chunked" if loss.startswith("chunked") else loss,
        compile_loss=loss == "chunked_compiled",
        loss_chunks=row["chunks"],
        loss_token_fraction=row["loss_token_fraction"],
        **extra,
    )


def lora_count(arch):
    return count_lora(arch, LoraSettings(r=8, lora_alpha=16, target_modules=("q_proj", "v_proj")))


@pytest.mark.parametrize("row", [r for r in LOSSES if r["model"]], ids=lambda r: f"{r['loss']}-{r['batch']}x{r['seq']}")
def test_the_whole_model_keeps_exactly_what_the_loss_path_model_says(row):
    arch = architecture_from_config(SMALL_LLAMA)
    acts = estimate_activations(arch, lora_count(arch), settings(row))
    assert acts.layers_bytes + acts.outside_bytes + acts.logits_bytes == row["model"]["saved"]


@pytest.mark.parametrize("row", LOSSES, ids=lambda r: f"{r['loss']}-{r['batch']}x{r['seq']}-{r['loss_token_fraction']}")
def test_the_loss_path_alone_keeps_the_modelled_bytes(row):
    arch = architecture_from_config(SMALL_LLAMA)
    saved, _ = head_bytes(arch, lora_count(arch), settings(row), True, False)
    inputs = 0
    if row["loss"] == "cut":
        inputs = row["batch"] * row["seq"] * arch.dims.hidden_size * 2  # e is the (excluded) input itself
    assert saved - inputs == row["isolated"]["saved"]


@pytest.mark.parametrize("loss", ["hf", "chunked"])
def test_the_transient_around_plain_torch_losses_matches_the_measured_peak(loss):
    """hf and torchtune's eager chunked loss run the same torch ops on CUDA: peak - saved is the transient."""
    row = next(r for r in LOSSES if r["loss"] == loss)
    arch = architecture_from_config(SMALL_LLAMA)
    _saved, transient = head_bytes(arch, lora_count(arch), settings(row), True, False)
    measured = row["isolated"]["peak"] - row["isolated"]["saved"]
    assert transient == pytest.approx(measured, rel=0.001)


def test_chunking_alone_keeps_the_fp32_log_probabilities_and_compiling_it_keeps_bf16_logits():
    by = {r["loss"]: r["isolated"]["saved"] for r in LOSSES if r["batch"] == 2 and r["seq"] == 64}
    tokens_x_vocab = 2 * 64 * SMALL_LLAMA["vocab_size"]
    assert by["chunked"] > 4 * tokens_x_vocab  # eager: every chunk's fp32 log-softmax survives
    assert 2 * tokens_x_vocab < by["chunked_compiled"] < 3 * tokens_x_vocab


def test_trl_drops_ignored_positions_before_the_head():
    rows = [r for r in LOSSES if r["loss"] == "trl_chunked_nll" and r["batch"] == 2]
    full, half = sorted(rows, key=lambda r: -r["loss_token_fraction"])
    assert half["isolated"]["saved"] < 0.51 * full["isolated"]["saved"]


def _zero_states(arch, stage, gpus, optimizer_offload, param_offload):
    training = TrainingSettings(
        parallelism=f"zero{stage}", num_gpus=gpus, optimizer_offload=optimizer_offload, param_offload=param_offload
    )
    s = full_finetune_static_memory(arch, training)
    gpu = s.base_weights_bytes + s.adapter_weights_bytes + s.gradients_bytes + s.optimizer_states_bytes
    return gpu, s.host_bytes


@pytest.mark.parametrize(
    "row",
    GOLDEN["deepspeed"]["estimates"],
    ids=lambda r: f"{r['preset']}-z{r['stage']}-{r['gpus']}-{r['optimizer_offload']}-{r['param_offload']}",
)
def test_zero_model_states_match_deepspeeds_estimators(row):
    """Full fine-tuning under ZeRO (DeepSpeed's estimators assume every parameter trains, mixed precision, Adam).
    Stage 3's GPU figure includes 4 bytes per parameter of the largest module, which we add at the peak as a
    gathered transient; DeepSpeed's host figure for ZeRO-2 offload reserves max(4·GPUs, 16) bytes per parameter,
    of which 16 are the states (the rest is loading), so compare where the 16 dominate."""
    arch = preset_arch(row["preset"])
    gpu, host = _zero_states(arch, row["stage"], row["gpus"], row["optimizer_offload"], row["param_offload"])
    expected_gpu = row["gpu_bytes"] - row.get("largest_layer_bytes", 0)
    assert gpu == pytest.approx(expected_gpu, rel=1e-6, abs=8)
    if row["stage"] == 2 and row["optimizer_offload"]:
        assert host == pytest.approx(row["cpu_bytes"], rel=1e-6) if row["gpus"] <= 4 else host < row["cpu_bytes"]
    elif row["optimizer_offload"]:
        assert host == pytest.approx(row["cpu_bytes"], rel=1e-6)
