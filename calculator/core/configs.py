"""Reading a Hugging Face ``config.json`` with the defaults of its model type, naming bad fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ErrorCollector


class ConfigReader:
    """Typed access to a config mapping; every problem is recorded under ``prefix.key``."""

    def __init__(self, config: Mapping[str, Any], prefix: str, errors: ErrorCollector) -> None:
        self.config = config
        self.prefix = prefix
        self.errors = errors

    def field(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def raw(self, *keys: str) -> tuple[str, Any]:
        """The first of ``keys`` present with a non-null value (aliases such as n_embd/hidden_size)."""
        for key in keys:
            value = self.config.get(key)
            if value is not None:
                return key, value
        return keys[0], None

    def integer(self, *keys: str, default: int | None, maximum: int, minimum: int = 1) -> int:
        key, value = self.raw(*keys)
        if value is None:
            if default is None:
                self.errors.add(self.field(key), "This field is required.")
                return minimum
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            self.errors.add(self.field(key), f"Expected an integer, got {value!r}.")
            return default if default is not None else minimum
        number = int(value)
        if not minimum <= number <= maximum:
            self.errors.add(self.field(key), f"Must be between {minimum} and {maximum:,}, got {number:,}.")
            return default if default is not None else minimum
        return number

    def optional_integer(self, *keys: str, maximum: int) -> int | None:
        _, value = self.raw(*keys)
        if value is None:
            return None
        return self.integer(*keys, default=None, maximum=maximum)

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self.config.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.errors.add(self.field(key), f"Expected true or false, got {value!r}.")
            return default
        return value

    def probability(self, *keys: str, default: float) -> float:
        """A dropout probability in [0, 1)."""
        key, value = self.raw(*keys)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            self.errors.add(self.field(key), f"Expected a probability in [0, 1), got {value!r}.")
            return default
        return float(value)
