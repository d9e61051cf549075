"""Older layouts still fine-tuned: GPT-2 (Conv1D projections, learned positions) and Falcon (one fused
query_key_value projection, parallel attention and MLP).

Defaults from transformers 5.23's GPT2Config and FalconConfig; PEFT 0.21.2 default targets c_attn and
query_key_value.
"""

from __future__ import annotations

from ..architecture import Kind
from .spec import Attention, Family, Key, Layers, M, Mlp, Norms, Text, emb

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

FALCON_NORMS = (
    ("not parallel_attn", Norms(names=("input_layernorm", "post_attention_layernorm"), kind="layer")),
    (
        "new_decoder_architecture and (num_ln_in_parallel_attn or 2) == 2",
        Norms(style="parallel2", names=("ln_attn", "ln_mlp"), kind="layer"),
    ),
    (True, Norms(style="parallel", names=("input_layernorm",), kind="layer")),
)

# Falcon: the fused projection's width follows the architecture flag: new decoder architecture (GQA),
# multi-query (one k/v head), or plain multi-head (modeling_falcon.py, FalconAttention).
FALCON = Family(
    model_type="falcon",
    name="Falcon",
    keys=(
        Key("vocab_size", 65024),
        Key("hidden_size", 4544, aliases=("n_embed",)),
        Key("num_hidden_layers", 32, aliases=("n_layer",)),
        Key("num_attention_heads", 71, aliases=("n_head",)),
        Key("num_key_value_heads", "num_attention_heads", name="num_kv_heads", aliases=("num_key_value_heads",)),
        Key("intermediate_size", "hidden_size * 4", name="ffn_hidden_size"),
        Key("new_decoder_architecture", False, "bool"),
        Key("multi_query", True, "bool"),
        Key("parallel_attn", True, "bool"),
        Key("num_ln_in_parallel_attn", None),
        Key("bias", False, "bool"),
        Key("alibi", False, "bool"),
        Key("tie_word_embeddings", True, "bool"),
        Key("max_position_embeddings", 2048),
        Key("attention_dropout", 0.0, "prob"),
        Key("hidden_dropout", 0.0, "prob"),
    ),
    text=Text(
        Layers(
            mixers=(
                (
                    "full_attention",
                    Attention(
                        container="self_attention",
                        fused="query_key_value",
                        o="dense",
                        head_dim="hidden_size // num_attention_heads",
                        kv_heads="num_key_value_heads if new_decoder_architecture else "
                        "(1 if multi_query else num_attention_heads)",
                        qkv_bias="bias",
                        o_bias="bias",
                        rotary="not alibi",
                        fp32_softmax=False,  # softmax(..., dtype=hidden_states.dtype)
                        always_masked=True,
                        alibi="alibi",
                        broadcast_kv="multi_query and not new_decoder_architecture",
                    ),
                ),
            ),
            ffns=(("mlp", Mlp(fc_in="dense_h_to_4h", fc_out="dense_4h_to_h", bias="bias")),),
            norms_by=FALCON_NORMS,
        ),
        prefix="transformer",
        layers_name="h",
        embedding="word_embeddings",
        final_norm="ln_f",
        final_norm_kind="layer",
        rope_always=True,
        dropout_keys=("attention_dropout", "hidden_dropout", 0.0),
    ),
    peft_targets=("query_key_value",),
)

LEGACY = (GPT2, FALCON)
