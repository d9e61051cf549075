"""The one path from a validated request to the core: resolve the model, then `core.estimate`.

The preset and GPU catalogs are read from the database at most every few seconds per process
(admin edits show up within ``CATALOG_TTL_SECONDS``), so a recompute costs no query.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, IntegrityError, transaction

from calculator.core import (
    DEFAULT_GPUS,
    Architecture,
    Estimate,
    Gpu,
    InputError,
    architecture_from_config,
    architecture_from_dimensions,
    estimate,
)
from calculator.schemas import EstimateRequest, ModelChoice, SaveRequest

if TYPE_CHECKING:
    from calculator.models import SavedConfiguration

CATALOG_TTL_SECONDS = 10.0


@dataclass(frozen=True)
class PresetEntry:
    slug: str
    name: str
    family: str
    published_params: int
    source_url: str
    config: dict[str, Any]
    architecture: Architecture


class _Catalog:
    """Per-process snapshot of the published presets and active GPUs."""

    def __init__(self) -> None:
        self.loaded_at = -1e9
        self.presets: dict[str, PresetEntry] = {}
        self.gpus: tuple[Gpu, ...] = DEFAULT_GPUS
        self.version = 0  # changes when the catalog's content does: part of every response cache key

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.loaded_at < CATALOG_TTL_SECONDS:
            return
        from calculator.models import GpuModel, ModelPreset

        try:
            presets = {}
            for p in ModelPreset.objects.published():
                try:
                    arch = p.to_spec()
                except InputError:
                    continue  # an invalid admin edit must not break the calculator
                presets[p.slug] = PresetEntry(
                    p.slug, p.name, p.family, p.published_params, p.source_url, p.config, arch
                )
            gpus = tuple(Gpu(g.name, g.memory_bytes) for g in GpuModel.objects.filter(is_active=True))
        except DatabaseError:
            # Computing keeps working while the database is down: keep the last snapshot, or start from
            # the seed catalog the data migration loads.
            if not self.presets:
                self.presets = _seed_presets()
            self.loaded_at = now - CATALOG_TTL_SECONDS + 1.0
            return
        self.presets, self.gpus, self.loaded_at = presets, gpus or DEFAULT_GPUS, now
        self.version = hash((tuple((e.slug, repr(e.architecture), e.name) for e in presets.values()), self.gpus))


def _seed_presets() -> dict[str, PresetEntry]:
    from calculator.models import PRESETS_FILE

    entries = {}
    for item in json.loads(PRESETS_FILE.read_text()):
        entries[item["slug"]] = PresetEntry(
            item["slug"],
            item["name"],
            item["family"],
            item["published_params"],
            item.get("source_url", ""),
            item["config"],
            architecture_from_config(item["config"], field="config"),
        )
    return entries


catalog = _Catalog()


def invalidate_catalog() -> None:
    catalog.loaded_at = -1e9


def resolve_model(choice: ModelChoice) -> tuple[Architecture, str]:
    if choice.preset is not None:
        catalog.refresh()
        entry = catalog.presets.get(choice.preset)
        if entry is None:
            raise InputError.single("model.preset", f"Unknown preset {choice.preset!r}.")
        return entry.architecture, entry.name
    if choice.hf_config is not None:
        arch = architecture_from_config(choice.hf_config)
        name = choice.hf_config.get("_name_or_path") or choice.hf_config.get("name_or_path") or ""
        return arch, str(name) if isinstance(name, str) else ""
    assert choice.custom is not None
    return architecture_from_dimensions(choice.custom.model_dump(exclude_none=True)), "Custom model"


def estimate_json(body: bytes) -> bytes:
    """The API's response body for a raw request body. Results are pure functions of the inputs and
    the catalog, so identical requests are answered from a per-process cache; errors are not cached."""
    catalog.refresh()
    return _estimate_json(body, catalog.version)


@lru_cache(maxsize=1024)
def _estimate_json(body: bytes, catalog_version: int) -> bytes:
    from calculator.representation import estimate_dict

    request = EstimateRequest.model_validate_json(body)
    return json.dumps(estimate_dict(run_estimate(request)), separators=(",", ":")).encode()


def run_estimate(request: EstimateRequest) -> Estimate:
    """Raises `InputError` (field-named) for anything the core rejects."""
    arch, name = resolve_model(request.model)
    catalog.refresh()
    return estimate(arch, request.lora.to_core(), request.training.to_core(), catalog.gpus, name)


def save_configuration(request: SaveRequest, owner: Any) -> SavedConfiguration:
    """Validate by computing once, then store the inputs and the architecture they resolve to."""
    from calculator.models import SavedConfiguration, new_slug

    run_estimate(request)  # rejects what cannot be computed before anything is stored
    snapshot = _model_snapshot(request.model)
    inputs = request.model_dump(mode="json", include={"model", "lora", "training"}, exclude_none=False)
    # Slugs are random; on the (astronomically rare) collision the unique index refuses and we retry.
    for _ in range(5):
        try:
            with transaction.atomic():
                return SavedConfiguration.objects.create(
                    slug=new_slug(),
                    name=request.name,
                    note=request.note,
                    owner=owner,
                    inputs=inputs,
                    model_snapshot=snapshot,
                )
        except IntegrityError:
            continue
    raise IntegrityError("could not allocate a unique slug")


def _model_snapshot(choice: ModelChoice) -> dict[str, Any]:
    if choice.preset is not None:
        catalog.refresh()
        return dict(catalog.presets[choice.preset].config)
    if choice.hf_config is not None:
        return dict(choice.hf_config)
    assert choice.custom is not None
    arch = architecture_from_dimensions(choice.custom.model_dump(exclude_none=True))
    snapshot = choice.custom.model_dump(exclude_none=True)
    snapshot["model_type"] = arch.model_type
    return snapshot


def saved_estimate(configuration: SavedConfiguration) -> Estimate:
    request = EstimateRequest.model_validate(configuration.request_data())
    arch = architecture_from_config(configuration.model_snapshot, field="model")
    catalog.refresh()
    name = configuration.inputs.get("model", {}).get("preset") or ""
    entry = catalog.presets.get(name)
    return estimate(
        arch, request.lora.to_core(), request.training.to_core(), catalog.gpus, entry.name if entry else name
    )


def configuration_dict(
    configuration: SavedConfiguration, request: Any, *, with_estimate: bool = True
) -> dict[str, Any]:
    from calculator.representation import estimate_dict

    data: dict[str, Any] = {
        "slug": configuration.slug,
        "url": request.build_absolute_uri(configuration.get_absolute_url()),
        "name": configuration.name,
        "note": configuration.note,
        "created": configuration.created.isoformat(),
        "owner": configuration.owner.get_username() if configuration.owner else None,
        **{key: configuration.inputs.get(key) for key in ("model", "lora", "training")},
    }
    if with_estimate:
        try:
            data["estimate"] = estimate_dict(saved_estimate(configuration))
        except InputError as error:
            data["estimate"] = None
            data["error"] = error.errors
    return data
