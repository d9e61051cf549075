"""LoRA trainable parameters, counted exactly as PEFT's ``get_nb_trainable_parameters()`` does.

PEFT walks ``model.named_modules()`` and, for each module name, decides whether to wrap it
(``check_target_module_exists`` in ``peft/tuners/tuners_utils.py``); the wrapped module gets
``lora_A`` (in -> r) and ``lora_B`` (r -> out), so r·(in + out) new parameters, plus DoRA's magnitude
vector (out) and ``lora_B``'s bias (out) when asked. We replay those decisions on the module
inventory, layer by layer only when a rule can tell layers apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from .architecture import LINEAR_KINDS, LORA_MODULE_KINDS, Architecture, Kind, Module, Param
from .errors import ErrorCollector, InputError
from .lora_settings import LoraSettings, scaling, validate_settings
from .moe_conversion import convert_moe_targets
from .regex import UnsupportedPattern, compile_pattern
from .targeting import Matcher, dotted_suffixes

__all__ = ["LoraCount", "LoraSettings", "count_lora", "scaling"]


@dataclass(frozen=True, slots=True)
class AdaptedModule:
    """One row of the per-module table: modules of one name, shape and rank."""

    name: str
    kind: Kind
    in_features: int
    out_features: int
    layers: int
    r: int
    alpha: float
    params_per_layer: int
    num_experts: int = 1

    @property
    def params(self) -> int:
        return self.layers * self.params_per_layer


ADAPTER = "adapter"  # new LoRA/DoRA tensors: stored in the adapter dtype (fp32 by default)
BIAS = "bias"  # base biases made trainable (bias="all"/"lora_only"): already part of the base weights
COPY = "copy"  # modules_to_save: a deep copy of the base module, in the base (compute) dtype


@dataclass(frozen=True, slots=True)
class TensorGroup:
    """``count`` trainable tensors of one shape: what optimizers and safetensors see."""

    shape: tuple[int, ...]
    count: int
    origin: str = ADAPTER

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def params(self) -> int:
        return self.numel * self.count


@dataclass(frozen=True, slots=True)
class LoraCount:
    base_params: int
    trainable_params: int
    all_params: int
    lora_params: int  # lora_A + lora_B (+ lora_B bias) + DoRA magnitudes
    bias_params: int  # base biases made trainable by bias="all"/"lora_only"
    modules_to_save_params: int  # full trainable copies
    modules: tuple[AdaptedModule, ...]
    tensors: tuple[TensorGroup, ...]  # every trainable tensor (shapes), for optimizer/file bytes
    saved_modules: tuple[str, ...]  # names of modules_to_save copies
    adapted_keys: tuple[tuple[str, Module, int], ...]  # (full module name, module, r) of every wrapped module
    # Per decoder-layer module: (relative path, layer index or None for every layer, r); for the activations.
    layer_adapters: tuple[tuple[str, int | None, int], ...]
    global_adapters: tuple[tuple[str, int], ...]  # (path, r) of adapted modules outside the layers
    parameter_keys: tuple[tuple[str, tuple[int, ...], int], ...]  # target_parameters: (name, shape, r)
    bias_keys: tuple[tuple[str, tuple[int, ...]], ...]  # base biases made trainable
    copy_keys: tuple[tuple[str, tuple[int, ...]], ...]  # modules_to_save copies' parameters
    use_dora: bool = False
    lora_bias: bool = False
    lora_dropout: float = 0.0
    # Remembered on first use: the engine's caches (FLOP forms, activation plans) are keyed by counts, and a new
    # rank makes a new count on every request. The hash reads the summary fields only (equality still compares
    # every field): hashing every adapted module's key and description cost more than the lookups it served.
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __hash__(self) -> int:
        if not self._hash:
            summary = (self.all_params, self.trainable_params, self.modules, self.tensors, self.layer_adapters)
            object.__setattr__(self, "_hash", hash(summary) or 1)
        return self._hash

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable_params / self.all_params if self.all_params else 0.0

    @property
    def percent_of_base(self) -> float:
        """Trainable parameters against the base model's ("% of base model")."""
        return 100.0 * self.trainable_params / self.base_params if self.base_params else 0.0

    def percent_of_trainable(self, params: int) -> float:
        """One row's share of all trainable parameters (the per-module table)."""
        return 100.0 * params / self.trainable_params if self.trainable_params else 0.0


