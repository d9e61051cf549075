"""Hybrid families: layers of different kinds in one stack.

- LFM2: gated short-convolution layers between attention layers (``layer_types`` or ``full_attn_idxs``).
- Qwen3-Next, Qwen3.5 (and its MoE): Gated DeltaNet linear-attention layers, every ``full_attention_interval``-th
  layer a gated full attention (q_proj doubled for the output gate, q/k norms).

Which module names exist on which layers decides what a name list adapts: ``["q_proj", "k_proj", "v_proj",
"o_proj"]`` on Qwen3.5 reaches only the full-attention layers. Defaults from transformers 5.23's configs.
AutoModelForCausalLM builds the text model of a composite Qwen3.5 config (its vision tower is not part of
that class).
"""

from __future__ import annotations

from .common import (
    GATED_MLP,
    GQA_CHECKS,
    LAYER_TYPES_CHECK,
    ROTARY_FRACTION,
    decoder_keys,
    every_nth,
    flag,
    partial_rotary,
)
from .moe import QWEN_SHARED, QWEN_SPARSE, TOP_K_CHECK, qwen_moe_keys
from .spec import Attention, Family, GatedDeltaNet, GatedMlp, Key, Layers, Moe, Norms, ShortConv, Text, keys

LFM2_FF = (
    "(block_multiple_of * ((int(block_ffn_dim_multiplier * int(2 * intermediate_size / 3)) + block_multiple_of - 1)"
    " // block_multiple_of) if block_ffn_dim_multiplier is not None else int(2 * intermediate_size / 3))"
    " if block_auto_adjust_ff_dim else intermediate_size"
)

LFM2 = Family(
    model_type="lfm2",
    name="LFM2",
    keys=(
        Key("vocab_size", 65536),
        Key("hidden_size", 2560),
        Key("intermediate_size", 12288, name="block_ff_dim", aliases=("intermediate_size",)),
        Key("num_hidden_layers", 32),
        Key("num_attention_heads", 32),
        Key("num_key_value_heads", 8),
        Key("head_dim", "hidden_size // num_attention_heads"),
        Key("tie_word_embeddings", True, "bool", name="tie_embedding", aliases=("tie_word_embeddings",)),
        Key("max_position_embeddings", 128000),
        Key("conv_bias", False, "bool"),
        Key("conv_L_cache", 3),
        Key("block_multiple_of", 256),
        Key("block_ffn_dim_multiplier", 1.0, "float"),
        Key("block_auto_adjust_ff_dim", True, "bool"),
        Key("full_attn_idxs", None, "list"),
        Key("layer_types", None, "list"),
    ),
    text=Text(
        Layers(
            mixers=(
                (
                    "attention",
                    Attention(o="out_proj", qk_norm="head", qk_norm_names=("q_layernorm", "k_layernorm")),
                ),
                ("conv", ShortConv()),
            ),
            ffns=(
                (
                    "mlp",
                    GatedMlp(
                        container="feed_forward", gate="w1", up="w3", down="w2", intermediate=LFM2_FF, activation=""
                    ),
                ),
            ),
            norms=Norms(names=("operator_norm", "ffn_norm")),
            mixer_rule=(
                "('conv' if layer_types[i] == 'conv' else 'attention') if layer_types "
                "else ('attention' if full_attn_idxs is None or i in full_attn_idxs else 'conv')"
            ),
        ),
        final_norm="embedding_norm",
        dropout_keys=(0.0, 0.0, 0.0),
    ),
    checks=(*GQA_CHECKS, *LAYER_TYPES_CHECK),
)

LINEAR_OR_FULL = every_nth("full_attention_interval", "full_attention", "linear_attention")
GATED_ATTENTION = Attention(
    qkv_bias="attention_bias", o_bias="attention_bias", q_gate=True, qk_norm="head", rotary_fraction=ROTARY_FRACTION
)
NEXT_NORMS = Norms(kind="rms_gemma")  # Qwen3-Next/Qwen3.5 RMSNorm: (1 + weight), zero-centred
DELTANET_KEYS = (
    *partial_rotary(0.25),
    flag("attention_bias"),
    Key("linear_conv_kernel_dim", 4),
    Key("linear_key_head_dim", 128),
    Key("linear_value_head_dim", 128),
    Key("linear_num_key_heads", 16),
    Key("linear_num_value_heads", 32),
    Key("full_attention_interval", 4),
    Key("layer_types", None, "list"),
)

