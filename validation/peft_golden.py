"""Generate tests/core/golden/peft_params.json: what PEFT itself counts, for every architecture and a grid of
LoRA configurations.

Run with the validation venv (see validation/README.md):

    validation/.venv/bin/python validation/peft_golden.py                 # everything (several minutes)
    validation/.venv/bin/python validation/peft_golden.py --arch gpt2 --stdout   # one architecture, print only

For each architecture (calculator/data/presets.json + validation/configs/*.json) the model is built by
transformers on the meta device (no weights). For each case a FRESH model is built and
`peft.get_peft_model(model, LoraConfig(**kwargs))` is applied; the case records exactly
`PeftModel.get_nb_trainable_parameters()` -> (trainable, all), plus a per-module breakdown of the trainable
parameters (numel summed over layers, keyed by "<module leaf>.<component>"), the distinct tensor shapes per key,
the PEFT config as PEFT left it after injection ("effective"), and PEFT's own warnings. A configuration PEFT
rejects is recorded with "error" (exception type and message) instead of numbers.

The output is deterministic (no randomness reaches the numbers; keys are sorted, cases are in grid order).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "calculator" / "data" / "presets.json"
EXTRA_DIR = ROOT / "validation" / "configs"
OUT = ROOT / "tests" / "core" / "golden" / "peft_params.json"

LORA_COMPONENTS = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector")


# --------------------------------------------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------------------------------------------
def load_architectures() -> dict[str, dict]:
    archs: dict[str, dict] = {}
    for entry in json.loads(PRESETS.read_text()):
        archs[entry["slug"]] = {"config": entry["config"], "source": "preset"}
    for path in sorted(EXTRA_DIR.glob("*.json")):
        entry = json.loads(path.read_text())
        archs[entry["slug"]] = {"config": entry["config"], "source": "extra"}
    return archs


def build_model(config: dict):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model(**copy.deepcopy(config))
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(cfg)


def names_for(config: dict) -> dict:
    """The model's own module names, per family."""
    mt = config["model_type"]
    if mt == "gpt2":
        return {
            "family": "gpt2",
            "qv": ["c_attn"],
            "attn": ["c_attn", "attn.c_proj"],
            "mlp": ["c_fc", "mlp.c_proj"],
            "embed": "wte",
            "head": "lm_head",
            "layers_pattern": "h",
            "attn_path": "transformer.h.{i}.attn",
            "mlp_path": "transformer.h.{i}.mlp",
            "qv_regex": r".*\.c_attn",
            "layer01_regex": r"transformer\.h\.(0|1)\.attn\.(c_attn|c_proj)",
            "exclude_list": ["c_fc"],
            "exclude_regex": r".*\.h\.0\..*",
            "rank_pattern": {"c_attn": 4, "h.0.attn.c_proj": 2, r"h\.[12]\.mlp\.c_(fc|proj)": 12},
            "alpha_pattern": {"c_attn": 8, "h.0.attn.c_proj": 4},
            "v_name": "attn.c_proj",
            "v_layer0": "h.0.attn.c_proj",
            "q_full0": "transformer.h.0.attn.c_attn",
        }
    base = {
        "qv": ["q_proj", "v_proj"],
        "attn": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "mlp": ["gate_proj", "up_proj", "down_proj"],
        "embed": "embed_tokens",
        "head": "lm_head",
        "layers_pattern": "layers",
        "attn_path": "model.layers.{i}.self_attn",
        "mlp_path": "model.layers.{i}.mlp",
        "qv_regex": r".*\.(q|v)_proj",
        "layer01_regex": r"model\.layers\.(0|1)\.self_attn\.(q|k|v|o)_proj",
        "exclude_list": ["down_proj"],
        "exclude_regex": r".*\.layers\.0\..*",
        "rank_pattern": {"q_proj": 4, "layers.0.self_attn.v_proj": 2, r"layers\.[12]\.mlp\.(up|down)_proj": 12},
        "alpha_pattern": {"q_proj": 8, "layers.0.self_attn.v_proj": 4},
        "v_name": "v_proj",
        "v_layer0": "layers.0.self_attn.v_proj",
        "q_full0": "model.layers.0.self_attn.q_proj",
    }
    if mt == "phi3":
        base.update(
            family="phi3",
            qv=["qkv_proj"],
            attn=["qkv_proj", "o_proj"],
            mlp=["gate_up_proj", "down_proj"],
            qv_regex=r".*\.qkv_proj",
            layer01_regex=r"model\.layers\.(0|1)\.self_attn\.(qkv|o)_proj",
            rank_pattern={"qkv_proj": 4, "layers.0.self_attn.o_proj": 2, r"layers\.[12]\.mlp\.(gate_up|down)_proj": 12},
            alpha_pattern={"qkv_proj": 8, "layers.0.self_attn.o_proj": 4},
            v_name="o_proj",
            v_layer0="layers.0.self_attn.o_proj",
            q_full0="model.layers.0.self_attn.qkv_proj",
        )
    elif mt == "mixtral":
        # transformers 5 fuses the experts into 3D parameters; the v4 names w1/w2/w3 are what users pass and PEFT
        # converts them (see PEFT_NOTES.md).
        base.update(
            family="mixtral",
            mlp=["w1", "w2", "w3"],
            exclude_list=["w2"],
            rank_pattern={"q_proj": 4, "layers.0.self_attn.v_proj": 2, r"layers\.[12]\.self_attn\.(k|o)_proj": 12},
        )
    else:
        base["family"] = "llama-like"
    return base


