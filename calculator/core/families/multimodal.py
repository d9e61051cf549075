"""Multimodal families, taken whole (the config with its nested ``text_config`` / ``vision_config``), counted
as the class transformers 5.23 builds for them:

- ``AutoModelForCausalLM`` builds the whole ForConditionalGeneration model for gemma3 and gemma4 (vision and
  audio towers included), but only the text model for mllama and llama4 (their vision encoders are not part
  of ``MllamaForCausalLM`` / ``Llama4ForCausalLM``);
- ``AutoModelForImageTextToText`` for mistral3 and qwen2_5_vl, which the causal-LM class refuses.

Vision and audio towers are frozen weights and LoRA targets by name (PEFT's name lists reach them); they do
not run on text batches. Their modules are written out as lists with shapes as expressions of the tower's
config keys. Gemma 4 wraps its tower projections in ``Gemma4ClippableLinear`` (not an nn.Linear): PEFT refuses
a name list that matches them and adapts only the inner ``.linear`` (as "all-linear" does), which is why
PEFT's default for gemma4 is a regex restricted to the language model.
"""

from __future__ import annotations

from dataclasses import replace

from ..architecture import Kind
from ..expressions import Expr
from .common import GATED_MLP, GQA_CHECKS, LAYER_TYPES_CHECK, SANDWICH, decoder_keys, flag
from .gemma import GEMMA3_TEXT_KEYS, gemma3_layers
from .spec import (
    Attention,
    Family,
    GatedMlp,
    Key,
    Layers,
    M,
    Moe,
    P,
    PerLayerInput,
    Text,
    Tower,
    box,
    conv,
    emb,
    keys,
    lin,
    norm,
    params,
)

TEXT = "text_config"
VISION = "vision_config"
AUDIO = "audio_config"


def vkey(name: str, default: Expr, type_: str = "int", at: str = VISION) -> Key:
    """A tower key, prefixed so it never collides with the text model's key of the same name."""
    prefix = "v_" if at == VISION else "a_"
    return Key(prefix + name, default, type_, at=at, name=name)


def clippable(path: str, in_features: Expr, out_features: Expr, when: Expr = True) -> tuple[M, M]:
    """Gemma 4's ``Gemma4ClippableLinear``: a wrapper module (not an nn.Linear) holding ``.linear``."""
    return (box(path, when), lin(f"{path}.linear", in_features, out_features, when=when))


# --- Gemma 3: SigLIP vision tower + projector around the Gemma 3 text model ---------------------------

SIGLIP_KEYS = (
    vkey("hidden_size", 768),
    vkey("intermediate_size", 3072),
    vkey("num_hidden_layers", 12),
    vkey("num_channels", 3),
    vkey("image_size", 224),
    vkey("patch_size", 16),
    vkey("vision_use_head", True, "bool"),
)
SIGLIP = Tower(
    role="vision_tower",
    prefix="model.vision_tower.encoder.layers",
    count="v_num_hidden_layers",
    layer=(
        norm("layer_norm1", "v_hidden_size", True),
        box("self_attn"),
        *(lin(f"self_attn.{p}", "v_hidden_size", "v_hidden_size", True) for p in ("k_proj", "v_proj", "q_proj")),
        lin("self_attn.out_proj", "v_hidden_size", "v_hidden_size", True),
        norm("layer_norm2", "v_hidden_size", True),
        box("mlp"),
        lin("mlp.fc1", "v_hidden_size", "v_intermediate_size", True),
        lin("mlp.fc2", "v_intermediate_size", "v_hidden_size", True),
    ),
    around=(
        box("model.vision_tower"),
        box("model.vision_tower.embeddings"),
        conv(
            "model.vision_tower.embeddings.patch_embedding",
            ("v_hidden_size", "v_num_channels", "v_patch_size", "v_patch_size"),
            True,
        ),
        emb(
            "model.vision_tower.embeddings.position_embedding",
            "(v_image_size // v_patch_size) * (v_image_size // v_patch_size)",
            "v_hidden_size",
        ),
        box("model.vision_tower.encoder"),
        box("model.vision_tower.encoder.layers"),
        norm("model.vision_tower.post_layernorm", "v_hidden_size", True),
        params("model.vision_tower.head", P("probe", (1, 1, "v_hidden_size")), when="v_vision_use_head"),
        params(
            "model.vision_tower.head.attention",
            P("in_proj_weight", ("3 * v_hidden_size", "v_hidden_size")),
            P("in_proj_bias", ("3 * v_hidden_size",)),
            when="v_vision_use_head",
        ),
        lin("model.vision_tower.head.attention.out_proj", "v_hidden_size", "v_hidden_size", True, "v_vision_use_head"),
        norm("model.vision_tower.head.layernorm", "v_hidden_size", True, "v_vision_use_head"),
        box("model.vision_tower.head.mlp", "v_vision_use_head"),
        lin("model.vision_tower.head.mlp.fc1", "v_hidden_size", "v_intermediate_size", True, "v_vision_use_head"),
        lin("model.vision_tower.head.mlp.fc2", "v_intermediate_size", "v_hidden_size", True, "v_vision_use_head"),
    ),
)

