"""Which modules PEFT wraps: ``check_target_module_exists`` and the rank/alpha pattern lookup.

PEFT tests every full module name from ``model.named_modules()``: ``exclude_modules`` first, then the
``modules_to_save`` names (never adapted), then ``target_modules`` — a list by exact name or dotted
suffix (with ``layers_to_transform`` on the suffix branch), a string as a full-match regex,
``"all-linear"`` as every linear layer but the output head (``peft/tuners/tuners_utils.py``, peft 0.21.2).
Rank and alpha patterns are keys tried in order with ``(.*\\.)?(key)$`` (``peft/utils/other.py``).

Every user pattern runs on the linear-time matcher (`regex.py`). Layers of a stack are decided once per
group of layers that no rule can tell apart (`Matcher.layer_groups`), so a 1,024-layer model with a
thousand named targets costs about what a 32-layer one does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from .architecture import LINEAR_KINDS, Architecture, Kind, Module, Stack
from .errors import ErrorCollector
from .key_patterns import KeyPatterns
from .lora_settings import ALL_LINEAR, LoraSettings
from .regex import LinearPattern, UnsupportedPattern, compile_pattern

LITERAL_NAME = re.compile(r"[A-Za-z0-9_\-]+")  # no regex syntax: matches only itself
NEVER = compile_pattern(r"[^\s\S]")  # matches nothing: stands in for a pattern that was refused
DEFAULT_LAYER_INDEX = re.compile(r".*?\.[^.]*\.(?P<idx>\d+)\.")  # PEFT's, fixed: not user input


class _Excluded:
    """Marker: the module matched an exclusion (exclude_modules / modules_to_save)."""


EXCLUDED = _Excluded()


def dotted_suffixes(key: str) -> Iterator[str]:
    """``key`` and every ``key[i+1:]`` after a dot: what ``key == t or key.endswith("." + t)`` can match."""
    yield key
    start = key.find(".")
    while start >= 0:
        yield key[start + 1 :]
        start = key.find(".", start + 1)


class Matcher:
    """``check_target_module_exists`` for one config, plus the rank/alpha pattern lookups."""

    def __init__(self, arch: Architecture, lora: LoraSettings, errors: ErrorCollector) -> None:
        self.arch = arch
        self.lora = lora
        targets = lora.target_modules
        self.all_linear = isinstance(targets, str) and targets.lower() == ALL_LINEAR
        if targets is None:
            # PEFT's _prepare_adapter_config: the model type's defaults apply even beside target_parameters (an
            # MoE model PEFT converted already has an empty set here, so it gets none).
            targets = arch.default_target_modules
            if targets is None and not lora.target_parameters:
                errors.add(
                    "lora.target_modules",
                    f"PEFT has no default target modules for model_type {arch.model_type!r}; "
                    f"name them, e.g. {list(arch.lora_module_names)} or 'all-linear'.",
                )
            if targets is None:
                targets = ()
            self.all_linear = isinstance(targets, str) and targets.lower() == ALL_LINEAR
        self.targets: tuple[str, ...] | str = targets
        self.target_set = frozenset(targets) if isinstance(targets, tuple) else frozenset()
        self.regex: LinearPattern | None = None
        if isinstance(targets, str) and not self.all_linear:
            self.regex = _checked_regex(targets, "lora.target_modules", errors)
        exclude = lora.exclude_modules
        self.exclude_regex: LinearPattern | None = None
        self.exclude_set: frozenset[str] = frozenset()
        if isinstance(exclude, str):
            self.exclude_regex = _checked_regex(exclude, "lora.exclude_modules", errors)
        elif exclude:
            self.exclude_set = frozenset(exclude)
        # PEFT: re.match(rf"(^|.*\.){m}($|\..*)", key). A name without regex syntax matches exactly when it is one
        # of the key's dotted components: a set lookup instead of one automaton per name and key (1,024 allowed).
        saved = lora.modules_to_save or ()
        self.saved_components = frozenset(m for m in saved if LITERAL_NAME.fullmatch(m))
        self.save_regexes = tuple(
            _checked_regex(rf"(^|.*\.){m}($|\..*)", "lora.modules_to_save", errors)
            for m in saved
            if m not in self.saved_components
        )
        self.rank_keys = tuple(
            (_checked_regex(rf"(.*\.)?({k})$", "lora.rank_pattern", errors), v) for k, v in lora.rank_pattern
        )
        self.alpha_keys = tuple(
            (_checked_regex(rf"(.*\.)?({k})$", "lora.alpha_pattern", errors), v) for k, v in lora.alpha_pattern
        )
        self.rank_lookup = KeyPatterns(
            [(k, p, v) for (k, v), (p, _) in zip(lora.rank_pattern, self.rank_keys, strict=True)]
        )
        self.alpha_lookup = KeyPatterns(
            [(k, p, v) for (k, v), (p, _) in zip(lora.alpha_pattern, self.alpha_keys, strict=True)]
        )
        patterns = lora.layers_pattern
        names = (patterns,) if isinstance(patterns, str) else tuple(patterns or ())
        # PEFT: re.match(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.", key) for each layers_pattern
        self.layer_patterns = tuple(_checked_regex(rf"(?:{p})\.", "lora.layers_pattern", errors) for p in names)
        layers = lora.layers_to_transform
        self.uses_layer_indexes = layers is not None and (not isinstance(layers, tuple) or len(layers) > 0)
        # List entries that name a layer index can tell layer i from layer j; collect those indexes.
        plain = [*(targets if isinstance(targets, tuple) else ()), *self.exclude_set, *self.saved_components]
        self.named_layers = frozenset(int(part) for t in plain for part in t.split(".") if part.isdecimal())

    # --- deciding one module --------------------------------------------------------------------------

    def matches(self, key: str, module: Module) -> bool | _Excluded:
        if self.exclude_regex is not None:
            if self.exclude_regex.fullmatch(key):
                return EXCLUDED
        elif self.exclude_set and any(s in self.exclude_set for s in dotted_suffixes(key)):
            return EXCLUDED
        if not self.saved_components.isdisjoint(key.split(".")) or any(r.match(key) for r in self.save_regexes):
            return EXCLUDED
        if self.all_linear:
            return module.kind in LINEAR_KINDS and key != self.arch.output_head
        if self.regex is not None:
            return self.regex.fullmatch(key)
        found = any(s in self.target_set for s in dotted_suffixes(key))
        if found and self.uses_layer_indexes and key not in self.target_set:
            index = self.layer_index(key)
            layers = self.lora.layers_to_transform
            if index is None:
                return False
            return index == layers if isinstance(layers, int) else index in (layers or ())
        return found

    def whole_layer_match(self, stack: Stack) -> int | None:
        """A layer of ``stack`` whose own name (``model.layers.3``) a target rule matches, which PEFT refuses
        (a decoder layer cannot carry LoRA); None when there is none. Only layers a rule can name are tried:
        a list entry ending in that index, or a regex that fullmatches the name."""
        if self.all_linear:
            return None
        count = len(stack.layout)
        if self.regex is not None:
            common = f"{stack.prefix}."
            candidates: Iterable[int] = (i for i in range(count) if self.regex.fullmatch_parts(common, str(i)))
        else:
            named = {int(t.rsplit(".", 1)[-1]) for t in self.target_set if t.rsplit(".", 1)[-1].isdecimal()}
            candidates = sorted(i for i in named if i < count)
        layer = Module("", Kind.CONTAINER)
        return next((i for i in candidates if self.matches(stack.key(i, ""), layer) is True), None)

    def matches_key(self, key: str) -> bool:
        """The name-only decision (regex targets), for keys that are parameters or vanished modules."""
        return self.matches(key, Module(key, Kind.CONTAINER)) is True

    def layer_index(self, key: str) -> int | None:
        """The layer index PEFT reads from a module name for ``layers_to_transform``."""
        if not self.layer_patterns:
            match = DEFAULT_LAYER_INDEX.match(key)
            return int(match.group("idx")) if match else None
        for pattern in self.layer_patterns:
            index = _pattern_layer_index(pattern, key)
            if index is not None:
                return index
        return None

    def rank_and_alpha(self, key: str) -> tuple[int, float]:
        r = self.rank_lookup.lookup(key)
        alpha = self.alpha_lookup.lookup(key)
        return self.lora.r if r is None else r, self.lora.lora_alpha if alpha is None else alpha

    # --- deciding many layers at once -----------------------------------------------------------------

    def _patterns(self) -> list[LinearPattern]:
        found = [p for p in (self.regex, self.exclude_regex) if p is not None]
        found += self.save_regexes
        found += [p for _, p in self.rank_lookup.others]  # plain keys are told apart by their values instead
        found += [p for _, p in self.alpha_lookup.others]
        return found

    def layer_groups(self, stack: Stack, layers: Sequence[int], paths: Sequence[str]) -> list[tuple[int, list[int]]]:
        """``layers`` split into groups no rule can tell apart: (representative layer, members).

        A list rule (``key.endswith("." + t)``) only sees a layer's index when ``t`` names it; a pattern only
        through the automaton's state after reading ``"{prefix}.{i}."`` (and whether it already matched);
        ``layers_to_transform`` reads each layer's index, so it decides layer by layer. Plain rank/alpha keys
        (`key_patterns.py`) only ever give a module its rank and alpha: layers are told apart by the values
        their modules (``paths``, relative to the layer) get, a few dictionary lookups instead of one
        automaton signature per key and layer (256 + 256 keys on 1,024 layers).
        """
        if not layers:
            return []
        if self.uses_layer_indexes:
            return [(i, [i]) for i in layers]
        patterns = self._patterns()
        by_value = bool(self.rank_lookup.groups or self.alpha_lookup.groups)
        if not patterns and not self.named_layers and not by_value:
            return [(layers[0], list(layers))]
        groups: dict[object, tuple[int, list[int]]] = {}
        common = f"{stack.prefix}."
        for i in layers:
            if i in self.named_layers:  # a list entry names this layer: a group of its own, whatever the patterns
                groups[(i,)] = (i, [i])
                continue
            signature: tuple[object, ...] = (None,)
            for pattern in patterns:
                signature += pattern.prefix_signature(common, f"{i}.")
            if by_value:
                signature += tuple(self.rank_and_alpha(stack.key(i, path)) for path in paths)
            groups.setdefault(signature, (i, []))[1].append(i)
        return list(groups.values())


def _checked_regex(pattern: str, field: str, errors: ErrorCollector) -> LinearPattern:
    """Compile a user pattern for the linear-time matcher; a bad or unsupported one is a field error."""
    try:
        return compile_pattern(pattern)
    except re.error as error:
        errors.add(field, f"Invalid regular expression {pattern!r}: {error}.")
    except UnsupportedPattern as error:
        errors.add(field, f"Regular expression {pattern!r} cannot be used: {error}.")
    return NEVER


def _pattern_layer_index(pattern: LinearPattern, key: str) -> int | None:
    r"""``re.match(rf"(?:^|.*?\.){p}\.(?P<idx>\d+)\.", key)``'s index without backtracking: the digits
    component preceded by a match of ``p`` that starts earliest (the lazy ``.*?``); among equal starts, the
    first such component. ``pattern`` is ``(?:p)\.`` compiled for the linear matcher."""
    parts = key.split(".")
    offsets = [0]
    for part in parts[:-1]:
        offsets.append(offsets[-1] + len(part) + 1)
    candidates = [j for j in range(1, len(parts) - 1) if parts[j].isdecimal()]
    for start in offsets:
        for j in candidates:
            if offsets[j] > start and pattern.fullmatch(key[start : offsets[j]]):
                return int(parts[j])
    return None
