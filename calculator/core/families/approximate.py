"""An approximate reading of a config.json whose ``model_type`` has no description.

Most decoder configs carry the usual keys (hidden_size, num_hidden_layers, num_attention_heads,
intermediate_size, vocab_size, ...). Read as a Llama-style decoder — pre-norm RMSNorm, GQA attention with
rotary positions, gated MLP (Mixtral-style experts when the config has several) — they give a count that is
usually within a few percent, but never exact: norms, biases, fused projections and extra modules differ by
family. The result says so (``exact=False``) and lists its assumptions and the structural keys it did not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..architecture import Architecture
from ..errors import ErrorCollector, InputError
from .build import _Stop, build
from .llama_like import LLAMA
from .moe import MIXTRAL

ALIASES: dict[str, tuple[str, ...]] = {
    "hidden_size": ("hidden_size", "n_embd", "d_model", "dim"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "vocab_size": ("vocab_size", "padded_vocab_size"),
    "intermediate_size": ("intermediate_size", "ffn_hidden_size", "n_inner", "d_ff", "ffn_dim"),
    "num_key_value_heads": ("num_key_value_heads", "num_kv_heads", "n_kv_heads", "multi_query_group_num"),
    "head_dim": ("head_dim", "kv_channels"),
    "tie_word_embeddings": ("tie_word_embeddings",),
    "num_local_experts": ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts"),
    "num_experts_per_tok": ("num_experts_per_tok", "top_k", "moe_top_k", "num_experts_per_token"),
    "attention_bias": ("attention_bias",),
    "mlp_bias": ("mlp_bias",),
}
REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
STRUCTURAL = ("size", "dim", "layers", "heads", "experts", "rank", "window", "_proj", "groups", "interval")
IGNORED = frozenset({"max_position_embeddings", "initializer_range", "rms_norm_eps", "layer_norm_eps"})


def approximate_architecture(config: Mapping[str, Any], field: str, supported: tuple[str, ...]) -> Architecture:
    """The Llama-style reading, or `InputError` on ``model_type`` when the usual keys are missing."""
    model_type = str(config.get("model_type"))
    section = config.get("text_config")
    source: Mapping[str, Any] = section if isinstance(section, Mapping) else config
    where = f"{field}.text_config" if source is not config else field
    found: dict[str, Any] = {}
    used: dict[str, str] = {}
    for key, names in ALIASES.items():
        name = next((n for n in names if source.get(n) is not None), None)
        if name is not None:
            found[key] = source[name]
            used[key] = name
    missing = [k for k in REQUIRED if k not in found]
    if missing:
        raise InputError.single(
            f"{field}.model_type",
            f"Unsupported model_type {model_type!r}, and the config lacks {', '.join(missing)} for an approximate "
            f"reading; supported: {', '.join(supported)}.",
        )
    assumptions = [
        f"model_type {model_type!r} has no exact description here: read as a Llama-style decoder (pre-norm "
        "RMSNorm, rotary GQA attention, gated MLP). Norms, biases and extra modules differ by family, so counts "
        "are approximate (typically within a few percent).",
    ]
    if "intermediate_size" not in found:
        found["intermediate_size"] = 4 * int(found["hidden_size"]) if _is_int(found["hidden_size"]) else 1
        assumptions.append("No intermediate size in the config: assumed 4 x hidden_size.")
    experts = found.get("num_local_experts")
    moe = isinstance(experts, int) and not isinstance(experts, bool) and experts > 1
    if moe:
        found.setdefault("num_experts_per_tok", 2)
        assumptions.append("Experts read as Mixtral-style 3-D expert tensors with one router per layer.")
    if source is not config:
        assumptions.append("Only the text model is counted: vision or audio towers of this type are not.")
    unread = sorted(
        k
        for k, v in source.items()
        if k not in used.values()
        and k not in IGNORED
        and isinstance(v, int | float | list)
        and not isinstance(v, bool)
        and any(s in k for s in STRUCTURAL)
    )
    if unread:
        assumptions.append("Keys not read (they may change the count): " + ", ".join(unread[:12]) + ".")
    family = MIXTRAL if moe else LLAMA
    errors = ErrorCollector()
    renamed = {family_key(family, k): v for k, v in found.items()}
    try:
        arch = build(family, {**renamed, "model_type": family.model_type}, where, errors)
    except _Stop:
        errors.raise_if_any()
        raise
    errors.raise_if_any()
    return replace(
        arch,
        model_type=model_type,
        family=f"{model_type} (approximate)",
        default_target_modules=None,
        exact=False,
        assumptions=tuple(assumptions),
        moe_conversion="",
    )


def family_key(family: Any, key: str) -> str:
    """The config name a family reads our canonical key under (Mixtral: num_local_experts)."""
    for declared in family.keys:
        if declared.key == key or declared.config_name == key:
            return str(declared.config_name)
    if key == "num_local_experts":
        return "num_local_experts"
    return key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