# --------------------------------------------------------------------------------------------------------------
# Grid
# --------------------------------------------------------------------------------------------------------------
def _dedupe(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def grid(config: dict) -> list[tuple[str, dict]]:
    n = names_for(config)
    T = {"task_type": "CAUSAL_LM"}
    all_lin = n["attn"] + n["mlp"]
    cases: list[tuple[str, dict]] = [
        ("default_targets", {**T, "r": 8, "lora_alpha": 8}),
        ("qv_r16", {**T, "r": 16, "lora_alpha": 32, "target_modules": n["qv"]}),
        ("attn_r32_a64", {**T, "r": 32, "lora_alpha": 64, "target_modules": n["attn"]}),
        ("mlp_r8", {**T, "r": 8, "lora_alpha": 16, "target_modules": n["mlp"]}),
        ("all_linear_r64", {**T, "r": 64, "lora_alpha": 128, "target_modules": "all-linear"}),
        ("explicit_all_r8", {**T, "r": 8, "lora_alpha": 16, "target_modules": all_lin}),
        ("all_linear_dora_r16", {**T, "r": 16, "lora_alpha": 32, "target_modules": "all-linear", "use_dora": True}),
        ("qv_dora_r8", {**T, "r": 8, "lora_alpha": 16, "target_modules": n["qv"], "use_dora": True}),
        ("qv_bias_all", {**T, "r": 8, "lora_alpha": 16, "target_modules": n["qv"], "bias": "all"}),
        ("attn_bias_lora_only", {**T, "r": 8, "lora_alpha": 16, "target_modules": n["attn"], "bias": "lora_only"}),
        (
            "all_linear_bias_lora_only",
            {**T, "r": 8, "lora_alpha": 16, "target_modules": "all-linear", "bias": "lora_only"},
        ),
        ("all_linear_lora_bias", {**T, "r": 8, "lora_alpha": 16, "target_modules": "all-linear", "lora_bias": True}),
        ("qv_mts_head", {**T, "r": 8, "lora_alpha": 16, "target_modules": n["qv"], "modules_to_save": [n["head"]]}),
        ("qv_mts_embed", {**T, "r": 8, "lora_alpha": 16, "target_modules": n["qv"], "modules_to_save": [n["embed"]]}),
        (
            "qv_mts_embed_tying",
            {
                **T,
                "r": 8,
                "lora_alpha": 16,
                "target_modules": n["qv"],
                "modules_to_save": [n["embed"]],
                "ensure_weight_tying": True,
            },
        ),
        (
            "embed_head_q_targets",
            {**T, "r": 8, "lora_alpha": 16, "target_modules": [n["embed"], n["head"], n["qv"][0]]},
        ),
        (
            "embed_head_q_targets_tying",
            {
                **T,
                "r": 8,
                "lora_alpha": 16,
                "target_modules": [n["embed"], n["head"], n["qv"][0]],
                "ensure_weight_tying": True,
            },
        ),
        ("embed_q_dora", {**T, "r": 8, "lora_alpha": 16, "target_modules": [n["embed"], n["qv"][0]], "use_dora": True}),
        (
            "qv_layers_list",
            {**T, "r": 8, "lora_alpha": 16, "target_modules": n["qv"], "layers_to_transform": [0, 1, 5]},
        ),
        ("mlp_layers_int", {**T, "r": 8, "lora_alpha": 16, "target_modules": n["mlp"], "layers_to_transform": 1}),
        (
            "attn_layers_pattern",
            {
                **T,
                "r": 8,
                "lora_alpha": 16,
                "target_modules": n["attn"],
                "layers_to_transform": [0, 2],
                "layers_pattern": n["layers_pattern"],
            },
        ),
        (
            "full_name_target_with_layers",
            {**T, "r": 8, "lora_alpha": 16, "target_modules": [n["q_full0"]], "layers_to_transform": [1]},
        ),
        (
            "rank_alpha_pattern",
            {
                **T,
                "r": 8,
                "lora_alpha": 16,
                "target_modules": all_lin,
                "rank_pattern": n["rank_pattern"],
                "alpha_pattern": n["alpha_pattern"],
            },
        ),
        (
            "rank_pattern_order_suffix_first",
            {
                **T,
                "r": 8,
                "lora_alpha": 16,
                "target_modules": _dedupe(n["qv"] + [n["v_name"]]),
                "rank_pattern": {n["v_name"]: 4, n["v_layer0"]: 2},
            },
        ),
        (
            "rank_pattern_order_layer_first",
            {
                **T,
                "r": 8,
                "lora_alpha": 16,
                "target_modules": _dedupe(n["qv"] + [n["v_name"]]),
                "rank_pattern": {n["v_layer0"]: 2, n["v_name"]: 4},
            },
        ),
        ("regex_qv", {**T, "r": 8, "lora_alpha": 16, "target_modules": n["qv_regex"]}),
        ("regex_layers01_attn", {**T, "r": 8, "lora_alpha": 16, "target_modules": n["layer01_regex"]}),
        (
            "all_linear_exclude_list",
            {**T, "r": 8, "lora_alpha": 16, "target_modules": "all-linear", "exclude_modules": n["exclude_list"]},
        ),
        (
            "all_linear_exclude_regex",
            {**T, "r": 8, "lora_alpha": 16, "target_modules": "all-linear", "exclude_modules": n["exclude_regex"]},
        ),
        ("qv_rslora_r16", {**T, "r": 16, "lora_alpha": 16, "target_modules": n["qv"], "use_rslora": True}),
        ("suffix_must_be_whole_component", {**T, "r": 8, "lora_alpha": 16, "target_modules": ["proj"]}),
        (
            "err_all_linear_with_layers",
            {**T, "r": 8, "lora_alpha": 16, "target_modules": "all-linear", "layers_to_transform": [0]},
        ),
        (
            "err_dora_with_lora_bias",
            {**T, "r": 8, "lora_alpha": 16, "target_modules": n["qv"], "use_dora": True, "lora_bias": True},
        ),
    ]
    if n["family"] == "gpt2":
        cases += [
            ("gpt2_c_proj_both", {**T, "r": 8, "lora_alpha": 16, "target_modules": ["c_attn", "c_proj"]}),
            (
                "gpt2_all_linear_bias_all",
                {**T, "r": 8, "lora_alpha": 16, "target_modules": "all-linear", "bias": "all"},
            ),
            ("gpt2_mts_wpe", {**T, "r": 8, "lora_alpha": 16, "target_modules": ["c_attn"], "modules_to_save": ["wpe"]}),
        ]
    if n["family"] == "mixtral":
        cases += [
            (
                "moe_v4_names_qv_w123",
                {**T, "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj", "w1", "w2", "w3"]},
            ),
            ("moe_v4_w1_only", {**T, "r": 8, "lora_alpha": 16, "target_modules": ["w1"]}),
            ("moe_v4_w2_only", {**T, "r": 8, "lora_alpha": 16, "target_modules": ["w2"]}),
            ("moe_router_gate", {**T, "r": 8, "lora_alpha": 16, "target_modules": ["gate"]}),
            ("moe_experts_module", {**T, "r": 8, "lora_alpha": 16, "target_modules": ["experts"]}),
            (
                "moe_tp_experts",
                {
                    **T,
                    "r": 8,
                    "lora_alpha": 16,
                    "target_modules": [],
                    "target_parameters": ["experts.gate_up_proj", "experts.down_proj"],
                },
            ),
            (
                "moe_tp_experts_r16",
                {
                    **T,
                    "r": 16,
                    "lora_alpha": 32,
                    "target_modules": [],
                    "target_parameters": ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"],
                },
            ),
            (
                "moe_tp_down_plus_qv",
                {
                    **T,
                    "r": 8,
                    "lora_alpha": 16,
                    "target_modules": ["q_proj", "v_proj"],
                    "target_parameters": ["mlp.experts.down_proj"],
                },
            ),
            (
                "moe_tp_gate_up_only_default_modules",
                {**T, "r": 8, "lora_alpha": 16, "target_parameters": ["gate_up_proj"]},
            ),
            (
                "moe_tp_router_weight",
                {**T, "r": 8, "lora_alpha": 16, "target_modules": [], "target_parameters": ["gate.weight"]},
            ),
            (
                "moe_tp_rank_pattern",
                {
                    **T,
                    "r": 8,
                    "lora_alpha": 16,
                    "target_modules": [],
                    "target_parameters": ["experts.gate_up_proj", "experts.down_proj"],
                    "rank_pattern": {"gate_up_proj": 4, "layers.0.mlp.experts.down_proj": 2},
                },
            ),
            (
                "moe_tp_layers_to_transform",
                {
                    **T,
                    "r": 8,
                    "lora_alpha": 16,
                    "target_modules": ["q_proj"],
                    "target_parameters": ["experts.down_proj"],
                    "layers_to_transform": [0],
                },
            ),
            (
                "moe_regex_layer0_q",
                {**T, "r": 8, "lora_alpha": 16, "target_modules": r"model\.layers\.0\.self_attn\.q_proj"},
            ),
            (
                "moe_tp_with_dropout",
                {
                    **T,
                    "r": 8,
                    "lora_alpha": 16,
                    "lora_dropout": 0.05,
                    "target_modules": [],
                    "target_parameters": ["experts.down_proj"],
                },
            ),
        ]
    return cases


