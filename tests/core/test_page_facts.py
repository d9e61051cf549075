"""The core facts the page shows beside the numbers (calculator/core/insights.py, config_keys.py): what a
model is made of, its 3-D expert parameters, what a chunked loss or expert quantization changes, and the
dimension fields a config.json gives under its own key names."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from calculator.core import LoraSettings, TrainingSettings, architecture_from_config, estimate
from calculator.core.config_keys import dimensions_from_config
from calculator.core.insights import expert_params, expert_quantization, layer_groups, loss_baseline

from .conftest import preset_arch

CATALOG = Path(__file__).resolve().parents[2] / "validation" / "configs" / "catalog"


def catalog_arch(slug):
    return architecture_from_config(json.loads((CATALOG / f"{slug}.json").read_text()))


def test_layer_groups_count_every_layer_of_every_stack_once():
    arch = catalog_arch("gemma-3-4b")
    groups = layer_groups(arch)
    assert [(g.role, g.kind, g.layers) for g in groups] == [
        ("text", "sliding_attention", 29),
        ("text", "full_attention", 5),
        ("vision_tower", "vision_tower", 27),
    ]
    assert sum(g.layers for g in groups if g.role == "text") == arch.dims.num_hidden_layers


@pytest.mark.parametrize("slug", ["qwen3-30b-a3b", "gpt-oss-20b"])
def test_expert_params_are_the_3d_expert_tensors(slug):
    arch = catalog_arch(slug)
    d = arch.dims
    # gate_up (2 x intermediate x hidden) and down (hidden x intermediate) per expert per layer, 3-D only
    moe = json.loads((CATALOG / f"{slug}.json").read_text())
    inner = moe.get("moe_intermediate_size") or moe["intermediate_size"]
    assert expert_params(arch) == d.num_hidden_layers * d.num_local_experts * 3 * d.hidden_size * inner


def test_a_dense_model_has_no_expert_params(llama8b):
    assert expert_params(llama8b) == 0


def test_expert_quantization_only_for_a_quantized_moe_base_that_keeps_its_experts():
    arch = catalog_arch("qwen3-30b-a3b")
    lora = LoraSettings(target_modules=("q_proj", "v_proj"))
    nf4 = estimate(arch, lora, TrainingSettings(base_dtype="nf4"))
    note = expert_quantization(nf4, ())
    assert note is not None
    assert note.quantized.memory.base_weights_bytes < nf4.memory.base_weights_bytes / 2
    assert expert_quantization(estimate(arch, lora, TrainingSettings()), ()) is None
    done = estimate(arch, lora, TrainingSettings(base_dtype="nf4", quantize_moe_experts=True))
    assert expert_quantization(done, ()) is None
    assert (
        expert_quantization(estimate(preset_arch("llama-3.1-8b"), lora, TrainingSettings(base_dtype="nf4")), ()) is None
    )


def test_quantized_experts_without_checkpointing_raise_the_peak_and_the_note_offers_checkpointing():
    """Every MoE layer keeps its dequantized experts for backward without checkpointing (one layer with it)."""
    arch = catalog_arch("qwen3-30b-a3b")
    lora = LoraSettings(target_modules=("q_proj", "v_proj"))
    plain = estimate(arch, lora, TrainingSettings(base_dtype="nf4"))
    note = expert_quantization(plain, ())
    assert note.raises_peak
    assert note.quantized.memory.total_bytes > plain.memory.total_bytes
    assert note.checkpointed is not None
    assert note.checkpointed.training.gradient_checkpointing
    assert note.checkpointed.training.quantize_moe_experts
    assert note.checkpointed.memory.total_bytes < plain.memory.total_bytes / 2
    checkpointed = estimate(arch, lora, TrainingSettings(base_dtype="nf4", gradient_checkpointing=True))
    lowered = expert_quantization(checkpointed, ())
    assert not lowered.raises_peak
    assert lowered.checkpointed is None
    assert lowered.quantized.memory.total_bytes < checkpointed.memory.total_bytes


def test_loss_baseline_is_the_same_run_with_transformers_loss(llama8b):
    trl = estimate(llama8b, LoraSettings(), TrainingSettings(loss="trl_chunked_nll", gradient_checkpointing=True))
    baseline = loss_baseline(trl, ())
    assert baseline is not None
    assert baseline.training == replace(trl.training, loss="hf")
    assert baseline.memory.logits_bytes > 10 * trl.memory.logits_bytes
    assert loss_baseline(baseline, ()) is None


def test_dimensions_from_config_reads_the_usual_key_names_whatever_the_type():
    gpt2_like = {"model_type": "nope", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257}
    assert dimensions_from_config(gpt2_like) == {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "vocab_size": 50257,
    }
    nested = {"model_type": "x", "text_config": {"hidden_size": 64, "tie_word_embeddings": True}, "vocab_size": 9}
    assert dimensions_from_config(nested) == {"hidden_size": 64, "vocab_size": 9, "tie_word_embeddings": True}
    assert dimensions_from_config({"hidden_size": -1, "num_hidden_layers": True, "vocab_size": "9"}) == {}
