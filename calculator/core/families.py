"""One builder per ``model_type``: config.json -> `Architecture`, with transformers' defaults.

Each builder lays out exactly the modules and parameter shapes that transformers instantiates
for that model type, so the base parameter count is what ``model.parameters()`` sums to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from . import bounds
from .architecture import Architecture, Dimensions, Kind, Module, Param
from .configs import ConfigReader
from .errors import ErrorCollector, InputError


@dataclass(frozen=True, slots=True)
class FamilyDefaults:
    """transformers' config defaults for a model type (used when a config.json omits a key)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int | None  # None: same as num_attention_heads (else a fixed number, as transformers)
    head_dim: int | None  # None: hidden_size // num_attention_heads
    tie_word_embeddings: bool
    max_position_embeddings: int


def linear(path: str, in_features: int, out_features: int, *, bias: bool = False) -> Module:
    params: tuple[Param, ...] = (Param("weight", (out_features, in_features)),)
    if bias:
        params += (Param("bias", (out_features,)),)
    return Module(path, Kind.LINEAR, params, in_features, out_features)


def conv1d(path: str, in_features: int, out_features: int) -> Module:
    """transformers' Conv1D stores its weight as (in, out) and always has a bias."""
    params = (Param("weight", (in_features, out_features)), Param("bias", (out_features,)))
    return Module(path, Kind.CONV1D, params, in_features, out_features)


def embedding(path: str, num_embeddings: int, dim: int) -> Module:
    return Module(path, Kind.EMBEDDING, (Param("weight", (num_embeddings, dim)),), num_embeddings, dim)


def rms_norm(path: str, size: int) -> Module:
    return Module(path, Kind.NORM, (Param("weight", (size,)),))


def layer_norm(path: str, size: int) -> Module:
    return Module(path, Kind.NORM, (Param("weight", (size,)), Param("bias", (size,))))


def container(path: str) -> Module:
    return Module(path, Kind.CONTAINER)


