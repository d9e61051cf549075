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

It also measures the weights a published checkpoint can carry beyond that model (multi-token-prediction
layers, MXFP4 / FP8 block scales, a stored copy of a tied head, towers the causal-LM class drops).

`--write` stores the measurements in validation/configs/catalog/counts.json, regenerates
calculator/data/presets_2026.json from them, the configs and validation/configs/catalog/sources.json
(names, families, published totals, their sources, the extras each checkpoint carries), rewrites the count
table of validation/configs/catalog/README.md, and fails if an exact published total differs from
transformers' count plus the extras sources.json names for it.
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
README = CATALOG_DIR / "README.md"
TABLE_START, TABLE_END = "<!-- counts:start -->", "<!-- counts:end -->"
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
    row["checkpoint_extras"] = checkpoint_extras(config, model)
    del model
    if auto_class == CAUSAL_LM and describes_towers(config) and set(components) <= {"language_model", "lm_head"}:
        full = build(config, IMAGE_TEXT_TO_TEXT)
        full_total, full_components = count(full)
        row["multimodal_class"] = type(full).__name__
        row["multimodal_params"] = full_total
        row["multimodal_components"] = full_components
        # What a checkpoint of the whole model stores beyond the causal-LM class: the towers it drops.
        row["checkpoint_extras"]["towers_not_built_by_causal_lm"] = full_total - total
    return row


def text_config_of(config: dict[str, Any]) -> dict[str, Any]:
    return config.get("text_config") or config


def decoder_layer(model: Any, text_cfg: Any, layer_idx: int) -> Any:
    """A fresh decoder layer of the model's own class, on the meta device (so its size is measured)."""
    import torch

    modeling = sys.modules[type(model).__module__]
    layer_cls = next(
        v for k, v in vars(modeling).items() if k.endswith("DecoderLayer") and "Vision" not in k and isinstance(v, type)
    )
    with torch.device("meta"):
        return layer_cls(text_cfg, layer_idx=layer_idx)


