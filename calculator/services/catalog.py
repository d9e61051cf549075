"""The preset and GPU catalogs as the faces read them: a per-process snapshot of the database, re-read at
most every ``CATALOG_TTL_SECONDS`` (admin edits show up within that), so a recompute costs no query. When
the database is down, the last snapshot (or the seed files the data migrations load) keeps computing."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections

from calculator.core import DEFAULT_GPUS, Architecture, Gpu, InputError, architecture_from_config

CATALOG_TTL_SECONDS = 10.0
DEFAULT_GPU_HINT = "4090"  # "does it fit on a 24 GB card?" is the first question people ask


@dataclass(frozen=True)
class PresetEntry:
    slug: str
    name: str
    family: str
    published_params: int
    source_url: str
    config: dict[str, Any]
    architecture: Architecture
    published_params_exact: bool = True  # False: the model card rounds it ("4B")
    transformers_params: int | None = None  # as the catalog measured it; None: equals the published count
    params_note: str = ""  # why the two differ
    notes: str = ""
    hf_repo: str = ""  # the Hugging Face repository (org/name) recipes load

    @property
    def base_params(self) -> int:
        """What the calculator counts: the model transformers builds from the config."""
        return self.architecture.base_params

    @property
    def counts_differ(self) -> bool:
        """Whether the published figure is not the count transformers builds (both are shown, with why)."""
        return self.published_params != self.base_params


class _Catalog:
    """Per-process snapshot of the published presets and active GPUs.

    Computing never waits on the database: once a snapshot exists, an expired one is re-read by a
    background thread while requests go on with it (``CATALOG_REFRESH_IN_BACKGROUND``; tests read it
    in line). Only the first read of a process, and a read after `invalidate_catalog`, are in line.
    """

    def __init__(self) -> None:
        self.loaded_at = -1e9
        self.presets: dict[str, PresetEntry] = {}
        self.gpus: tuple[Gpu, ...] = DEFAULT_GPUS
        self.version = 0  # changes when the catalog's content does: part of every response cache key
        self.must_read = True  # in line: nothing read yet, or invalidated
        self._reader: threading.Thread | None = None
        self._reader_lock = threading.Lock()

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.loaded_at < CATALOG_TTL_SECONDS:
            return
        if not (force or self.must_read) and settings.CATALOG_REFRESH_IN_BACKGROUND:
            self._read_in_background(now)
            return
        self._read(now)

    def _read_in_background(self, now: float) -> None:
        with self._reader_lock:
            if self._reader is not None and self._reader.is_alive():
                return
            self.loaded_at = now  # the next requests keep the snapshot rather than start readers of their own
            self._reader = threading.Thread(target=self._read_and_close, args=(now,), daemon=True)
            self._reader.start()

    def _read_and_close(self, now: float) -> None:
        try:
            self._read(now)
        finally:
            connections.close_all()  # this thread's own connection

    def _read(self, now: float) -> None:
        from calculator.models import GpuModel, ModelPreset

        try:
            presets = {}
            for p in ModelPreset.objects.published():
                try:
                    arch = p.to_spec()
                except InputError:
                    continue  # an invalid admin edit must not break the calculator
                presets[p.slug] = PresetEntry(
                    p.slug,
                    p.name,
                    p.family,
                    p.published_params,
                    p.source_url,
                    p.config,
                    arch,
                    p.published_params_exact,
                    p.transformers_params,
                    p.params_note,
                    p.notes,
                    p.hf_repo,
                )
            gpus = tuple(g.to_spec() for g in GpuModel.objects.filter(is_active=True))
        except DatabaseError:
            # Computing keeps working while the database is down: keep the last snapshot, or start from
            # the seed catalog the data migration loads.
            if not self.presets:
                self.presets = _seed_presets()
            self.loaded_at, self.must_read = now - CATALOG_TTL_SECONDS + 1.0, False
            return
        self.presets, self.gpus, self.loaded_at, self.must_read = presets, gpus or DEFAULT_GPUS, now, False
        self.version = hash((tuple(_entry_key(e) for e in presets.values()), self.gpus))


def _entry_key(entry: PresetEntry) -> tuple[object, ...]:
    """What the pages show of a preset: a change to any of it must change the catalog's version."""
    return (
        entry.slug,
        repr(entry.architecture),
        entry.name,
        entry.family,
        entry.published_params,
        entry.published_params_exact,
        entry.params_note,
        entry.source_url,
        entry.hf_repo,
    )


def _seed_presets() -> dict[str, PresetEntry]:
    from calculator.models import PRESETS_2026_FILE, PRESETS_FILE

    entries: dict[str, PresetEntry] = {}
    for path in (PRESETS_FILE, PRESETS_2026_FILE):
        for item in json.loads(path.read_text()):
            known = entries.get(item["slug"])
            if known is not None:  # as the data migration does: the 2024 row stays, its count fields filled
                entries[item["slug"]] = replace(
                    known, transformers_params=item.get("transformers_params"), params_note=item.get("params_note", "")
                )
                continue
            entries[item["slug"]] = PresetEntry(
                item["slug"],
                item["name"],
                item["family"],
                item["published_params"],
                item.get("source_url", ""),
                item["config"],
                architecture_from_config(item["config"], field="config"),
                item.get("published_params_exact", True),
                item.get("transformers_params"),
                item.get("params_note", ""),
                item.get("notes", ""),
                item.get("hf_repo", ""),
            )
    return entries


_catalog = _Catalog()


def invalidate_catalog() -> None:
    """Re-read the catalogs on the next call, in line (after an admin edit; tests)."""
    _catalog.loaded_at = -1e9
    _catalog.must_read = True


def catalog_version() -> int:
    """Changes whenever the catalogs' content does: results cached under it stay true."""
    _catalog.refresh()
    return _catalog.version


def presets() -> tuple[PresetEntry, ...]:
    """The published presets, in catalog order."""
    _catalog.refresh()
    return tuple(_catalog.presets.values())


def find_preset(slug: str) -> PresetEntry | None:
    _catalog.refresh()
    return _catalog.presets.get(slug)


def gpus() -> tuple[Gpu, ...]:
    """The active GPU catalog, smallest first as the admin orders it."""
    _catalog.refresh()
    return _catalog.gpus


def default_gpu() -> Gpu:
    catalog = gpus()
    return next((g for g in catalog if DEFAULT_GPU_HINT in g.name), catalog[len(catalog) // 2])
