"""Which modules PEFT wraps: ``check_target_module_exists`` and the rank/alpha pattern lookup.

PEFT tests every full module name from ``model.named_modules()``: ``exclude_modules`` first, then the
``modules_to_save`` names (never adapted), then ``target_modules`` — a list by exact name or dotted
suffix (with ``layers_to_transform`` on the suffix branch), a string as a full-match regex,
``"all-linear"`` as every linear layer but the output head (``peft/tuners/tuners_utils.py``).
Rank and alpha patterns are keys tried in order with ``(.*\\.)?(key)$`` (``peft/utils/other.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from .architecture import LINEAR_KINDS, Architecture, Kind, Module
from .errors import ErrorCollector
from .lora_settings import ALL_LINEAR, LoraSettings


class _Excluded:
    """Marker: the module matched an exclusion (exclude_modules / modules_to_save)."""


EXCLUDED = _Excluded()


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class Matcher:
    """``check_target_module_exists`` for one config, plus the rank/alpha pattern lookups."""

    def __init__(self, arch: Architecture, lora: LoraSettings, errors: ErrorCollector) -> None:
        self.arch = arch
        self.lora = lora
        targets = lora.target_modules
        self.all_linear = isinstance(targets, str) and targets.lower() == ALL_LINEAR
        if targets is None and lora.target_parameters is None:
            targets = arch.default_target_modules
            if targets is None:
                errors.add(
                    "lora.target_modules",
                    f"PEFT has no default target modules for model_type {arch.model_type!r}; "
                    f"name them, e.g. {list(arch.lora_module_names)} or 'all-linear'.",
                )
                targets = ()
        if targets is None:  # only target_parameters: no module is wrapped
            targets = ()
        self.targets: tuple[str, ...] | str = targets
        self.regex: re.Pattern[str] | None = None
        if isinstance(targets, str) and not self.all_linear:
            self.regex = _checked_regex(targets, "lora.target_modules", errors)
        self.exclude_regex: re.Pattern[str] | None = None
        if isinstance(lora.exclude_modules, str):
            self.exclude_regex = _checked_regex(lora.exclude_modules, "lora.exclude_modules", errors)
        self.save_regexes = tuple(
            _checked_regex(rf"(^|.*\.){m}($|\..*)", "lora.modules_to_save", errors) for m in lora.modules_to_save or ()
        )
        self.rank_keys = tuple(
            (_checked_regex(rf"(.*\.)?({k})$", "lora.rank_pattern", errors), v) for k, v in lora.rank_pattern
        )
        self.alpha_keys = tuple(
            (_checked_regex(rf"(.*\.)?({k})$", "lora.alpha_pattern", errors), v) for k, v in lora.alpha_pattern
        )
        patterns = lora.layers_pattern
        self.layer_regexes: tuple[re.Pattern[str], ...]
        if not patterns:
            self.layer_regexes = (re.compile(r".*?\.[^.]*\.(\d+)\."),)
        else:
            names = (patterns,) if isinstance(patterns, str) else patterns
            self.layer_regexes = tuple(
                _checked_regex(rf".*?\.{p}\.(\d+)\.", "lora.layers_pattern", errors) for p in names
            )
        self.longest_name = max((len(t) for t in self._plain_strings()), default=0)

    def _plain_strings(self) -> Iterator[str]:
        if isinstance(self.targets, tuple):
            yield from self.targets
        if isinstance(self.lora.exclude_modules, tuple):
            yield from self.lora.exclude_modules

    def layer_invariant(self, relative_path: str) -> bool:
        """True when no rule can tell layer i's copy of this module from layer j's.

        A suffix rule ``key.endswith("." + t)`` only looks at the layer prefix when ``t`` is longer
        than the relative path; regexes and layer indexes always may.
        """
        if self.regex or self.exclude_regex or self.save_regexes or self.rank_keys or self.alpha_keys:
            return False
        if self.lora.layers_to_transform is not None:
            return False
        return self.longest_name <= len(relative_path)

    def matches_key(self, key: str) -> bool:
        """The name-only decision (regex targets), for keys that are parameters or vanished modules."""
        return self.matches(key, Module(key, Kind.CONTAINER)) is True

    def matches(self, key: str, module: Module) -> bool | _Excluded:
        lora = self.lora
        exclude = lora.exclude_modules
        if exclude:
            if self.exclude_regex is not None:
                if self.exclude_regex.fullmatch(key):
                    return EXCLUDED
            elif key in exclude or any(key.endswith(f".{e}") for e in exclude):
                return EXCLUDED
        if any(r.match(key) for r in self.save_regexes):
            return EXCLUDED
        if self.all_linear:
            return module.kind in LINEAR_KINDS and key != self.arch.output_head
        if self.regex is not None:
            return self.regex.fullmatch(key) is not None
        targets = self.targets
        assert isinstance(targets, tuple)
        if key in targets:
            return True
        found = any(key.endswith(f".{t}") for t in targets)
        layers = lora.layers_to_transform
        if found and layers is not None and (not isinstance(layers, tuple) or len(layers) > 0):
            index = self.layer_index(key)
            if index is None:
                return False
            return index == layers if isinstance(layers, int) else index in layers
        return found

    def layer_index(self, key: str) -> int | None:
        for regex in self.layer_regexes:
            match = regex.match(key)
            if match:
                return int(match.group(1))
        return None

    def rank_and_alpha(self, key: str) -> tuple[int, float]:
        r = next((v for regex, v in self.rank_keys if regex.match(key)), self.lora.r)
        alpha = next((v for regex, v in self.alpha_keys if regex.match(key)), self.lora.lora_alpha)
        return r, alpha


def _checked_regex(pattern: str, field: str, errors: ErrorCollector) -> re.Pattern[str]:
    try:
        compiled = _compile(pattern)
    except re.error as error:
        errors.add(field, f"Invalid regular expression {pattern!r}: {error}.")
        return _compile(r"(?!)")
    if _nested_repeat(pattern):
        # e.g. "(.*)*x": exponential backtracking on a module name would hang the server
        errors.add(field, f"Regular expression {pattern!r} repeats a repetition, which can take exponential time.")
        return _compile(r"(?!)")
    return compiled


@lru_cache(maxsize=512)
def _nested_repeat(pattern: str) -> bool:
    """True when a repeated group itself contains a repeat: the shape of catastrophic backtracking."""
    from re import _parser  # type: ignore[attr-defined]

    repeats = {_parser.MAX_REPEAT, _parser.MIN_REPEAT, getattr(_parser, "POSSESSIVE_REPEAT", None)}

    def unbounded(op: object, value: object) -> bool:
        return op in repeats and value[1] > 1  # type: ignore[index]

    def contains_repeat(items: object) -> bool:
        for op, value in items:  # type: ignore[attr-defined]
            if unbounded(op, value) or any(contains_repeat(sub) for sub in _subpatterns(value)):
                return True
        return False

    def nested(items: object) -> bool:
        for op, value in items:  # type: ignore[attr-defined]
            if unbounded(op, value) and contains_repeat(value[2]):
                return True
            if any(nested(sub) for sub in _subpatterns(value)):
                return True
        return False

    return nested(_parser.parse(pattern))


def _subpatterns(value: object) -> list[object]:
    """The nested sub-patterns of one parsed regex item (groups, branches, repeats)."""
    from re import _parser  # type: ignore[attr-defined]

    found: list[object] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _parser.SubPattern):
            found.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found
