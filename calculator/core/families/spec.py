"""The vocabulary a model family is described in: config keys with transformers' defaults, and the
building blocks of its layers, with sizes as expressions of those keys.

A family is data: a `Family` lists the config keys it reads (`Key`: name, default, where it lives in a
nested config), then describes the text model (`Text`: where the layers live, which *mixer* — attention,
multi-head latent attention, gated DeltaNet, short convolution — and which *feed-forward* — gated MLP,
plain MLP, mixture of experts — each layer has, chosen per layer by an expression of ``i``, and how the
norms sit around them) and, for multimodal models, its other towers as plain module lists (`Tower`).
`build.py` turns a description and a config.json into an `Architecture`; the activation replay follows the
same blocks. Adding a family means writing one of these descriptions and checking it against the golden
files that `validation/` produces with transformers and PEFT (README: "How to add a model family").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..architecture import Kind
from ..expressions import Expr

# --- config keys ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    """One config key: its default (a literal or an expression of other keys; ``None``: may be absent),
    its type, and where it lives (``at``: a nested dict such as ``"text_config"``; ``name``: its name
    there when it differs from ours, e.g. a vision tower's ``hidden_size``)."""

    key: str
    default: Expr
    type: str = "int"  # int | bool | prob | float | list | str | any | overrides (transformers' per_layer_config)
    at: str = ""
    name: str = ""
    aliases: tuple[str, ...] = ()
    maximum: int | None = None
    minimum: int = 1
    nullable: bool = False  # an explicit null means "none" (e.g. no soft-capping), not "the default"
    per_layer: bool = False  # the model reads it from each layer's config, so per_layer_config may override it

    @property
    def config_name(self) -> str:
        return self.name or self.key


def keys(*items: Key, at: str = "") -> tuple[Key, ...]:
    """Keys relocated into a nested config (a multimodal model's ``text_config``)."""
    if not at:
        return items
    return tuple(replace(k, at=f"{at}.{k.at}" if k.at else at) for k in items)


# --- module lists (towers, extras) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class P:
    """A parameter: its name, its shape as expressions, and whether it exists (e.g. ``"attention_bias"``)."""

    name: str
    shape: tuple[Expr, ...]
    when: Expr = True


@dataclass(frozen=True, slots=True)
class M:
    """A module written out by hand: its kind and parameters, present ``when`` the expression holds."""

    path: str
    kind: Kind
    params: tuple[P, ...] = ()
    in_features: Expr = 0
    out_features: Expr = 0
    when: Expr = True
    groups: Expr = 1


def lin(path: str, in_features: Expr, out_features: Expr, bias: Expr = False, when: Expr = True) -> M:
    weight = P("weight", (out_features, in_features))
    return M(path, Kind.LINEAR, (weight, P("bias", (out_features,), bias)), in_features, out_features, when)


def norm(path: str, size: Expr, bias: Expr = False, when: Expr = True) -> M:
    return M(path, Kind.NORM, (P("weight", (size,)), P("bias", (size,), bias)), when=when)


def emb(path: str, count: Expr, dim: Expr, when: Expr = True) -> M:
    return M(path, Kind.EMBEDDING, (P("weight", (count, dim)),), count, dim, when)


def conv(path: str, weight: tuple[Expr, ...], bias: Expr = False, when: Expr = True, groups: Expr = 1) -> M:
    """An nn.ConvNd; its weight is (out, in / groups, *kernel)."""
    in_channels = f"({weight[1]}) * ({groups})"
    return M(
        path, Kind.CONV, (P("weight", weight), P("bias", (weight[0],), bias)), in_channels, weight[0], when, groups
    )


def params(path: str, *shapes: P, when: Expr = True) -> M:
    return M(path, Kind.PARAMS, shapes, when=when)


def box(path: str, when: Expr = True) -> M:
    return M(path, Kind.CONTAINER, when=when)


# --- layer building blocks ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attention:
    """Multi-head attention with GQA. ``fused`` names one qkv projection (``qkv_proj``,
    ``query_key_value``, GPT-2's Conv1D ``c_attn``); ``q_gate`` doubles q's output for the output gate of
    Qwen3-Next/Qwen3.5; ``qk_norm`` is ``""``, ``"head"`` (RMSNorm over head_dim), ``"full"`` (over all
    heads, OLMo 2) or ``"l2"`` (parameter-free, Llama 4)."""

    container: str = "self_attn"
    q: str = "q_proj"
    k: str = "k_proj"
    v: str = "v_proj"
    o: str = "o_proj"
    fused: str = ""
    hidden: Expr = "hidden_size"
    heads: Expr = "num_attention_heads"
    kv_heads: Expr = "num_key_value_heads"
    head_dim: Expr = "head_dim"
    qkv_bias: Expr = False
    o_bias: Expr = False
    q_gate: bool = False
    qk_norm: str = ""
    qk_norm_when: Expr = True
    qk_norm_names: tuple[str, str] = ("q_norm", "k_norm")
    qk_norm_bias: bool = False
    v_norm: bool = False  # Gemma 4's parameter-free RMSNorm on v
    has_kv: Expr = True  # False: the layer reuses an earlier layer's k and v (Gemma 4's KV sharing)
    has_v: Expr = True  # False: v is k (Gemma 4's attention_k_eq_v on full-attention layers)
    sinks: bool = False  # gpt-oss: a learned logit per head
    softcap: Expr = False  # Gemma 2's attention logit soft-capping
    conv1d: bool = False  # GPT-2: transformers' Conv1D
    cross: bool = False  # Mllama: k and v from the vision states (skipped on text-only batches)
    layer_params: tuple[P, ...] = ()  # parameters on the layer module itself (Mllama's gates)
    rotary: Expr = True  # whether this layer applies RoPE (SmolLM3 / Llama 4 "NoPE" layers do not)
    rotary_fraction: Expr = 1.0  # partial RoPE: the share of head_dim rotated (the cos/sin tables' width)
    rope_table: str = "default"  # layers with their own RoPE parameters get their own cos/sin (Gemma 3: local)
    rope_per_layer: bool = False  # GLM-4: each layer repeat-interleaves cos/sin into a pair of its own
    fp32_softmax: bool = True  # eager attention's softmax in float32 (GPT-2's runs in the compute dtype)
    sliding: Expr = False
    window: Expr = None  # the sliding window (tokens); sdpa needs a mask only for sequences longer than it
    chunked: bool = False  # Llama 4's chunked attention: a sliding-style mask, built per batch row
    # Falcon: the causal mask is always materialised and passed (sdpa never runs on its causal flag alone);
    # with ALiBi it is one float (batch, heads, s, s) tensor every layer shares
    always_masked: bool = False
    alibi: Expr = False
    # Falcon's multi-query attention hands sdpa one k/v head to broadcast, which only the math kernel accepts
    broadcast_kv: Expr = False
    temperature_tuning: Expr = False  # Llama 4's NoPE layers scale q by a per-position factor (kept, fp32)


@dataclass(frozen=True, slots=True)
class Mla:
    """DeepSeek's multi-head latent attention: q through a low-rank ``q_a_proj``/``q_b_proj`` (or one
    ``q_proj`` when ``q_lora_rank`` is null), k/v from a shared compressed ``kv_a_proj_with_mqa``."""

    container: str = "self_attn"
    hidden: Expr = "hidden_size"
    heads: Expr = "num_attention_heads"
    q_lora_rank: Expr = "q_lora_rank"
    kv_lora_rank: Expr = "kv_lora_rank"
    qk_nope_head_dim: Expr = "qk_nope_head_dim"
    qk_rope_head_dim: Expr = "qk_rope_head_dim"
    v_head_dim: Expr = "v_head_dim"
    bias: Expr = "attention_bias"


@dataclass(frozen=True, slots=True)
class GatedDeltaNet:
    """Qwen3-Next / Qwen3.5 linear attention: input projections (fused ``in_proj_qkvz``/``in_proj_ba``, or
    split ``in_proj_qkv``/``in_proj_z``/``in_proj_b``/``in_proj_a``), a depthwise causal Conv1d over q, k and
    v, per-head ``A_log``/``dt_bias``, a gated RMSNorm and ``out_proj``."""

    container: str = "linear_attn"
    hidden: Expr = "hidden_size"
    key_heads: Expr = "linear_num_key_heads"
    value_heads: Expr = "linear_num_value_heads"
    key_dim: Expr = "linear_key_head_dim"
    value_dim: Expr = "linear_value_head_dim"
    kernel: Expr = "linear_conv_kernel_dim"
    split: bool = False


@dataclass(frozen=True, slots=True)
class ShortConv:
    """LFM2's gated short convolution: ``in_proj`` (h -> 3h), a depthwise Conv1d, ``out_proj``."""

    container: str = "conv"
    hidden: Expr = "hidden_size"
    kernel: Expr = "conv_L_cache"
    bias: Expr = "conv_bias"


@dataclass(frozen=True, slots=True)
class GatedMlp:
    """act(gate(x)) * up(x) -> down; ``fused`` names one gate_up projection (Phi-3, GLM-4)."""

    container: str = "mlp"
    gate: str = "gate_proj"
    up: str = "up_proj"
    down: str = "down_proj"
    fused: str = ""
    hidden: Expr = "hidden_size"
    intermediate: Expr = "intermediate_size"
    bias: Expr = False
    activation: str = "act_fn"


@dataclass(frozen=True, slots=True)
class Mlp:
    """fc_in -> activation -> fc_out (Phi, StarCoder2, Falcon, GPT-2's Conv1D)."""

    container: str = "mlp"
    fc_in: str = "fc1"
    fc_out: str = "fc2"
    hidden: Expr = "hidden_size"
    intermediate: Expr = "intermediate_size"
    bias: Expr = False
    conv1d: bool = False
    gelu_tanh_parts: bool = False  # GPT-2's gelu_new as separate kernels (keeps x, tanh, 1+tanh, 0.5x)
    activation: str = "act"


@dataclass(frozen=True, slots=True)
class Moe:
    """Routed experts as transformers 5 stores them (3-D ``gate_up_proj``/``down_proj`` parameters),
    the router (a bare weight, or an nn.Linear for Llama 4), optional shared expert(s) and their gate."""

    container: str = "mlp"
    router: str = "gate"
    router_linear: bool = False
    router_bias: Expr = False
    experts: str = "experts"
    num_experts: Expr = "num_experts"
    top_k: Expr = "num_experts_per_tok"
    hidden: Expr = "hidden_size"
    intermediate: Expr = "moe_intermediate_size"
    transposed: bool = False  # gate_up_proj stored (experts, hidden, 2i) instead of (experts, 2i, hidden)
    expert_bias: bool = False  # gpt-oss: gate_up_proj_bias, down_proj_bias
    shared: GatedMlp | None = None
    shared_gate: str = ""  # Qwen2-MoE / Qwen3-Next: a sigmoid gate on the shared expert (Linear h -> 1)
    activation: str = "act_fn"
    # Gemma 4: the router reads the residual through a parameter-free RMSNorm and a scale, and multiplies the
    # top-k weights by a per-expert scale gathered per token
    router_norm: bool = False
    # Llama 4 (Llama4TextExperts): every expert runs on every token (torch.bmm over inputs repeated per expert
    # and scaled by the router's sigmoid scores), not grouped_mm over the routed rows
    dense: bool = False
    # How the router scores experts: "softmax" (fp32 softmax over all experts, top-k, renormalised: Mixtral,
    # Qwen), "topk_softmax" (gpt-oss: softmax over the k best logits, compute dtype), "deepseek_v2" (fp32
    # logits, softmax, greedy or group-limited top-k), "sigmoid_groups" (DeepSeek-V3, GLM-4.5: fp32 logits,
    # sigmoid, top-2 per group, top groups, top-k, gathered and optionally renormalised weights)
    router_kind: str = "softmax"
    groups: Expr = 1  # n_group
    top_groups: Expr = 1  # topk_group
    group_limited: Expr = False  # DeepSeek-V2's topk_method == "group_limited_greedy"
    normalised: Expr = False  # norm_topk_prob (sigmoid_groups)
    # gpt-oss's clamped GLU gate: gate, sigmoid, clamped gate, glu and up + 1 kept per routed row
    clamped_glu: bool = False


Mixer = Attention | Mla | GatedDeltaNet | ShortConv
Ffn = GatedMlp | Mlp | Moe


@dataclass(frozen=True, slots=True)
class Norms:
    """Where the layer's norms sit. ``pre``: x + f(norm(x)) for both blocks (names: before the mixer,
    before the ffn); ``sandwich``: also a norm on each block's output (names: pre-mixer, post-mixer,
    pre-ffn, post-ffn); ``post``: x + norm(f(x)) (names: post-mixer, post-ffn); ``parallel``: one norm
    feeds both blocks, x + mixer + ffn (Cohere, Phi, Falcon-7B); ``parallel2``: Falcon's new decoder
    architecture, one norm per block. ``kind``: rms | rms_gemma (1 + weight, in fp32) | rms_gemma4 (Gemma 4's
    pow form and weight.float()) | layer | layer_nobias."""

    style: str = "pre"
    names: tuple[str, ...] = ("input_layernorm", "post_attention_layernorm")
    kind: str = "rms"
    size: Expr = "hidden_size"


@dataclass(frozen=True, slots=True)
class PerLayerInput:
    """Gemma 3n / Gemma 4: each layer mixes in its own slice of a per-layer token embedding through a
    gate (h -> p), an activation, a projection (p -> h) and a norm."""

    size: Expr = "hidden_size_per_layer_input"
    when: Expr = True
    gate: str = "per_layer_input_gate"
    projection: str = "per_layer_projection"
    norm: str = "post_per_layer_input_norm"
    model_projection: str = "per_layer_model_projection"  # outside the layers: embeddings -> every layer's slice


@dataclass(frozen=True, slots=True)
class Layers:
    """The text layers: the mixers and feed-forwards this family has, and which one layer ``i`` uses
    (an expression of ``i`` and the config naming the choice; none needed when there is one)."""

    mixers: tuple[tuple[str, Mixer], ...]
    ffns: tuple[tuple[str, Ffn], ...]
    norms: Norms = Norms()
    norms_by: tuple[tuple[Expr, Norms], ...] = ()  # when the norms depend on the config: first that holds
    mixer_rule: Expr = None
    ffn_rule: Expr = None
    per_layer_input: PerLayerInput | None = None
    count: Expr = "num_hidden_layers"
    residual_scale: bool = False  # Granite's residual_multiplier (a scalar: nothing extra is saved)
    extra: tuple[M, ...] = ()  # further modules of every layer (paths relative to the layer)
    # Gemma 4's experts beside the dense MLP (summed after their own norms), for the activation replay; their
    # modules are written in ``extra``
    experts_branch: Moe | None = None
    experts_when: Expr = True


@dataclass(frozen=True, slots=True)
class Text:
    """The language model: where its parts live and what they are."""

    layers: Layers
    prefix: str = "model"  # "model", "model.language_model", "transformer"
    layers_name: str = "layers"  # "layers", "h"
    embedding: str = "embed_tokens"
    embedding_count: Expr = "vocab_size"
    embedding_scaled: bool = False  # Gemma: x * sqrt(hidden) (an extra activation)
    final_norm: str = "norm"  # "" when the model has none
    final_norm_kind: str = ""  # defaults to the layers' norm kind
    head: str = "lm_head"
    head_bias: Expr = False
    tie: Expr = "tie_word_embeddings"
    rotary: str = "rotary_emb"  # container name, "" when positions are learned
    rope_complex: bool = False  # Llama 4: one complex64 freqs_cis table instead of cos and sin
    rope_fp32: bool = False  # OLMo 2's rotary embedding returns float32 cos/sin
    rope_batched: bool = False  # Qwen2.5-VL's multimodal RoPE: cos/sin per sequence (batch x s x head_dim)
    rope_always: bool = False  # Falcon computes cos/sin even when its layers use ALiBi instead
    extra: tuple[M, ...] = ()  # further modules outside the layers (full paths)
    head_softcap: Expr = False  # Gemma 2's final logit soft-capping
    embedding_rescaled: bool = False  # Granite: embeddings * multiplier outside the embedding module
    dropout_keys: tuple[Expr, Expr, Expr] = ("attention_dropout", 0.0, 0.0)  # attention, residual, embedding


@dataclass(frozen=True, slots=True)
class Tower:
    """Another stack (a vision encoder) written as module lists: modules around it (full paths) and one
    uniform layer (paths relative to the layer). Frozen on text batches: it only adds weights and targets."""

    role: str
    prefix: str
    count: Expr
    layer: tuple[M, ...]
    around: tuple[M, ...] = ()
    when: Expr = True


@dataclass(frozen=True, slots=True)
class Family:
    model_type: str
    name: str
    keys: tuple[Key, ...]
    text: Text
    towers: tuple[Tower, ...] = ()
    extra: tuple[M, ...] = ()  # modules outside both (a multimodal projector), full paths
    peft_targets: tuple[str, ...] | str | None = None  # PEFT's default target_modules for this model_type
    moe_conversion: str = ""  # PEFT's transformers-5 MoE target rewrite: "" | "mixtral" | "qwen2_moe"
    auto_class: str = "AutoModelForCausalLM"
    text_model_types: tuple[str, ...] = ()  # accepted text_config.model_type values (multimodal)
    # (component, path prefix): parameters per part as transformers groups them; the longest prefix wins.
    components: tuple[tuple[str, str], ...] = (("language_model", ""), ("lm_head", "lm_head"))
    checks: tuple[tuple[Expr, str, str], ...] = ()  # (condition that must hold, key to blame, message)
    notes: tuple[str, ...] = field(default=())
    lora_hazards: tuple[tuple[str, str], ...] = ()  # (module suffix, why training fails when it is adapted)