GEMMA3 = Family(
    model_type="gemma3",
    name="Gemma 3",
    keys=(*keys(*GEMMA3_TEXT_KEYS, at=TEXT), flag("tie_word_embeddings", True), *SIGLIP_KEYS),
    text=Text(
        gemma3_layers(),
        prefix="model.language_model",
        embedding_scaled=True,
        head_softcap="final_logit_softcapping is not None",
    ),
    towers=(SIGLIP,),
    extra=(
        params("model.multi_modal_projector", P("mm_input_projection_weight", ("v_hidden_size", "hidden_size"))),
        norm("model.multi_modal_projector.mm_soft_emb_norm", "v_hidden_size"),
    ),
    components=(
        ("language_model", "model.language_model"),
        ("vision_tower", "model.vision_tower"),
        ("projector", "model.multi_modal_projector"),
        ("lm_head", "lm_head"),
    ),
    text_model_types=("gemma3_text",),
    checks=(*GQA_CHECKS, *LAYER_TYPES_CHECK),
)

# --- Gemma 4: per-layer inputs, KV sharing, double-wide MLPs, global-attention head_dim, optional MoE ---

GEMMA4_PER_LAYER = ("head_dim", "num_key_value_heads")  # what Gemma4TextAttention reads from its layer's config
GEMMA4_TEXT_KEYS = decoder_keys(
    vocab=262144,
    hidden=2304,
    intermediate=9216,
    layers=30,
    heads=8,
    kv_heads=4,
    head_dim=256,
    tie=True,
    positions=131072,
    extra=(
        flag("attention_bias"),
        Key("layer_types", None, "list"),
        Key("final_logit_softcapping", None, "float", nullable=True),
        Key("sliding_window", 512, nullable=True),
        # transformers 5.23 writes per_layer_config (layer -> head_dim, num_key_value_heads); older configs give
        # global_head_dim / num_global_key_value_heads, which it turns into the same overrides of full layers.
        Key("per_layer_config", None, "overrides"),
        Key("global_head_dim", 512),
        Key("num_global_key_value_heads", None, nullable=True),
        flag("attention_k_eq_v"),
        Key("num_kv_shared_layers", 0, minimum=0),
        flag("use_double_wide_mlp"),
        Key("hidden_size_per_layer_input", 0, minimum=0),
        Key("vocab_size_per_layer_input", "vocab_size"),
        flag("enable_moe_block"),
        Key("num_experts", None, nullable=True),
        Key("num_experts_per_tok", None, name="top_k_experts", nullable=True),
        Key("moe_intermediate_size", None, aliases=("expert_intermediate_size",), nullable=True),
    ),
)
GEMMA4_TEXT_KEYS = tuple(replace(k, per_layer=True) if k.key in GEMMA4_PER_LAYER else k for k in GEMMA4_TEXT_KEYS)
GEMMA4_SHARED = "i >= num_hidden_layers - num_kv_shared_layers"
GEMMA4_GLOBAL_KV = (
    "num_key_value_heads if per_layer_config is not None else "
    "num_global_key_value_heads if attention_k_eq_v and num_global_key_value_heads is not None else num_key_value_heads"
)
GEMMA4_GLOBAL_HEAD_DIM = "head_dim if per_layer_config is not None else global_head_dim"