# --------------------------------------------------------------------------------------------------------------
# One case
# --------------------------------------------------------------------------------------------------------------
def _jsonable(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def breakdown_of(peft_model) -> tuple[dict, dict]:
    from peft.tuners.lora import LoraLayer
    from peft.tuners.lora.layer import ParamWrapper
    from peft.utils.other import ModulesToSaveWrapper

    key_of: dict[int, str] = {}
    for mname, module in peft_model.named_modules():
        parts = [p for p in mname.split(".") if p != "base_layer"]
        if isinstance(module, LoraLayer):
            leaf = parts[-1]
            if isinstance(module, ParamWrapper):
                leaf = f"{leaf}.{module.parameter_name}"
            for comp in LORA_COMPONENTS:
                container = getattr(module, comp, None)
                if container is None:
                    continue
                for pname, param in container.named_parameters():
                    suffix = ".bias" if pname.endswith("bias") else ""
                    key_of.setdefault(id(param), f"{leaf}.{comp}{suffix}")
        elif isinstance(module, ModulesToSaveWrapper):
            leaf = parts[-1]
            for pname, param in module.modules_to_save.named_parameters():
                key_of.setdefault(id(param), f"{leaf}.modules_to_save.{pname.split('.', 1)[1]}")
    numel: dict[str, int] = defaultdict(int)
    shapes: dict[str, set] = defaultdict(set)
    for name, param in peft_model.named_parameters():
        if not param.requires_grad:
            continue
        key = key_of.get(id(param))
        if key is None:
            parts = [p for p in name.split(".") if p != "base_layer"]
            key = ".".join(parts[-2:])
        numel[key] += param.numel()
        shapes[key].add(tuple(param.shape))
    return (
        dict(sorted(numel.items())),
        {k: [list(s) for s in sorted(v)] for k, v in sorted(shapes.items())},
    )


def run_case(config: dict, lora_kwargs: dict, build=None, low_cpu_mem_usage: bool = False) -> dict:
    """`build(config)` makes the fresh model (default: build_model, AutoModelForCausalLM on the meta device);
    peft_golden_2026.py passes its own (ImageTextToText where CausalLM is refused) and post-processes the result.
    `low_cpu_mem_usage` makes PEFT create the adapter weights on the meta device too (same modules and shapes; the
    real-size MoE configs would otherwise allocate and initialise billions of expert-LoRA parameters per case)."""
    from peft import LoraConfig, get_peft_model

    out: dict = {}
    model = (build or build_model)(config)  # fresh instance for every case
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            lora_config = LoraConfig(**copy.deepcopy(lora_kwargs))
            peft_model = get_peft_model(model, lora_config, low_cpu_mem_usage=low_cpu_mem_usage)
        except Exception as exc:  # PEFT rejected this combination: record why
            out["error"] = f"{type(exc).__name__}: {exc}"[:600]
            peft_model = None
    msgs: list[str] = []
    for w in caught:
        if "/peft/" in w.filename.replace("\\", "/"):
            msg = str(w.message)[:300]
            if msg not in msgs:
                msgs.append(msg)
    if peft_model is None:
        if msgs:
            out["warnings"] = msgs
        return out
    trainable, all_params = peft_model.get_nb_trainable_parameters()
    out["trainable"] = int(trainable)
    out["all"] = int(all_params)
    out["breakdown"], out["shapes"] = breakdown_of(peft_model)
    if sum(out["breakdown"].values()) != trainable:
        raise AssertionError(f"breakdown does not add up: {sum(out['breakdown'].values())} != {trainable}")
    cfg = peft_model.peft_config["default"]
    tm = cfg.target_modules
    effective: dict = {}
    if isinstance(tm, (set, list, tuple)) and len(tm) > 40:
        effective["target_modules"] = {"count": len(tm)}
    else:
        effective["target_modules"] = _jsonable(tm)
    if cfg.target_parameters is not None:
        effective["target_parameters"] = _jsonable(cfg.target_parameters)
    for attr in ("rank_pattern", "alpha_pattern"):
        value = getattr(cfg, attr) or {}
        if value != (lora_kwargs.get(attr) or {}):
            effective[attr] = _jsonable(value)
    out["effective"] = effective
    tuner = peft_model.base_model
    out["targeted_modules"] = len(tuner.targeted_module_names)
    if tuner.targeted_parameter_names:
        out["targeted_parameters"] = len(tuner.targeted_parameter_names)
    if msgs:
        out["warnings"] = msgs
    return out


# --------------------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------------------
def new_doc(generated_by: str) -> dict:
    """An empty golden document: the versions it is generated with, its architectures and cases to come."""
    import peft
    import torch
    import transformers

    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
    return {"versions": versions, "generated_by": generated_by, "architectures": {}, "cases": []}


def dump(doc: dict) -> str:
    """Pretty top level, one line per case (small and diff-friendly)."""
    lines = ["{"]
    lines.append(f'  "versions": {json.dumps(doc["versions"], sort_keys=True)},')
    lines.append(f'  "generated_by": {json.dumps(doc["generated_by"])},')
    lines.append('  "architectures": {')
    items = list(doc["architectures"].items())
    for i, (slug, arch) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"    {json.dumps(slug)}: {json.dumps(arch, sort_keys=True)}{comma}")
    lines.append("  },")
    lines.append('  "cases": [')
    for i, case in enumerate(doc["cases"]):
        comma = "," if i < len(doc["cases"]) - 1 else ""
        lines.append(f"    {json.dumps(case)}{comma}")
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", action="append", help="only these architecture slugs (repeatable)")
    parser.add_argument("--stdout", action="store_true", help="print the cases instead of writing the file")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    import transformers

    transformers.logging.set_verbosity_error()
    archs = load_architectures()
    if args.arch:
        unknown = set(args.arch) - archs.keys()
        if unknown:
            parser.error(f"unknown architectures: {sorted(unknown)}")
        archs = {k: v for k, v in archs.items() if k in args.arch}

    doc = new_doc("validation/peft_golden.py")
    t_start = time.time()
    for slug, arch in archs.items():
        t0 = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = sum(p.numel() for p in build_model(arch["config"]).parameters())
        doc["architectures"][slug] = {"config": arch["config"], "base_params": int(base), "source": arch["source"]}
        n_err = 0
        for case_id, kwargs in grid(arch["config"]):
            result = run_case(arch["config"], kwargs)
            n_err += "error" in result
            case = {"arch": slug, "id": case_id, "lora": kwargs, **result}
            doc["cases"].append(case)
            if args.stdout:
                print(json.dumps(case))
        print(
            f"{slug}: base {base:,d}, {len(grid(arch['config']))} cases ({n_err} errors) in {time.time() - t0:.1f}s",
            file=sys.stderr,
            flush=True,
        )
    if not args.stdout:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(dump(doc))
        print(
            f"wrote {args.out} ({args.out.stat().st_size:,d} bytes, {len(doc['cases'])} cases) "
            f"in {time.time() - t_start:.0f}s",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
