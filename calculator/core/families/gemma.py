"""Gemma: RMSNorms over ``1 + weight``, embeddings scaled by sqrt(hidden), GELU-tanh gated MLPs; Gemma 2 and 3
add a norm after each block, alternate sliding-window and full attention, and soft-cap logits (Gemma 2).

Defaults from transformers 5.23's Gemma/Gemma2/Gemma3TextConfig; PEFT 0.21.2 default targets q_proj, v_proj.
"""

from __future__ import annotations

from .common import (
    DIVISIBLE,
    GATED_MLP,
    GQA_CHECKS,
    LAYER_TYPES_CHECK,
    QV,
    SANDWICH,
    decoder_keys,
    every_nth,
    flag,
    llama_layers,
    sliding_and_full,
)
from .spec import Attention, Family, Key, Layers, Norms, Text

GEMMA = Family(
    model_type="gemma",
    name="Gemma",
    keys=decoder_keys(
        vocab=256000,
        hidden=3072,
        intermediate=24576,
        layers=28,
        heads=16,
        kv_heads=16,
        head_dim=256,
        tie=True,
        positions=8192,
        extra=(flag("attention_bias"),),
    ),
    text=Text(
        llama_layers(Attention(qkv_bias="attention_bias", o_bias="attention_bias"), norms=Norms(kind="rms_gemma")),
        embedding_scaled=True,
    ),
    peft_targets=QV,
    checks=GQA_CHECKS,
)

GEMMA2 = Family(
    model_type="gemma2",
    name="Gemma 2",
    keys=decoder_keys(
        vocab=256000,
        hidden=2304,
        intermediate=9216,
        layers=26,
        heads=8,
        kv_heads=4,
        head_dim=256,
        tie=True,
        positions=8192,
        extra=(
            flag("attention_bias"),
            Key("attn_logit_softcapping", 50.0, "float", nullable=True),
            Key("final_logit_softcapping", 30.0, "float", nullable=True),
            Key("layer_types", None, "list"),
            Key("sliding_window", 4096, nullable=True),
        ),
    ),
    text=Text(
        Layers(
            mixers=tuple(
                (
                    name,
                    Attention(
                        qkv_bias="attention_bias",
                        o_bias="attention_bias",
                        softcap="attn_logit_softcapping is not None",
                        sliding=name == "sliding_attention",
                        window="sliding_window" if name == "sliding_attention" else None,
                    ),
                )
                for name in ("sliding_attention", "full_attention")
            ),
            ffns=(("mlp", GATED_MLP),),
            norms=SANDWICH,
            mixer_rule="layer_types[i] if layer_types else ('sliding_attention' if (i + 1) % 2 else 'full_attention')",
        ),
        embedding_scaled=True,
        head_softcap="final_logit_softcapping is not None",
    ),
    peft_targets=QV,
    checks=(*GQA_CHECKS, *DIVISIBLE, *LAYER_TYPES_CHECK),
)

GEMMA3_TEXT_KEYS = decoder_keys(
    vocab=262208,
    hidden=2304,
    intermediate=9216,
    layers=26,
    heads=8,
    kv_heads=4,
    head_dim=256,
    tie=True,
    positions=131072,
    extra=(
        flag("attention_bias"),
        Key("attn_logit_softcapping", None, "float", nullable=True),
        Key("final_logit_softcapping", None, "float", nullable=True),
        Key("layer_types", None, "list"),
        Key("sliding_window_pattern", 6, aliases=("_sliding_window_pattern",)),
        Key("sliding_window", 4096, nullable=True),
    ),
)


def gemma3_layers() -> Layers:
    attention = Attention(
        qkv_bias="attention_bias",
        o_bias="attention_bias",
        qk_norm="head",
        softcap="attn_logit_softcapping is not None",
    )
    return Layers(
        mixers=sliding_and_full(attention),
        ffns=(("mlp", GATED_MLP),),
        norms=SANDWICH,
        mixer_rule=every_nth("sliding_window_pattern", "full_attention", "sliding_attention"),
    )


GEMMA3_TEXT = Family(
    model_type="gemma3_text",
    name="Gemma 3",
    keys=GEMMA3_TEXT_KEYS,
    text=Text(gemma3_layers(), embedding_scaled=True, head_softcap="final_logit_softcapping is not None"),
    peft_targets=QV,
    checks=(*GQA_CHECKS, *DIVISIBLE, *LAYER_TYPES_CHECK),
)

GEMMAS = (GEMMA, GEMMA2, GEMMA3_TEXT)

__all__ = ["GEMMA3_TEXT_KEYS", "GEMMAS", "Norms", "gemma3_layers", "llama_layers"]