def adapter_params(module: Module, r: int, lora: LoraSettings) -> tuple[int, list[tuple[int, ...]]]:
    """New parameters (and their tensor shapes) when PEFT wraps ``module`` with rank ``r``."""
    if module.kind is Kind.EMBEDDING:
        # lora_embedding_A: (r, num_embeddings), lora_embedding_B: (embedding_dim, r)
        shapes: list[tuple[int, ...]] = [(r, module.in_features), (module.out_features, r)]
        if lora.use_dora:
            shapes.append((module.out_features,))
    elif module.kind is Kind.CONV:
        # peft/tuners/lora/layer.py _ConvNd: lora_A = Conv(in, r, kernel) with groups=1, lora_B = Conv(r, out,
        # 1x..x1, groups=base.groups); the rank must be a multiple of the groups.
        kernel = module.kernel
        ones = (1,) * len(kernel)
        shapes = [(r, module.in_features, *kernel), (module.out_features, r // module.groups, *ones)]
        if lora.lora_bias:
            shapes.append((module.out_features,))
        if lora.use_dora:
            shapes.append((module.out_features,))
    else:
        shapes = [(r, module.in_features), (module.out_features, r)]
        if lora.lora_bias:
            shapes.append((module.out_features,))
        if lora.use_dora:
            shapes.append((module.out_features,))
    return sum(math.prod(s) for s in shapes), shapes


@dataclass(frozen=True, slots=True)
class Wrapped:
    """Modules PEFT wraps with one rank: one global module, or one module in a group of layers."""

    module: Module
    keys: tuple[str, ...]  # full names of every wrapped copy
    r: int
    alpha: float
    stack: int | None = None  # index of the stack, None outside the layers
    layers: tuple[int, ...] = ()  # the layers of the stack it is wrapped in


def count_lora(arch: Architecture, lora: LoraSettings) -> LoraCount:
    """Trainable and total parameters after ``get_peft_model(model, LoraConfig(...))``."""
    lora = effective_settings(arch, lora)
    if lora.rank_pattern:
        wrapped, parameters = _select(arch, lora)
    else:
        wrapped, parameters = _at_rank(_uniform_selection(arch, lora), lora.r)
    return _assemble(arch, lora, wrapped, parameters)


Selection = tuple[list["Wrapped"], list[tuple[str, Module, Param, int, float]]]
MAX_SELECTIONS = 256
_selections: dict[tuple[Architecture, LoraSettings], Selection] = {}


def _select(arch: Architecture, lora: LoraSettings) -> Selection:
    """What PEFT wraps and which parameters it adapts; raises `InputError` for what it refuses."""
    errors = ErrorCollector()
    matcher = Matcher(arch, lora, errors)
    errors.raise_if_any()
    wrapped, unsupported = select_modules(arch, matcher)
    parameters = select_parameters(arch, lora, matcher)
    _check_selection(arch, lora, matcher, wrapped, parameters, unsupported, errors)
    errors.raise_if_any()
    return wrapped, parameters


def _uniform_selection(arch: Architecture, lora: LoraSettings) -> Selection:
    """The selection for every rank at once: without a rank_pattern every adapted module has rank ``r`` and
    nothing PEFT checks depends on ``r`` but a grouped convolution's divisibility, so a new rank only changes
    the ranks (a structure is matched once, not once per rank people try)."""
    key = (arch, replace(lora, r=1))
    cached = _selections.get(key)
    if cached is not None:
        return cached
    selection = _select(arch, lora)
    if any(item.module.kind is Kind.CONV and item.module.groups > 1 for item in selection[0]):
        return selection  # another rank may not divide the groups: select again for each rank
    if len(_selections) >= MAX_SELECTIONS:
        _selections.clear()
    _selections[key] = selection
    return selection


def _at_rank(selection: Selection, r: int) -> Selection:
    wrapped, parameters = selection
    if all(item.r == r for item in wrapped) and all(p[3] == r for p in parameters):
        return selection
    return (
        [replace(item, r=r) for item in wrapped],
        [(key, module, param, r, alpha) for key, module, param, _, alpha in parameters],
    )


def effective_settings(arch: Architecture, lora: LoraSettings) -> LoraSettings:
    """The LoraConfig as PEFT applies it: validated, with MoE expert names rewritten where PEFT does."""
    errors = ErrorCollector()
    validate_settings(lora, errors)
    errors.raise_if_any()
    if arch.moe_conversion:
        probe = Matcher(arch, lora, ErrorCollector()) if isinstance(lora.target_modules, str) else None
        converted = convert_moe_targets(arch, lora, lambda key: probe is not None and probe.matches_key(key))
        if converted.target_modules == () and not converted.target_parameters:
            raise InputError.single(
                "lora.target_modules",
                f"No target modules or parameters for {arch.model_type!r}: in transformers 5 its experts are "
                "fused parameters; name them (e.g. ['q_proj', 'v_proj', 'w1', 'w2', 'w3']) or use 'all-linear'.",
            )
        lora = converted
    if lora.ensure_weight_tying and arch.tied:
        lora = _tie_embedding_targets(arch, lora)
    errors.raise_if_any()
    return lora


EMBEDDING_LAYER_NAMES = ("embed_tokens", "lm_head")  # peft/utils/constants.py


def _tie_embedding_targets(arch: Architecture, lora: LoraSettings) -> LoraSettings:
    """``ensure_weight_tying=True`` on a model whose output head is its input embedding (PEFT's
    ``_check_tied_modules``): a tied layer in ``modules_to_save`` becomes one copy of the embedding that the
    head shares; a tied layer among list targets adapts the embedding, and the head gets its own tied LoRA
    (separate parameters); a regex target is widened to the embedding and the head likewise."""
    embedding, head = arch.input_embedding, arch.output_head
    saved = list(lora.modules_to_save or ())
    if any(m.split(".")[-1] in EMBEDDING_LAYER_NAMES for m in saved):
        kept = [m for m in saved if not _names_module(m, head)]
        if embedding not in kept:
            kept.append(embedding)
        return replace(lora, modules_to_save=tuple(kept))
    targets = lora.target_modules
    if isinstance(targets, str):
        if targets.lower() == "all-linear" or not any(_full_match(targets, n) for n in EMBEDDING_LAYER_NAMES):
            return lora
        widened = rf"(?:{targets}|^{_escape(embedding)}$|^{_escape(head)}$)"
        return replace(lora, target_modules=widened)
    if targets and any(t.split(".")[-1] in EMBEDDING_LAYER_NAMES for t in targets):
        return replace(lora, target_modules=(*targets, embedding, head))
    return lora


def _names_module(name: str, key: str) -> bool:
    r"""PEFT's ``re.match(rf"(^|.*\.){name}($|\..*)", key)``, on the linear-time matcher."""
    try:
        return compile_pattern(rf"(^|.*\.){name}($|\..*)").match(key)
    except (re.error, UnsupportedPattern):
        return False


def _full_match(pattern: str, text: str) -> bool:
    try:
        return compile_pattern(pattern).fullmatch(text)
    except (re.error, UnsupportedPattern):
        return False


def _escape(name: str) -> str:
    return re.escape(name)


def select_modules(arch: Architecture, matcher: Matcher) -> tuple[list[Wrapped], set[str]]:
    """Every module PEFT wraps (layers grouped where no rule tells them apart), and matched modules that
    cannot carry LoRA."""
    wrapped: list[Wrapped] = []
    unsupported: set[str] = set()
    conv_ranks: set[str] = set()

    def consider(
        key: str,
        module: Module,
        keys: tuple[str, ...],
        stack: int | None,
        layers: tuple[int, ...],
        paths: frozenset[str] = frozenset(),
    ) -> None:
        if matcher.matches(key, module) is not True:
            return
        if module.kind not in LORA_MODULE_KINDS:
            inner = f"{module.path}.linear"
            # Gemma 4's towers wrap each projection in Gemma4ClippableLinear: PEFT adapts only the inner linear
            what = (
                f"a wrapper around {inner!r}: target that, or leave the towers out with a regex"
                if inner in paths
                else str(module.kind)
            )
            unsupported.add(f"{module.path or key} ({what})")
            return
        r, alpha = matcher.rank_and_alpha(key)
        if module.kind is Kind.CONV and r % module.groups:
            conv_ranks.add(f"{module.path or key} has {module.groups} groups, r={r}")
            return
        wrapped.append(Wrapped(module, keys, r, alpha, stack, layers))

    global_paths = frozenset(m.path for m in arch.global_modules)
    for module in arch.global_modules:
        consider(module.path, module, (module.path,), None, (), global_paths)
    for stack_index, stack in enumerate(arch.stacks):
        for kind_index, kind in enumerate(stack.kinds):
            layers = stack.layers_of(kind_index)
            groups = matcher.layer_groups(stack, layers, [m.path for m in kind.modules if m.path])
            paths = frozenset(m.path for m in kind.modules)
            for module in kind.modules:
                if not module.path:
                    continue
                for representative, members in groups:
                    keys = tuple(stack.key(i, module.path) for i in members)
                    key = stack.key(representative, module.path)
                    consider(key, module, keys, stack_index, tuple(members), paths)
    for stack in arch.stacks:  # a name that ends a layer's own key ("0", "layers.3") matches the whole layer
        hit = matcher.whole_layer_match(stack)
        if hit is not None:
            unsupported.add(f"{stack.key(hit, '')} (a whole layer)")
    if conv_ranks:
        unsupported.add(
            "convolutions need a rank that is a multiple of their channel groups (PEFT): "
            + "; ".join(sorted(conv_ranks))
        )
    return wrapped, unsupported


def select_parameters(
    arch: Architecture, lora: LoraSettings, matcher: Matcher
) -> list[tuple[str, Module, Param, int, float]]:
    """``target_parameters``: ``f"{module}.{param}"`` equal to, or ending with "." + a target."""
    targets = frozenset(lora.target_parameters or ())
    if not targets:
        return []
    found: list[tuple[str, Module, Param, int, float]] = []
    for module_key, module in arch.modules():  # global ones too (a vision tower's position table)
        for param in module.params:
            if module.kind in LINEAR_KINDS and param.name == "bias":
                continue
            key = f"{module_key}.{param.name}"
            if any(s in targets for s in dotted_suffixes(key)):
                if len(param.shape) not in (2, 3):
                    raise InputError.single(
                        "lora.target_parameters",
                        f"{key} is {len(param.shape)}-dimensional; PEFT's ParamWrapper adapts only 2-D and "
                        "3-D parameters.",
                    )
                r, alpha = matcher.rank_and_alpha(key)
                found.append((key, module, param, r, alpha))
    return found


def _check_selection(
    arch: Architecture,
    lora: LoraSettings,
    matcher: Matcher,
    wrapped: list[Wrapped],
    parameters: list[tuple[str, Module, Param, int, float]],
    unsupported: set[str],
    errors: ErrorCollector,
) -> None:
    if parameters:
        # PEFT's ParamWrapper (LoRA on a bare parameter) supports none of these; it refuses them when it wraps
        # one, so target_parameters that find nothing (an MoE config whose layers are all dense) pass.
        for field, active in (("use_dora", lora.use_dora), ("lora_bias", lora.lora_bias)):
            if active:
                errors.add(f"lora.{field}", f"{field}=True does not work on target parameters (MoE experts, router).")
        if lora.lora_dropout > 0:
            errors.add("lora.lora_dropout", "lora_dropout must be 0 when target parameters (MoE experts) are adapted.")
    if unsupported:
        errors.add(
            "lora.target_modules",
            "Only linear, convolution and embedding layers can carry LoRA (PEFT); these matched modules cannot: "
            + ", ".join(sorted(unsupported)[:8])
            + ".",
        )
    inside = _saved_in_parameter_wrappers(arch, lora.modules_to_save or (), parameters)
    if inside:
        errors.add(
            "lora.modules_to_save",
            "modules_to_save cannot copy a module whose parameters carry LoRA through target_parameters, nor one "
            f"inside it (PEFT refuses a ParamWrapper and its children): {', '.join(inside[:4])}.",
        )
    names = lora.modules_to_save or ()
    adapted = {key for item in wrapped for key in item.keys} if names or lora.trainable_token_indices else set()
    ends = _NameEnds(names)
    clashing = sorted(key for key in adapted if ends(key)) if names else []
    if clashing:
        errors.add(
            "lora.modules_to_save",
            f"modules_to_save names modules that also carry LoRA ({', '.join(clashing[:4])}): PEFT matches "
            "modules_to_save by the end of the name ('proj' ends 'q_proj') and refuses to copy a LoRA layer.",
        )
    tied_copy = lora.ensure_weight_tying and arch.tied and arch.input_embedding in (lora.modules_to_save or ())
    if tied_copy and arch.output_head in adapted:
        errors.add(
            "lora.modules_to_save",
            f"With ensure_weight_tying the tied {arch.output_head} shares the saved embedding's copy, so it cannot "
            "also carry LoRA (PEFT refuses it): drop it from target_modules.",
        )
    if lora.trainable_token_indices:
        both = sorted({path for path, _, _ in trainable_tokens(arch, lora) if path in adapted})
        if both:
            errors.add(
                "lora.trainable_token_indices",
                f"{', '.join(both)} carries LoRA (targeted, or tied to a targeted head with ensure_weight_tying): "
                "PEFT cannot add trainable tokens to a LoRA embedding.",
            )
    lists = _saved_module_lists(arch, lora.modules_to_save or ())
    if lists:
        errors.add(
            "lora.modules_to_save",
            f"modules_to_save cannot copy a list of layers (PEFT refuses a ModuleList): {', '.join(lists)}; "
            "name the modules inside the layers instead.",
        )
    if not wrapped and not parameters and not unsupported and not lists:  # else those say what went wrong
        what = lora.target_parameters if lora.target_modules is None else matcher.targets
        field = (
            "lora.target_parameters"
            if lora.target_modules is None and lora.target_parameters
            else "lora.target_modules"
        )
        errors.add(
            field,
            f"Target modules {what!r} not found in the base model ({arch.model_type}: "
            f"{', '.join(arch.lora_module_names)}).",
        )


def _assemble(
    arch: Architecture,
    lora: LoraSettings,
    wrapped: list[Wrapped],
    parameters: list[tuple[str, Module, Param, int, float]],
) -> LoraCount:
    rows: dict[tuple[str, int, int, int, float, int], tuple[Kind, int, int]] = {}  # -> kind, per layer, layers
    tensors: dict[tuple[tuple[int, ...], str], int] = {}

    def add_tensor(shape: tuple[int, ...], times: int, origin: str = ADAPTER) -> None:
        tensors[(shape, origin)] = tensors.get((shape, origin), 0) + times

    def add_row(key: tuple[str, int, int, int, float, int], kind: Kind, per_layer: int, times: int) -> None:
        previous = rows.get(key)
        rows[key] = (kind, per_layer, times + (previous[2] if previous else 0))

    bias_params = 0
    adapted_keys: list[tuple[str, Module, int]] = []
    layer_adapters: list[tuple[str, int | None, int]] = []
    global_adapters: list[tuple[str, int]] = []
    bias_keys: list[tuple[str, tuple[int, ...]]] = []
    for item in wrapped:
        module, times = item.module, len(item.keys)
        adapted_keys.extend((k, module, item.r) for k in item.keys)
        if item.stack is None:
            global_adapters.append((module.path, item.r))
        elif item.stack == 0:
            every = len(item.layers) == arch.text.layout.count(arch.text.layout[item.layers[0]])
            if every and len(set(arch.text.layout)) == 1:
                layer_adapters.append((module.path, None, item.r))
            else:
                layer_adapters.extend((module.path, i, item.r) for i in item.layers)
        params, shapes = adapter_params(module, item.r, lora)
        add_row(
            (module.name, module.in_features, module.out_features, item.r, item.alpha, 1), module.kind, params, times
        )
        for shape in shapes:
            add_tensor(shape, times)
        if lora.bias == "lora_only" and module.has_bias:
            bias_params += times * module.out_features
            add_tensor((module.out_features,), times, BIAS)
            bias_keys.extend((f"{k}.base_layer.bias", (module.out_features,)) for k in item.keys)

    parameter_keys: list[tuple[str, tuple[int, ...], int]] = []
    for key, module, param, r, alpha in parameters:
        experts, a, b = parameter_in_out(param.shape)
        factors: list[tuple[int, ...]] = [(r * experts, a), (b, r * experts)]
        if lora.lora_bias:
            factors.append((b,))
        parameter_keys.append((key, param.shape, r))
        row = (f"{module.name}.{param.name}", a, b, r, alpha, experts)
        add_row(row, module.kind, sum(math.prod(s) for s in factors), 1)
        for shape in factors:
            add_tensor(shape, 1)

    saved = _modules_to_save(arch, lora)
    if lora.bias == "all":
        bias_params = 0
        bias_keys = []
        wrapped_keys = {key for key, _, _ in adapted_keys}
        # modules_to_save freezes the original module after bias="all" marked it: its copy trains instead
        copied = [key for _, keys in saved for key in keys]
        for name, shape in _base_biases(arch):
            if any(name.startswith(f"{key}.") for key in copied):
                continue
            bias_params += math.prod(shape)
            add_tensor(shape, 1, BIAS)
            module_key = name.rsplit(".", 1)[0]
            # PEFT saves an adapted module's own bias under its base_layer
            bias_keys.append((f"{module_key}.base_layer.bias" if module_key in wrapped_keys else name, shape))

    saved_params = 0
    copy_keys: list[tuple[str, tuple[int, ...]]] = []
    for module, keys in saved:
        saved_params += module.numel * len(keys)
        for param in module.params:
            add_tensor(param.shape, len(keys), COPY)
        for key in keys:
            copy_keys.extend((f"{key}.{p.name}", p.shape) for p in module.params)

    # A saved container holding adapted modules: PEFT injects LoRA first, so the copy carries (trainable) LoRA
    # weights and the frozen original keeps its own: one more, frozen, set of them in ``all``. Likewise a
    # matching module nested in a saved one gets a frozen copy of its own.
    frozen_params = 0
    if saved:
        frozen_params += _nested_copy_params(arch, lora.modules_to_save or (), saved)
    if saved and (wrapped or parameter_keys):
        containers = {key for _, keys in saved for key in keys}
        frozen_params += sum(
            adapter_params(module, r, lora)[0] for key, module, r in adapted_keys if _under(key, containers)
        )
        for key, shape, r in parameter_keys:
            if _under(key, containers):
                experts, a, b = parameter_in_out(shape)
                frozen_params += r * experts * (a + b) + (b if lora.lora_bias else 0)

    token_params = 0
    for path, dim, indices in trainable_tokens(arch, lora):
        token_params += len(indices) * dim
        add_tensor((len(indices), dim), 1, COPY)
        copy_keys.append((f"{path}.token_adapter.trainable_tokens_delta", (len(indices), dim)))

    modules = tuple(
        AdaptedModule(
            name=name,
            kind=kind,
            in_features=fin,
            out_features=fout,
            layers=count,
            r=r,
            alpha=alpha,
            params_per_layer=per_layer,
            num_experts=experts,
        )
        for (name, fin, fout, r, alpha, experts), (kind, per_layer, count) in rows.items()
    )
    lora_params = sum(m.params for m in modules)
    base = arch.base_params
    return LoraCount(
        base_params=base,
        trainable_params=lora_params + bias_params + saved_params + token_params,
        all_params=base + lora_params + saved_params + token_params + frozen_params,
        lora_params=lora_params,
        bias_params=bias_params,
        modules_to_save_params=saved_params + token_params,
        modules=modules,
        tensors=tuple(TensorGroup(shape, count, origin) for (shape, origin), count in tensors.items()),
        saved_modules=tuple(m.path for m, _ in saved),
        adapted_keys=tuple(adapted_keys),
        layer_adapters=tuple(layer_adapters),
        global_adapters=tuple(global_adapters),
        parameter_keys=tuple(parameter_keys),
        bias_keys=tuple(bias_keys),
        copy_keys=tuple(copy_keys),
        use_dora=lora.use_dora,
        lora_bias=lora.lora_bias,
        lora_dropout=lora.lora_dropout,
    )


def parameter_in_out(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(experts, in, out) of a target parameter as PEFT's ParamWrapper reads it: a 2-D weight is
    (out, in); a 3-D expert tensor (experts, d1, d2) has in = d2 and out = d1 (lora.ParamWrapper)."""
    if len(shape) == 3:
        return shape[0], shape[2], shape[1]
    return 1, shape[1], shape[0]


def trainable_tokens(arch: Architecture, lora: LoraSettings) -> list[tuple[str, int, tuple[int, ...]]]:
    """``trainable_token_indices`` (PEFT's ``set_additional_trainable_modules``): (module path, row width,
    indices) of every TrainableTokensWrapper with its own delta. A list targets the input embedding; layer
    names match by suffix. When the head is tied to the embedding, a tied layer named with the same indices
    shares the embedding's delta (counted once), and the embedding's wrapper is tied to the head likewise."""
    given = lora.trainable_token_indices
    if not given:
        return []
    pairs: tuple[tuple[str, tuple[int, ...]], ...]
    if isinstance(given[0], int):
        pairs = ((arch.input_embedding.rsplit(".", 1)[-1], tuple(i for i in given if isinstance(i, int))),)
    else:
        pairs = tuple(p for p in given if isinstance(p, tuple))
    given_names = [n for n, _ in pairs]
    saved = lora.modules_to_save or ()
    errors = ErrorCollector()
    # PEFT compares the names as given; a plain list stands for the embedding's full path, which
    # modules_to_save's short names never equal, so then both apply (a full copy and the token rows).
    for name in given_names if isinstance(given[0], tuple) else (arch.input_embedding,):
        if name in saved:
            errors.add("lora.trainable_token_indices", f"{name!r} is already trained fully (modules_to_save).")
    tied = bool(arch.tied)
    head, embedding = arch.output_head, arch.input_embedding
    tied_names = [n for n, _ in pairs if embedding.endswith(n) or head.endswith(n) or n in head.split(".")]
    skip: set[str] = set()
    if tied and len(pairs) > 1 and len(tied_names) >= 2:
        first = dict(pairs)[tied_names[0]]
        mismatch = any(dict(pairs)[n] != first for n in tied_names[1:])
        if mismatch and lora.ensure_weight_tying:
            errors.add("lora.trainable_token_indices", "Tied layers need the same token indices to stay tied.")
        if not mismatch:
            skip = {n for n in tied_names if head.endswith(n) or n in head.split(".")}
    errors.raise_if_any()
    found: list[tuple[str, int, tuple[int, ...]]] = []
    for name, indices in pairs:
        if name in skip:
            continue
        matched = [(p, m) for p, m in arch.modules() if p.endswith(name) and m.kind in (Kind.EMBEDDING, Kind.LINEAR)]
        if not matched:
            raise InputError.single("lora.trainable_token_indices", f"Layer {name!r} not found in the base model.")
        for path, module in matched:
            width = module.out_features if module.kind is Kind.EMBEDDING else module.in_features
            found.append((path, width, indices))
    return found


def _base_biases(arch: Architecture) -> Iterator[tuple[str, tuple[int, ...]]]:
    """bias="all": PEFT 0.21 makes every parameter named ``bias`` trainable (``n == "bias" or
    n.endswith(".bias")``), so ``dt_bias`` or gpt-oss's ``gate_up_proj_bias`` stay frozen."""
    for path, module in arch.modules():
        for param in arch.own_params(module):
            if param.name == "bias":
                yield f"{path}.{param.name}", param.shape


def _saved_in_parameter_wrappers(
    arch: Architecture, names: tuple[str, ...], parameters: list[tuple[str, Module, Param, int, float]]
) -> list[str]:
    """Modules ``modules_to_save`` names that are, or sit inside, a module whose parameter ``target_parameters``
    adapts: PEFT has wrapped it in a ParamWrapper first and refuses to wrap it or its children again."""
    if not names or not parameters:
        return []
    holders = {key.rsplit(".", 1)[0] for key, *_ in parameters}
    ends = _NameEnds(names)
    return [key for key, _module in arch.modules() if ends(key) and _under(key, holders, itself=True)]


def _saved_module_lists(arch: Architecture, names: tuple[str, ...]) -> list[str]:
    """Stacks of layers (``nn.ModuleList``) that ``modules_to_save`` would wrap (``key.endswith(name)``, the
    outermost match first): PEFT's ModulesToSaveWrapper raises a TypeError for a ModuleList."""
    ends = _NameEnds(names)
    found = []
    for stack in arch.stacks:
        parts = stack.prefix.split(".")
        if ends(stack.prefix) and not any(ends(".".join(parts[:i])) for i in range(1, len(parts))):
            found.append(stack.prefix)
    return found


def _modules_to_save(arch: Architecture, lora: LoraSettings) -> list[tuple[Module, tuple[str, ...]]]:
    """Modules PEFT wraps in ``ModulesToSaveWrapper`` (``key.endswith(name)``, outermost match), each with the
    full names of its copies; a wrapped container copies its children's parameters."""
    names = lora.modules_to_save
    if not names:
        return []
    ends = _NameEnds(names)
    found: list[tuple[Module, tuple[str, ...]]] = []
    wrapped: list[str] = []
    for module in arch.global_modules:
        if ends(module.path) and not _inside(module.path, wrapped):
            found.append((_global_subtree(arch, module), (module.path,)))
            wrapped.append(module.path)
    for stack in arch.stacks:
        if _inside(stack.prefix, wrapped):
            continue  # copied whole with a saved container around the stack (``["model"]``)
        for kind_index, kind in enumerate(stack.kinds):
            layers = stack.layers_of(kind_index)
            layer_wrapped: dict[int, list[str]] = {}
            for module in kind.modules:
                hits = tuple(
                    stack.key(i, module.path)
                    for i in layers
                    if ends(stack.key(i, module.path)) and not _inside(module.path, layer_wrapped.setdefault(i, []))
                )
                if not hits:
                    continue
                for key in hits if module.path else ():
                    layer_wrapped[int(key.removeprefix(stack.prefix + ".").split(".")[0])].append(module.path)
                found.append((_with_subtree(kind.modules, module), hits))
    return [(m, keys) for m, keys in found if m.numel]


def _global_subtree(arch: Architecture, container_module: Module) -> Module:
    """A saved global container copies its children, the stacks of layers under it included (``["model"]``
    copies the whole text model)."""
    outside = _with_subtree(arch.global_modules, container_module)
    prefix = f"{container_module.path}."
    layers = tuple(
        p
        for stack in arch.stacks
        if stack.prefix.startswith(prefix)
        for kind_index in stack.layout
        for m in stack.kinds[kind_index].modules
        for p in m.params
    )
    return Module(container_module.path, container_module.kind, outside.params + layers) if layers else outside


def _nested_copy_params(arch: Architecture, names: tuple[str, ...], saved: list[tuple[Module, tuple[str, ...]]]) -> int:
    """Modules inside a saved container whose names match too (Lfm2's ``conv.conv`` under ``["conv"]``): PEFT
    reaches them through the container's wrapper, which hands attribute access to the original module, and wraps
    them there as well: one more, frozen, copy each, counted in ``all`` only."""
    copied = {key for _, keys in saved for key in keys}
    ends = _NameEnds(names)

    def nested(key: str) -> bool:
        return key not in copied and ends(key) and _under(key, copied)

    total = sum(_global_subtree(arch, m).numel for m in arch.global_modules if nested(m.path))
    for stack in arch.stacks:
        for kind_index, kind in enumerate(stack.kinds):
            for module in kind.modules:
                if module.path:
                    hits = sum(nested(stack.key(i, module.path)) for i in stack.layers_of(kind_index))
                    total += hits * _with_subtree(kind.modules, module).numel if hits else 0
    return total


class _NameEnds:
    """``key.endswith(n)`` for any of many names (how PEFT matches ``modules_to_save``), by looking the key's
    suffixes up in a set: time in the key's length, not in the number of names (the bounds allow 1,024)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = frozenset(names)
        self.lengths = sorted({len(n) for n in self.names})

    def __call__(self, key: str) -> bool:
        end = len(key)
        return any(key[end - length :] in self.names for length in self.lengths if length <= end)


def _under(key: str, containers: set[str] | frozenset[str], *, itself: bool = False) -> bool:
    """Whether ``key`` lies inside one of ``containers`` (dotted ancestors; ``itself``: or is one)."""
    parts = key.split(".")
    return any(".".join(parts[:i]) in containers for i in range(1, len(parts) + itself))


def _inside(path: str, wrapped: list[str]) -> bool:
    return any(path.startswith(f"{w}.") for w in wrapped)


def _with_subtree(modules: tuple[Module, ...], container_module: Module) -> Module:
    """A wrapped container copies all of its children's parameters."""
    prefix = f"{container_module.path}." if container_module.path else ""
    params = tuple(p for m in modules if m.path.startswith(prefix) or m is container_module for p in m.params)
    return Module(container_module.path, container_module.kind, params)
