"""Measured memory of LoRA training for the 2026 families (issue 7), written to
tests/core/golden/memory_measured_2026.json in memory_measured.json's case format.

Run:  validation/.venv/bin/python validation/measure_memory_2026.py [--quick] [--config gpt_oss ...] [--no-write]
      ... --list                 print the grid only

Same instrumentation as measure_memory.py (its _run_case, with this file's Families2026 telling it how to build a
2026 model, where its decoder layers are and which tokens the routers picked): the small configs of
validation/configs/small/ (small_configs.py) are trained one step on the CPU with random weights and random *text*
batches (no image, no audio: the vision towers of the multimodal wrappers do not run), each storage counted once,
CPU-specific storages GPU-adjusted as in measure_memory.py. Every case is a run of the real model; there is no
closed-form check here (formula.applicable is false, scope "2026"): the lead's replay is what gets checked against
these numbers.

Differences from memory_measured.json's cases: "seconds" is not written (re-runs are byte-identical); every case
records peft_effective, lora_shapes with dtypes, the experts implementation and (MoE) the tokens routed per expert
per layer; "kernels" says which linear-attention / short-convolution path ran (the torch fallback on this CPU);
"quantized_models" (top level) lists, for every quantized base measured, each parameter as bitsandbytes stores it.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import platform
import re
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure_memory as mm  # noqa: E402
import peft  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from measure_quant import _tensors_of_quant_state  # noqa: E402
from model_build import IMAGE_TEXT_TO_TEXT, auto_class_for, build, fixed_hash_seed  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SMALL_DIR = ROOT / "validation" / "configs" / "small"
OUT_JSON = ROOT / "tests" / "core" / "golden" / "memory_measured_2026.json"
SPECIAL_TOKENS_ABOVE = 16  # small_configs.py puts every special / image / audio token id in the top 16 ids

DESCRIPTION = (
    "Measured reference data for the 2026 families (issue 7), produced by validation/measure_memory_2026.py "
    "(see validation/ACTIVATIONS.md, section 2026). Small random-weight models from validation/configs/small/ on "
    "the CPU, text batches only, LoRA via PEFT, one forward + backward + optimizer step. Same fields as "
    "memory_measured.json: saved.total_cpu = bytes kept for backward (each storage once, parameters/buffers and "
    "the loss value excluded); activations_gpu_adjusted replaces the CPU dropout masks by CUDA's bool masks and "
    "the CPU LayerNorm statistics by fp32 ones. No closed form is evaluated (formula.applicable = false). "
    "quantized_models: every parameter of each quantized base as bitsandbytes stores it."
)

# Module names: "qv" is the q,v list of the family as users write it (gemma4's vision tower has q_proj / v_proj
# wrappers PEFT refuses, so its text q,v are reached by PEFT's own default regex); "all" is "all-linear";
# "experts" is target_parameters on the 3-D expert tensors.
QV = {
    "falcon": ["query_key_value"],
    "deepseek_v2": ["q_b_proj", "kv_b_proj"],
    "deepseek_v3": ["q_b_proj", "kv_b_proj"],
    "gemma4": r".*language_model\..*\.(q_proj|v_proj)",
}
EXPERTS = {
    "llama4": "feed_forward.experts",
    "gemma4": "experts",
    "gemma4_text": "experts",
}


def load_config(name: str) -> dict:
    return json.loads((SMALL_DIR / f"{name}.json").read_text())


def text_dict(config: dict) -> dict:
    return config.get("text_config") or config


def qv_for(config: dict):
    mt = config["model_type"]
    if mt in ("deepseek_v2", "deepseek_v3") and text_dict(config).get("q_lora_rank") is None:
        return ["q_proj", "kv_b_proj"]
    return QV.get(mt, ["q_proj", "v_proj"])


def experts_for(config: dict) -> str:
    return EXPERTS.get(config["model_type"], "mlp.experts")


def text_stack(model) -> str:
    """Path of the language model's decoder-layer ModuleList (the first one outside vision / audio towers)."""
    from torch import nn

    for path, m in model.named_modules():
        if isinstance(m, nn.ModuleList) and not re.search(r"vision|visual|audio", path):
            return path
    raise ValueError("no decoder layer stack")


