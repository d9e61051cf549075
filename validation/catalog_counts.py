"""Count what transformers builds from every real config of the 2026 catalog, per top-level component.

Run with the validation venv (transformers 5.23.0, torch 2.13.0 CPU; see validation/README.md):

    /work/main/validation/.venv/bin/python validation/catalog_counts.py              # print the table
    /work/main/validation/.venv/bin/python validation/catalog_counts.py qwen3-8b ... # only these slugs
    /work/main/validation/.venv/bin/python validation/catalog_counts.py --write      # also rewrite the JSON

For each verbatim Hugging Face `config.json` in validation/configs/catalog/<slug>.json it builds, on the meta
device (no weights are allocated), the model issue #7 says the calculator must match: the one
`AutoModelForCausalLM.from_config` builds, or `AutoModelForImageTextToText` where transformers refuses the
causal-LM class for that `model_type`. It reports `sum(p.numel() for p in model.parameters())` (tied weights
counted once, buffers excluded) and the same sum split by top-level component. Where the causal-LM class
drops a tower that the config describes (Qwen3.5's vision encoder, for instance), the full multimodal model
is built too, so the difference is measured rather than asserted.

`--write` stores the measurements in validation/configs/catalog/counts.json and regenerates
calculator/data/presets_2026.json from them, the configs and validation/configs/catalog/sources.json
(names, families, published totals and their sources, notes). It also checks, numerically, the extra
weights a checkpoint carries beyond what transformers builds where a preset's note claims them
(multi-token-prediction layers).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CATALOG_DIR = ROOT / "validation" / "configs" / "catalog"
SOURCES = CATALOG_DIR / "sources.json"
COUNTS = CATALOG_DIR / "counts.json"
PRESETS_2026 = ROOT / "calculator" / "data" / "presets_2026.json"

CAUSAL_LM = "AutoModelForCausalLM"
IMAGE_TEXT_TO_TEXT = "AutoModelForImageTextToText"

# First path segment under the wrapper (after a leading "model.") -> component name.
COMPONENT_OF_SEGMENT = {
    "language_model": "language_model",
    "text_model": "language_model",
    "vision_tower": "vision_tower",
    "vision_model": "vision_tower",
    "visual": "vision_tower",
    "vision_encoder": "vision_tower",
    "multi_modal_projector": "projector",
    "embed_vision": "projector",
    "mm_projector": "projector",
    "audio_tower": "audio_tower",
    "audio_model": "audio_tower",
    "embed_audio": "audio_projector",
    "lm_head": "lm_head",
}


def component_of(name: str, multimodal: bool) -> str:
    """The top-level component a parameter belongs to, from its dotted name."""
    if name.startswith("lm_head."):
        return "lm_head"
    parts = name.split(".")
    if parts[0] == "model" and len(parts) > 1:
        if not multimodal:
            return "language_model"
        return COMPONENT_OF_SEGMENT.get(parts[1], parts[1])
    return COMPONENT_OF_SEGMENT.get(parts[0], parts[0])


def build(config: dict[str, Any], auto_class: str) -> Any:
    import torch
    import transformers
    from transformers import AutoConfig

    cfg = AutoConfig.for_model(**config)
    with torch.device("meta"):
        return getattr(transformers, auto_class).from_config(cfg)


def count(model: Any) -> tuple[int, dict[str, int]]:
    multimodal = any(n.startswith("model.language_model.") for n, _ in model.named_parameters())
    components: dict[str, int] = {}
    for name, param in model.named_parameters():  # shared (tied) parameters are yielded once
        key = component_of(name, multimodal)
        components[key] = components.get(key, 0) + param.numel()
    total = sum(p.numel() for p in model.parameters())
    assert total == sum(components.values()), (total, components)
    return total, components


def describes_towers(config: dict[str, Any]) -> bool:
    return any(isinstance(config.get(k), dict) for k in ("vision_config", "audio_config"))


def measure(slug: str, config: dict[str, Any]) -> dict[str, Any]:
    """Build the model the calculator must match (and the full multimodal one where it differs)."""
    try:
        model = build(config, CAUSAL_LM)
        auto_class = CAUSAL_LM
    except ValueError:  # "Unrecognized configuration class ... for this kind of AutoModel"
        model = build(config, IMAGE_TEXT_TO_TEXT)
        auto_class = IMAGE_TEXT_TO_TEXT
    total, components = count(model)
    row: dict[str, Any] = {
        "slug": slug,
        "model_type": config.get("model_type"),
        "auto_class": auto_class,
        "model_class": type(model).__name__,
        "transformers_params": total,
        "components": components,
    }
    del model
    if auto_class == CAUSAL_LM and describes_towers(config) and set(components) <= {"language_model", "lm_head"}:
        full = build(config, IMAGE_TEXT_TO_TEXT)
        full_total, full_components = count(full)
        row["multimodal_class"] = type(full).__name__
        row["multimodal_params"] = full_total
        row["multimodal_components"] = full_components
    return row


def mtp_params(config: dict[str, Any]) -> int | None:
    """Weights of the multi-token-prediction layers a DeepSeek-V3 / GLM-4.5 checkpoint stores, measured.

    Each MTP layer (DeepSeek-V3 technical report, section 2.2; the checkpoint's model.layers.<N>.* tensors)
    is one more MoE decoder layer plus enorm and hnorm (RMSNorms over hidden), eh_proj (Linear 2h -> h,
    no bias), shared_head.norm, and its own copies of embed_tokens and shared_head.head (vocab x hidden
    each). transformers does not build these layers. The decoder layer is built with transformers' own
    class on the meta device, so its size is measured, not derived.
    """
    import torch
    from transformers import AutoConfig

    n = config.get("num_nextn_predict_layers") or 0
    if not n:
        return None
    cfg = AutoConfig.for_model(**config)
    modeling = sys.modules[type(build({**config, "num_hidden_layers": 1}, CAUSAL_LM)).__module__]
    layer_cls = next(v for k, v in vars(modeling).items() if k.endswith("DecoderLayer"))
    with torch.device("meta"):
        layer = layer_cls(cfg, layer_idx=cfg.num_hidden_layers)  # past first_k_dense_replace: an MoE layer
    hidden, vocab = cfg.hidden_size, cfg.vocab_size
    per_layer = sum(p.numel() for p in layer.parameters()) + 3 * hidden + 2 * hidden * hidden + 2 * vocab * hidden
    return n * per_layer


def load_configs(only: set[str]) -> dict[str, dict[str, Any]]:
    configs = {}
    for path in sorted(CATALOG_DIR.glob("*.json")):
        if path.name in (SOURCES.name, COUNTS.name) or (only and path.stem not in only):
            continue
        configs[path.stem] = json.loads(path.read_text())
    return configs


def fmt(n: int | None) -> str:
    return "" if n is None else f"{n:,}"


def write_presets(rows: dict[str, dict[str, Any]], configs: dict[str, dict[str, Any]]) -> None:
    sources = json.loads(SOURCES.read_text())
    presets = []
    for slug, meta in sources.items():
        if slug not in rows:
            raise SystemExit(f"{slug}: listed in sources.json but not measured")
        row = rows[slug]
        presets.append(
            {
                "slug": slug,
                "name": meta["name"],
                "family": meta["family"],
                "published_params": meta["published_params"],
                "source_url": meta["published_source_url"],
                "notes": meta["notes"],
                "config": configs[slug],
                "transformers_params": row["transformers_params"],
                "components": row["components"],
                "params_note": meta["params_note"],
                "auto_class": row["auto_class"],
            }
        )
    PRESETS_2026.write_text(json.dumps(presets, indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    write = "--write" in argv
    only = {a for a in argv if not a.startswith("--")}
    configs = load_configs(only)
    rows: dict[str, dict[str, Any]] = {}
    print("| slug | model_type | class | transformers params | components | multimodal class: params | MTP |")
    print("|---|---|---|---:|---|---|---:|")
    for slug, config in configs.items():
        row = measure(slug, config)
        row["mtp_params"] = mtp_params(config)
        rows[slug] = row
        comps = ", ".join(f"{k} {v:,}" for k, v in row["components"].items())
        multi = f"{row['multimodal_class']}: {row['multimodal_params']:,}" if "multimodal_params" in row else ""
        print(
            f"| {slug} | {row['model_type']} | {row['model_class']} | {row['transformers_params']:,} | {comps} "
            f"| {multi} | {fmt(row['mtp_params'])} |",
            flush=True,
        )
    if write:
        if only:
            previous = json.loads(COUNTS.read_text()) if COUNTS.exists() else {}
            rows = {**previous, **rows}
            configs = load_configs(set())
        COUNTS.write_text(json.dumps(dict(sorted(rows.items())), indent=2) + "\n")
        write_presets(rows, configs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
