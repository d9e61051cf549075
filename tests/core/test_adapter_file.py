"""Adapter file size: PEFT's `save_pretrained` output measured on real models (golden file)."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from calculator.core import architecture_from_config, count_lora
from calculator.core.adapter_file import adapter_file_bytes, adapter_file_size, safetensors_file_bytes
from calculator.core.errors import InputError
from calculator.schemas import LoraInput

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = json.loads((Path(__file__).parent / "golden" / "adapter_files.json").read_text())
CONFIGS = {p.stem: json.loads(p.read_text()) for p in (ROOT / "validation" / "configs" / "small").glob("*.json")}


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: f"{c['config']}-{json.dumps(c['lora'])}")
def test_adapter_file_size_equals_peft_save_pretrained(case):
    arch = architecture_from_config(CONFIGS[case["config"]])
    count = count_lora(arch, LoraInput.model_validate(case["lora"]).to_core())
    assert adapter_file_bytes(count, GOLDEN["adapter_dtype"], GOLDEN["base_dtype"]) == case["file_bytes"]


def test_safetensors_layout_is_header_length_json_padding_and_data():
    # one 2x3 fp32 tensor: 8-byte length + padded compact JSON + 24 data bytes
    header = '{"__metadata__":{"format":"pt"},"t":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}'
    padded = len(header) + (-len(header) % 8)
    assert safetensors_file_bytes([("t", (2, 3), "fp32")]) == 8 + padded + 24


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: f"{c['config']}-{json.dumps(c['lora'])}")
def test_the_cached_adapter_file_layout_gives_the_tensor_by_tensor_size_at_every_rank(case):
    arch = architecture_from_config(CONFIGS[case["config"]])
    lora = LoraInput.model_validate(case["lora"]).to_core()
    for r in (1, 3, 8, 64, 1000):
        at_r = replace(lora, r=r)
        try:
            count = count_lora(arch, at_r)
        except InputError:
            continue  # e.g. a rank the convolutions' groups do not divide
        for adapter_dtype, base_dtype in (("fp32", "bf16"), ("bf16", "nf4")):
            expected = adapter_file_bytes(count, adapter_dtype, base_dtype)
            assert adapter_file_size(arch, at_r, count, adapter_dtype, base_dtype) == expected
