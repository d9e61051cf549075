"""Write tests/core/golden/inventories.json: the module inventory transformers builds for every 2026 config.

Run with the validation venv (see validation/README.md):

    validation/.venv/bin/python validation/inventory.py                    # everything (~1 min)
    validation/.venv/bin/python validation/inventory.py --only gpt_oss --stdout

Sources: the small configs of validation/configs/small/ that small_configs.py writes (2026 families only) and
the real-size configs of validation/configs/catalog/*.json. Each is built on the meta device with the class issue 7
names (`AutoModelForCausalLM`, or `AutoModelForImageTextToText` where transformers refuses the first, see
model_build.py); for multimodal types that CausalLM builds text-only (mllama, llama4, qwen3_5, qwen3_5_moe) the
ImageTextToText model is recorded too, under "<name>@image_text_to_text".

Every entry has the totals and the compressed per-stack form; small configs also list every module. The format is
documented in validation/README.md ("Inventory format"). Output is deterministic (sorted keys, module order).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_build import CAUSAL_LM, IMAGE_TEXT_TO_TEXT, auto_class_for, build_meta, fixed_hash_seed

ROOT = Path(__file__).resolve().parent.parent
SMALL_DIR = ROOT / "validation" / "configs" / "small"
CATALOG_DIR = ROOT / "validation" / "configs" / "catalog"
OUT = ROOT / "tests" / "core" / "golden" / "inventories.json"
VISION_SUFFIX = "@image_text_to_text"
# model types that AutoModelForCausalLM builds without their vision tower: their ImageTextToText model is recorded too
ALSO_IMAGE_TEXT_TO_TEXT = {"mllama", "llama4", "qwen3_5", "qwen3_5_moe"}


def small_sources() -> dict[str, dict]:
    from small_configs import SMALL

    out = {}
    for name in SMALL:
        path = SMALL_DIR / f"{name}.json"
        out[name] = {"config": json.loads(path.read_text()), "source": "small", "config_file": _rel(path)}
    return out


def catalog_sources() -> dict[str, dict]:
    """Every config.json of configs/catalog/ (a file holding {"config": ...} is read too); the catalog's own
    bookkeeping files there (counts.json, sources.json: no model_type) are skipped."""
    out = {}
    for path in sorted(CATALOG_DIR.glob("*.json")):
        entry = json.loads(path.read_text())
        config = entry.get("config", entry)
        if "model_type" not in config:
            continue
        out[path.stem] = {"config": config, "source": "catalog", "config_file": _rel(path)}
    return out


def all_sources(include_alternatives: bool = True) -> dict[str, dict]:
    """name -> {config, source, config_file, auto_class}; ImageTextToText variants added after their base."""
    out: dict[str, dict] = {}
    for name, src in {**small_sources(), **catalog_sources()}.items():
        src = src | {"auto_class": auto_class_for(src["config"])}
        out[name] = src
        if include_alternatives and src["config"]["model_type"] in ALSO_IMAGE_TEXT_TO_TEXT:
            out[name + VISION_SUFFIX] = src | {"auto_class": IMAGE_TEXT_TO_TEXT}
    return out


def _rel(path: Path) -> str:
    return str(path.resolve().relative_to(ROOT))


# ----------------------------------------------------------------------------------------------------------------
# Module description
# ----------------------------------------------------------------------------------------------------------------
def module_kind(module) -> str:
    """linear (nn.Linear and subclasses) | hf_conv1d (transformers' Conv1D) | embedding | conv1d | conv2d | conv3d |
    multihead_attention | other. The kinds PEFT's LoRA can wrap, plus everything else."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, Conv1D):
        return "hf_conv1d"
    if isinstance(module, nn.Embedding):
        return "embedding"
    if isinstance(module, nn.Conv1d):
        return "conv1d"
    if isinstance(module, nn.Conv2d):
        return "conv2d"
    if isinstance(module, nn.Conv3d):
        return "conv3d"
    if isinstance(module, nn.MultiheadAttention):
        return "multihead_attention"
    return "other"


def describe(module) -> dict:
    """Class, kind, the kind's dimensions, direct parameters and buffers of one module."""
    kind = module_kind(module)
    d: dict = {"class": type(module).__name__, "kind": kind}
    if kind == "linear":
        d |= {"in": module.in_features, "out": module.out_features, "bias": module.bias is not None}
    elif kind == "hf_conv1d":
        d |= {"in": module.weight.shape[0], "out": module.nf, "bias": module.bias is not None}
    elif kind == "embedding":
        d |= {"num": module.num_embeddings, "dim": module.embedding_dim}
    elif kind.startswith("conv"):
        d |= {
            "in": module.in_channels,
            "out": module.out_channels,
            "kernel": list(module.kernel_size),
            "groups": module.groups,
            "bias": module.bias is not None,
        }
    elif kind == "multihead_attention":
        d |= {"embed_dim": module.embed_dim, "num_heads": module.num_heads}
    params = {n: list(p.shape) for n, p in module.named_parameters(recurse=False)}
    if params:
        d["params"] = params
    persistent = set(getattr(module, "_buffers", {})) - set(getattr(module, "_non_persistent_buffers_set", set()))
    buffers = {
        n: {"shape": list(b.shape), "dtype": str(b.dtype).replace("torch.", ""), "persistent": n in persistent}
        for n, b in module.named_buffers(recurse=False)
        if b is not None
    }
    if buffers:
        d["buffers"] = buffers
    return d


# ----------------------------------------------------------------------------------------------------------------
# Inventory of one model
# ----------------------------------------------------------------------------------------------------------------
def layer_stacks(model) -> dict[str, dict]:
    """Outermost nn.ModuleLists (decoder layers, vision blocks, ...): the distinct layer kinds and their layout."""
    from torch import nn

    stacks: dict[str, dict] = {}
    taken: list[str] = []
    for path, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or any(path.startswith(t + ".") for t in taken):
            continue
        taken.append(path)
        kinds: list[dict] = []
        signatures: list[str] = []
        layout: list[int] = []
        for _idx, child in module.named_children():
            modules = []
            for rel, sub in child.named_modules():
                desc = describe(sub)
                if desc["kind"] == "other" and "params" not in desc and "buffers" not in desc and rel:
                    # parameter-free containers/activations still matter for names (PEFT matches suffixes)
                    desc = {"class": desc["class"], "kind": "other"}
                modules.append({"path": rel} | desc)
            sig = json.dumps(modules, sort_keys=True)
            if sig not in signatures:
                signatures.append(sig)
                numel = sum(p.numel() for p in child.parameters())
                kinds.append({"class": type(child).__name__, "params": numel, "modules": modules})
            layout.append(signatures.index(sig))
        stacks[path] = {"length": len(layout), "layout": layout, "kinds": kinds}
    return stacks


WRAPPERS = {"model", "transformer", "language_model"}


def component_of(name: str) -> str:
    """The top-level component a parameter name belongs to: the model's child, or for wrapper children that hold
    several parts (model, transformer, language_model) their child (model.language_model.layers, lm_head, ...)."""
    parts = name.split(".")
    if parts[0] in WRAPPERS and len(parts) > 2:
        if parts[1] in WRAPPERS and len(parts) > 3:
            return ".".join(parts[:3])
        return ".".join(parts[:2])
    return parts[0]


def components(model, trainable_only: bool = False) -> dict[str, int]:
    """Parameters (tied once, at their first name) per top-level component (component_of)."""
    out: dict[str, int] = {}
    for name, p in model.named_parameters():
        if trainable_only and not p.requires_grad:
            continue
        key = component_of(name)
        out[key] = out.get(key, 0) + p.numel()
    return dict(sorted(out.items()))


def tied_parameters(model) -> list[list[str]]:
    """Groups of parameter names that share one tensor (first name = the one counted)."""
    by_id: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(p), []).append(name)
    return [names for names in by_id.values() if len(names) > 1]