def numel(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def checkpoint_extras(config: dict[str, Any], model: Any) -> dict[str, int]:
    """Weights a published checkpoint can carry beyond what transformers builds, each measured on `model`.

    Which of them a given checkpoint really carries is stated per preset in sources.json (`extras`) and
    checked against the published total by `--write`. Every figure comes from transformers' own modules
    (or, for block scales, from the shapes of the weights transformers builds), not from a formula typed in.
    """
    extras: dict[str, int] = {}
    text = text_config_of(config)
    text_cfg = model.config.get_text_config()
    hidden, vocab = text_cfg.hidden_size, text_cfg.vocab_size
    # DeepSeek-V3 technical report section 2.2 / README_WEIGHTS.md: model.layers.<N> holds one more (MoE)
    # decoder layer plus enorm, hnorm (RMSNorm over hidden), eh_proj (Linear 2h -> h, no bias) and
    # shared_head.norm; the checkpoint also stores that module's embed_tokens and shared_head.head.
    n = text.get("num_nextn_predict_layers") or 0
    if n:
        layer = numel(decoder_layer(model, text_cfg, text_cfg.num_hidden_layers))
        extras["mtp_layers"] = n * (layer + 3 * hidden + 2 * hidden * hidden)
        extras["mtp_embedding_and_head_copies"] = n * 2 * vocab * hidden
    # Qwen3-Next / Qwen3.5 checkpoints: mtp.layers.* (a full-attention decoder layer), mtp.fc (Linear 2h -> h,
    # no bias), mtp.pre_fc_norm_embedding, mtp.pre_fc_norm_hidden and mtp.norm (RMSNorm over hidden).
    n = text.get("mtp_num_hidden_layers") or (1 if config.get("model_type") == "qwen3_next" else 0)
    if n:
        full = text_cfg.layer_types.index("full_attention")
        layer = numel(decoder_layer(model, text_cfg, full))
        extras["mtp_layers"] = n * (layer + 2 * hidden * hidden + 3 * hidden)
    named = dict(model.named_parameters())
    quant = config.get("quantization_config") or {}
    if quant.get("quant_method") == "mxfp4":
        # gpt-oss: experts' gate_up_proj / down_proj are stored as MXFP4 blocks of 32 values, each with one
        # uint8 scale (OCP MX spec); the Hub's count adds those scales to the 4-bit values.
        experts = sum(p.numel() for k, p in named.items() if k.endswith(("experts.gate_up_proj", "experts.down_proj")))
        extras["mxfp4_block_scales"] = experts // 32
    if quant.get("quant_method") == "fp8" and quant.get("weight_block_size"):
        # DeepSeek-V3 FP8 checkpoints: one float32 weight_scale_inv per 128x128 block of every quantized
        # Linear weight in the decoder layers (the router gate, norms, embeddings and lm_head stay bf16).
        bo, bi = quant["weight_block_size"]
        scales = 0
        for name, module in model.named_modules():
            if ".layers." not in name:
                continue
            if type(module).__name__ == "Linear":
                out_f, in_f = module.weight.shape
                scales += -(-out_f // bo) * -(-in_f // bi)
        for key, p in named.items():
            if key.endswith("experts.gate_up_proj"):  # [E, 2 * I, H]: gate_proj and up_proj, each I x H
                e, two_i, h = p.shape
                scales += e * 2 * -(-(two_i // 2) // bo) * -(-h // bi)
            elif key.endswith("experts.down_proj"):  # [E, H, I]
                e, h, i = p.shape
                scales += e * -(-h // bo) * -(-i // bi)
        extras["fp8_block_scales"] = scales
    head = getattr(model, "lm_head", None)
    embed = model.get_input_embeddings()
    if head is not None and head.weight is embed.weight:
        # Tied head: transformers counts the matrix once; a checkpoint may still store lm_head.weight.
        extras["tied_lm_head_copy"] = embed.weight.numel()
    return extras


def load_configs(only: set[str]) -> dict[str, dict[str, Any]]:
    configs = {}
    for path in sorted(CATALOG_DIR.glob("*.json")):
        if path.name in (SOURCES.name, COUNTS.name) or (only and path.stem not in only):
            continue
        configs[path.stem] = json.loads(path.read_text())
    return configs


def check_published(slug: str, meta: dict[str, Any], row: dict[str, Any]) -> str:
    """Published total against transformers' count plus the checkpoint extras the preset names."""
    extras = row["checkpoint_extras"]
    missing = [name for name in meta["extras"] if name not in extras]
    if missing:
        raise SystemExit(f"{slug}: sources.json names extras {missing} that were not measured")
    expected = row["transformers_params"] + sum(extras[name] for name in meta["extras"])
    published = meta["published_params"]
    if meta["published_params_exact"]:
        if published != expected:
            raise SystemExit(f"{slug}: published {published:,} != transformers + {meta['extras']} = {expected:,}")
        return "exact match" if not meta["extras"] else "exact match with " + " + ".join(meta["extras"])
    return f"published figure is rounded; transformers{' + extras' if meta['extras'] else ''} = {expected:,}"


def write_presets(rows: dict[str, dict[str, Any]], configs: dict[str, dict[str, Any]]) -> None:
    sources = json.loads(SOURCES.read_text())
    presets = []
    for slug, meta in sources.items():
        if slug not in rows:
            raise SystemExit(f"{slug}: listed in sources.json but not measured")
        row = rows[slug]
        print(f"{slug}: {check_published(slug, meta, row)}")
        presets.append(
            {
                "slug": slug,
                "name": meta["name"],
                "family": meta["family"],
                "published_params": meta["published_params"],
                "published_params_exact": meta["published_params_exact"],
                "source_url": meta["published_source_url"],
                "notes": meta["notes"],
                "config": configs[slug],
                "transformers_params": row["transformers_params"],
                "components": row["components"],
                "params_note": meta["params_note"],
                "auto_class": row["auto_class"],
            }
        )
    missing = sorted(set(configs) - set(sources))
    if missing:
        raise SystemExit(f"configs without a sources.json entry: {missing}")
    PRESETS_2026.write_text(json.dumps(presets, indent=2, ensure_ascii=False) + "\n")


def write_readme_table(rows: dict[str, dict[str, Any]]) -> None:
    """Replace the table between the markers of README.md with the current measurements."""
    sources = json.loads(SOURCES.read_text())
    lines = [
        TABLE_START,
        "| preset | class built | transformers params | published | published - transformers | explained by (measured) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for slug, meta in sources.items():
        row = rows[slug]
        pub, built = meta["published_params"], row["transformers_params"]
        shown = f"{pub:,}" if meta["published_params_exact"] else f"~{pub / 1e9:g}B (rounded)"
        diff = f"{pub - built:,}" if meta["published_params_exact"] else ""
        extras = ", ".join(f"{k} {row['checkpoint_extras'][k]:,}" for k in meta["extras"])
        lines.append(f"| {slug} | {row['model_class']} | {built:,} | {shown} | {diff} | {extras} |")
    lines.append(TABLE_END)
    text = README.read_text()
    head, rest = text.split(TABLE_START, 1)
    tail = rest.split(TABLE_END, 1)[1]
    README.write_text(head + "\n".join(lines) + tail)


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    write = "--write" in argv
    only = {a for a in argv if not a.startswith("--")}
    configs = load_configs(only)
    rows: dict[str, dict[str, Any]] = {}
    print(
        "| slug | model_type | class | transformers params | components | multimodal class: params | checkpoint extras (measured) |"
    )
    print("|---|---|---|---:|---|---|---|")
    for slug, config in configs.items():
        row = measure(slug, config)
        rows[slug] = row
        comps = ", ".join(f"{k} {v:,}" for k, v in row["components"].items())
        multi = f"{row['multimodal_class']}: {row['multimodal_params']:,}" if "multimodal_params" in row else ""
        extras = ", ".join(f"{k} {v:,}" for k, v in row["checkpoint_extras"].items())
        print(
            f"| {slug} | {row['model_type']} | {row['model_class']} | {row['transformers_params']:,} | {comps} "
            f"| {multi} | {extras} |",
            flush=True,
        )
    if write:
        if only:
            previous = json.loads(COUNTS.read_text()) if COUNTS.exists() else {}
            rows = {**previous, **rows}
            configs = load_configs(set())
        COUNTS.write_text(json.dumps(dict(sorted(rows.items())), indent=2) + "\n")
        write_presets(rows, configs)
        write_readme_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