_CHECKPOINTS: dict[str, str] = {}


def random_checkpoint(name: str) -> str:
    """A random-weight bf16 checkpoint of the small config (quantized bases are loaded from it)."""
    if name not in _CHECKPOINTS:
        import tempfile

        torch.manual_seed(0)
        model, _ = build(load_config(name), device="cpu", dtype=torch.bfloat16)
        path = tempfile.mkdtemp(prefix=f"lorasite-{name}-")
        model.save_pretrained(path)
        _CHECKPOINTS[name] = path
    return _CHECKPOINTS[name]


def load_quantized(name: str, quant: str, attn: str):
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    config = load_config(name)
    cls = AutoModelForImageTextToText if auto_class_for(config) == IMAGE_TEXT_TO_TEXT else AutoModelForCausalLM
    return cls.from_pretrained(
        random_checkpoint(name),
        quantization_config=mm.bnb_config(quant),
        dtype=torch.bfloat16,
        device_map="cpu",
        attn_implementation=attn,
    )


class Families2026(mm.Families2024):
    """measure_memory._run_case's view of a 2026 case: `family` is the small config's name."""

    stacks: dict[str, str] = {}

    @staticmethod
    def build(case):
        name = case["family"]
        config = load_config(name)
        torch.manual_seed(0)
        if case.get("quant"):
            model = load_quantized(name, case["quant"], case["attn"])
        else:
            model, _ = build(
                config,
                device="cpu",
                dtype=mm.DTYPES[case["dtype"]],
                attn_implementation=case["attn"],
            )
        Families2026.stacks[name] = text_stack(model)
        if case["gc"]:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        targets = {"qv": qv_for(config), "all": "all-linear", "experts": []}[case["targets"]]
        lora_kwargs = {
            "r": case["r"],
            "lora_alpha": 2 * case["r"],
            "lora_dropout": case["lora_dropout"],
            "target_modules": targets,
            "bias": "none",
            "task_type": "CAUSAL_LM",
        }
        if case["targets"] == "experts":
            leaf = experts_for(config)
            lora_kwargs["target_parameters"] = [f"{leaf}.gate_up_proj", f"{leaf}.down_proj"]
        if case.get("dora"):
            lora_kwargs["use_dora"] = True
        pm = get_peft_model(model, LoraConfig(**copy.deepcopy(lora_kwargs)))
        if case["gc"] or case.get("input_grads"):
            pm.enable_input_require_grads()
        pm.train()
        return model.config, pm, lora_kwargs

    @staticmethod
    def dims(cfg) -> dict:
        # read through to_dict(): Gemma 4's per-layer attributes (head_dim) refuse plain attribute access
        t = cfg.get_text_config().to_dict()
        heads = t["num_attention_heads"]
        dims = {
            "model_type": cfg.model_type,
            "text_model_type": t["model_type"],
            "hidden": t["hidden_size"],
            "intermediate": t.get("intermediate_size") or t.get("ffn_hidden_size"),
            "layers": t["num_hidden_layers"],
            "heads": heads,
            "kv_heads": t.get("num_key_value_heads") or t.get("num_kv_heads") or heads,
            "head_dim": t.get("head_dim") or t["hidden_size"] // heads,
            "vocab": t["vocab_size"],
            "tied": bool(cfg.to_dict().get("tie_word_embeddings", False)),
        }
        experts = next((t[k] for k in ("num_experts", "num_local_experts", "n_routed_experts") if t.get(k)), None)
        if experts:
            top_k = next(t[k] for k in ("num_experts_per_tok", "top_k_experts") if t.get(k))
            dims |= {"experts": experts, "top_k": top_k}
        if t.get("layer_types"):
            dims["layer_types"] = list(t["layer_types"])
        return dims

    @staticmethod
    def layer_prefix(fam):
        return f"base_model.model.{Families2026.stacks[fam]}.", "base_model.model"

    @staticmethod
    def layers(pm, fam):
        return list(pm.base_model.model.get_submodule(Families2026.stacks[fam]))

    @staticmethod
    def input_id_high(dims) -> int:
        return dims["vocab"] - SPECIAL_TOKENS_ABOVE

    @staticmethod
    def routing_hooks(pm, fam, dims, routing) -> list:
        """Tokens per expert per layer, read from the top-k index tensor the experts module receives (Qwen, GLM,
        DeepSeek, gpt-oss, Gemma 4). Llama 4 passes none: its experts run on every token (router scores mask)."""
        handles = []
        for li, layer in enumerate(Families2026.layers(pm, fam)):
            experts = next(
                (m for n, m in layer.named_modules() if n.endswith("experts") and hasattr(m, "down_proj")), None
            )
            if experts is None:
                continue

            def hook(mod, args, kwargs, li=li):
                for a in list(args) + list(kwargs.values()):
                    if torch.is_tensor(a) and a.dtype == torch.int64 and a.dim() == 2:
                        routing.setdefault(str(li), torch.bincount(a.reshape(-1), minlength=dims["experts"]).tolist())
                        return

            handles.append(experts.register_forward_pre_hook(hook, with_kwargs=True))
        return handles


