"""Mixture-of-experts families: experts as transformers 5 stores them (3-D parameters), routers, shared
experts, and dense layers where the config says so.

PEFT 0.21 rewrites the transformers-4 expert names a user writes (``w1``/``w3``/``w2``, or
``gate_proj``/``up_proj``/``down_proj``) into ``target_parameters`` for the model types transformers maps
to the ``mixtral`` or ``qwen2_moe`` conversion pattern (``transformers.conversion_mapping`` and PEFT's own
addition of mixtral), and only those: not qwen2_moe itself, gpt_oss, llama4 or qwen3_5_moe.
"""

from __future__ import annotations

from dataclasses import replace

from .common import (
    GATED_MLP,
    GQA_CHECKS,
    LAYER_TYPES_CHECK,
    QV,
    ROTARY_FRACTION,
    decoder_keys,
    every_nth,
    flag,
    partial_rotary,
    sliding_and_full,
)
from .spec import Attention, Family, GatedMlp, Key, Layers, Mla, Moe, Text

TOP_K_CHECK = (("num_experts_per_tok <= num_experts", "num_experts_per_tok", "Cannot exceed the number of experts."),)
# Qwen-style: an MoE block unless the layer is in mlp_only_layers or off the decoder_sparse_step grid.
QWEN_SPARSE = "'moe' if i not in mlp_only_layers and num_experts > 0 and (i + 1) % decoder_sparse_step == 0 else 'mlp'"


def qwen_moe_keys(experts: int, top_k: int, moe_intermediate: int, shared: int | None = None) -> tuple[Key, ...]:
    keys: tuple[Key, ...] = (
        Key("num_experts", experts, aliases=("num_local_experts",), minimum=0),
        Key("num_experts_per_tok", top_k),
        Key("moe_intermediate_size", moe_intermediate),
        Key("decoder_sparse_step", 1),
        Key("mlp_only_layers", "[]", "list"),
    )
    if shared is not None:
        keys += (Key("shared_expert_intermediate_size", shared),)
    return keys


MIXTRAL = Family(
    model_type="mixtral",
    name="Mixtral",
    keys=decoder_keys(
        vocab=32000,
        hidden=4096,
        intermediate=14336,
        layers=32,
        heads=32,
        kv_heads=8,
        positions=131072,
        extra=(
            Key("num_experts", 8, name="num_local_experts"),
            Key("num_experts_per_tok", 2),
            Key("sliding_window", None),
        ),
    ),
    text=Text(
        Layers(
            mixers=(("full_attention", Attention(sliding="sliding_window is not None", window="sliding_window")),),
            ffns=(("moe", Moe(intermediate="intermediate_size")),),
        )
    ),
    peft_targets=QV,
    moe_conversion="mixtral",
    checks=(*GQA_CHECKS, *TOP_K_CHECK),
)

QWEN_SHARED = GatedMlp(container="shared_expert", intermediate="shared_expert_intermediate_size")

QWEN2_MOE = Family(
    model_type="qwen2_moe",
    name="Qwen2-MoE",
    keys=decoder_keys(
        vocab=151936,
        hidden=2048,
        intermediate=5632,
        layers=24,
        heads=16,
        kv_heads=16,
        positions=32768,
        extra=(flag("qkv_bias", True), *qwen_moe_keys(60, 4, 1408, 5632)),
    ),
    text=Text(
        Layers(
            mixers=(("full_attention", Attention(qkv_bias="qkv_bias")),),
            ffns=(("moe", Moe(shared=QWEN_SHARED, shared_gate="shared_expert_gate")), ("mlp", GATED_MLP)),
            ffn_rule=QWEN_SPARSE,
        )
    ),
    checks=(*GQA_CHECKS, *TOP_K_CHECK),
)

