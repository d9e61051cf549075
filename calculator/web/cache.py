"""Rendered calculator responses, cached per process behind one entry point: `cached`.

Results are pure functions of the inputs and the catalogs, so what a query renders to is kept by the
query and the catalogs' version (an admin edit changes the version, so stale entries are never served;
they age out). Bounded LRUs, one per kind of rendering.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from calculator import services

T = TypeVar("T")
SIZES = {"fragment": 1024, "page": 256}  # entries per kind


class _Lru:
    """Shared by a worker's threads (gunicorn gthread): every read and write holds the lock."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.data: OrderedDict[tuple[int, str], Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[int, str]) -> Any:
        with self.lock:
            value = self.data.get(key)
            if value is not None:
                self.data.move_to_end(key)
            return value

    def put(self, key: tuple[int, str], value: Any) -> None:
        with self.lock:
            self.data[key] = value
            while len(self.data) > self.maxsize:
                self.data.popitem(last=False)


_STORES = {kind: _Lru(size) for kind, size in SIZES.items()}


def cached(kind: str, key: str, render: Callable[[], T]) -> T:
    """What ``render()`` returns for ``key``, rendered once per catalog version."""
    store = _STORES[kind]
    full_key = (services.catalog_version(), key)
    value = store.get(full_key)
    if value is None:
        value = render()
        store.put(full_key, value)
    return value  # type: ignore[no-any-return]


def clear() -> None:
    """Forget everything rendered (tests start from a fresh server's state)."""
    for store in _STORES.values():
        store.data.clear()