def _gemma4_attention(kind: str, shared: bool) -> Attention:
    full = kind == "full_attention"
    return Attention(
        head_dim=GEMMA4_GLOBAL_HEAD_DIM if full else "head_dim",
        kv_heads=GEMMA4_GLOBAL_KV if full else "num_key_value_heads",
        qkv_bias="attention_bias",
        o_bias="attention_bias",
        qk_norm="head",
        v_norm=True,
        has_kv=not shared,
        has_v="not attention_k_eq_v" if full else True,
        sliding=not full,
        window=None if full else "sliding_window",
        rope_table=kind,  # one RoPE per layer type, each as wide as that type's heads (proportional: zeros)
    )


GEMMA4_MOE_BRANCH = (
    params("router", P("scale", ("hidden_size",)), P("per_expert_scale", ("num_experts",)), when="enable_moe_block"),
    lin("router.proj", "hidden_size", "num_experts", when="enable_moe_block"),
    M(
        "experts",
        Kind.EXPERTS,
        (
            P("gate_up_proj", ("num_experts", "2 * moe_intermediate_size", "hidden_size")),
            P("down_proj", ("num_experts", "hidden_size", "moe_intermediate_size")),
        ),
        when="enable_moe_block",
    ),
    norm("post_feedforward_layernorm_1", "hidden_size", when="enable_moe_block"),
    norm("post_feedforward_layernorm_2", "hidden_size", when="enable_moe_block"),
    norm("pre_feedforward_layernorm_2", "hidden_size", when="enable_moe_block"),
)

GEMMA4_LAYERS = Layers(
    mixers=tuple(
        (f"{kind}{'_shared' if shared else ''}", _gemma4_attention(kind, shared))
        for kind in ("sliding_attention", "full_attention")
        for shared in (False, True)
    ),
    ffns=(("mlp", GATED_MLP), ("wide", GatedMlp(intermediate="2 * intermediate_size"))),
    norms=replace(SANDWICH, kind="rms_gemma4"),
    # transformers forces the last layer to full attention whatever layer_types says.
    mixer_rule=(
        "('full_attention' if i == num_hidden_layers - 1 else (layer_types[i] if layer_types else "
        f"('sliding_attention' if (i + 1) % 6 else 'full_attention'))) + ('_shared' if {GEMMA4_SHARED} else '')"
    ),
    ffn_rule=f"'wide' if use_double_wide_mlp and {GEMMA4_SHARED} else 'mlp'",
    per_layer_input=PerLayerInput(when="hidden_size_per_layer_input > 0"),
    extra=GEMMA4_MOE_BRANCH,
    experts_branch=Moe(
        container="",
        router="router.proj",
        router_linear=True,
        top_k="num_experts_per_tok",
        router_norm=True,
    ),
    experts_when="enable_moe_block",
)


def gemma4_text(prefix: str) -> Text:
    """Gemma 4's language model at ``prefix``, with its per-layer input tables outside the layers."""
    ple = "hidden_size_per_layer_input > 0"
    return Text(
        GEMMA4_LAYERS,
        prefix=prefix,
        embedding_scaled=True,
        head_softcap="final_logit_softcapping is not None",
        extra=(
            emb(
                f"{prefix}.embed_tokens_per_layer",
                "vocab_size_per_layer_input",
                "num_hidden_layers * hidden_size_per_layer_input",
                when=ple,
            ),
            lin(
                f"{prefix}.per_layer_model_projection",
                "hidden_size",
                "num_hidden_layers * hidden_size_per_layer_input",
                when=ple,
            ),
            norm(f"{prefix}.per_layer_projection_norm", "hidden_size_per_layer_input", when=ple),
        ),
    )


