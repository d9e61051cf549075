"""Llama-style dense decoders: one attention and one MLP per layer, norms around them.

Defaults are those of each model type's config class in transformers 5.23 (``XConfig().to_dict()`` and its
``__post_init__``); module names and shapes are those its modeling file allocates. PEFT's default targets are
``TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`` (peft 0.21.2, ``utils/constants.py``); a family
without an entry there has none (``target_modules`` must be given).
"""

from __future__ import annotations

from dataclasses import replace

from ..architecture import Kind
from .common import (
    ATTENTION,
    DIVISIBLE,
    GATED_MLP,
    GQA_CHECKS,
    LAYER_TYPES_CHECK,
    QV,
    ROTARY_FRACTION,
    decoder_keys,
    every_nth,
    flag,
    llama_layers,
    partial_rotary,
    sliding_and_full,
)
from .spec import Attention, Family, GatedMlp, Key, Layers, M, Mlp, Norms, Text

LLAMA = Family(
    model_type="llama",
    name="Llama",
    keys=decoder_keys(
        vocab=32000,
        hidden=4096,
        intermediate=11008,
        layers=32,
        heads=32,
        positions=2048,
        extra=(flag("attention_bias"), flag("mlp_bias")),
    ),
    text=Text(llama_layers(Attention(qkv_bias="attention_bias", o_bias="attention_bias"), GatedMlp(bias="mlp_bias"))),
    peft_targets=QV,
    checks=(*GQA_CHECKS, *DIVISIBLE),
)

# Mistral, StarCoder2, Phi-3 and Mixtral slide every layer's window when the config sets one.
WINDOWED = Attention(sliding="sliding_window is not None", window="sliding_window")

MISTRAL = Family(
    model_type="mistral",
    name="Mistral",
    keys=decoder_keys(
        vocab=32000,
        hidden=4096,
        intermediate=14336,
        layers=32,
        heads=32,
        kv_heads=8,
        positions=131072,
        extra=(Key("sliding_window", 4096, nullable=True),),
    ),
    text=Text(llama_layers(WINDOWED)),
    peft_targets=QV,
    checks=GQA_CHECKS,
)

QWEN2 = Family(
    model_type="qwen2",
    name="Qwen2",
    keys=decoder_keys(vocab=151936, hidden=4096, intermediate=22016, layers=32, heads=32, kv_heads=32, positions=32768),
    text=Text(llama_layers(Attention(qkv_bias=True))),
    peft_targets=QV,
    checks=GQA_CHECKS,
)

QWEN3 = Family(
    model_type="qwen3",
    name="Qwen3",
    keys=decoder_keys(
        vocab=151936,
        hidden=4096,
        intermediate=22016,
        layers=32,
        heads=32,
        kv_heads=32,
        head_dim=128,
        positions=32768,
        extra=(flag("attention_bias"),),
    ),
    text=Text(llama_layers(Attention(qkv_bias="attention_bias", o_bias="attention_bias", qk_norm="head"))),
    peft_targets=QV,
    checks=GQA_CHECKS,
)

PHI3 = Family(
    model_type="phi3",
    name="Phi-3",
    keys=decoder_keys(
        vocab=32064,
        hidden=3072,
        intermediate=8192,
        layers=32,
        heads=32,
        positions=4096,
        extra=(Key("resid_pdrop", 0.0, "prob"), Key("embd_pdrop", 0.0, "prob"), Key("sliding_window", None)),
    ),
    text=Text(
        Layers(
            mixers=(("full_attention", replace(WINDOWED, fused="qkv_proj")),),
            ffns=(("mlp", GatedMlp(fused="gate_up_proj", activation="activation_fn")),),
            extra=(M("resid_attn_dropout", Kind.CONTAINER), M("resid_mlp_dropout", Kind.CONTAINER)),
        ),
        dropout_keys=("attention_dropout", "resid_pdrop", "embd_pdrop"),
    ),
    peft_targets=None,  # PEFT has no default for phi3: target_modules is required
    checks=GQA_CHECKS,
)