# ----------------------------------------------------------------------------------------------------------------
# Grid
# ----------------------------------------------------------------------------------------------------------------
BASE = {"batch": 2, "seq": 64, "dtype": "bf16", "targets": "qv", "r": 8, "lora_dropout": 0.0, "gc": False}
DENSE = [
    "gemma3_text",
    "olmo2",
    "granite",
    "smollm3",
    "cohere2",
    "glm4",
    "phi",
    "starcoder2",
    "falcon-new-arch",
    "falcon-old",
    "falcon-rw",
    "lfm2",
]
MULTIMODAL = ["gemma3", "gemma4", "gemma4_text", "mistral3", "qwen2_5_vl", "mllama"]
HYBRID = ["qwen3_5", "qwen3_5_moe", "qwen3_next"]
MOE = [
    "qwen3_moe",
    "qwen2_moe",
    "gpt_oss",
    "glm4_moe",
    "deepseek_v2",
    "deepseek_v2-lite",
    "deepseek_v3",
    "llama4",
    "gemma4-moe",
]
QUANTIZED = [
    ("olmo2", "nf4", {}),
    ("olmo2", "nf4", {"targets": "all", "gc": True}),
    ("olmo2", "int8", {"targets": "all"}),
    ("gemma3", "nf4", {"targets": "all"}),
    ("qwen3_5", "nf4", {"targets": "all"}),
    ("qwen3_moe", "nf4", {}),
    ("qwen3_moe", "nf4", {"targets": "all"}),
    ("qwen3_moe", "nf4", {"targets": "experts"}),
    ("qwen3_moe", "int8", {"targets": "all"}),
    ("gpt_oss", "nf4", {"targets": "experts"}),
]


def kernels_supported(name: str) -> list[str]:
    """eager always; sdpa where transformers builds the model with it (gpt-oss's sinks need eager, ...)."""
    out = ["eager"]
    try:
        build(load_config(name), device="meta", attn_implementation="sdpa")
        out.append("sdpa")
    except Exception:  # transformers refuses sdpa for this class
        pass
    return out


def case_id(c: dict) -> str:
    return (
        f"{c['family']}-b{c['batch']}-s{c['seq']}-{c['dtype']}-{c['attn']}-{c['targets']}-r{c['r']}"
        f"-do{c['lora_dropout']}-{'gc' if c['gc'] else 'nogc'}"
        + ("-dora" if c.get("dora") else "")
        + (f"-{c['quant']}" if c.get("quant") else "")
    )


