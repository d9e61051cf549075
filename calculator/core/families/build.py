"""A family description plus a config.json -> the `Architecture` transformers would build.

Components in a description hold expressions; `resolve` evaluates them against the config's values, and
the `*_modules` functions lay out the modules and parameter shapes transformers allocates for them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ..architecture import Architecture, Dimensions, Kind, LayerKind, Module, Param, Stack
from ..errors import ErrorCollector
from ..expressions import ExpressionError, num
from .spec import (
    Attention,
    Family,
    Ffn,
    GatedDeltaNet,
    GatedMlp,
    M,
    Mixer,
    Mla,
    Mlp,
    Moe,
    Norms,
    PerLayerInput,
    ShortConv,
    Text,
    Tower,
)
from .values import Values

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class Block:
    """One layer kind's forward, resolved to numbers: what the activation replay follows."""

    mixer: Any
    ffn: Any
    norms: Norms
    per_layer_input: PerLayerInput | None
    residual_scale: bool
    dropout: tuple[float, float]  # attention probabilities, residual
    experts_branch: Moe | None = None  # Gemma 4: routed experts beside the dense MLP


@dataclass(frozen=True, slots=True)
class Forward:
    """The text model's forward outside its layers, resolved: what the activation replay needs."""

    final_norm: str  # rms | rms_gemma | rms_gemma4 | layer | layer_nobias | "" (none)
    head_softcap: bool  # Gemma 2's final logit soft-capping keeps a tanh of the logits
    rope_dim: int  # total width of the cos/sin tables, one pair per distinct RoPE (0: learned positions)
    learned_positions: bool
    sliding_window: int | None  # the smallest window of the sliding-window layers (None: no such layers)
    attention_types: int  # distinct attention masks eager builds (full and/or sliding)
    embedding_copy: bool  # the first layer's input is not the embedding's output (Granite's multiplier)
    embedding_scaled: bool
    chunked_mask: bool = False  # Llama 4: the chunked layers' boolean mask has a batch dimension
    always_masked: bool = False  # Falcon: a materialised causal mask even for sdpa
    alibi_heads: int = 0  # Falcon with ALiBi: the shared float mask (and the bias) span this many heads
    rope_complex: bool = False  # Llama 4's complex64 freqs_cis (4 bytes per rotary dimension, any dtype)
    rope_fp32: bool = False  # OLMo 2: cos/sin stay float32
    rope_batched: bool = False  # Qwen2.5-VL: cos/sin per sequence of the batch
    shared_kv_features: int = 0  # k and v widths the KV-storing layers hand to later layers (Gemma 4)
    # Gemma 4's per-layer inputs, computed once before the layers: (the projection's path, its width, the
    # per-layer size); None without them
    per_layer_inputs: tuple[str, int, int] | None = None


