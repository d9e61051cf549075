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

from .architecture import LINEAR_KINDS, Architecture, Kind, Module
from .errors import ErrorCollector
from .lora_settings import ALL_LINEAR, LoraSettings
from .regex import LinearPattern, UnsupportedPattern, compile_pattern


class _Excluded:
    """Marker: the module matched an exclusion (exclude_modules / modules_to_save)."""


EXCLUDED = _Excluded()


NEVER = compile_pattern(r"[^\s\S]")  # matches nothing: stands in for a pattern that was refused
DEFAULT_LAYER_INDEX = re.compile(r".*?\.[^.]*\.(?P<idx>\d+)\.")  # PEFT's, fixed: not user input


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
        self.regex: LinearPattern | None = None
        if isinstance(targets, str) and not self.all_linear:
            self.regex = _checked_regex(targets, "lora.target_modules", errors)
        self.exclude_regex: LinearPattern | None = None
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
        names = (patterns,) if isinstance(patterns, str) else tuple(patterns or ())
        # PEFT: re.match(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.", key) for each layers_pattern
        self.layer_patterns = tuple(_checked_regex(rf"(?:{p})\.", "lora.layers_pattern", errors) for p in names)
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
            return self.regex.fullmatch(key)
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
        r = next((v for regex, v in self.rank_keys if regex.match(key)), self.lora.r)
        alpha = next((v for regex, v in self.alpha_keys if regex.match(key)), self.lora.lora_alpha)
        return r, alpha


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
    candidates = [j for j in range(1, len(parts) - 1) if parts[j].isascii() and parts[j].isdigit()]
    for start in offsets:
        for j in candidates:
            if offsets[j] > start and pattern.fullmatch(key[start : offsets[j]]):
                return int(parts[j])
    return None
