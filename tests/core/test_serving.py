"""Serving: the base plus N adapters, or merged."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from calculator.core import DEFAULT_GPUS, LoraSettings, TrainingSettings, architecture_from_config
from calculator.core.lora import count_lora
from calculator.core.memory import base_weights_bytes, static_memory
from calculator.core.serving import kv_cache_bytes, serving_estimate

PRESETS = {p["slug"]: p for p in json.loads(Path("calculator/data/presets.json").read_text())}
LLAMA = architecture_from_config(PRESETS["llama-3.1-8b"]["config"])
LORA = LoraSettings(r=16, target_modules=("q_proj", "v_proj"))


def test_each_adapter_adds_its_own_weights_on_one_shared_base():
    training = TrainingSettings()
    one = serving_estimate(LLAMA, LORA, training, 1, DEFAULT_GPUS)
    ten = serving_estimate(LLAMA, LORA, training, 10, DEFAULT_GPUS)
    assert ten.base_weights_bytes == one.base_weights_bytes
    assert ten.total_bytes - one.total_bytes == 9 * one.adapter_bytes
    count = count_lora(LLAMA, LORA)
    assert one.adapter_bytes == static_memory(LLAMA, count, training).adapter_weights_bytes
    assert one.adapter_bytes == count.lora_params * 4  # fp32 adapters by default


def test_merged_costs_exactly_the_base_model():
    s = serving_estimate(LLAMA, LORA, TrainingSettings(), 3, DEFAULT_GPUS)
    assert s.merged_weights_bytes == s.base_weights_bytes == LLAMA.base_params * 2
    assert s.merged_total_bytes == s.merged_weights_bytes + s.kv_cache_bytes + s.overhead_bytes
    assert not s.merged_needs_dequantization


def test_a_4bit_base_is_served_merged_in_its_compute_dtype():
    training = TrainingSettings(base_dtype="nf4")
    s = serving_estimate(LLAMA, LORA, training, 1, DEFAULT_GPUS)
    assert s.merged_needs_dequantization
    assert s.base_weights_bytes == base_weights_bytes(LLAMA, count_lora(LLAMA, LORA), training)
    assert s.merged_weights_bytes == LLAMA.base_params * 2
    assert s.base_weights_bytes < s.merged_weights_bytes


def test_kv_cache_is_k_and_v_for_every_layer_and_kv_head():
    d = LLAMA.dims
    assert kv_cache_bytes(LLAMA, 4096, "bf16") == 2 * d.num_hidden_layers * 8 * 128 * 4096 * 2 == 512 * 2**20
    assert kv_cache_bytes(LLAMA, 4096, "nf4") == kv_cache_bytes(LLAMA, 4096, "bf16")
    assert kv_cache_bytes(LLAMA, 4096, "fp32") == 2 * kv_cache_bytes(LLAMA, 4096, "bf16")


def test_unmerged_extra_flops_are_the_lora_share_of_the_base():
    s = serving_estimate(LLAMA, LORA, TrainingSettings(), 1, DEFAULT_GPUS)
    assert s.extra_flops_fraction == pytest.approx(count_lora(LLAMA, LORA).lora_params / LLAMA.base_params)


def test_fits_compare_the_total_with_each_gpu():
    s = serving_estimate(LLAMA, LORA, replace(TrainingSettings(), seq_len=1024), 1, DEFAULT_GPUS)
    assert [f.fits for f in s.fits] == [s.total_bytes <= g.memory_bytes for g in DEFAULT_GPUS]


@pytest.mark.parametrize("adapters", [0, 10_001])
def test_the_number_of_adapters_is_bounded(adapters):
    with pytest.raises(ValueError, match="adapters"):
        serving_estimate(LLAMA, LORA, TrainingSettings(), adapters, DEFAULT_GPUS)
