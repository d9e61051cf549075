"""Dense decoder-only families: one attention and one MLP per layer, norms around them.

Defaults are those of each model type's config class in transformers 5.23 (``XConfig().to_dict()``);
module names and shapes are those its modeling file allocates. PEFT's default targets are
``TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`` (peft 0.21.2, ``utils/constants.py``).
"""

from __future__ import annotations

from ..architecture import Kind
from .common import GQA_CHECKS, decoder_keys, flag
from .spec import Attention, Family, GatedMlp, Key, Layers, M, Mlp, Norms, Text, emb

QV = ("q_proj", "v_proj")
LAYER_TYPES_CHECK = (
    ("layer_types is None or len(layer_types) == num_hidden_layers", "layer_types", "Needs one entry per layer."),
)
DIVISIBLE = (
    (
        "hidden_size % num_attention_heads == 0",
        "num_attention_heads",
        "hidden_size must be divisible by num_attention_heads (transformers refuses this config).",
    ),
)
SLIDING_OR_FULL = "layer_types[i] if layer_types else 'full_attention'"


ATTENTION = Attention()
GATED_MLP = GatedMlp()
PRE_NORMS = Norms()


def llama_layers(attention: Attention = ATTENTION, mlp: GatedMlp = GATED_MLP, norms: Norms = PRE_NORMS) -> Layers:
    return Layers(mixers=(("full_attention", attention),), ffns=(("mlp", mlp),), norms=norms)


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
        extra=(
            flag("attention_bias"),
            flag("mlp_bias"),
        ),
    ),
    text=Text(llama_layers(Attention(qkv_bias="attention_bias", o_bias="attention_bias"), GatedMlp(bias="mlp_bias"))),
    peft_targets=QV,
    checks=(*GQA_CHECKS, *DIVISIBLE),
)

MISTRAL = Family(
    model_type="mistral",
    name="Mistral",
    keys=decoder_keys(vocab=32000, hidden=4096, intermediate=14336, layers=32, heads=32, kv_heads=8, positions=131072),
    text=Text(llama_layers()),
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

SANDWICH = Norms(
    style="sandwich",
    names=("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"),
    kind="rms_gemma",
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
        extra=(
            Key("resid_pdrop", 0.0, "prob"),
            Key("embd_pdrop", 0.0, "prob"),
        ),
    ),
    text=Text(
        Layers(
            mixers=(("full_attention", Attention(fused="qkv_proj")),),
            ffns=(("mlp", GatedMlp(fused="gate_up_proj", activation="activation_fn")),),
            extra=(M("resid_attn_dropout", Kind.CONTAINER), M("resid_mlp_dropout", Kind.CONTAINER)),
        ),
        dropout_keys=("attention_dropout", "resid_pdrop", "embd_pdrop"),
    ),
    peft_targets=None,  # PEFT has no default for phi3: target_modules is required
    checks=GQA_CHECKS,
)

GPT2 = Family(
    model_type="gpt2",
    name="GPT-2",
    keys=(
        Key("hidden_size", 768, name="n_embd", aliases=("hidden_size",)),
        Key("num_hidden_layers", 12, name="n_layer", aliases=("num_hidden_layers",)),
        Key("num_attention_heads", 12, name="n_head", aliases=("num_attention_heads",)),
        Key("intermediate_size", "4 * hidden_size", name="n_inner"),
        Key("max_position_embeddings", 1024, name="n_positions", aliases=("max_position_embeddings",)),
        Key("vocab_size", 50257),
        Key("tie_word_embeddings", True, "bool"),
        Key("attn_pdrop", 0.1, "prob"),
        Key("resid_pdrop", 0.1, "prob"),
        Key("embd_pdrop", 0.1, "prob"),
    ),
    text=Text(
        Layers(
            mixers=(
                (
                    "full_attention",
                    Attention(
                        container="attn",
                        fused="c_attn",
                        o="c_proj",
                        kv_heads="num_attention_heads",
                        head_dim="hidden_size // num_attention_heads",
                        qkv_bias=True,
                        o_bias=True,
                        conv1d=True,
                        rotary=False,
                        fp32_softmax=False,
                    ),
                ),
            ),
            ffns=(("mlp", Mlp(fc_in="c_fc", fc_out="c_proj", bias=True, conv1d=True, gelu_tanh_parts=True)),),
            norms=Norms(names=("ln_1", "ln_2"), kind="layer"),
            extra=(
                M("attn.attn_dropout", Kind.CONTAINER),
                M("attn.resid_dropout", Kind.CONTAINER),
                M("mlp.dropout", Kind.CONTAINER),
            ),
        ),
        prefix="transformer",
        layers_name="h",
        embedding="wte",
        final_norm="ln_f",
        rotary="",
        extra=(emb("transformer.wpe", "max_position_embeddings", "hidden_size"), M("transformer.drop", Kind.CONTAINER)),
        dropout_keys=("attn_pdrop", "resid_pdrop", "embd_pdrop"),
    ),
    peft_targets=("c_attn",),
    checks=(("hidden_size % num_attention_heads == 0", "num_attention_heads", "n_embd must be divisible by n_head."),),
)

CLASSIC = (LLAMA, MISTRAL, QWEN2, QWEN3, GEMMA, GEMMA2, PHI3, GPT2)
