"""A family's config values: read from a config.json (nested dicts included) with transformers' defaults,
validated, and named errors for every bad key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import bounds
from ..errors import ErrorCollector
from ..expressions import ExpressionError, evaluate
from .spec import Key

GENERIC_MAXIMUM = 1 << 24
MAX_LIST_LENGTH = bounds.MAX_LAYERS

# Bounds by the key's (canonical) name; the first matching fragment wins.
_MAXIMA: tuple[tuple[str, int], ...] = (
    ("vocab", bounds.MAX_VOCAB_SIZE),
    ("position", bounds.MAX_POSITIONS),
    ("head_dim", bounds.MAX_HEAD_DIM),
    ("heads", bounds.MAX_HEADS),
    ("layers", bounds.MAX_LAYERS),
    ("experts", bounds.MAX_EXPERTS),
    ("intermediate", bounds.MAX_INTERMEDIATE_SIZE),
    ("ffn", bounds.MAX_INTERMEDIATE_SIZE),
    ("hidden", bounds.MAX_HIDDEN_SIZE),
)


def maximum_for(key: Key) -> int:
    if key.maximum is not None:
        return key.maximum
    return next((limit for fragment, limit in _MAXIMA if fragment in key.key), GENERIC_MAXIMUM)


class Values:
    """Resolves keys on demand (a default may be an expression of other keys), recording errors under
    ``{prefix}.{at}.{name}``. Unknown names are a programming error in a description."""

    def __init__(self, config: Mapping[str, Any], declared: tuple[Key, ...], prefix: str, errors: ErrorCollector):
        self.config = config
        self.keys = {k.key: k for k in declared}
        self.prefix = prefix
        self.errors = errors
        self._cache: dict[str, Any] = {}
        self._resolving: set[str] = set()
        self.read: set[tuple[str, str]] = set()  # (at, name) of every config entry consulted
        # transformers' per_layer_config (a sparse map of layer index to overridden attributes), if declared
        self.layer_key = next((k.key for k in declared if k.type == "overrides"), None)

    def field(self, key: Key) -> str:
        at = key.at
        if at.endswith("?"):
            at = at[:-1] if self.section(at) is not self.config else ""
        parts = [p for p in (self.prefix, at, key.config_name) if p]
        return ".".join(parts)

    def section(self, at: str) -> Mapping[str, Any]:
        """The nested dict a key lives in. ``"text_config?"``: that dict, or the root when the config has none
        (older composite configs, such as Qwen2.5-VL's, keep the text model's keys at the top level)."""
        if not at:
            return self.config
        optional = at.endswith("?")
        node: Any = self.config
        for part in at.rstrip("?").split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            return node
        return self.config if optional else {}

    def __call__(self, name: str) -> Any:
        if name in self._cache:
            return self._cache[name]
        key = self.keys.get(name)
        if key is None:
            raise ExpressionError(f"the description reads an undeclared key {name!r}")
        if name in self._resolving:
            raise ExpressionError(f"circular default for {name!r}")
        self._resolving.add(name)
        try:
            value = self._read(key)
        finally:
            self._resolving.discard(name)
        self._cache[name] = value
        return value

    def get(self, name: str) -> Any:
        return self(name)

    def eval(self, expression: Any, **extra: Any) -> Any:
        """The expression's value; with ``i`` (a layer index), names read that layer's config, as the model's
        layer ``i`` does (``per_layer_config`` overrides)."""
        if not extra:
            return evaluate(expression, self)
        layer = self.layer_overrides(extra["i"]) if "i" in extra else {}
        return evaluate(expression, lambda n: extra[n] if n in extra else layer[n] if n in layer else self(n))

    def layer_overrides(self, i: int) -> Mapping[str, Any]:
        """The keys layer ``i`` overrides (by our key names; only keys read per layer)."""
        if self.layer_key is None:
            return {}
        overrides: Mapping[int, Mapping[str, Any]] = self(self.layer_key) or {}
        return overrides.get(i, {})

    def _raw(self, key: Key) -> tuple[bool, Any]:
        section = self.section(key.at)
        at = key.at.rstrip("?") if section is not self.config else ""
        for name in (key.config_name, *key.aliases):
            self.read.add((at, name))
            if name in section and (section[name] is not None or key.nullable):
                return True, section[name]
        return False, None

    def _default(self, key: Key) -> Any:
        return self.eval(key.default)

    def _read(self, key: Key) -> Any:
        present, value = self._raw(key)
        if not present:
            return self._default(key)
        if value is None:  # an explicit null where null means "none"
            return None
        if key.type == "overrides":
            return self._overrides(key, value)
        checked = _check(key, value, maximum_for(key))
        if isinstance(checked, _Problem):
            self.errors.add(self.field(key), checked.message)
            return self._default(key) if key.default is not None else _fallback(key)
        return checked

    def _overrides(self, key: Key, value: Any) -> dict[int, dict[str, Any]]:
        """``per_layer_config``: ``{layer index: {attribute: value}}`` (indexes may be strings, "05"). An
        attribute the family does not read cannot change the count and is ignored; one the model reads from the
        whole config cannot vary per layer (transformers refuses to build such a model)."""
        field = self.field(key)
        if not isinstance(value, Mapping) or len(value) > MAX_LIST_LENGTH:
            self.errors.add(field, f"Expected a mapping of layer index to overridden attributes, got {_short(value)}.")
            return {}
        declared = {k.config_name: k for k in self.keys.values() if k.at == key.at and k.type != "overrides"}
        result: dict[int, dict[str, Any]] = {}
        for raw_index, overrides in value.items():
            where = f"{field}.{raw_index}"
            index = _layer_index(raw_index)
            if index is None:
                self.errors.add(where, f"Expected a layer index, got {_short(raw_index)}.")
                continue
            if not isinstance(overrides, Mapping):
                self.errors.add(where, f"Expected a mapping of attribute to value, got {_short(overrides)}.")
                continue
            layer: dict[str, Any] = {}
            for name, override in overrides.items():
                target = declared.get(name) if isinstance(name, str) else None
                if target is None:
                    continue
                if not target.per_layer:
                    self.errors.add(
                        f"{where}.{name}",
                        f"{name} cannot differ per layer: the model reads it from the whole config "
                        "(transformers refuses to build such a model).",
                    )
                    continue
                checked = _check(target, override, maximum_for(target))
                if isinstance(checked, _Problem):
                    self.errors.add(f"{where}.{name}", checked.message)
                    continue
                layer[target.key] = checked
            result[index] = layer
        return result


def _layer_index(raw: Any) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw if 0 <= raw < MAX_LIST_LENGTH else None
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 6:
        number = int(raw)
        return number if number < MAX_LIST_LENGTH else None
    return None


class _Problem:
    def __init__(self, message: str) -> None:
        self.message = message


def _fallback(key: Key) -> Any:
    return {"int": key.minimum, "bool": False, "prob": 0.0, "float": 0.0, "list": [], "str": ""}.get(key.type)


def _check(key: Key, value: Any, maximum: int) -> Any:
    if key.type == "int":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value != int(value)
        ):
            return _Problem(f"Expected an integer, got {_short(value)}.")
        number = int(value)
        if not key.minimum <= number <= maximum:
            return _Problem(f"Must be between {key.minimum} and {maximum:,}, got {number:,}.")
        return number
    if key.type == "bool":
        if not isinstance(value, bool):
            return _Problem(f"Expected true or false, got {_short(value)}.")
        return value
    if key.type in ("prob", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return _Problem(f"Expected a number, got {_short(value)}.")
        if key.type == "prob" and not 0 <= value < 1:
            return _Problem(f"Expected a probability in [0, 1), got {_short(value)}.")
        if abs(value) > 1e12:
            return _Problem(f"Out of range: {_short(value)}.")
        return float(value)
    if key.type == "list":
        if not isinstance(value, list) or len(value) > MAX_LIST_LENGTH:
            return _Problem(f"Expected a list of at most {MAX_LIST_LENGTH} items, got {_short(value)}.")
        if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
            return _Problem("Expected a list of layer indexes or layer type names.")
        return list(value)
    if key.type == "str":
        if not isinstance(value, str) or len(value) > 200:
            return _Problem(f"Expected a short string, got {_short(value)}.")
        return value
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
