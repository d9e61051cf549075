"""What may be stored: only what every database reads back as it was written, within a size cap.

A saved configuration is read again by every page that lists or opens it, so a value that one backend
cannot hold (PostgreSQL refuses NUL in text and JSON; a lone UTF-16 surrogate cannot be encoded as
UTF-8 and breaks every later read on SQLite), JSON nested deeper than any config.json is, or a body that
would fill the database is refused before anything is written, as a 400 naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.conf import settings

from calculator.core import InputError

if TYPE_CHECKING:
    from calculator.schemas import SaveRequest

MAX_DEPTH = 32  # config.json nests a few levels (text_config.rope_scaling...); nothing real nears this
MAX_KEY_SHOWN = 60


def check_save_request(request: SaveRequest, *, anonymous: bool) -> None:
    """`check_storable` for a save, with the anonymous or the signed-in size cap (settings)."""
    model = request.model
    values = {
        "name": request.name,
        "note": request.note,
        # The pasted config as it arrived: dumping it first would already fail on what is checked here.
        "model": {
            "preset": model.preset,
            "hf_config": model.hf_config,
            "custom": model.custom.model_dump() if model.custom else None,
        },
        "lora": request.lora.model_dump(),
        "training": request.training.model_dump(),
    }
    check_storable(values, max_bytes=settings.ANON_SAVE_MAX_BYTES if anonymous else settings.MAX_SAVE_BYTES)


def check_storable(values: dict[str, Any], *, max_bytes: int) -> None:
    """Raise `InputError` naming each field that cannot be stored as it is, or the largest part when the
    whole is over ``max_bytes`` once serialised."""
    errors: dict[str, list[str]] = {}
    for path, problem in _problems(values):
        errors.setdefault(path, []).append(problem)
    if errors:
        raise InputError(errors)
    sizes = {path: len(json.dumps(value, separators=(",", ":"))) for path, value in _parts(values)}
    if sum(sizes.values()) > max_bytes:
        largest = max(sizes, key=sizes.__getitem__)
        raise InputError.single(
            largest,
            f"Too large to save: {sum(sizes.values()):,} bytes of JSON, at most {max_bytes:,} "
            "(sign in to save larger configurations; keep only the config.json keys that matter).",
        )


def _parts(values: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The top-level fields, with the model choice's parts separate (the pasted config is the big one)."""
    for key, value in values.items():
        if key == "model" and isinstance(value, dict):
            yield from ((f"model.{k}", v) for k, v in value.items())
        else:
            yield key, value


def _problems(values: Any) -> Iterator[tuple[str, str]]:
    """(field path, problem) for every string that cannot be stored and every level past MAX_DEPTH;
    iterative, so a hostile depth cannot exhaust the stack."""
    stack: list[tuple[str, Any, int]] = [(key, value, 1) for key, value in reversed(values.items())]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            yield path, f"Nested more than {MAX_DEPTH} levels deep; a config.json never is."
            continue
        if isinstance(value, str):
            yield from ((path, problem) for problem in _string_problems(value))
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                child = f"{path}.{_shown(str(key))}"
                yield from ((child, f"Key: {problem}") for problem in _string_problems(str(key)))
                stack.append((child, item, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}", item, depth + 1) for i, item in reversed(list(enumerate(value))))


def _shown(key: str) -> str:
    """A key as an error path may show it: printable as UTF-8, and short."""
    safe = key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return safe if len(safe) <= MAX_KEY_SHOWN else safe[: MAX_KEY_SHOWN - 1] + "…"


def _string_problems(text: str) -> Iterator[str]:
    if "\x00" in text:
        yield "Contains a NUL character (\\u0000), which cannot be stored."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        yield "Contains a lone UTF-16 surrogate (e.g. \\udc00), which is not text and cannot be stored."
