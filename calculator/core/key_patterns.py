"""PEFT's rank/alpha pattern lookup, ``re.match(rf"(.*\\.)?({key})$", name)`` for each key in order, answered
with a few dictionary lookups per name instead of one automaton run per key.

Why: the bounds allow 256 rank and 256 alpha keys on a 1,024-layer model, and trying every key on every
adapted name ran the linear matcher 1.5 million times per count (about 15 s a request). Keys are almost always
module names: letters, digits, ``_``, ``-`` and ``.``, where the dot is the regex wildcard. Such a *plain* key
matches a name exactly when the name is ``m`` or ends with ``"." + m`` for an ``m`` of the key's length that
agrees with the key at every position where the key has no dot. So plain keys are grouped by length and dot
positions, and a name's dotted suffixes are looked up in each group by their characters at the other
positions; the first key (lowest index) wins, as PEFT's ``next(...)`` over the dict does. Keys with any other
syntax still run on the linear matcher (`regex.py`), in order, and only while they could come first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Generic, TypeVar

from .regex import LinearPattern

V = TypeVar("V")
PLAIN = re.compile(r"[A-Za-z0-9_\-.]+")

Projection = Callable[[str], tuple[str, ...]]


def _projection(positions: tuple[int, ...]) -> Projection:
    """The characters of a string at ``positions``, always as a tuple."""
    if not positions:  # a key of dots only: every name of its length
        return lambda _text: ()
    if len(positions) == 1:
        (only,) = positions
        return lambda text: (text[only],)
    getter = itemgetter(*positions)
    return lambda text: tuple(getter(text))


class KeyPatterns(Generic[V]):
    """First matching key's value for a module name, or None (then the config's default applies)."""

    def __init__(self, keys: Sequence[tuple[str, LinearPattern, V]]) -> None:
        self.values: list[V] = [value for _key, _pattern, value in keys]
        self.others: list[tuple[int, LinearPattern]] = []  # (index, compiled) of keys that are not plain
        grouped: dict[tuple[int, tuple[int, ...]], dict[tuple[str, ...], int]] = {}
        for index, (key, pattern, _value) in enumerate(keys):
            if PLAIN.fullmatch(key) is None:
                self.others.append((index, pattern))
                continue
            positions = tuple(j for j, char in enumerate(key) if char != ".")
            grouped.setdefault((len(key), positions), {}).setdefault(tuple(key[j] for j in positions), index)
        self.groups: dict[int, list[tuple[Projection, dict[tuple[str, ...], int]]]] = {}
        for (length, positions), table in grouped.items():
            self.groups.setdefault(length, []).append((_projection(positions), table))
        self.patterns = [pattern for _key, pattern, _value in keys]

    def lookup(self, name: str) -> V | None:
        if "\n" in name:  # a dot does not match a newline: let the matcher decide (module names have none)
            return next((self.values[i] for i, p in enumerate(self.patterns) if p.match(name)), None)
        best = len(self.values)
        if self.groups:
            for suffix in _dotted_suffixes(name):
                for project, table in self.groups.get(len(suffix), ()):
                    index = table.get(project(suffix))
                    if index is not None and index < best:
                        best = index
        for index, pattern in self.others:
            if index >= best:
                break
            if pattern.match(name):
                best = index
                break
        return self.values[best] if best < len(self.values) else None


def _dotted_suffixes(name: str) -> list[str]:
    """``name`` and what follows each of its dots: where ``(.*\\.)?`` lets a key's match begin."""
    suffixes = [name]
    start = name.find(".")
    while start >= 0:
        suffixes.append(name[start + 1 :])
        start = name.find(".", start + 1)
    return suffixes