GEMMA4_VISION_KEYS = (
    Key("vision_config", None, "any"),
    vkey("hidden_size", 768),
    vkey("intermediate_size", 3072),
    vkey("num_hidden_layers", 16),
    vkey("num_attention_heads", 12),
    vkey("num_key_value_heads", 12),
    vkey("head_dim", 64),
    vkey("patch_size", 16),
    vkey("position_embedding_size", 10240),
)
GEMMA4_VISION = Tower(
    role="vision_tower",
    prefix="model.vision_tower.encoder.layers",
    count="v_num_hidden_layers",
    when="vision_config is not None",
    layer=(
        box("self_attn"),
        *clippable("self_attn.q_proj", "v_hidden_size", "v_num_attention_heads * v_head_dim"),
        *clippable("self_attn.k_proj", "v_hidden_size", "v_num_key_value_heads * v_head_dim"),
        *clippable("self_attn.v_proj", "v_hidden_size", "v_num_key_value_heads * v_head_dim"),
        *clippable("self_attn.o_proj", "v_num_attention_heads * v_head_dim", "v_hidden_size"),
        norm("self_attn.q_norm", "v_head_dim"),
        norm("self_attn.k_norm", "v_head_dim"),
        box("mlp"),
        *clippable("mlp.gate_proj", "v_hidden_size", "v_intermediate_size"),
        *clippable("mlp.up_proj", "v_hidden_size", "v_intermediate_size"),
        *clippable("mlp.down_proj", "v_intermediate_size", "v_hidden_size"),
        *(norm(n, "v_hidden_size") for n in SANDWICH.names),
    ),
    around=(
        box("model.vision_tower"),
        params(
            "model.vision_tower.patch_embedder",
            P("position_embedding_table", (2, "v_position_embedding_size", "v_hidden_size")),
        ),
        lin("model.vision_tower.patch_embedder.input_proj", "3 * v_patch_size * v_patch_size", "v_hidden_size"),
        box("model.vision_tower.encoder"),
        box("model.vision_tower.encoder.layers"),
        box("model.embed_vision"),
        lin("model.embed_vision.embedding_projection", "v_hidden_size", "hidden_size"),
    ),
)