# Granite: Llama with scalar multipliers on embeddings, attention, residuals and logits (no parameters).
GRANITE = Family(
    model_type="granite",
    name="Granite",
    keys=decoder_keys(
        vocab=32000,
        hidden=4096,
        intermediate=11008,
        layers=32,
        heads=32,
        positions=2048,
        extra=(flag("attention_bias"), flag("mlp_bias")),
    ),
    text=Text(
        llama_layers(Attention(qkv_bias="attention_bias", o_bias="attention_bias"), GatedMlp(bias="mlp_bias")),
        embedding_rescaled=True,
    ),
    checks=GQA_CHECKS,
)

# SmolLM3: Llama with RoPE left out of every ``no_rope_layer_interval``-th layer ("NoPE").
SMOLLM3 = Family(
    model_type="smollm3",
    name="SmolLM3",
    keys=decoder_keys(
        vocab=128256,
        hidden=2048,
        intermediate=11008,
        layers=36,
        heads=16,
        kv_heads=4,
        tie=True,
        positions=32768,
        extra=(
            flag("attention_bias"),
            flag("mlp_bias"),
            Key("no_rope_layers", None, "list"),
            Key("no_rope_layer_interval", 4),
        ),
    ),
    text=Text(
        Layers(
            mixers=(
                ("rope", Attention(qkv_bias="attention_bias", o_bias="attention_bias")),
                ("nope", Attention(qkv_bias="attention_bias", o_bias="attention_bias", rotary=False)),
            ),
            ffns=(("mlp", GatedMlp(bias="mlp_bias")),),
            mixer_rule=(
                "('rope' if no_rope_layers[i] else 'nope') if no_rope_layers "
                "else ('rope' if (i + 1) % no_rope_layer_interval else 'nope')"
            ),
        )
    ),
    checks=(
        *GQA_CHECKS,
        ("no_rope_layers is None or len(no_rope_layers) == num_hidden_layers", "no_rope_layers", "One per layer."),
    ),
)

# OLMo 2: norms after each block (x + norm(f(x))), q/k norms over all heads.
OLMO2 = Family(
    model_type="olmo2",
    name="OLMo 2",
    keys=decoder_keys(
        vocab=50304,
        hidden=4096,
        intermediate=11008,
        layers=32,
        heads=32,
        positions=2048,
        extra=(flag("attention_bias"),),
    ),
    text=Text(
        llama_layers(
            Attention(qkv_bias="attention_bias", o_bias="attention_bias", qk_norm="full"),
            norms=Norms(style="post", names=("post_attention_layernorm", "post_feedforward_layernorm")),
        ),
        rope_fp32=True,  # Olmo2RotaryEmbedding returns cos/sin without casting them to the compute dtype
    ),
    checks=GQA_CHECKS,
)

# GLM-4: a norm after each block too (sandwich), fused gate_up, q/k/v biases, partial RoPE.
GLM4 = Family(
    model_type="glm4",
    name="GLM-4",
    keys=decoder_keys(
        vocab=151552,
        hidden=4096,
        intermediate=13696,
        layers=40,
        heads=32,
        kv_heads=2,
        head_dim=128,
        positions=131072,
        extra=(flag("attention_bias", True), *partial_rotary(0.5)),
    ),
    text=Text(
        llama_layers(
            # its apply_rotary_pos_emb repeat-interleaves half of cos/sin inside every layer
            Attention(qkv_bias="attention_bias", rotary_fraction=ROTARY_FRACTION, rope_per_layer=True),
            GatedMlp(fused="gate_up_proj", activation="activation_fn"),
            Norms(
                style="sandwich",
                names=("input_layernorm", "post_self_attn_layernorm", "post_attention_layernorm", "post_mlp_layernorm"),
            ),
        )
    ),
    checks=GQA_CHECKS,
)

