"""Adapter file size: PEFT's `save_pretrained` output measured on real models (golden file)."""

import json
from pathlib import Path

import pytest

from calculator.core import architecture_from_config, count_lora
from calculator.core.adapter_file import adapter_file_bytes, safetensors_file_bytes
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