GEMMA4_AUDIO_KEYS = (
    Key("audio_config", None, "any"),
    vkey("hidden_size", 1024, at=AUDIO),
    vkey("num_hidden_layers", 12, at=AUDIO),
    vkey("num_attention_heads", 8, at=AUDIO),
    vkey("subsampling_conv_channels", "[128, 32]", "list", at=AUDIO),
    vkey("conv_kernel_size", 5, at=AUDIO),
    vkey("output_proj_dims", 1536, at=AUDIO),
)
A_HIDDEN = "a_hidden_size"
GEMMA4_AUDIO = Tower(
    role="audio_tower",
    prefix="model.audio_tower.layers",
    count="a_num_hidden_layers",
    when="audio_config is not None",
    layer=(
        *(
            item
            for ff in ("feed_forward1", "feed_forward2")
            for item in (
                box(ff),
                *clippable(f"{ff}.ffw_layer_1", A_HIDDEN, f"4 * {A_HIDDEN}"),
                *clippable(f"{ff}.ffw_layer_2", f"4 * {A_HIDDEN}", A_HIDDEN),
                norm(f"{ff}.pre_layer_norm", A_HIDDEN),
                norm(f"{ff}.post_layer_norm", A_HIDDEN),
            )
        ),
        params("self_attn", P("per_dim_scale", (f"{A_HIDDEN} // a_num_attention_heads",))),
        *(
            item
            for p in ("q_proj", "k_proj", "v_proj", "post")
            for item in clippable(f"self_attn.{p}", A_HIDDEN, A_HIDDEN)
        ),
        lin("self_attn.relative_k_proj", A_HIDDEN, A_HIDDEN),
        box("lconv1d"),
        *clippable("lconv1d.linear_start", A_HIDDEN, f"2 * {A_HIDDEN}"),
        *clippable("lconv1d.linear_end", A_HIDDEN, A_HIDDEN),
        conv("lconv1d.depthwise_conv1d", (A_HIDDEN, 1, "a_conv_kernel_size"), groups=A_HIDDEN),
        norm("lconv1d.pre_layer_norm", A_HIDDEN),
        norm("lconv1d.conv_norm", A_HIDDEN),
        *(norm(n, A_HIDDEN) for n in ("norm_pre_attn", "norm_post_attn", "norm_out")),
    ),
    around=(
        box("model.audio_tower"),
        box("model.audio_tower.subsample_conv_projection"),
        conv("model.audio_tower.subsample_conv_projection.layer0.conv", ("a_subsampling_conv_channels[0]", 1, 3, 3)),
        norm("model.audio_tower.subsample_conv_projection.layer0.norm", "a_subsampling_conv_channels[0]"),
        conv(
            "model.audio_tower.subsample_conv_projection.layer1.conv",
            ("a_subsampling_conv_channels[1]", "a_subsampling_conv_channels[0]", 3, 3),
        ),
        norm("model.audio_tower.subsample_conv_projection.layer1.norm", "a_subsampling_conv_channels[1]"),
        lin(
            "model.audio_tower.subsample_conv_projection.input_proj_linear",
            "a_subsampling_conv_channels[0] // 4 * a_subsampling_conv_channels[1]",
            A_HIDDEN,
        ),
        box("model.audio_tower.layers"),
        lin("model.audio_tower.output_proj", A_HIDDEN, "a_output_proj_dims", True),
        box("model.embed_audio"),
        lin("model.embed_audio.embedding_projection", "a_output_proj_dims", "hidden_size"),
    ),
)

GEMMA4 = Family(
    model_type="gemma4",
    name="Gemma 4",
    keys=(
        *keys(*GEMMA4_TEXT_KEYS, at=TEXT),
        flag("tie_word_embeddings", True),
        *GEMMA4_VISION_KEYS,
        *GEMMA4_AUDIO_KEYS,
    ),
    text=gemma4_text("model.language_model"),
    towers=(GEMMA4_VISION, GEMMA4_AUDIO),
    peft_targets=r".*language_model\..*\.(q_proj|v_proj)",
    components=(
        ("language_model", "model.language_model"),
        ("vision_tower", "model.vision_tower"),
        ("audio_tower", "model.audio_tower"),
        ("projector", "model.embed_vision"),
        ("audio_projector", "model.embed_audio"),
        ("lm_head", "lm_head"),
    ),
    text_model_types=("gemma4_text",),
    checks=(*GQA_CHECKS,),
)

# Gemma4ForCausalLM on its own text config (no towers). PEFT has no default targets for it.
GEMMA4_TEXT = Family(
    model_type="gemma4_text",
    name="Gemma 4",
    keys=GEMMA4_TEXT_KEYS,
    text=gemma4_text("model"),
    checks=(*GQA_CHECKS,),
)

# --- Mistral 3 (Mistral Small 3.x, Magistral): Pixtral vision tower + patch-merging projector ----------

