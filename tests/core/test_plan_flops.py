"""Training FLOPs: the core's count against torch's FlopCounterMode on real models, and its closed form."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from calculator.core import LoraSettings, TrainingSettings, architecture_from_config, count_lora
from calculator.core.flops import (
    AttentionTerm,
    FlopsForm,
    attention_pairs,
    flops_form,
    palm_flops_per_token,
    training_flops,
)
from tests.core.conftest import preset_arch

GOLDEN = json.loads((Path(__file__).parent / "golden" / "flops_measured.json").read_text())
QV = {"phi3": ("qkv_proj",), "gpt2": ("c_attn",)}
LISTS = ("modules_to_save", "layers_to_transform", "target_parameters")


def _case_inputs(case):
    arch = architecture_from_config(GOLDEN["configs"][case["family"]])
    targets = {"qv": QV.get(case["family"], ("q_proj", "v_proj")), "all": "all-linear", "experts": None}
    kwargs = {
        "r": case["r"],
        "lora_alpha": 2 * case["r"],
        "lora_dropout": case["lora_dropout"],
        "target_modules": targets.get(case["targets"], QV.get(case["family"], ("q_proj", "v_proj"))),
        "use_dora": case.get("use_dora", False),
    }
    if case["targets"] == "experts":
        kwargs["target_parameters"] = tuple(
            case.get("target_parameters", ("experts.gate_up_proj", "experts.down_proj"))
        )
    for key in LISTS:
        if key in case and key != "target_parameters":
            kwargs[key] = tuple(case[key])
    training = TrainingSettings(
        base_dtype="fp32",
        batch_size=case["batch"],
        seq_len=case["seq"],
        gradient_checkpointing=case["gc"],
        attn_implementation="eager",
    )
    return arch, count_lora(arch, LoraSettings(**kwargs)), training


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=[c["id"] for c in GOLDEN["cases"]])
def test_flops_equal_what_torch_counts_on_the_real_model(case):
    arch, count, training = _case_inputs(case)
    flops = training_flops(arch, count, training, full=case["targets"] == "full")
    assert flops.forward == case["forward"]
    # FlopCounterMode sees checkpoint recomputation inside backward
    assert flops.backward + flops.recompute == case["backward"]


def test_the_golden_file_covers_every_family_with_and_without_checkpointing():
    seen = {(c["family"], c["gc"], c["targets"]) for c in GOLDEN["cases"]}
    families = {c["family"] for c in GOLDEN["cases"]}
    assert families >= {"llama", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "gpt2", "mixtral"}
    for family in families:
        for gc in (False, True):
            assert (family, gc, "full") in seen
            assert (family, gc, "qv") in seen


@pytest.mark.parametrize("slug", ["llama-3.1-8b", "qwen2.5-7b", "gemma-2-9b", "phi-3-mini", "gpt2", "mixtral-8x7b"])
@pytest.mark.parametrize("seq_len", [512, 4096])
def test_full_fine_tuning_with_eager_attention_is_palms_6n_plus_12lhqt(slug, seq_len):
    arch = preset_arch(slug)
    training = TrainingSettings(batch_size=2, seq_len=seq_len, attn_implementation="eager")
    count = count_lora(arch, LoraSettings(target_modules="all-linear"))
    flops = training_flops(arch, count, training, full=True)
    assert flops.recompute == 0
    assert flops.total == 2 * seq_len * palm_flops_per_token(arch, seq_len)


def test_lora_skips_the_frozen_weight_gradients_and_checkpointing_adds_a_forward(llama8b):
    count = count_lora(llama8b, LoraSettings(r=16, target_modules="all-linear"))
    training = TrainingSettings(seq_len=2048)
    lora = training_flops(llama8b, count, training)
    full = training_flops(llama8b, count, training, full=True)
    assert full.backward == pytest.approx(2 * full.forward, rel=0.01)
    # input gradients only (plus the fused attention backward: 5 matmuls against 2 forward)
    assert lora.forward < lora.backward < 1.1 * lora.forward
    checkpointed = training_flops(llama8b, count, replace(training, gradient_checkpointing=True))
    # every layer's forward again, less the MLP projection recomputation never reaches
    assert 0.8 * lora.forward < checkpointed.recompute < lora.forward


def test_moe_runs_only_the_routed_experts():
    arch = preset_arch("mixtral-8x7b")
    d = arch.dims
    count = count_lora(arch, LoraSettings(target_modules=("q_proj", "v_proj")))
    training = TrainingSettings(batch_size=1, seq_len=1, attn_implementation="eager")
    attention_linear = 2 * d.hidden_size * (2 * d.num_attention_heads + 2 * d.num_key_value_heads) * d.head_dim
    experts = 2 * d.num_experts_per_tok * 3 * d.hidden_size * d.intermediate_size
    router = 2 * d.hidden_size * d.num_local_experts
    lora = (
        2
        * 8
        * ((d.hidden_size + d.num_attention_heads * d.head_dim) + (d.hidden_size + d.num_key_value_heads * d.head_dim))
    )
    attention = 2 * 2 * d.num_attention_heads * d.head_dim  # one token attends to itself
    per_layer = attention_linear + experts + router + lora + attention
    head = 2 * d.hidden_size * d.vocab_size
    assert training_flops(arch, count, training).forward == arch.num_layers * per_layer + head


@pytest.mark.parametrize(
    ("seq_len", "kernel", "window", "pairs"),
    [
        (100, "eager", None, 10_000),
        (100, "eager", 16, 10_000),  # eager masks after computing every score
        (100, "sdpa", None, 5_050),
        (100, "flash_attention_2", None, 5_050),
        (100, "sdpa", 200, 5_050),  # a window longer than the sequence changes nothing
        (100, "sdpa", 16, 10_000),  # an explicit mask: the memory-efficient kernel computes all pairs
        (100, "flash_attention_2", 16, 16 * 17 // 2 + 84 * 16),
    ],
)
def test_attention_pairs_follow_the_kernel_and_the_window(seq_len, kernel, window, pairs):
    assert attention_pairs(seq_len, kernel, window) == pairs


def test_fused_kernels_skip_the_masked_half_and_recompute_scores_in_backward(llama8b):
    count = count_lora(llama8b, LoraSettings(r=8, target_modules="all-linear"))
    eager = flops_form(llama8b, count, TrainingSettings(attn_implementation="eager"))
    flash = flops_form(llama8b, count, TrainingSettings(attn_implementation="flash_attention_2"))
    s, layers = 4096, 32
    unit = 2 * 32 * 128  # 2·heads·head_dim per (query, key) pair
    assert flash.forward_per_token == eager.forward_per_token
    assert eager.at(1, s).forward - flash.at(1, s).forward == layers * 2 * unit * (s * s - s * (s + 1) // 2)
    # backward: eager computes the 4 gradients it needs, the fused kernels 5 matmuls (scores recomputed)
    width = 32 * 128
    assert [t.backward_width for t in eager.attention] == [4 * width * layers]
    assert [t.backward_width for t in flash.attention] == [5 * width * layers]


def test_a_sliding_window_term_limits_flash_attention_to_the_window():
    def form(window):
        term = AttentionTerm(layers=2, window=window, forward_width=4096, backward_width=10240, recompute_width=0)
        return FlopsForm(0, 0, 0, 0, 0, 0, (term,), "flash_attention_2")

    s = 32_768
    windowed, full = form(4096).at(1, s), form(None).at(1, s)
    assert windowed.forward < full.forward / 4
    assert form(4096).at(1, 4096) == form(None).at(1, 4096)


def test_the_form_is_one_structure_for_every_batch_and_sequence(llama8b):
    count = count_lora(llama8b, LoraSettings(r=16, target_modules="all-linear"))
    base = TrainingSettings(gradient_checkpointing=True)
    form = flops_form(llama8b, count, base)
    for b, s in [(1, 1), (3, 777), (8, 8192)]:
        assert form.at(b, s) == training_flops(llama8b, count, replace(base, batch_size=b, seq_len=s))