QWEN3_MOE = Family(
    model_type="qwen3_moe",
    name="Qwen3-MoE",
    keys=decoder_keys(
        vocab=151936,
        hidden=2048,
        intermediate=6144,
        layers=24,
        heads=32,
        kv_heads=4,
        positions=32768,
        extra=(flag("attention_bias"), *qwen_moe_keys(128, 8, 768)),
    ),
    text=Text(
        Layers(
            mixers=(("full_attention", Attention(qkv_bias="attention_bias", o_bias="attention_bias", qk_norm="head")),),
            ffns=(("moe", Moe()), ("mlp", GATED_MLP)),
            ffn_rule=QWEN_SPARSE,
        )
    ),
    moe_conversion="qwen2_moe",
    checks=(*GQA_CHECKS, *TOP_K_CHECK),
)

# gpt-oss: biased attention with a learned sink logit per head, alternating sliding/full layers, a biased
# router and experts with biases, stored (experts, hidden, 2 x intermediate).
GPT_OSS = Family(
    model_type="gpt_oss",
    name="gpt-oss",
    keys=decoder_keys(
        vocab=201088,
        hidden=2880,
        intermediate=2880,
        layers=36,
        heads=64,
        kv_heads=8,
        head_dim=64,
        positions=131072,
        extra=(
            flag("attention_bias", True),
            Key("num_experts", 128, name="num_local_experts", aliases=("num_experts",)),
            Key("num_experts_per_tok", 4),
            Key("layer_types", None, "list"),
            Key("sliding_window", 128, nullable=True),
        ),
    ),
    text=Text(
        Layers(
            mixers=sliding_and_full(
                Attention(
                    qkv_bias="attention_bias",
                    o_bias="attention_bias",
                    sinks=True,
                    fp32_softmax=False,  # softmax(..., dtype=combined_logits.dtype)
                    rotary_fraction=0.5,  # its cos/sin hold half the head (halves rotate without a repeat)
                ),
                local_rope=False,
            ),
            ffns=(
                (
                    "moe",
                    Moe(
                        router="router",
                        router_bias=True,
                        intermediate="intermediate_size",
                        transposed=True,
                        expert_bias=True,
                        router_kind="topk_softmax",
                        clamped_glu=True,
                    ),
                ),
            ),
            mixer_rule=every_nth(2, "full_attention", "sliding_attention"),
        )
    ),
    checks=(*GQA_CHECKS, *TOP_K_CHECK, *LAYER_TYPES_CHECK),
)

DEEPSEEK_SHARED = GatedMlp(container="shared_experts", intermediate="moe_intermediate_size * n_shared_experts")
DEEPSEEK_DENSE_FIRST = "'moe' if i >= first_k_dense_replace else 'mlp'"


def _deepseek_keys(
    *,
    vocab: int,
    hidden: int,
    intermediate: int,
    moe_intermediate: int,
    layers: int,
    heads: int,
    q_lora_rank: int | None,
    experts: int,
    shared: int,
    top_k: int | None,
    first_dense: int,
    positions: int,
    groups: int | None,
    top_groups: int | None,
) -> tuple[Key, ...]:
    return decoder_keys(
        vocab=vocab,
        hidden=hidden,
        intermediate=intermediate,
        layers=layers,
        heads=heads,
        positions=positions,
        extra=(
            flag("attention_bias"),
            flag("mlp_bias"),
            Key("q_lora_rank", q_lora_rank, nullable=True),
            Key("kv_lora_rank", 512),
            Key("qk_nope_head_dim", 128),
            Key("qk_rope_head_dim", 64),
            Key("v_head_dim", 128),
            Key("num_experts", experts, name="n_routed_experts"),
            Key("n_shared_experts", shared, minimum=0),
            Key("num_experts_per_tok", top_k, nullable=True),
            Key("moe_intermediate_size", moe_intermediate),
            Key("first_k_dense_replace", first_dense, minimum=0),
            Key("topk_method", "'greedy'", "str", nullable=True),
            Key("n_group", groups, nullable=True),
            Key("topk_group", top_groups, nullable=True),
            flag("norm_topk_prob", True),
        ),
    )


# DeepSeek-V2's router: softmax, then greedy or group-limited top-k (DeepseekV2TopkRouter)
DEEPSEEK_V2_MOE = Moe(
    router_kind="deepseek_v2",
    groups="n_group or 1",
    top_groups="topk_group or 1",
    group_limited="topk_method == 'group_limited_greedy'",
)
# DeepSeek-V3 / GLM-4.5's router: sigmoid, group-limited top-k, renormalised (DeepseekV3TopkRouter)
SIGMOID_GROUPS_MOE = Moe(
    router_kind="sigmoid_groups", groups="n_group or 1", top_groups="topk_group or 1", normalised="norm_topk_prob"
)