PIXTRAL_KEYS = (
    vkey("hidden_size", 1024),
    vkey("intermediate_size", 4096),
    vkey("num_hidden_layers", 24),
    vkey("num_attention_heads", 16),
    vkey("head_dim", "v_hidden_size // v_num_attention_heads"),
    vkey("num_channels", 3),
    vkey("patch_size", 14),
)
PIXTRAL = Tower(
    role="vision_tower",
    prefix="model.vision_tower.transformer.layers",
    count="v_num_hidden_layers",
    layer=(
        norm("attention_norm", "v_hidden_size"),
        box("feed_forward"),
        lin("feed_forward.gate_proj", "v_hidden_size", "v_intermediate_size"),
        lin("feed_forward.up_proj", "v_hidden_size", "v_intermediate_size"),
        lin("feed_forward.down_proj", "v_intermediate_size", "v_hidden_size"),
        box("attention"),
        *(
            lin(f"attention.{p}", "v_hidden_size", "v_num_attention_heads * v_head_dim")
            for p in ("k_proj", "v_proj", "q_proj")
        ),
        lin("attention.o_proj", "v_num_attention_heads * v_head_dim", "v_hidden_size"),
        norm("ffn_norm", "v_hidden_size"),
    ),
    around=(
        box("model.vision_tower"),
        conv("model.vision_tower.patch_conv", ("v_hidden_size", "v_num_channels", "v_patch_size", "v_patch_size")),
        norm("model.vision_tower.ln_pre", "v_hidden_size"),
        box("model.vision_tower.transformer"),
        box("model.vision_tower.transformer.layers"),
    ),
)

MISTRAL3 = Family(
    model_type="mistral3",
    name="Mistral",
    keys=(
        *decoder_keys(
            vocab=131072,
            hidden=5120,
            intermediate=32768,
            layers=40,
            heads=32,
            kv_heads=8,
            head_dim=128,
            positions=131072,
            at=TEXT,
        ),
        flag("tie_word_embeddings", True),
        flag("multimodal_projector_bias"),
        Key("spatial_merge_size", 2),
        *PIXTRAL_KEYS,
    ),
    text=Text(
        Layers(mixers=(("full_attention", Attention()),), ffns=(("mlp", GATED_MLP),)), prefix="model.language_model"
    ),
    towers=(PIXTRAL,),
    extra=(
        box("model.multi_modal_projector"),
        norm("model.multi_modal_projector.norm", "v_hidden_size"),
        box("model.multi_modal_projector.patch_merger"),
        lin(
            "model.multi_modal_projector.patch_merger.merging_layer",
            "v_hidden_size * spatial_merge_size * spatial_merge_size",
            "v_hidden_size",
        ),
        lin("model.multi_modal_projector.linear_1", "v_hidden_size", "hidden_size", "multimodal_projector_bias"),
        lin("model.multi_modal_projector.linear_2", "hidden_size", "hidden_size", "multimodal_projector_bias"),
    ),
    auto_class="AutoModelForImageTextToText",
    components=(
        ("language_model", "model.language_model"),
        ("vision_tower", "model.vision_tower"),
        ("projector", "model.multi_modal_projector"),
        ("lm_head", "lm_head"),
    ),
    text_model_types=("mistral", "ministral", "ministral3"),
    checks=GQA_CHECKS,
)

# --- Qwen2.5-VL: windowed ViT with a patch merger ---------------------------------------------------