def inventory(src: dict, full: bool) -> dict:
    model, auto_class = build_meta(src["config"], src["auto_class"])
    assert auto_class == src["auto_class"]
    base = sum(p.numel() for p in model.parameters())
    out = {
        "source": src["source"],
        "config_file": src["config_file"],
        "model_type": src["config"]["model_type"],
        "auto_class": auto_class,
        "auto_class_refused": [CAUSAL_LM] if auto_class == IMAGE_TEXT_TO_TEXT and not _builds_causal(src) else [],
        "model_class": type(model).__name__,
        "config_class": type(model.config).__name__,
        "config_model_type": model.config.model_type,
        "base_params": int(base),
        "params_with_duplicates": int(sum(p.numel() for _n, p in model.named_parameters(remove_duplicate=False))),
        "tied": tied_parameters(model),
        "output_embeddings": _module_path(model, model.get_output_embeddings()),
        "input_embeddings": _module_path(model, model.get_input_embeddings()),
        "components": components(model),
        "kind_counts": _kind_counts(model),
        "buffers_numel": int(sum(b.numel() for b in model.buffers())),
        "layer_stacks": layer_stacks(model),
        "non_layer_modules": _non_layer_modules(model),
    }
    if full:
        out["modules"] = [{"path": path} | describe(m) for path, m in model.named_modules()]
    return out


