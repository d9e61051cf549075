"""Independent FLOP counts for the planning core: torch's FlopCounterMode on small real models.

Run:  /work/main/validation/.venv/bin/python validation/planning/measure_flops.py
Writes tests/core/golden/flops_measured.json.

Small models of every family in validation/configs/small/ are built with transformers (random weights, fp32,
CPU, eager attention so that every attention matmul is an aten.bmm the counter sees), LoRA is applied with PEFT
(or every parameter trains, for full fine-tuning), and one forward plus one backward of batch x seq tokens
(labels = input_ids) is run under ``torch.utils.flop_counter.FlopCounterMode``, which counts 2 FLOPs per
multiply-accumulate of every matmul (mm, addmm, bmm, baddbmm; elementwise ops are not counted, as in PaLM's
and nanoGPT's convention). The backward count includes the layer recomputation of gradient checkpointing.
Mixtral runs transformers' ``experts_implementation="eager"`` (a loop of F.linear per expert): the default
grouped_mm kernel is not in the counter's registry. The core's ``training_flops`` must equal these numbers.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import peft  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "validation" / "configs" / "small"
OUT_JSON = ROOT / "tests" / "core" / "golden" / "flops_measured.json"

QV = {"phi3": ["qkv_proj"], "gpt2": ["c_attn"]}
BASE = {"batch": 2, "seq": 64, "targets": "qv", "r": 8, "lora_dropout": 0.0, "gc": False}


def load_config(family: str) -> dict:
    return json.loads((CONFIG_DIR / f"{family}.json").read_text())


def build(case: dict) -> torch.nn.Module:
    raw = load_config(case["family"])
    cfg = AutoConfig.for_model(**raw)
    extra = {"experts_implementation": "eager"} if case["family"] == "mixtral" else {}
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation="eager", **extra)
    if case["gc"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if case["targets"] == "full":
        model.train()
        return model
    targets = {"qv": QV.get(case["family"], ["q_proj", "v_proj"]), "all": "all-linear", "experts": None}[
        case["targets"]
    ]
    kwargs: dict = {
        "r": case["r"],
        "lora_alpha": 2 * case["r"],
        "lora_dropout": case["lora_dropout"],
        "target_modules": targets,
        "task_type": "CAUSAL_LM",
    }
    if case["targets"] == "experts":
        kwargs["target_parameters"] = case.get("target_parameters", ["experts.gate_up_proj", "experts.down_proj"])
    for key in ("use_dora", "layers_to_transform", "modules_to_save"):
        if key in case:
            kwargs[key] = case[key]
    model = get_peft_model(model, LoraConfig(**kwargs))
    if case["gc"]:
        model.enable_input_require_grads()
    model.train()
    return model


def measure(case: dict) -> dict:
    model = build(case)
    vocab = load_config(case["family"])["vocab_size"]
    torch.manual_seed(1)
    ids = torch.randint(0, vocab, (case["batch"], case["seq"]))
    with FlopCounterMode(display=False) as forward:
        loss = model(input_ids=ids, labels=ids).loss
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    return {"forward": forward.get_total_flops(), "backward": backward.get_total_flops()}


def cases() -> list[dict]:
    out: list[dict] = []

    def add(family: str, **changes: object) -> None:
        case = {"family": family, **BASE, **changes}
        name = f"{family}-b{case['batch']}-s{case['seq']}-{case['targets']}-r{case['r']}"
        name += f"-do{case['lora_dropout']}-{'gc' if case['gc'] else 'nogc'}"
        for key in ("use_dora", "layers_to_transform", "modules_to_save", "target_parameters"):
            if key in case:
                name += f"-{key}"
        out.append({"id": name, **case})

    for family in ("llama", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "gpt2", "mixtral"):
        add(family)
        add(family, targets="all")
        add(family, gc=True)
        add(family, targets="all", gc=True, r=64)
        add(family, targets="full")
        add(family, targets="full", gc=True)
        add(family, batch=1, seq=96, targets="all")
        if family != "mixtral":
            add(family, targets="all", lora_dropout=0.1)
    add("mixtral", targets="experts")
    add("mixtral", targets="experts", target_parameters=["experts.gate_up_proj"])
    add("mixtral", targets="experts", gc=True)
    add("llama", use_dora=True)
    add("llama", use_dora=True, targets="all", lora_dropout=0.1)
    add("llama", use_dora=True, gc=True)
    add("llama", use_dora=True, gc=True, targets="all")
    add("llama", gc=True, targets="all", lora_dropout=0.1)
    add("llama", layers_to_transform=[1, 2])
    add("llama", gc=True, layers_to_transform=[0, 2])
    add("llama", modules_to_save=["lm_head"])
    add("gpt2", modules_to_save=["lm_head"], targets="all")
    return out


def main() -> None:
    torch.set_num_threads(2)
    results = []
    for case in cases():
        counted = measure(case)
        results.append({**case, **counted})
        print(f"{case['id']:60s} fwd {counted['forward']:>14,} bwd {counted['backward']:>14,}", flush=True)
    payload = {
        "description": __doc__.strip().splitlines()[0],
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
        "configs": {f: load_config(f) for f in sorted({c["family"] for c in results})},
        "cases": results,
    }
    OUT_JSON.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT_JSON.relative_to(ROOT)} ({len(results)} cases)", file=sys.stderr)


if __name__ == "__main__":
    main()
