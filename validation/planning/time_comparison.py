"""The time model against throughput that projects published for named setups (docs/accuracy.md "Time").

Run:  .venv/bin/python validation/planning/time_comparison.py      (the core alone, no torch)

For each setup: our FLOPs per token (forward, backward, recomputation), the MFU the published tokens/s
implies on the catalog's peak, and the tokens/s our default MFU predicts, with the ratio to the published
figure. Sources and settings are in SETUPS; where a source leaves a setting open, the assumption is stated.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from calculator.core import LoraSettings, TrainingSettings, architecture_from_config, count_lora  # noqa: E402
from calculator.core.flops import flops_form  # noqa: E402
from calculator.core.gpus import DEFAULT_GPUS  # noqa: E402
from calculator.core.runtime import MFU_BY_FRAMEWORK, PlanSettings, method_of, time_estimate  # noqa: E402

PRESETS = {p["slug"]: p for p in json.loads((ROOT / "calculator" / "data" / "presets.json").read_text())}
GPUS = {g.name: g for g in DEFAULT_GPUS}
PEFT = "huggingface/peft method_comparison/MetaMathQA/results/{} (mean of the 20 logged windows)"
TORCHTUNE = "pytorch/torchtune README.md 'Memory and training speed' (commit 0031bfb0, Sept 2024)"
QV = ("q_proj", "v_proj")
ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Setup:
    id: str
    source: str
    model: str
    lora: LoraSettings
    training: TrainingSettings
    gpu: str
    published_tokens_per_second: float  # all GPUs together
    notes: str
    full: bool = False
    framework: str = "transformers"


PEFT_TRAINING = TrainingSettings(batch_size=4, seq_len=210, attn_implementation="sdpa")
TORCHTUNE_TRAINING = TrainingSettings(
    batch_size=2, seq_len=2048, gradient_checkpointing=True, attn_implementation="sdpa"
)
SETUPS = (
    Setup(
        "P-LoRA",
        PEFT.format("lora--llama-3.2-3B-rank32.json"),
        "llama-3.2-3b",
        LoraSettings(r=32, lora_alpha=64, target_modules=QV),
        PEFT_TRAINING,
        "NVIDIA L40S 48 GB",
        6770,
        "bf16 model, fp32 adapters, AdamW, batch 4, no checkpointing, no compile; 4,198,051 tokens in 20,000 "
        "examples: 210 tokens on average (padding to the batch's longest is not counted by the source)",
    ),
    Setup(
        "P-DoRA",
        PEFT.format("lora--llama-3.2-3B-rank32-dora.json"),
        "llama-3.2-3b",
        LoraSettings(r=32, lora_alpha=64, target_modules=QV, use_dora=True),
        PEFT_TRAINING,
        "NVIDIA L40S 48 GB",
        5866,
        "as P-LoRA with use_dora=True (a later run: torch 2.9, transformers 4.57)",
    ),
    Setup(
        "P-full",
        PEFT.format("full-finetuning--llama-3.2-3B-lr_0.00001.json"),
        "llama-3.2-3b",
        LoraSettings(r=32, target_modules=QV),
        PEFT_TRAINING,
        "NVIDIA L40S 48 GB",
        2313,
        "full fine-tuning, bf16, AdamW, batch 4",
        full=True,
    ),
    Setup(
        "T-LoRA",
        TORCHTUNE,
        "llama-3.1-8b",
        LoraSettings(r=8, lora_alpha=16, target_modules=QV),
        TORCHTUNE_TRAINING,
        "NVIDIA RTX 4090 24 GB",
        3083,
        "batch 2, packed to 2,048, torch.compile, activation checkpointing (config), q,v r=8",
        framework="torchtune",
    ),
    Setup(
        "T-QLoRA",
        TORCHTUNE,
        "llama-3.1-8b",
        LoraSettings(r=8, lora_alpha=16, target_modules=ALL),
        replace(TORCHTUNE_TRAINING, base_dtype="nf4"),
        "NVIDIA RTX 4090 24 GB",
        2413,
        "as T-LoRA, NF4 base (torchao), LoRA on attention and MLP",
        framework="torchtune",
    ),
    Setup(
        "T-full",
        TORCHTUNE,
        "llama-3.1-8b",
        LoraSettings(r=8, target_modules=QV),
        TORCHTUNE_TRAINING,
        "NVIDIA RTX 4090 24 GB",
        1650,
        "full fine-tuning with the low-memory config (8-bit paged AdamW in the backward)",
        full=True,
        framework="torchtune",
    ),
    Setup(
        "T-70B-LoRA",
        TORCHTUNE,
        "llama-3.1-70b",
        LoraSettings(r=16, lora_alpha=32, target_modules=QV),
        replace(TORCHTUNE_TRAINING, num_gpus=8, parallelism="fsdp"),
        "NVIDIA A100 80 GB",
        3497,
        "8x A100 (FSDP), tokens/s of all 8 GPUs; targets and rank assumed (a few % of the FLOPs at most)",
        framework="torchtune",
    ),
    Setup(
        "T-70B-full",
        TORCHTUNE,
        "llama-3.1-70b",
        LoraSettings(r=8, target_modules=QV),
        replace(TORCHTUNE_TRAINING, num_gpus=8, parallelism="fsdp"),
        "NVIDIA A100 80 GB",
        1568,
        "8x A100, CPU offload with a fused optimizer",
        full=True,
        framework="torchtune",
    ),
    Setup(
        "T-405B-QLoRA",
        TORCHTUNE,
        "llama-3.1-405b",
        LoraSettings(r=16, lora_alpha=32, target_modules=ALL),
        replace(TORCHTUNE_TRAINING, base_dtype="nf4", num_gpus=8, parallelism="fsdp"),
        "NVIDIA A100 80 GB",
        653,
        "8x A100, NF4 base; targets and rank assumed",
        framework="torchtune",
    ),
)


def rows() -> list[dict[str, object]]:
    out = []
    for setup in SETUPS:
        arch = architecture_from_config(PRESETS[setup.model]["config"])
        count = count_lora(arch, setup.lora)
        gpu = GPUS[setup.gpu]
        form = flops_form(arch, count, setup.training, full=setup.full)
        mfu = MFU_BY_FRAMEWORK[setup.framework][method_of(setup.training, setup.full)]
        t = time_estimate(form, setup.training, PlanSettings(mfu=mfu), gpu, full=setup.full)
        assert t.tokens_per_second is not None
        assert t.peak_flops is not None
        n = setup.training.num_gpus
        implied = setup.published_tokens_per_second * t.flops_per_token / (n * t.peak_flops)
        out.append(
            {
                "id": setup.id,
                "model": setup.model,
                "framework": setup.framework,
                "gpu": f"{n}x {gpu.name}" if n > 1 else gpu.name,
                "flops_per_token": t.flops_per_token,
                "published": setup.published_tokens_per_second,
                "implied_mfu": implied,
                "default_mfu": t.mfu,
                "predicted": t.tokens_per_second,
                "ratio": t.tokens_per_second / setup.published_tokens_per_second,
                "source": setup.source,
                "notes": setup.notes,
            }
        )
    return out


def main() -> None:
    print(
        "| id | framework | model | GPU | GFLOP/token (ours) | published tokens/s | implied MFU | default MFU "
        "| predicted tokens/s | predicted / published |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows():
        print(
            f"| {r['id']} | {r['framework']} | {r['model']} | {r['gpu']} | {r['flops_per_token'] / 1e9:.1f} | {r['published']:,.0f} | "
            f"{r['implied_mfu']:.2f} | {r['default_mfu']:.2f} | {r['predicted']:,.0f} | {r['ratio']:.2f} |"
        )


if __name__ == "__main__":
    main()