def resolve(component: C, values: Values, **extra: Any) -> C:
    """The component with every expression field replaced by its value for this config (``i``: as layer i
    reads it)."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(component):  # type: ignore[arg-type]
        value = getattr(component, f.name)
        if f.type == "Expr" and isinstance(value, str):
            changes[f.name] = values.eval(value, **extra)
        elif isinstance(value, GatedMlp):
            changes[f.name] = resolve(value, values, **extra)
    return replace(component, **changes) if changes else component  # type: ignore[type-var]


# --- modules of each building block ---------------------------------------------------------------


def _linear(path: str, in_features: int, out_features: int, bias: bool = False, conv1d: bool = False) -> Module:
    if conv1d:  # transformers' Conv1D stores (in, out) and always has a bias
        params = (Param("weight", (in_features, out_features)), Param("bias", (out_features,)))
        return Module(path, Kind.CONV1D, params, in_features, out_features)
    weight: tuple[Param, ...] = (Param("weight", (out_features, in_features)),)
    return Module(
        path, Kind.LINEAR, weight + ((Param("bias", (out_features,)),) if bias else ()), in_features, out_features
    )


def _norm(path: str, size: int, kind: str) -> Module:
    params: tuple[Param, ...] = (Param("weight", (size,)),)
    if kind == "layer":
        params += (Param("bias", (size,)),)
    return Module(path, Kind.NORM, params)


def _box(path: str) -> Module:
    return Module(path, Kind.CONTAINER)


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def attention_modules(a: Attention) -> list[Module]:
    c = a.container
    h, heads, kv, hd = num(a.hidden), num(a.heads), num(a.kv_heads), num(a.head_dim)
    q_out, kv_out = heads * hd, kv * hd
    holder = Module(c, Kind.PARAMS, (Param("sinks", (heads,)),)) if a.sinks else _box(c)
    modules = [holder]
    if a.fused:
        modules.append(_linear(_join(c, a.fused), h, q_out + 2 * kv_out, bool(a.qkv_bias), a.conv1d))
    else:
        modules.append(_linear(_join(c, a.q), h, q_out * (2 if a.q_gate else 1), bool(a.qkv_bias)))
        if a.has_kv:
            modules.append(_linear(_join(c, a.k), h, kv_out, bool(a.qkv_bias)))
            if a.has_v:
                modules.append(_linear(_join(c, a.v), h, kv_out, bool(a.qkv_bias)))
    modules.append(_linear(_join(c, a.o), q_out, h, bool(a.o_bias), a.conv1d))
    if a.qk_norm in ("head", "full") and a.qk_norm_when:
        q_size, k_size = (hd, hd) if a.qk_norm == "head" else (q_out, kv_out)
        kind = "layer" if a.qk_norm_bias else "rms"
        modules.append(_norm(_join(c, a.qk_norm_names[0]), q_size, kind))
        if a.has_kv:
            modules.append(_norm(_join(c, a.qk_norm_names[1]), k_size, kind))
    return modules


def mla_modules(a: Mla) -> list[Module]:
    c, h, heads = a.container, num(a.hidden), num(a.heads)
    nope, rope, v = num(a.qk_nope_head_dim), num(a.qk_rope_head_dim), num(a.v_head_dim)
    kv_rank, bias = num(a.kv_lora_rank), bool(a.bias)
    modules = [_box(c)]
    if a.q_lora_rank:
        q_rank = num(a.q_lora_rank)
        modules += [
            _linear(f"{c}.q_a_proj", h, q_rank, bias),
            _norm(f"{c}.q_a_layernorm", q_rank, "rms"),
            _linear(f"{c}.q_b_proj", q_rank, heads * (nope + rope)),
        ]
    else:
        modules.append(_linear(f"{c}.q_proj", h, heads * (nope + rope)))
    modules += [
        _linear(f"{c}.kv_a_proj_with_mqa", h, kv_rank + rope, bias),
        _norm(f"{c}.kv_a_layernorm", kv_rank, "rms"),
        _linear(f"{c}.kv_b_proj", kv_rank, heads * (nope + v)),
        _linear(f"{c}.o_proj", heads * v, h, bias),
    ]
    return modules


def deltanet_modules(a: GatedDeltaNet) -> list[Module]:
    c, h = a.container, num(a.hidden)
    key_total = num(a.key_heads) * num(a.key_dim)
    value_heads = num(a.value_heads)
    value_total = value_heads * num(a.value_dim)
    conv_dim = 2 * key_total + value_total
    holder = Module(c, Kind.PARAMS, (Param("dt_bias", (value_heads,)), Param("A_log", (value_heads,))))
    conv1d = Module(
        f"{c}.conv1d", Kind.CONV, (Param("weight", (conv_dim, 1, num(a.kernel))),), conv_dim, conv_dim, conv_dim
    )
    modules = [holder, conv1d]
    if a.split:
        modules += [
            _linear(f"{c}.in_proj_qkv", h, conv_dim),
            _linear(f"{c}.in_proj_z", h, value_total),
            _linear(f"{c}.in_proj_b", h, value_heads),
            _linear(f"{c}.in_proj_a", h, value_heads),
        ]
    else:
        modules += [
            _linear(f"{c}.in_proj_qkvz", h, 2 * key_total + 2 * value_total),
            _linear(f"{c}.in_proj_ba", h, 2 * value_heads),
        ]
    modules += [_norm(f"{c}.norm", num(a.value_dim), "rms"), _linear(f"{c}.out_proj", value_total, h)]
    return modules


def short_conv_modules(a: ShortConv) -> list[Module]:
    c, h, bias = a.container, num(a.hidden), bool(a.bias)
    conv_params: tuple[Param, ...] = (Param("weight", (h, 1, num(a.kernel))),)
    if bias:
        conv_params += (Param("bias", (h,)),)
    return [
        _box(c),
        Module(f"{c}.conv", Kind.CONV, conv_params, h, h, h),
        _linear(f"{c}.in_proj", h, 3 * h, bias),
        _linear(f"{c}.out_proj", h, h, bias),
    ]


def gated_mlp_modules(m: GatedMlp, prefix: str = "") -> list[Module]:
    c = _join(prefix, m.container)
    h, i, bias = num(m.hidden), num(m.intermediate), bool(m.bias)
    if m.fused:
        modules = [_box(c), _linear(_join(c, m.fused), h, 2 * i, bias), _linear(_join(c, m.down), i, h, bias)]
    else:
        modules = [
            _box(c),
            _linear(_join(c, m.gate), h, i, bias),
            _linear(_join(c, m.up), h, i, bias),
            _linear(_join(c, m.down), i, h, bias),
        ]
    return [*modules, _box(_join(c, m.activation))] if m.activation else modules


def mlp_modules(m: Mlp) -> list[Module]:
    c, h, i, bias = m.container, num(m.hidden), num(m.intermediate), bool(m.bias)
    return [
        _box(c),
        _linear(f"{c}.{m.fc_in}", h, i, bias, m.conv1d),
        _linear(f"{c}.{m.fc_out}", i, h, bias, m.conv1d),
        _box(f"{c}.{m.activation}"),
    ]


def moe_modules(m: Moe) -> list[Module]:
    c, h, i, e = m.container, num(m.hidden), num(m.intermediate), num(m.num_experts)
    modules = [_box(c)]
    if m.router_linear:
        modules.append(_linear(f"{c}.{m.router}", h, e, bool(m.router_bias)))
    else:
        router: tuple[Param, ...] = (Param("weight", (e, h)),)
        if m.router_bias:
            router += (Param("bias", (e,)),)
        modules.append(Module(f"{c}.{m.router}", Kind.ROUTER, router))
    gate_up = (e, h, 2 * i) if m.transposed else (e, 2 * i, h)
    down = (e, i, h) if m.transposed else (e, h, i)
    experts: tuple[Param, ...] = (Param("gate_up_proj", gate_up), Param("down_proj", down))
    if m.expert_bias:
        experts = (Param("gate_up_proj", gate_up), Param("gate_up_proj_bias", (e, 2 * i)))
        experts += (Param("down_proj", down), Param("down_proj_bias", (e, h)))
    modules += [Module(f"{c}.{m.experts}", Kind.EXPERTS, experts), _box(f"{c}.{m.experts}.{m.activation}")]
    if m.shared is not None:
        modules += gated_mlp_modules(m.shared, c)
    if m.shared_gate:
        modules.append(_linear(f"{c}.{m.shared_gate}", h, 1))
    return modules


def mixer_modules(mixer: Mixer) -> list[Module]:
    if isinstance(mixer, Attention):
        return attention_modules(mixer)
    if isinstance(mixer, Mla):
        return mla_modules(mixer)
    if isinstance(mixer, GatedDeltaNet):
        return deltanet_modules(mixer)
    return short_conv_modules(mixer)


def ffn_modules(ffn: Ffn) -> list[Module]:
    if isinstance(ffn, GatedMlp):
        return gated_mlp_modules(ffn)
    if isinstance(ffn, Mlp):
        return mlp_modules(ffn)
    return moe_modules(ffn)


def norm_modules(norms: Norms) -> list[Module]:
    size = num(norms.size)
    return [_norm(name, size, "layer" if norms.kind == "layer" else "rms") for name in norms.names]


def per_layer_modules(p: PerLayerInput, hidden: int) -> list[Module]:
    size = num(p.size)
    return [
        _box("act_fn"),
        _linear(p.gate, hidden, size),
        _linear(p.projection, size, hidden),
        _norm(p.norm, hidden, "rms"),
    ]


# --- hand-written module lists -------------------------------------------------------------------


def written_modules(items: Iterable[M], values: Values, prefix: str = "") -> list[Module]:
    """Modules written out in a description (towers, extras), with their conditions and shapes evaluated."""
    modules: list[Module] = []
    for item in items:
        if not values.eval(item.when):
            continue
        shapes = tuple(
            Param(p.name, tuple(int(values.eval(d)) for d in p.shape)) for p in item.params if values.eval(p.when)
        )
        path = _join(prefix, item.path)
        in_features, out_features = int(values.eval(item.in_features)), int(values.eval(item.out_features))
        modules.append(Module(path, item.kind, shapes, in_features, out_features, int(values.eval(item.groups))))
    return modules


# --- the whole model -----------------------------------------------------------------------------


def build(
    family: Family, config: Mapping[str, Any], field: str, errors: ErrorCollector, values: Values | None = None
) -> Architecture:
    """The architecture; pass ``values`` to learn afterwards which config keys were read."""
    values = values or Values(config, family.keys, field, errors)
    try:
        return _build(family, values, errors)
    except (ExpressionError, KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as error:
        if errors.errors:  # a bad value upstream made a later expression fail: the value's error says it
            raise _Stop from None
        errors.add(field, f"This {family.model_type} config cannot be read: {error}.")
        raise _Stop from None


def _same_weight_shape(modules: list[Module], head: str, embedding: str) -> bool:
    """transformers ties the output head to the embeddings only when their weights have one shape: Mllama's
    embedding table has 8 extra rows, so its head stays its own whatever ``tie_word_embeddings`` says."""
    weights = {m.path: p.shape for m in modules if m.path in (head, embedding) for p in m.params if p.name == "weight"}
    return head in weights and weights.get(head) == weights.get(embedding)


class _Stop(Exception):
    """Raised after errors were recorded: the caller raises them."""


def _build(family: Family, values: Values, errors: ErrorCollector) -> Architecture:
    for condition, key, message in family.checks:
        if not values.eval(condition):
            declared = values.keys[key]
            errors.add(values.field(declared), message)
    if errors.errors:
        raise _Stop
    text = family.text
    stack, dims = _text_stack(family, values, errors)
    stacks = [stack]
    global_modules = _text_globals(text, values)
    for tower in family.towers:
        if values.eval(tower.when):
            stacks.append(_tower_stack(tower, values))
            global_modules += written_modules(tower.around, values)
    global_modules += written_modules(family.extra, values)
    head = text.head
    embedding = _join(text.prefix, text.embedding)
    tied = ((head, embedding),) if values.eval(text.tie) and _same_weight_shape(global_modules, head, embedding) else ()
    forward = _forward(family, values, stack)
    arch = Architecture(
        model_type=family.model_type,
        dims=dims,
        stacks=tuple(stacks),
        global_modules=tuple(global_modules),
        input_embedding=embedding,
        output_head=head,
        default_target_modules=family.peft_targets,
        family=family.name,
        tied=tied,
        moe_conversion=family.moe_conversion,
        lora_hazards=family.lora_hazards,
        forward=forward,
    )
    return replace(arch, components=_components(arch, family))


def _text_stack(family: Family, values: Values, errors: ErrorCollector) -> tuple[Stack, Dimensions]:
    text, layers = family.text, family.text.layers
    count = int(values.eval(layers.count))
    mixers, ffns = dict(layers.mixers), dict(layers.ffns)
    chosen = next((n for condition, n in layers.norms_by if values.eval(condition)), layers.norms)
    norms = resolve(chosen, values)
    attn_dropout = float(values.eval(text.dropout_keys[0]) or 0.0)
    resid_dropout = float(values.eval(text.dropout_keys[1]) or 0.0)
    per_layer = resolve(layers.per_layer_input, values) if layers.per_layer_input else None
    if per_layer is not None and not per_layer.when:
        per_layer = None
    _check_override_indexes(values, count, errors)
    kinds: dict[tuple[str, str], int] = {}
    built: list[LayerKind] = []
    layout: list[int] = []
    resolved: dict[str, Any] = {}
    overrides_of: dict[str, Mapping[str, Any]] = {}
    for i in range(count):
        mixer_name = str(values.eval(layers.mixer_rule, i=i)) if layers.mixer_rule else next(iter(mixers))
        ffn_name = str(values.eval(layers.ffn_rule, i=i)) if layers.ffn_rule else next(iter(ffns))
        if mixer_name not in mixers or ffn_name not in ffns:
            bad = mixer_name if mixer_name not in mixers else ffn_name
            known = ", ".join(sorted(mixers if mixer_name not in mixers else ffns))
            errors.add(values.prefix, f"Layer {i} has type {bad!r}, which {family.model_type} does not have ({known}).")
            raise _Stop
        _check_homogeneous(
            values, overrides_of.setdefault(mixer_name, values.layer_overrides(i)), i, mixer_name, errors
        )
        key = (mixer_name, ffn_name)
        if key not in kinds:
            mixer = resolved.setdefault("m:" + mixer_name, resolve(mixers[mixer_name], values, i=i))
            ffn = resolved.setdefault("f:" + ffn_name, resolve(ffns[ffn_name], values, i=i))
            hidden = int(values("hidden_size"))
            modules = [_layer_holder(mixer)]
            modules += mixer_modules(mixer)
            modules += ffn_modules(ffn)
            modules += norm_modules(norms)
            modules += written_modules(layers.extra, values)
            if per_layer is not None:
                modules += per_layer_modules(per_layer, hidden)
            experts = None
            if layers.experts_branch is not None and values.eval(layers.experts_when, i=i):
                experts = resolve(layers.experts_branch, values, i=i)
            dropout = (attn_dropout, resid_dropout)
            block = Block(mixer, ffn, norms, per_layer, layers.residual_scale, dropout, experts)
            name = mixer_name if len(ffns) == 1 else (ffn_name if len(mixers) == 1 else f"{mixer_name}+{ffn_name}")
            kinds[key] = len(built)
            built.append(LayerKind(name, tuple(modules), block))
        layout.append(kinds[key])
    stack = Stack(_join(text.prefix, text.layers_name), tuple(built), tuple(layout), "text")
    return stack, _dimensions(family, values, count, attn_dropout, resid_dropout)


def _check_override_indexes(values: Values, count: int, errors: ErrorCollector) -> None:
    if values.layer_key is None:
        return
    bad = sorted(i for i in (values(values.layer_key) or {}) if i >= count)
    if bad:
        field = values.field(values.keys[values.layer_key])
        errors.add(field, f"Layer indexes must be below num_hidden_layers ({count}), got {bad[:5]}.")
        raise _Stop


def _check_homogeneous(
    values: Values, first: Mapping[str, Any], i: int, mixer_name: str, errors: ErrorCollector
) -> None:
    """transformers builds one RoPE per layer type from that type's config, so it refuses a per_layer_config
    that gives layers of one type different values."""
    if values.layer_overrides(i) != first:
        field = values.field(values.keys[str(values.layer_key)])
        errors.add(field, f"Every {mixer_name} layer must get the same overrides (layer {i} differs).")
        raise _Stop


def _forward(family: Family, values: Values, stack: Stack) -> Forward:
    text = family.text
    mixers = [kind.block.mixer for kind in stack.kinds]
    windows = [m.window for m in mixers if isinstance(m, Attention) and m.sliding]
    window = min((num(w) for w in windows if w is not None), default=None) if windows else None
    if windows and window is None:
        window = 0  # a sliding layer of unknown window: assume the mask is always needed
    tables: dict[str, int] = {}
    for m in mixers:
        if isinstance(m, Attention) and m.rotary:
            width = int(num(m.head_dim) * float(m.rotary_fraction or 1.0))
            tables[m.rope_table] = max(tables.get(m.rope_table, 0), width)
        elif isinstance(m, Mla):
            tables["default"] = max(tables.get("default", 0), num(m.qk_rope_head_dim))
    if text.rope_always and not tables:  # computed for nothing, but checkpoints still hold it
        tables["default"] = max(num(m.head_dim) for m in mixers if isinstance(m, Attention))
    kinds = {bool(m.sliding) for m in mixers if isinstance(m, Attention) and not m.cross}
    shared_kv = 0
    if any(isinstance(m, Attention) and not m.has_kv for m in mixers):
        # Gemma 4: the last non-sharing layer of each attention kind stores its k and v for the sharing ones
        storing = {m.rope_table: m for m in mixers if isinstance(m, Attention) and m.has_kv}
        shared_kv = sum(2 * num(m.kv_heads) * num(m.head_dim) for m in storing.values())
    norm_kind = text.final_norm_kind or text.layers.norms.kind
    return Forward(
        final_norm=norm_kind if text.final_norm else "",
        head_softcap=bool(values.eval(text.head_softcap)),
        rope_dim=sum(tables.values()),
        learned_positions=not text.rotary,
        sliding_window=window,
        attention_types=len(kinds) or 1,
        embedding_copy=text.embedding_rescaled,
        embedding_scaled=text.embedding_scaled,
        chunked_mask=any(isinstance(m, Attention) and m.chunked for m in mixers),
        always_masked=any(isinstance(m, Attention) and m.always_masked for m in mixers),
        alibi_heads=max((num(m.heads) for m in mixers if isinstance(m, Attention) and m.alibi), default=0),
        rope_complex=text.rope_complex,
        rope_fp32=text.rope_fp32,
        rope_batched=text.rope_batched,
        shared_kv_features=shared_kv,
        per_layer_inputs=_per_layer_inputs(family, values, stack),
    )


def _per_layer_inputs(family: Family, values: Values, stack: Stack) -> tuple[str, int, int] | None:
    blocks = [kind.block for kind in stack.kinds if kind.block.per_layer_input is not None]
    if not blocks:
        return None
    size = num(blocks[0].per_layer_input.size)
    path = _join(family.text.prefix, blocks[0].per_layer_input.model_projection)
    return path, stack.num_layers * size, size


def _layer_holder(mixer: Any) -> Module:
    layer_params = getattr(mixer, "layer_params", ())
    if layer_params:
        return Module("", Kind.PARAMS, tuple(Param(p.name, tuple(num(d) for d in p.shape)) for p in layer_params))
    return _box("")


def _dimensions(family: Family, values: Values, count: int, attn_dropout: float, resid_dropout: float) -> Dimensions:
    declared = values.keys

    def optional(name: str, default: Any = 0) -> Any:
        return values(name) if name in declared else default

    heads = int(values("num_attention_heads"))
    hidden = int(values("hidden_size"))
    return Dimensions(
        hidden_size=hidden,
        intermediate_size=int(optional("intermediate_size", 0) or optional("moe_intermediate_size", 0) or 0),
        num_hidden_layers=count,
        num_attention_heads=heads,
        num_key_value_heads=int(optional("num_key_value_heads", heads) or heads),
        head_dim=int(optional("head_dim", 0) or hidden // heads),
        vocab_size=int(values("vocab_size")),
        tie_word_embeddings=bool(values.eval(family.text.tie)),
        num_local_experts=int(optional("num_experts", 0) or 0),
        num_experts_per_tok=int(optional("num_experts_per_tok", 0) or 0),
        max_position_embeddings=int(optional("max_position_embeddings", 0) or 0),
        attention_dropout=attn_dropout,
        residual_dropout=resid_dropout,
        embedding_dropout=float(values.eval(family.text.dropout_keys[2]) or 0.0),
    )


def _text_globals(text: Text, values: Values) -> list[Module]:
    prefix = text.prefix
    hidden = int(values("hidden_size"))
    vocab = int(values("vocab_size"))
    modules: list[Module] = []
    for i in range(1, prefix.count(".") + 2):
        modules.append(_box(".".join(prefix.split(".")[:i])))
    embedding = _join(prefix, text.embedding)
    count = int(values.eval(text.embedding_count))
    modules.append(Module(embedding, Kind.EMBEDDING, (Param("weight", (count, hidden)),), count, hidden))
    modules.append(_box(_join(prefix, text.layers_name)))
    if text.final_norm:
        kind = text.final_norm_kind or text.layers.norms.kind
        modules.append(_norm(_join(prefix, text.final_norm), hidden, "layer" if kind == "layer" else "rms"))
    if text.rotary:
        modules.append(_box(_join(prefix, text.rotary)))
    modules += written_modules(text.extra, values)
    modules.append(_linear(text.head, hidden, vocab, bool(values.eval(text.head_bias))))
    return modules


def _tower_stack(tower: Tower, values: Values) -> Stack:
    layer = written_modules(tower.layer, values)
    merged = _merge(layer)
    count = int(values.eval(tower.count))
    return Stack(tower.prefix, (LayerKind(tower.role, tuple(merged), None),), (0,) * count, tower.role)


def _merge(modules: list[Module]) -> list[Module]:
    """Entries written separately for one path (e.g. a conditional bias) become one module."""
    merged: dict[str, Module] = {}
    for m in modules:
        if m.path in merged:
            previous = merged[m.path]
            merged[m.path] = replace(previous, params=previous.params + m.params)
        else:
            merged[m.path] = m
    return list(merged.values())


def _components(arch: Architecture, family: Family) -> tuple[tuple[str, int], ...]:
    """Parameters per component (transformers' submodules), by path prefix; the head on its own."""
    totals: dict[str, int] = {name: 0 for name, _ in family.components}
    prefixes = sorted(((p, n) for n, p in family.components if p), key=lambda x: -len(x[0]))
    fallback = next((n for n, p in family.components if not p), "other")
    totals.setdefault(fallback, 0)
    for path, module in arch.modules():
        name = next((n for p, n in prefixes if path == p or path.startswith(p + ".")), fallback)
        totals[name] = totals.get(name, 0) + sum(p.numel for p in arch.own_params(module))
    return tuple((name, total) for name, total in totals.items() if total)
