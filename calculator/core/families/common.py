"""Pieces most families share: the Llama-style keys and checks, with each family's own defaults."""

from __future__ import annotations

from dataclasses import replace

from ..expressions import Expr
from .spec import Attention, GatedMlp, Key, Layers, Mixer, Norms

HEAD_DIM_FROM_HIDDEN = "hidden_size // num_attention_heads"


def decoder_keys(
    *,
    vocab: int,
    hidden: int,
    intermediate: int | None,
    layers: int,
    heads: int,
    kv_heads: Expr = "num_attention_heads",
    head_dim: Expr = HEAD_DIM_FROM_HIDDEN,
    tie: bool = False,
    positions: int = 2048,
    at: str = "",
    extra: tuple[Key, ...] = (),
) -> tuple[Key, ...]:
    """transformers' LlamaConfig-style keys with one model type's defaults (``at``: inside text_config)."""
    items = [
        Key("vocab_size", vocab, at=at),
        Key("hidden_size", hidden, at=at),
        Key("num_hidden_layers", layers, at=at),
        Key("num_attention_heads", heads, at=at),
        Key("num_key_value_heads", kv_heads, at=at),
        Key("head_dim", head_dim, at=at),
        Key("tie_word_embeddings", tie, "bool", at=at),
        Key("max_position_embeddings", positions, at=at),
        Key("attention_dropout", 0.0, "prob", at=at),
    ]
    if intermediate is not None:
        items.insert(2, Key("intermediate_size", intermediate, at=at))
    return (*items, *extra)


def flag(name: str, default: bool = False, at: str = "") -> Key:
    return Key(name, default, "bool", at=at)


def number(name: str, default: Expr, at: str = "", minimum: int = 1, maximum: int | None = None) -> Key:
    return Key(name, default, at=at, minimum=minimum, maximum=maximum)


def layer_list(name: str, default: Expr = None, at: str = "") -> Key:
    return Key(name, default, "list", at=at)


# Checks transformers makes (or that its modules need), as (condition, key to blame, message).
GQA_CHECKS: tuple[tuple[Expr, str, str], ...] = (
    (
        "num_attention_heads % num_key_value_heads == 0",
        "num_key_value_heads",
        "num_attention_heads must be a multiple of num_key_value_heads.",
    ),
)
HEAD_DIM_CHECKS: tuple[tuple[Expr, str, str], ...] = (
    (
        "head_dim != hidden_size // num_attention_heads or hidden_size % num_attention_heads == 0",
        "num_attention_heads",
        "hidden_size is not divisible by num_attention_heads; set head_dim explicitly.",
    ),
)
DECODER_CHECKS = GQA_CHECKS + HEAD_DIM_CHECKS


# --- shared building blocks -----------------------------------------------------------------------

QV = ("q_proj", "v_proj")
LAYER_TYPES_CHECK: tuple[tuple[Expr, str, str], ...] = (
    ("layer_types is None or len(layer_types) == num_hidden_layers", "layer_types", "Needs one entry per layer."),
)
DIVISIBLE: tuple[tuple[Expr, str, str], ...] = (
    (
        "hidden_size % num_attention_heads == 0",
        "num_attention_heads",
        "hidden_size must be divisible by num_attention_heads (transformers refuses this config).",
    ),
)
ATTENTION = Attention()
GATED_MLP = GatedMlp()
PRE_NORMS = Norms()
SANDWICH = Norms(
    style="sandwich",
    names=("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"),
    kind="rms_gemma",
)


def llama_layers(attention: Attention = ATTENTION, mlp: GatedMlp = GATED_MLP, norms: Norms = PRE_NORMS) -> Layers:
    return Layers(mixers=(("full_attention", attention),), ffns=(("mlp", mlp),), norms=norms)


def sliding_and_full(attention: Attention, local_rope: bool = True) -> tuple[tuple[str, Mixer], ...]:
    """The same attention for ``layer_types`` "sliding_attention" and "full_attention" layers (same
    parameters; sliding-window layers need their own mask, and with ``local_rope`` their own RoPE). The
    family declares a ``sliding_window`` key."""
    table = "local" if local_rope else attention.rope_table
    sliding = replace(attention, sliding=True, window="sliding_window", rope_table=table)
    return (("sliding_attention", sliding), ("full_attention", attention))


def every_nth(pattern: str | int, every_name: str, other_name: str) -> str:
    """transformers' default layer_types: layer i is ``every_name`` when (i + 1) is a multiple of ``pattern``."""
    return f"layer_types[i] if layer_types else ('{other_name}' if (i + 1) % {pattern} else '{every_name}')"


def partial_rotary(default: float, at: str = "") -> tuple[Key, ...]:
    """transformers 5 reads ``partial_rotary_factor`` from ``rope_parameters`` or the top level."""
    nested = f"{at}.rope_parameters" if at else "rope_parameters"
    return (
        Key("partial_rotary_factor", default, "float", at=at),
        Key("rope_partial_rotary_factor", None, "float", at=nested, name="partial_rotary_factor"),
    )


ROTARY_FRACTION = "rope_partial_rotary_factor or partial_rotary_factor"