def grid(names: list[str] | None = None, quick: bool = False) -> list[dict]:
    cases: list[dict] = []
    seen: set[str] = set()
    kernels: dict[str, list[str]] = {}

    def add(name: str, **kw):
        if names and name not in names:
            return
        if name not in kernels:
            kernels[name] = kernels_supported(name)
        c = dict(BASE) | {"attn": kernels[name][-1]} | kw | {"family": name, "extended": True}
        if c["attn"] not in kernels[name]:
            return
        c["id"] = case_id(c)
        if c["id"] not in seen:
            seen.add(c["id"])
            cases.append(c)

    moe_or_hybrid_moe = set(MOE) | {"qwen3_5_moe", "qwen3_next"}
    for name in DENSE + MULTIMODAL + HYBRID + MOE:
        add(name)
        add(name, targets="all", gc=True)
        if quick:
            continue
        add(name, dtype="fp32")
        add(name, attn="eager")
        add(name, targets="all")
        add(name, gc=True)
        add(name, batch=1, seq=256)  # longer than every sliding window / attention chunk of the small configs
        add(name, dtype="fp32", attn="eager", targets="all", gc=True)
        if name in moe_or_hybrid_moe:
            add(name, lora_dropout=0.1)  # q,v only: PEFT's ParamWrapper refuses dropout on expert parameters
            add(name, targets="experts")
            add(name, targets="experts", gc=True)
            add(name, targets="experts", dtype="fp32")
        else:
            add(name, targets="all", lora_dropout=0.1)
            add(name, targets="all", dora=True)
    for name, quant, kw in QUANTIZED:
        if quick and kw:
            continue
        add(name, quant=quant, **kw)
    return cases


# ----------------------------------------------------------------------------------------------------------------
# Quantized storage per parameter
# ----------------------------------------------------------------------------------------------------------------
def quantized_storage(name: str, quant: str) -> dict:
    """Every parameter of the quantized base: class, dtype, shape, the bytes of its storage and of its
    quantization state (absmax, code, nested state / SCB), and per class the totals."""
    model = load_quantized(name, quant, "eager")
    params = []
    totals: dict[str, dict] = {}
    for pname, p in model.named_parameters():
        cls = type(p).__name__
        extra = []
        qs = getattr(p, "quant_state", None)
        if qs is not None:
            extra = _tensors_of_quant_state(qs)
        elif torch.is_tensor(getattr(p, "SCB", None)):
            extra = [("SCB", p.SCB)]
        data_bytes = p.untyped_storage().nbytes()
        state_bytes = sum(t.untyped_storage().nbytes() for _n, t in extra)
        entry = {
            "name": pname,
            "class": cls,
            "dtype": str(p.dtype).replace("torch.", ""),
            "shape": list(p.shape),
            "numel_logical": int(getattr(qs, "shape", p.shape).numel()) if qs is not None else p.numel(),
            "data_bytes": data_bytes,
            "state_bytes": state_bytes,
        }
        if extra:
            entry["state"] = {n: [list(t.shape), str(t.dtype).replace("torch.", "")] for n, t in extra}
        params.append(entry)
        key = f"{cls}/{entry['dtype']}"
        t = totals.setdefault(key, {"params": 0, "data_bytes": 0, "state_bytes": 0})
        t["params"] += 1
        t["data_bytes"] += data_bytes
        t["state_bytes"] += state_bytes
    return {
        "config_file": f"validation/configs/small/{name}.json",
        "quant": quant,
        "bnb_config": "nf4, double quant, blocksize 64, bf16 compute" if quant == "nf4" else "LLM.int8",
        "totals_by_class": dict(sorted(totals.items())),
        "parameters": params,
    }


# ----------------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------------
def kernel_paths(layer_types: list[str] | None = None) -> dict:
    """Which implementation the linear-attention / short-convolution blocks ran (the hub kernels, fla and
    causal-conv1d are CUDA-only and not installed: transformers falls back to its torch reference code)."""
    fla = importlib.util.find_spec("fla") is not None
    conv = importlib.util.find_spec("causal_conv1d") is not None
    out = {"causal_conv1d_installed": conv, "short_convolution": "causal_conv1d_fn" if conv else "torch F.conv1d path"}
    if layer_types is None or "linear_attention" in layer_types:
        out |= {
            "fla_installed": fla,
            "gated_delta_rule": "fla chunk_gated_delta_rule" if fla else "torch_chunk_gated_delta_rule (torch path)",
        }
    return out