# Cohere 2 (Command R7B): attention and MLP in parallel off one LayerNorm without bias; sliding-window
# layers use RoPE, the full-attention ones none; head_dim is always hidden // heads.
COHERE2 = Family(
    model_type="cohere2",
    name="Cohere",
    keys=decoder_keys(
        vocab=256000,
        hidden=8192,
        intermediate=22528,
        layers=40,
        heads=64,
        head_dim="hidden_size // num_attention_heads",
        tie=True,
        positions=8192,
        extra=(
            flag("attention_bias"),
            Key("layer_types", None, "list"),
            Key("sliding_window_pattern", 4),
            Key("sliding_window", 4096, nullable=True),
        ),
    ),
    text=Text(
        Layers(
            mixers=(
                (
                    "sliding_attention",
                    Attention(
                        qkv_bias="attention_bias", o_bias="attention_bias", sliding=True, window="sliding_window"
                    ),
                ),
                ("full_attention", Attention(qkv_bias="attention_bias", o_bias="attention_bias", rotary=False)),
            ),
            ffns=(("mlp", GATED_MLP),),
            norms=Norms(style="parallel", names=("input_layernorm",), kind="cohere"),
            mixer_rule=every_nth("sliding_window_pattern", "full_attention", "sliding_attention"),
        )
    ),
    checks=(*GQA_CHECKS, *LAYER_TYPES_CHECK),
)

# StarCoder2: LayerNorms with bias, biased projections, a plain GELU MLP (c_fc, c_proj).
STARCODER2 = Family(
    model_type="starcoder2",
    name="StarCoder2",
    keys=decoder_keys(
        vocab=49152,
        hidden=3072,
        intermediate=12288,
        layers=30,
        heads=24,
        kv_heads=2,
        tie=True,
        positions=4096,
        extra=(
            flag("use_bias", True),
            Key("residual_dropout", 0.0, "prob"),
            Key("embedding_dropout", 0.0, "prob"),
            Key("sliding_window", None),
        ),
    ),
    text=Text(
        Layers(
            mixers=(("full_attention", replace(WINDOWED, qkv_bias="use_bias", o_bias="use_bias")),),
            ffns=(("mlp", Mlp(fc_in="c_fc", fc_out="c_proj", bias="use_bias")),),
            norms=Norms(kind="layer"),
        ),
        dropout_keys=("attention_dropout", "residual_dropout", "embedding_dropout"),
    ),
    checks=GQA_CHECKS,
)

# Phi (Phi-2): parallel attention and MLP off one LayerNorm, biased projections, gelu_new (separate
# kernels), an optional q/k LayerNorm, a biased output head.
PHI = Family(
    model_type="phi",
    name="Phi",
    keys=decoder_keys(
        vocab=51200,
        hidden=2048,
        intermediate=8192,
        layers=24,
        heads=32,
        head_dim="hidden_size // num_attention_heads",
        positions=2048,
        extra=(
            flag("qk_layernorm"),
            Key("resid_pdrop", 0.0, "prob"),
            Key("embd_pdrop", 0.0, "prob"),
            *partial_rotary(0.5),
        ),
    ),
    text=Text(
        Layers(
            mixers=(
                (
                    "full_attention",
                    Attention(
                        o="dense",
                        qkv_bias=True,
                        o_bias=True,
                        qk_norm="head",
                        qk_norm_when="qk_layernorm",
                        qk_norm_names=("q_layernorm", "k_layernorm"),
                        qk_norm_bias=True,
                        rotary_fraction=ROTARY_FRACTION,
                    ),
                ),
            ),
            ffns=(("mlp", Mlp(bias=True, gelu_tanh_parts=True, activation="activation_fn")),),
            norms=Norms(style="parallel", names=("input_layernorm",), kind="layer"),
            extra=(M("resid_dropout", Kind.CONTAINER),),
        ),
        final_norm="final_layernorm",
        head_bias=True,
        dropout_keys=("attention_dropout", "resid_pdrop", "embd_pdrop"),
    ),
    peft_targets=("q_proj", "v_proj", "fc1", "fc2"),
    checks=GQA_CHECKS,
)

LLAMA_LIKE = (LLAMA, MISTRAL, QWEN2, QWEN3, PHI3, GRANITE, SMOLLM3, OLMO2, GLM4, COHERE2, STARCODER2, PHI)

__all__ = ["ATTENTION", "LLAMA_LIKE", "sliding_and_full"]