QWEN25_VISION_KEYS = (
    vkey("depth", 32),
    vkey("hidden_size", 3584),
    vkey("intermediate_size", 3420),
    vkey("in_channels", 3),
    vkey("patch_size", 14),
    vkey("temporal_patch_size", 2),
    vkey("spatial_merge_size", 2),
    vkey("out_hidden_size", 3584),
)
V_MERGED = "v_hidden_size * v_spatial_merge_size * v_spatial_merge_size"
QWEN25_VISION = Tower(
    role="vision_tower",
    prefix="model.visual.blocks",
    count="v_depth",
    layer=(
        norm("norm1", "v_hidden_size"),
        norm("norm2", "v_hidden_size"),
        box("attn"),
        lin("attn.qkv", "v_hidden_size", "3 * v_hidden_size", True),
        lin("attn.proj", "v_hidden_size", "v_hidden_size", True),
        box("mlp"),
        lin("mlp.gate_proj", "v_hidden_size", "v_intermediate_size", True),
        lin("mlp.up_proj", "v_hidden_size", "v_intermediate_size", True),
        lin("mlp.down_proj", "v_intermediate_size", "v_hidden_size", True),
    ),
    around=(
        box("model.visual"),
        box("model.visual.patch_embed"),
        conv(
            "model.visual.patch_embed.proj",
            ("v_hidden_size", "v_in_channels", "v_temporal_patch_size", "v_patch_size", "v_patch_size"),
        ),
        box("model.visual.blocks"),
        box("model.visual.merger"),
        norm("model.visual.merger.ln_q", "v_hidden_size"),
        box("model.visual.merger.mlp"),
        lin("model.visual.merger.mlp.0", V_MERGED, V_MERGED, True),
        lin("model.visual.merger.mlp.2", V_MERGED, "v_out_hidden_size", True),
    ),
)

QWEN2_5_VL = Family(
    model_type="qwen2_5_vl",
    name="Qwen2.5-VL",
    keys=(
        *decoder_keys(
            vocab=152064,
            hidden=8192,
            intermediate=29568,
            layers=80,
            heads=64,
            positions=32768,
            at="text_config?",
        ),
        flag("tie_word_embeddings", False),
        *QWEN25_VISION_KEYS,
    ),
    text=Text(
        Layers(mixers=(("full_attention", Attention(qkv_bias=True)),), ffns=(("mlp", GATED_MLP),)),
        prefix="model.language_model",
        rope_batched=True,  # M-RoPE: position ids per sequence, so cos/sin per sequence
    ),
    towers=(QWEN25_VISION,),
    auto_class="AutoModelForImageTextToText",
    components=(
        ("language_model", "model.language_model"),
        ("vision_tower", "model.visual"),
        ("lm_head", "lm_head"),
    ),
    text_model_types=("qwen2_5_vl_text", "qwen2_5_vl"),
    checks=GQA_CHECKS,
)

# --- Mllama (Llama 3.2 Vision) and Llama 4: AutoModelForCausalLM builds the text model only -------------

MLLAMA = Family(
    model_type="mllama",
    name="Llama 3.2 Vision",
    keys=decoder_keys(
        vocab=128256,
        hidden=4096,
        intermediate=14336,
        layers=40,
        heads=32,
        kv_heads=8,
        positions=131072,
        at=TEXT,
        extra=(Key("cross_attention_layers", "[3, 8, 13, 18, 23, 28, 33, 38]", "list", at=TEXT),),
    ),
    text=Text(
        Layers(
            mixers=(
                ("self_attention", Attention()),
                (
                    "cross_attention",
                    Attention(
                        container="cross_attn",
                        qk_norm="head",
                        cross=True,
                        layer_params=(P("cross_attn_attn_gate", (1,)), P("cross_attn_mlp_gate", (1,))),
                    ),
                ),
            ),
            ffns=(("mlp", GATED_MLP),),
            mixer_rule="'cross_attention' if i in cross_attention_layers else 'self_attention'",
        ),
        embedding_count="vocab_size + 8",
    ),
    components=(("language_model", "model"), ("lm_head", "lm_head")),
    notes=("AutoModelForCausalLM builds MllamaForCausalLM: the text model, without the vision encoder.",),
    text_model_types=("mllama_text_model",),
    checks=GQA_CHECKS,
)