def run(case: dict, optim_cache: dict) -> dict:
    try:
        r = mm.run_case(case, optim_cache=optim_cache, families=Families2026)
    except Exception as exc:  # the training step itself fails (e.g. PEFT wraps Llama 4's tuple-returning router)
        inputs = {k: case[k] for k in ("batch", "seq", "dtype", "attn", "targets", "r", "lora_dropout", "gc")}
        return {
            "id": case["id"],
            "family": case["family"],
            "config_file": f"validation/configs/small/{case['family']}.json",
            "inputs": inputs | {"quant": case.get("quant"), "use_dora": bool(case.get("dora"))},
            "error": f"{type(exc).__name__}: {exc}"[:600],
            "formula": {"applicable": False, "scope": "2026"},
        }
    r.pop("seconds", None)
    r["formula"] = {"applicable": False, "scope": "2026"}
    cfg = load_config(case["family"])
    r["auto_class"] = auto_class_for(cfg)
    r["layer_stack"] = Families2026.stacks[case["family"]]
    layer_types = r["dims"].get("layer_types", [])
    if any(t in ("linear_attention", "conv") for t in layer_types):
        r["kernels"] = kernel_paths(layer_types)
    return r


def main(argv: list[str]) -> int:
    fixed_hash_seed(__file__, argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", action="append", help="only these small configs (repeatable)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(mm.TORCH_THREADS)
    cases = grid(args.config, quick=args.quick)
    if args.list:
        for c in cases:
            print(c["id"])
        print(f"{len(cases)} cases")
        return 0
    results, optim_cache = [], {}
    t_all = time.time()
    per_family: dict[str, float] = {}
    for i, c in enumerate(cases):
        t0 = time.time()
        r = run(c, optim_cache)
        results.append(r)
        per_family[c["family"]] = per_family.get(c["family"], 0.0) + time.time() - t0
        if "error" in r:
            print(f"[{i + 1}/{len(cases)}] {r['id']:<64} ERROR {r['error'][:120]}", flush=True)
            continue
        print(
            f"[{i + 1}/{len(cases)}] {r['id']:<64} saved={r['saved']['total_cpu']:>10} "
            f"gpu_adj={r['activations_gpu_adjusted']:>10} layers={r['saved']['layers_cpu']:>10} "
            f"head={r['saved']['head_loss_cpu']:>9} trainable={r['trainable_params']:>8} {time.time() - t0:.1f}s",
            flush=True,
        )
    quantized = {}
    for name, quant in sorted({(c["family"], c["quant"]) for c in cases if c.get("quant")}):
        quantized[f"{name}-{quant}"] = quantized_storage(name, quant)
    print(f"total {time.time() - t_all:.0f}s; per config: " + ", ".join(f"{k} {v:.0f}s" for k, v in per_family.items()))
    if args.no_write:
        return 0
    doc = {
        "description": DESCRIPTION,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "bitsandbytes": mm._version("bitsandbytes"),
            "lion_pytorch": mm._version("lion_pytorch"),
            "device": "cpu",
            "threads": mm.TORCH_THREADS,
            "kernels": kernel_paths(),
        },
        "configs_dir": "validation/configs/small",
        "generated_by": "validation/measure_memory_2026.py",
        "quantized_models": quantized,
        "cases": results,
    }
    if args.config:  # a partial run replaces its cases in the existing file, everything else is kept
        old = json.loads(OUT_JSON.read_text()) if OUT_JSON.exists() else {"cases": [], "quantized_models": {}}
        new = {r["id"]: r for r in json.loads(json.dumps(results, default=mm._json_default))}
        order = [c["id"] for c in grid(None, quick=False)]
        merged = {r["id"]: r for r in old["cases"]} | new
        doc["cases"] = [merged[i] for i in order if i in merged]
        doc["quantized_models"] = dict(sorted((old.get("quantized_models", {}) | quantized).items()))
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(doc, indent=1, sort_keys=True, default=mm._json_default) + "\n")
    print(f"wrote {OUT_JSON.relative_to(ROOT)} ({len(doc['cases'])} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