def _builds_causal(src: dict) -> bool:
    return auto_class_for(src["config"]) == CAUSAL_LM


def _module_path(model, target) -> str | None:
    if target is None:
        return None
    for path, m in model.named_modules():
        if m is target:
            return path
    return None


def _kind_counts(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _p, m in model.named_modules():
        k = module_kind(m)
        if k != "other":
            counts[k] = counts.get(k, 0) + 1
    return dict(sorted(counts.items()))


def _non_layer_modules(model) -> list[dict]:
    """Modules outside every layer stack that own parameters or buffers (embeddings, norms, projectors, heads)."""
    from torch import nn

    stacks = [p for p, m in model.named_modules() if isinstance(m, nn.ModuleList)]
    out = []
    for path, m in model.named_modules():
        if any(path == s or path.startswith(s + ".") for s in stacks):
            continue
        d = describe(m)
        if "params" in d or "buffers" in d:
            out.append({"path": path} | d)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------------------------
def dump(doc: dict) -> str:
    """Readable and diff-friendly: one line per module / layer kind, keys sorted."""
    lines = ["{"]
    lines.append(f'  "generated_by": {json.dumps(doc["generated_by"])},')
    lines.append(f'  "versions": {json.dumps(doc["versions"], sort_keys=True)},')
    lines.append('  "configs": {')
    names = list(doc["configs"])
    for i, name in enumerate(names):
        entry = doc["configs"][name]
        lines.append(f"    {json.dumps(name)}: {{")
        keys = sorted(entry)
        for j, key in enumerate(keys):
            comma = "," if j < len(keys) - 1 else ""
            value = entry[key]
            if key == "modules":
                lines.append('      "modules": [')
                for k, m in enumerate(value):
                    lines.append(f"        {json.dumps(m, sort_keys=True)}{',' if k < len(value) - 1 else ''}")
                lines.append(f"      ]{comma}")
            elif key == "layer_stacks":
                lines.append('      "layer_stacks": {')
                stack_names = list(value)
                for k, sname in enumerate(stack_names):
                    st = value[sname]
                    lines.append(f"        {json.dumps(sname)}: {{")
                    lines.append(f'          "layout": {json.dumps(st["layout"])},')
                    lines.append(f'          "length": {st["length"]},')
                    lines.append('          "kinds": [')
                    for q, kind in enumerate(st["kinds"]):
                        lines.append(
                            f"            {json.dumps(kind, sort_keys=True)}{',' if q < len(st['kinds']) - 1 else ''}"
                        )
                    lines.append("          ]")
                    lines.append(f"        }}{',' if k < len(stack_names) - 1 else ''}")
                lines.append(f"      }}{comma}")
            elif key == "non_layer_modules":
                lines.append('      "non_layer_modules": [')
                for k, m in enumerate(value):
                    lines.append(f"        {json.dumps(m, sort_keys=True)}{',' if k < len(value) - 1 else ''}")
                lines.append(f"      ]{comma}")
            else:
                lines.append(f"      {json.dumps(key)}: {json.dumps(value, sort_keys=True)}{comma}")
        lines.append(f"    }}{',' if i < len(names) - 1 else ''}")
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    fixed_hash_seed(__file__, argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", help="only these config names (repeatable; regex, full match)")
    ap.add_argument("--stdout", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import peft
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    sources = all_sources()
    if args.only:
        sources = {k: v for k, v in sources.items() if any(re.fullmatch(o, k) for o in args.only)}
    doc = {
        "generated_by": "validation/inventory.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "configs": {},
    }
    for name, src in sources.items():
        t0 = time.time()
        entry = inventory(src, full=src["source"] == "small")
        doc["configs"][name] = entry
        print(
            f"{name}: {entry['auto_class']} {entry['model_class']} base {entry['base_params']:,d} "
            f"({time.time() - t0:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
    if args.only and not args.stdout and args.out.exists():
        # a partial run replaces its own entries; every other entry is kept, in the file's order
        old = json.loads(args.out.read_text())
        doc["configs"] = old["configs"] | doc["configs"]
    text = dump(doc)
    json.loads(text)  # the hand-written layout must stay valid JSON
    if args.stdout:
        print(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(
            f"wrote {_rel(args.out)} ({args.out.stat().st_size:,d} bytes, {len(doc['configs'])} configs)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
