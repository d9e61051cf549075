"""Our estimates for the published peak-memory figures of docs/published_figures.md (no torch needed).

    .venv/bin/python validation/published_comparison.py

Each row maps the published setup onto lorasite's inputs as closely as they allow and prints our peak
without the 1 GiB overhead allowance (comparable with torch's max_memory_allocated/reserved, which do
not include the CUDA context) next to the published number.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from calculator.core import LoraSettings, TrainingSettings, architecture_from_config, estimate  # noqa: E402

PRESETS = {p["slug"]: p["config"] for p in json.loads((ROOT / "calculator/data/presets.json").read_text())}
QV = ("q_proj", "v_proj")
LITGPT_R8 = {"r": 8, "lora_alpha": 16, "target_modules": QV, "lora_dropout": 0.05}  # litgpt / torchtune q,v
ALL_R8 = {"r": 8, "lora_alpha": 16, "target_modules": "all-linear", "lora_dropout": 0.05}  # torchtune QLoRA
TORCHTUNE = {"adapter_dtype": "bf16", "batch_size": 2, "seq_len": 512, "gradient_checkpointing": True}
TORCHAO_NF4 = {**TORCHTUNE, "base_dtype": "nf4", "quantize_scope": "lora_targets"}
GB, GIB = 1e9, 2**30

ROWS = [
    # id, preset, lora kwargs, training kwargs, published value, unit, statistic
    (
        "L1",
        "llama-2-7b",
        LITGPT_R8,
        {"adapter_dtype": "bf16", "batch_size": 1, "seq_len": 1304},
        21.30,
        GB,
        "allocated",
    ),
    (
        "L2",
        "llama-2-7b",
        LITGPT_R8,
        {"base_dtype": "nf4", "double_quant": False, "adapter_dtype": "bf16", "batch_size": 1, "seq_len": 1304},
        14.14,
        GB,
        "allocated",
    ),
    (
        "L3",
        "llama-2-7b",
        LITGPT_R8,
        {"base_dtype": "nf4", "double_quant": True, "adapter_dtype": "bf16", "batch_size": 1, "seq_len": 1304},
        13.84,
        GB,
        "allocated",
    ),
    (
        "L4",
        "llama-2-7b",
        LITGPT_R8,
        {"adapter_dtype": "bf16", "batch_size": 2, "seq_len": 1304},
        29.07,
        GB,
        "allocated",
    ),
    (
        "L7",
        "llama-3.1-8b",
        {"r": 32, "lora_alpha": 16, "target_modules": QV, "lora_dropout": 0.05},
        {"adapter_dtype": "bf16", "batch_size": 1, "seq_len": 512},
        19.73,
        GB,
        "allocated",
    ),
    (
        "T1",
        "llama-2-7b",
        LITGPT_R8,
        TORCHTUNE,
        15.57,
        GB,
        "reserved",
    ),
    (
        "T2",
        "llama-2-7b",
        ALL_R8,
        TORCHAO_NF4,
        9.29,
        GB,
        "reserved",
    ),
    (
        "T6",
        "llama-3.1-8b",
        LITGPT_R8,
        TORCHTUNE,
        18.5,
        GB,
        "allocated",
    ),
    (
        "T7",
        "llama-3.1-8b",
        ALL_R8,
        TORCHAO_NF4,
        9.0,
        GB,
        "allocated",
    ),
    (
        "U1",
        "llama-3.1-8b",
        {"r": 32, "lora_alpha": 32, "target_modules": "all-linear"},
        {
            "base_dtype": "nf4",
            "batch_size": 1,
            "seq_len": 5789,
            "gradient_checkpointing": True,
            "attn_implementation": "flash_attention_2",
        },
        24.0,
        GB,
        "fits a 24 GB card",
    ),
    (
        "U1b",
        "llama-3.1-8b",
        {"r": 32, "lora_alpha": 32, "target_modules": "all-linear"},
        {
            "base_dtype": "nf4",
            "batch_size": 1,
            "seq_len": 12264,
            "gradient_checkpointing": True,
            "attn_implementation": "flash_attention_2",
        },
        40.0,
        GB,
        "fits a 40 GB card",
    ),
    (
        "P1",
        "llama-2-70b",
        {"r": 8, "lora_alpha": 16, "target_modules": "all-linear", "lora_dropout": 0.1},
        {
            "base_dtype": "nf4",
            "batch_size": 2,
            "seq_len": 2048,
            "gradient_checkpointing": True,
            "attn_implementation": "flash_attention_2",
            "num_gpus": 2,
            "parallelism": "fsdp",
        },
        35.6,
        GB,
        "per GPU, total",
    ),
]


def main() -> None:
    print("| id | setup | published | ours without overhead | ours with 1 GiB overhead | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for row_id, preset, lora, training, value, unit, statistic in ROWS:
        arch = architecture_from_config(PRESETS[preset])
        result = estimate(arch, LoraSettings(**lora), TrainingSettings(**training))
        peak = result.memory.total_bytes
        without = peak - result.memory.overhead_bytes
        compare = peak if "card" in statistic or "total" in statistic else without
        setup = f"{preset}, {training.get('base_dtype', 'bf16')}, b={training['batch_size']}, s={training['seq_len']}"
        print(
            f"| {row_id} | {setup} | {value:.2f} GB ({statistic}) | {without / GB:.2f} GB | {peak / GB:.2f} GB "
            f"| {compare / (value * unit):.2f} |"
        )


if __name__ == "__main__":
    main()
