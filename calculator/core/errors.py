"""Domain errors that name the offending input field.

Every layer above the core turns an `InputError` into its own error shape (a 400 with DRF's
`{"field": ["message"]}` in the API, a message under the field on the page), so the core only
has to say *which* field is wrong and *why*.
"""

from __future__ import annotations

from collections.abc import Mapping


class InputError(ValueError):
    """One or more invalid inputs, keyed by dotted field path (e.g. ``"lora.r"``)."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors: dict[str, list[str]] = {field: list(msgs) for field, msgs in errors.items()}
        super().__init__("; ".join(f"{f}: {' '.join(m)}" for f, m in self.errors.items()))

    @classmethod
    def single(cls, field: str, message: str) -> InputError:
        return cls({field: [message]})


class ErrorCollector:
    """Gathers every problem before raising, so a user sees all wrong fields at once."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def merge(self, error: InputError) -> None:
        for field, messages in error.errors.items():
            for message in messages:
                self.add(field, message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise InputError(self.errors)