def read_decoder_dims(reader: ConfigReader, defaults: FamilyDefaults) -> Dimensions:
    """The Llama-style dimensions, validated, with GQA and explicit head_dim resolved."""
    errors = reader.errors
    hidden = reader.integer("hidden_size", default=defaults.hidden_size, maximum=bounds.MAX_HIDDEN_SIZE)
    intermediate = reader.integer(
        "intermediate_size", default=defaults.intermediate_size, maximum=bounds.MAX_INTERMEDIATE_SIZE
    )
    layers = reader.integer("num_hidden_layers", default=defaults.num_hidden_layers, maximum=bounds.MAX_LAYERS)
    heads = reader.integer("num_attention_heads", default=defaults.num_attention_heads, maximum=bounds.MAX_HEADS)
    kv_default = defaults.num_key_value_heads or heads
    kv_heads = reader.integer("num_key_value_heads", default=kv_default, maximum=bounds.MAX_HEADS)
    if heads % kv_heads:
        errors.add(
            reader.field("num_key_value_heads"),
            f"num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv_heads}).",
        )
    explicit_head_dim = reader.optional_integer("head_dim", maximum=bounds.MAX_HEAD_DIM)
    head_dim = explicit_head_dim or defaults.head_dim
    if head_dim is None:
        if hidden % heads:
            errors.add(
                reader.field("num_attention_heads"),
                f"hidden_size ({hidden}) is not divisible by num_attention_heads ({heads}); set head_dim explicitly.",
            )
        head_dim = max(hidden // heads, 1)
    vocab = reader.integer("vocab_size", default=defaults.vocab_size, maximum=bounds.MAX_VOCAB_SIZE)
    tie = reader.boolean("tie_word_embeddings", default=defaults.tie_word_embeddings)
    positions = reader.integer(
        "max_position_embeddings", default=defaults.max_position_embeddings, maximum=bounds.MAX_POSITIONS
    )
    return Dimensions(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        tie_word_embeddings=tie,
        max_position_embeddings=positions,
        attention_dropout=reader.probability("attention_dropout", default=0.0),
        residual_dropout=reader.probability("resid_pdrop", default=0.0),
        embedding_dropout=reader.probability("embd_pdrop", default=0.0),
    )


def attention(
    d: Dimensions, *, qkv_bias: bool, o_bias: bool, qk_norm: bool = False, fused_qkv: bool = False
) -> list[Module]:
    q_out = d.num_attention_heads * d.head_dim
    kv_out = d.num_key_value_heads * d.head_dim
    h = d.hidden_size
    modules = [container("self_attn")]
    if fused_qkv:
        modules += [
            linear("self_attn.o_proj", q_out, h, bias=o_bias),
            linear("self_attn.qkv_proj", h, q_out + 2 * kv_out, bias=qkv_bias),
        ]
        return modules
    modules += [
        linear("self_attn.q_proj", h, q_out, bias=qkv_bias),
        linear("self_attn.k_proj", h, kv_out, bias=qkv_bias),
        linear("self_attn.v_proj", h, kv_out, bias=qkv_bias),
        linear("self_attn.o_proj", q_out, h, bias=o_bias),
    ]
    if qk_norm:
        modules += [rms_norm("self_attn.q_norm", d.head_dim), rms_norm("self_attn.k_norm", d.head_dim)]
    return modules


def gated_mlp(d: Dimensions, *, bias: bool = False, fused: bool = False) -> list[Module]:
    h, i = d.hidden_size, d.intermediate_size
    if fused:
        return [
            container("mlp"),
            linear("mlp.gate_up_proj", h, 2 * i),
            linear("mlp.down_proj", i, h),
            container("mlp.activation_fn"),
        ]
    return [
        container("mlp"),
        linear("mlp.gate_proj", h, i, bias=bias),
        linear("mlp.up_proj", h, i, bias=bias),
        linear("mlp.down_proj", i, h, bias=bias),
        container("mlp.act_fn"),
    ]


def moe_mlp(d: Dimensions) -> list[Module]:
    """transformers 5 Mixtral: a router Parameter and experts fused into 3-D Parameters."""
    h, i, e = d.hidden_size, d.intermediate_size, d.num_local_experts
    return [
        container("mlp"),
        Module("mlp.gate", Kind.ROUTER, (Param("weight", (e, h)),)),
        Module(
            "mlp.experts",
            Kind.EXPERTS,
            (Param("gate_up_proj", (e, 2 * i, h)), Param("down_proj", (e, h, i))),
        ),
        container("mlp.experts.act_fn"),
    ]


def llama_style(
    model_type: str,
    family: str,
    d: Dimensions,
    *,
    attn: list[Module],
    mlp: list[Module],
    norms: tuple[str, ...] = ("input_layernorm", "post_attention_layernorm"),
    extra_layer_modules: tuple[str, ...] = (),
    default_targets: tuple[str, ...] | None = ("q_proj", "v_proj"),
) -> Architecture:
    h = d.hidden_size
    layer = [*attn, *mlp, *(rms_norm(n, h) for n in norms), *(container(n) for n in extra_layer_modules)]
    global_modules = (
        container("model"),
        embedding("model.embed_tokens", d.vocab_size, h),
        container("model.layers"),
        rms_norm("model.norm", h),
        container("model.rotary_emb"),
        linear("lm_head", h, d.vocab_size),
    )
    return Architecture(
        model_type=model_type,
        dims=d,
        layer_prefix="model.layers",
        layer_modules=(container(""), *layer),
        global_modules=global_modules,
        input_embedding="model.embed_tokens",
        output_head="lm_head",
        default_target_modules=default_targets,
        family=family,
    )


LLAMA = FamilyDefaults(32000, 4096, 11008, 32, 32, None, None, False, 2048)
MISTRAL = FamilyDefaults(32000, 4096, 14336, 32, 32, 8, None, False, 131072)
MIXTRAL = FamilyDefaults(32000, 4096, 14336, 32, 32, 8, None, False, 131072)
QWEN2 = FamilyDefaults(151936, 4096, 22016, 32, 32, 32, None, False, 32768)
QWEN3 = FamilyDefaults(151936, 4096, 22016, 32, 32, 32, 128, False, 32768)
GEMMA = FamilyDefaults(256000, 3072, 24576, 28, 16, 16, 256, True, 8192)
GEMMA2 = FamilyDefaults(256000, 2304, 9216, 26, 8, 4, 256, True, 8192)
PHI3 = FamilyDefaults(32064, 3072, 8192, 32, 32, None, None, False, 4096)


def build_llama(r: ConfigReader) -> Architecture:
    d = read_decoder_dims(r, LLAMA)
    attn_bias = r.boolean("attention_bias", default=False)
    mlp_bias = r.boolean("mlp_bias", default=False)
    return llama_style(
        "llama",
        "Llama",
        d,
        attn=attention(d, qkv_bias=attn_bias, o_bias=attn_bias),
        mlp=gated_mlp(d, bias=mlp_bias),
    )


def build_mistral(r: ConfigReader) -> Architecture:
    d = read_decoder_dims(r, MISTRAL)
    return llama_style("mistral", "Mistral", d, attn=attention(d, qkv_bias=False, o_bias=False), mlp=gated_mlp(d))


def build_mixtral(r: ConfigReader) -> Architecture:
    base = read_decoder_dims(r, MIXTRAL)
    experts = r.integer("num_local_experts", default=8, maximum=bounds.MAX_EXPERTS)
    per_token = r.integer("num_experts_per_tok", default=2, maximum=bounds.MAX_EXPERTS)
    if per_token > experts:
        r.errors.add(r.field("num_experts_per_tok"), "Cannot exceed num_local_experts.")
    d = replace(base, num_local_experts=experts, num_experts_per_tok=per_token)
    return llama_style("mixtral", "Mixtral", d, attn=attention(d, qkv_bias=False, o_bias=False), mlp=moe_mlp(d))


def build_qwen2(r: ConfigReader) -> Architecture:
    d = read_decoder_dims(r, QWEN2)
    return llama_style("qwen2", "Qwen2", d, attn=attention(d, qkv_bias=True, o_bias=False), mlp=gated_mlp(d))


def build_qwen3(r: ConfigReader) -> Architecture:
    d = read_decoder_dims(r, QWEN3)
    bias = r.boolean("attention_bias", default=False)
    return llama_style(
        "qwen3",
        "Qwen3",
        d,
        attn=attention(d, qkv_bias=bias, o_bias=bias, qk_norm=True),
        mlp=gated_mlp(d),
    )


def build_gemma(r: ConfigReader) -> Architecture:
    d = read_decoder_dims(r, GEMMA)
    bias = r.boolean("attention_bias", default=False)
    return llama_style("gemma", "Gemma", d, attn=attention(d, qkv_bias=bias, o_bias=bias), mlp=gated_mlp(d))


def build_gemma2(r: ConfigReader) -> Architecture:
    d = read_decoder_dims(r, GEMMA2)
    if d.hidden_size % d.num_attention_heads:
        # transformers 5's Gemma2Config refuses this even with an explicit head_dim
        r.errors.add(r.field("num_attention_heads"), "Gemma 2 needs hidden_size divisible by num_attention_heads.")
    bias = r.boolean("attention_bias", default=False)
    norms = ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm")
    return llama_style(
        "gemma2",
        "Gemma 2",
        d,
        attn=attention(d, qkv_bias=bias, o_bias=bias),
        mlp=gated_mlp(d),
        norms=norms,
    )


def build_phi3(r: ConfigReader) -> Architecture:
    d = read_decoder_dims(r, PHI3)
    return llama_style(
        "phi3",
        "Phi-3",
        d,
        attn=attention(d, qkv_bias=False, o_bias=False, fused_qkv=True),
        mlp=gated_mlp(d, fused=True),
        extra_layer_modules=("resid_attn_dropout", "resid_mlp_dropout"),
        default_targets=None,  # PEFT has no default targets for phi3: target_modules is required
    )


def build_gpt2(r: ConfigReader) -> Architecture:
    h = r.integer("n_embd", "hidden_size", default=768, maximum=bounds.MAX_HIDDEN_SIZE)
    layers = r.integer("n_layer", "num_hidden_layers", default=12, maximum=bounds.MAX_LAYERS)
    heads = r.integer("n_head", "num_attention_heads", default=12, maximum=bounds.MAX_HEADS)
    if h % heads:
        r.errors.add(r.field("n_head"), f"n_embd ({h}) must be divisible by n_head ({heads}).")
    inner = r.integer("n_inner", default=4 * h, maximum=bounds.MAX_INTERMEDIATE_SIZE)
    positions = r.integer("n_positions", "max_position_embeddings", default=1024, maximum=bounds.MAX_POSITIONS)
    vocab = r.integer("vocab_size", default=50257, maximum=bounds.MAX_VOCAB_SIZE)
    tie = r.boolean("tie_word_embeddings", default=True)
    d = Dimensions(
        hidden_size=h,
        intermediate_size=inner,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=max(h // heads, 1),
        vocab_size=vocab,
        tie_word_embeddings=tie,
        max_position_embeddings=positions,
        attention_dropout=r.probability("attn_pdrop", default=0.1),
        residual_dropout=r.probability("resid_pdrop", default=0.1),
        embedding_dropout=r.probability("embd_pdrop", default=0.1),
    )
    layer = (
        container(""),
        layer_norm("ln_1", h),
        container("attn"),
        conv1d("attn.c_attn", h, 3 * h),
        conv1d("attn.c_proj", h, h),
        container("attn.attn_dropout"),
        container("attn.resid_dropout"),
        layer_norm("ln_2", h),
        container("mlp"),
        conv1d("mlp.c_fc", h, inner),
        conv1d("mlp.c_proj", inner, h),
        container("mlp.act"),
        container("mlp.dropout"),
    )
    global_modules = (
        container("transformer"),
        embedding("transformer.wte", vocab, h),
        embedding("transformer.wpe", positions, h),
        container("transformer.drop"),
        container("transformer.h"),
        layer_norm("transformer.ln_f", h),
        linear("lm_head", h, vocab),
    )
    return Architecture(
        model_type="gpt2",
        dims=d,
        layer_prefix="transformer.h",
        layer_modules=layer,
        global_modules=global_modules,
        input_embedding="transformer.wte",
        output_head="lm_head",
        default_target_modules=("c_attn",),
        family="GPT-2",
    )


BUILDERS: dict[str, Callable[[ConfigReader], Architecture]] = {
    "llama": build_llama,
    "mistral": build_mistral,
    "mixtral": build_mixtral,
    "qwen2": build_qwen2,
    "qwen3": build_qwen3,
    "gemma": build_gemma,
    "gemma2": build_gemma2,
    "phi3": build_phi3,
    "gpt2": build_gpt2,
}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(BUILDERS)

CUSTOM_FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "tie_word_embeddings",
    "num_local_experts",
    "num_experts_per_tok",
)


def architecture_from_config(config: Mapping[str, Any], field: str = "model.hf_config") -> Architecture:
    """Build the architecture a Hugging Face config.json describes, or raise `InputError`."""
    if not isinstance(config, Mapping):
        raise InputError.single(field, "Expected a JSON object (the contents of config.json).")
    model_type = config.get("model_type")
    supported = ", ".join(SUPPORTED_MODEL_TYPES)
    if not isinstance(model_type, str) or not model_type:
        raise InputError.single(f"{field}.model_type", f"Missing model_type; supported: {supported}.")
    builder = BUILDERS.get(model_type)
    if builder is None:
        raise InputError.single(
            f"{field}.model_type", f"Unsupported model_type {model_type!r}; supported: {supported}."
        )
    errors = ErrorCollector()
    architecture = builder(ConfigReader(config, field, errors))
    errors.raise_if_any()
    return architecture


def architecture_from_dimensions(custom: Mapping[str, Any], field: str = "model.custom") -> Architecture:
    """A Llama-style model from its dimensions alone (Mixtral-style when it has several experts)."""
    if not isinstance(custom, Mapping):
        raise InputError.single(field, "Expected an object of model dimensions.")
    experts = custom.get("num_local_experts")
    model_type = "mixtral" if isinstance(experts, int) and experts > 1 else "llama"
    config = {key: custom.get(key) for key in CUSTOM_FIELDS if key in custom}
    config["model_type"] = model_type
    for required in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        if config.get(required) is None:
            raise InputError.single(f"{field}.{required}", "This field is required.")
    config.setdefault("tie_word_embeddings", False)
    try:
        return architecture_from_config(config, field)
    except InputError as error:
        # A custom model never has a model_type field of its own to blame.
        raise InputError({k.replace(f"{field}.model_type", field): v for k, v in error.errors.items()}) from None
