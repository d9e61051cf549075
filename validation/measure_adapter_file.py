"""Measure PEFT's saved adapter file (adapter_model.safetensors) for small real models, and compare
with the core's `adapter_file_bytes`. Writes tests/core/golden/adapter_files.json.

    validation/.venv/bin/python validation/measure_adapter_file.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from calculator.core import architecture_from_config, count_lora  # noqa: E402
from calculator.core.adapter_file import adapter_file_bytes  # noqa: E402
from calculator.core.lora import LoraSettings  # noqa: E402

GRID = [
    {"r": 8, "lora_alpha": 16},
    {"r": 16, "lora_alpha": 16, "target_modules": "all-linear"},
    {"r": 4, "lora_alpha": 8, "target_modules": "all-linear", "use_dora": True},
    {"r": 8, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj", "c_attn"], "bias": "all"},
    {"r": 8, "lora_alpha": 8, "target_modules": "all-linear", "modules_to_save": ["lm_head"]},
    {"r": 8, "lora_alpha": 8, "target_modules": "all-linear", "bias": "lora_only"},
    {"r": 8, "lora_alpha": 8, "target_modules": "all-linear", "lora_bias": True},
    {
        "r": 8,
        "lora_alpha": 8,
        "target_modules": "all-linear",
        "layers_to_transform": None,
        "rank_pattern": {"q_proj": 2},
    },
]


def to_settings(kwargs: dict) -> LoraSettings:
    tm = kwargs.get("target_modules")
    return LoraSettings(
        r=kwargs["r"],
        lora_alpha=kwargs["lora_alpha"],
        target_modules=tuple(tm) if isinstance(tm, list) else tm,
        bias=kwargs.get("bias", "none"),
        use_dora=kwargs.get("use_dora", False),
        lora_bias=kwargs.get("lora_bias", False),
        modules_to_save=tuple(kwargs["modules_to_save"]) if kwargs.get("modules_to_save") else None,
        rank_pattern=tuple(kwargs.get("rank_pattern", {}).items()),
    )


def main() -> None:
    sys.path.insert(0, str(ROOT / "validation"))
    from small_configs import SMALL  # the 2026 families' configs: their golden data is peft_params_2026.json

    cases = []
    for path in sorted((ROOT / "validation" / "configs" / "small").glob("*.json")):
        if path.stem in SMALL:
            continue
        config = json.loads(path.read_text())
        arch = architecture_from_config(config)
        for kwargs in GRID:
            kwargs = {k: v for k, v in kwargs.items() if v is not None}
            if arch.model_type == "gpt2" and kwargs.get("target_modules") == ["q_proj", "v_proj", "c_attn"]:
                kwargs["target_modules"] = ["c_attn"]
            elif kwargs.get("target_modules") == ["q_proj", "v_proj", "c_attn"]:
                kwargs["target_modules"] = ["q_proj", "v_proj"] if arch.model_type != "phi3" else ["qkv_proj"]
            if arch.model_type == "phi3" and "target_modules" not in kwargs:
                kwargs["target_modules"] = ["qkv_proj"]
            if arch.model_type == "gpt2" and "rank_pattern" in kwargs:
                kwargs["rank_pattern"] = {"c_attn": 2}
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config), dtype=torch.bfloat16)
            peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **kwargs))
            with tempfile.TemporaryDirectory() as tmp:
                peft_model.save_pretrained(tmp)
                size = (Path(tmp) / "adapter_model.safetensors").stat().st_size
            ours = adapter_file_bytes(count_lora(arch, to_settings(kwargs)), "fp32", "bf16")
            cases.append({"config": path.stem, "lora": kwargs, "file_bytes": size})
            print(
                f"{path.stem:8} {json.dumps(kwargs):110} measured {size:>10,} core {ours:>10,} {'OK' if ours == size else 'DIFF'}"
            )
    out = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "adapter_dtype": "fp32",
        "base_dtype": "bf16",
        "cases": cases,
    }
    (ROOT / "tests" / "core" / "golden" / "adapter_files.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