DEEPSEEK_V2 = Family(
    model_type="deepseek_v2",
    name="DeepSeek",
    keys=_deepseek_keys(
        vocab=102400,
        hidden=4096,
        intermediate=11008,
        moe_intermediate=1407,
        layers=32,
        heads=32,
        q_lora_rank=1536,
        experts=64,
        shared=2,
        top_k=None,
        first_dense=0,
        groups=None,
        top_groups=None,
        positions=2048,
    ),
    text=Text(
        Layers(
            mixers=(("full_attention", Mla()),),
            ffns=(
                ("moe", replace(DEEPSEEK_V2_MOE, shared=replace(DEEPSEEK_SHARED, bias="mlp_bias"))),
                ("mlp", GatedMlp(bias="mlp_bias")),
            ),
            ffn_rule=DEEPSEEK_DENSE_FIRST,
        )
    ),
    moe_conversion="qwen2_moe",
    checks=(
        (
            "hidden_size % num_attention_heads == 0",
            "num_attention_heads",
            "hidden_size must be divisible by num_attention_heads (transformers refuses this config).",
        ),
    ),
)

DEEPSEEK_V3 = Family(
    model_type="deepseek_v3",
    name="DeepSeek",
    keys=_deepseek_keys(
        vocab=129280,
        hidden=7168,
        intermediate=18432,
        moe_intermediate=2048,
        layers=61,
        heads=128,
        q_lora_rank=1536,
        experts=256,
        shared=1,
        top_k=8,
        first_dense=3,
        groups=8,
        top_groups=4,
        positions=4096,
    ),
    text=Text(
        Layers(
            mixers=(("full_attention", Mla()),),
            ffns=(("moe", replace(SIGMOID_GROUPS_MOE, shared=DEEPSEEK_SHARED)), ("mlp", GATED_MLP)),
            ffn_rule=DEEPSEEK_DENSE_FIRST,
        )
    ),
    moe_conversion="qwen2_moe",
    checks=TOP_K_CHECK,
)

GLM4_MOE = Family(
    model_type="glm4_moe",
    name="GLM-4",
    keys=decoder_keys(
        vocab=151552,
        hidden=4096,
        intermediate=10944,
        layers=46,
        heads=96,
        kv_heads=8,
        positions=131072,
        extra=(
            flag("attention_bias"),
            flag("use_qk_norm"),
            Key("num_experts", 128, name="n_routed_experts"),
            Key("n_shared_experts", 1, minimum=0),
            Key("num_experts_per_tok", 8),
            Key("moe_intermediate_size", 1408),
            Key("first_k_dense_replace", 1, minimum=0),
            Key("n_group", 1, nullable=True),
            Key("topk_group", 1, nullable=True),
            flag("norm_topk_prob", True),
            *partial_rotary(0.5),
        ),
    ),
    text=Text(
        Layers(
            mixers=(
                (
                    "full_attention",
                    Attention(
                        qkv_bias="attention_bias",
                        qk_norm="head",
                        qk_norm_when="use_qk_norm",
                        rotary_fraction=ROTARY_FRACTION,
                    ),
                ),
            ),
            ffns=(("moe", replace(SIGMOID_GROUPS_MOE, shared=DEEPSEEK_SHARED)), ("mlp", GATED_MLP)),
            ffn_rule=DEEPSEEK_DENSE_FIRST,
        )
    ),
    moe_conversion="qwen2_moe",
    checks=(*GQA_CHECKS, *TOP_K_CHECK),
)

MOE_FAMILIES = (MIXTRAL, QWEN2_MOE, QWEN3_MOE, GPT_OSS, DEEPSEEK_V2, DEEPSEEK_V3, GLM4_MOE)

__all__ = ["MOE_FAMILIES", "QWEN_SHARED", "QWEN_SPARSE", "TOP_K_CHECK", "qwen_moe_keys"]