QWEN3_NEXT = Family(
    model_type="qwen3_next",
    name="Qwen3-Next",
    keys=decoder_keys(
        vocab=151936,
        hidden=2048,
        intermediate=5632,
        layers=48,
        heads=16,
        kv_heads=2,
        head_dim=256,
        positions=32768,
        extra=(*DELTANET_KEYS, *qwen_moe_keys(512, 10, 512, 512)),
    ),
    text=Text(
        Layers(
            mixers=(("linear_attention", GatedDeltaNet()), ("full_attention", GATED_ATTENTION)),
            ffns=(("moe", Moe(shared=QWEN_SHARED, shared_gate="shared_expert_gate")), ("mlp", GATED_MLP)),
            norms=NEXT_NORMS,
            mixer_rule=LINEAR_OR_FULL,
            ffn_rule=QWEN_SPARSE,
        )
    ),
    moe_conversion="qwen2_moe",
    checks=(*GQA_CHECKS, *TOP_K_CHECK, *LAYER_TYPES_CHECK),
)

QWEN3_5_TEXT_KEYS = decoder_keys(
    vocab=248320,
    hidden=4096,
    intermediate=12288,
    layers=32,
    heads=16,
    kv_heads=4,
    head_dim=256,
    positions=32768,
    extra=DELTANET_KEYS,
)
QWEN3_5_LAYERS = Layers(
    mixers=(("linear_attention", GatedDeltaNet(split=True)), ("full_attention", GATED_ATTENTION)),
    ffns=(("mlp", GATED_MLP),),
    norms=NEXT_NORMS,
    mixer_rule=LINEAR_OR_FULL,
)

QWEN3_5_TEXT = Family(
    model_type="qwen3_5_text",
    name="Qwen3.5",
    keys=QWEN3_5_TEXT_KEYS,
    text=Text(QWEN3_5_LAYERS, rope_batched=True),  # interleaved M-RoPE: cos/sin per sequence
    checks=(*GQA_CHECKS, *LAYER_TYPES_CHECK),
)
QWEN3_5 = Family(
    model_type="qwen3_5",
    name="Qwen3.5",
    keys=keys(*QWEN3_5_TEXT_KEYS, at="text_config"),
    text=Text(QWEN3_5_LAYERS, rope_batched=True),  # interleaved M-RoPE: cos/sin per sequence
    checks=(*GQA_CHECKS, *LAYER_TYPES_CHECK),
    text_model_types=("qwen3_5_text",),
)

QWEN3_5_MOE_TEXT_KEYS = decoder_keys(
    vocab=248320,
    hidden=2048,
    intermediate=None,
    layers=40,
    heads=16,
    kv_heads=2,
    head_dim=256,
    positions=32768,
    extra=(
        *DELTANET_KEYS,
        Key("num_experts", 256, aliases=("num_local_experts",)),
        Key("num_experts_per_tok", 8),
        Key("moe_intermediate_size", 512),
        Key("shared_expert_intermediate_size", 512),
    ),
)
QWEN3_5_MOE_LAYERS = Layers(
    mixers=(("linear_attention", GatedDeltaNet(split=True)), ("full_attention", GATED_ATTENTION)),
    ffns=(("moe", Moe(shared=QWEN_SHARED, shared_gate="shared_expert_gate")),),
    norms=NEXT_NORMS,
    mixer_rule=LINEAR_OR_FULL,
)
QWEN3_5_MOE_TEXT = Family(
    model_type="qwen3_5_moe_text",
    name="Qwen3.5",
    keys=QWEN3_5_MOE_TEXT_KEYS,
    text=Text(QWEN3_5_MOE_LAYERS, rope_batched=True),
    checks=(*GQA_CHECKS, *TOP_K_CHECK, *LAYER_TYPES_CHECK),
)
QWEN3_5_MOE = Family(
    model_type="qwen3_5_moe",
    name="Qwen3.5",
    keys=keys(*QWEN3_5_MOE_TEXT_KEYS, at="text_config"),
    text=Text(QWEN3_5_MOE_LAYERS, rope_batched=True),
    checks=(*GQA_CHECKS, *TOP_K_CHECK, *LAYER_TYPES_CHECK),
    text_model_types=("qwen3_5_moe_text",),
)

HYBRID = (LFM2, QWEN3_NEXT, QWEN3_5_TEXT, QWEN3_5, QWEN3_5_MOE_TEXT, QWEN3_5_MOE)