LLAMA4_TEXT_KEYS = decoder_keys(
    vocab=202048,
    hidden=5120,
    intermediate=8192,
    layers=48,
    heads=40,
    kv_heads=8,
    head_dim=128,
    positions=4096 * 32,
    extra=(
        flag("attention_bias"),
        flag("use_qk_norm", True),
        Key("intermediate_size_mlp", 16384),
        Key("num_experts", 16, name="num_local_experts"),
        Key("num_experts_per_tok", 1),
        Key("interleave_moe_layer_step", 1),
        Key("moe_layers", None, "list"),
        Key("no_rope_layers", None, "list"),
        Key("no_rope_layer_interval", 4),
        Key("layer_types", None, "list"),
        Key("attention_chunk_size", 8192, nullable=True),
        flag("attn_temperature_tuning", True),
    ),
)
LLAMA4_ROPE = "(no_rope_layers[i] if no_rope_layers else (i + 1) % no_rope_layer_interval)"
LLAMA4_MOE = "(i in moe_layers if moe_layers is not None else (i + 1) % interleave_moe_layer_step == 0)"
# transformers masks a layer by layer_types[i] (chunked_attention by default on the RoPE layers)
LLAMA4_CHUNKED = (
    f"attention_chunk_size is not None and "
    f"((layer_types[i] == 'chunked_attention') if layer_types else bool({LLAMA4_ROPE}))"
)


def _llama4_attention(rope: bool, chunked: bool) -> Attention:
    """Chunked attention (local blocks of attention_chunk_size) needs a 4-D mask from that many tokens on,
    exactly like a sliding window, which is how it is described."""
    return Attention(
        qkv_bias="attention_bias",
        o_bias="attention_bias",
        qk_norm="l2" if rope else "",
        qk_norm_when="use_qk_norm",
        rotary=rope,
        temperature_tuning=False if rope else "attn_temperature_tuning",
        sliding=chunked,
        chunked=chunked,
        window="attention_chunk_size" if chunked else None,
        fp32_softmax=False,  # Llama 4's eager softmax runs in the compute dtype
    )


LLAMA4_LAYERS = Layers(
    mixers=tuple(
        (f"{'chunked' if chunked else 'full'} {'rope' if rope else 'nope'}", _llama4_attention(rope, chunked))
        for rope in (True, False)
        for chunked in (True, False)
    ),
    ffns=(
        (
            "moe",
            Moe(
                container="feed_forward",
                router="router",
                router_linear=True,
                intermediate="intermediate_size",
                transposed=True,
                shared=GatedMlp(container="shared_expert"),
                dense=True,
            ),
        ),
        ("mlp", GatedMlp(container="feed_forward", intermediate="intermediate_size_mlp")),
    ),
    mixer_rule=f"('chunked ' if {LLAMA4_CHUNKED} else 'full ') + ('rope' if {LLAMA4_ROPE} else 'nope')",
    ffn_rule=f"'moe' if {LLAMA4_MOE} else 'mlp'",
)

LLAMA4 = Family(
    model_type="llama4",
    name="Llama 4",
    keys=keys(*LLAMA4_TEXT_KEYS, at=TEXT),
    text=Text(LLAMA4_LAYERS, rope_complex=True),
    # PEFT looks up the built model's config type: Llama4ForCausalLM's is llama4_text, which has no defaults
    peft_targets=None,
    lora_hazards=(
        (
            "feed_forward.router",
            "PEFT wraps Llama 4's router (an nn.Linear whose forward returns a tuple), and the first forward "
            "then fails. Leave it out: exclude_modules=['router'] or name the targets.",
        ),
    ),
    components=(("language_model", "model"), ("lm_head", "lm_head")),
    notes=("AutoModelForCausalLM builds Llama4ForCausalLM: the text model, without the vision encoder.",),
    text_model_types=("llama4_text",),
    checks=GQA_CHECKS,
)
LLAMA4_TEXT = replace(LLAMA4, model_type="llama4_text", keys=LLAMA4_TEXT_KEYS, text_model_types=(), notes=())

MULTIMODAL = (GEMMA3, GEMMA4, GEMMA4_TEXT, MISTRAL3, QWEN2_5_VL, MLLAMA, LLAMA4, LLAMA4_TEXT)
