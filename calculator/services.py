"""The one door from a face (the pages, the API, the admin) into the core.

Plain keyword-only functions that take and return domain values (validated requests, core
dataclasses, model instances), never HTTP requests, responses or JSON: each face owns its own output
shape. Nothing here is a formula; it resolves the model, reads the catalogs and calls the core.

The preset and GPU catalogs are read from the database at most every few seconds per process
(admin edits show up within ``CATALOG_TTL_SECONDS``), so a recompute costs no query.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, IntegrityError, transaction
from pydantic import ValidationError

from calculator.core import (
    DEFAULT_GPUS,
    Architecture,
    Estimate,
    Gpu,
    GpuFit,
    InputError,
    MemoryEstimate,
    architecture_from_config,
    architecture_from_dimensions,
)
from calculator.core import estimate as core_estimate
from calculator.core.advice import Advice, advise
from calculator.core.config_keys import (
    config_key,
    dimension_of,
    dimension_values,
    dimensions_from_config,
    dimensions_read,
    relevant_config,
)
from calculator.core.explain import LearnNumbers, learn_numbers
from calculator.core.families import CUSTOM_FIELDS as DIMENSION_FIELDS
from calculator.core.gpus import fits, smallest_fitting
from calculator.core.insights import QUANTIZED_4BIT as FOUR_BIT
from calculator.core.insights import (
    AdapterFileSizes,
    ComparisonNotes,
    LayerGroup,
    adapter_file_sizes,
    comparison_notes,
    expert_params,
    has_default_targets,
    layer_groups,
    layers_out_of_range,
    oversized_ranks,
    parameter_reduction,
)
from calculator.core.lora import AdaptedModule
from calculator.core.optimizers import OPTIMIZERS as OPTIMIZER_NAMES
from calculator.core.serving import ServingEstimate, serving_estimate
from calculator.schemas import EstimateRequest, ModelChoice, PageOptions, SaveRequest, pydantic_errors

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from calculator.models import SavedConfiguration

__all__ = [  # what the faces may use; the core's types come along for annotations
    "CATALOG_TTL_SECONDS",
    "DIMENSION_FIELDS",
    "FOUR_BIT",
    "OPTIMIZER_NAMES",
    "AdaptedModule",
    "AdapterFileSizes",
    "Advice",
    "Architecture",
    "CalculatorResults",
    "ComparisonNotes",
    "Estimate",
    "Gpu",
    "GpuFit",
    "InputError",
    "LayerGroup",
    "LearnNumbers",
    "LearnResults",
    "MemoryEstimate",
    "PresetEntry",
    "ServingEstimate",
    "calculator_results",
    "catalog_version",
    "compute_estimate",
    "config_key",
    "configuration_estimate",
    "default_gpu",
    "dimension_of",
    "dimension_values",
    "dimensions_from_config",
    "dimensions_read",
    "expert_params",
    "find_preset",
    "gpus",
    "has_default_targets",
    "invalidate_catalog",
    "layer_groups",
    "learn",
    "presets",
    "relevant_config",
    "resolve_model",
    "save_configuration",
    "saved_model_name",
    "smallest_fitting",
]

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

    @property
    def base_params(self) -> int:
        """What the calculator counts: the model transformers builds from the config."""
        return self.architecture.base_params

    @property
    def counts_differ(self) -> bool:
        """Whether the published figure is not the count transformers builds (both are shown, with why)."""
        return self.published_params != self.base_params


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
            )
    return entries


_catalog = _Catalog()


def invalidate_catalog() -> None:
    """Re-read the catalogs on the next call (after an admin edit; tests)."""
    _catalog.loaded_at = -1e9


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


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    architecture: Architecture
    name: str


def resolve_model(*, choice: ModelChoice) -> ResolvedModel:
    """A preset, a pasted config.json or custom dimensions -> the architecture and what it is called."""
    if choice.preset is not None:
        entry = find_preset(choice.preset)
        if entry is None:
            raise InputError.single("model.preset", f"Unknown preset {choice.preset!r}.")
        return ResolvedModel(entry.architecture, entry.name)
    if choice.hf_config is not None:
        name = choice.hf_config.get("_name_or_path") or choice.hf_config.get("name_or_path") or ""
        return ResolvedModel(architecture_from_config(choice.hf_config), name if isinstance(name, str) else "")
    assert choice.custom is not None
    custom = choice.custom.model_dump(exclude_none=True)
    return ResolvedModel(architecture_from_dimensions(custom), "Custom model")


def compute_estimate(*, request: EstimateRequest, name: str | None = None) -> Estimate:
    """Every number for a validated request; raises `InputError` (field-named) for what the core rejects."""
    model = resolve_model(choice=request.model)
    lora = request.lora.to_core()
    out_of_range = layers_out_of_range(model.architecture, lora)
    if out_of_range is not None:
        raise out_of_range
    return core_estimate(
        model.architecture, lora, request.training.to_core(), gpus(), model.name if name is None else name
    )


@dataclass(frozen=True, slots=True)
class CalculatorResults:
    """Everything the calculator's results panel shows, for one configuration and one chosen GPU."""

    estimate: Estimate
    gpu: Gpu  # the card the verdict, advice and serving panel are for
    fit: GpuFit  # the peak on that card
    smallest_fit: GpuFit | None  # the smallest catalog card the peak fits on
    fitting: tuple[GpuFit, ...]  # every catalog card it fits on
    catalog: tuple[Gpu, ...]  # what the chart draws the peak against
    advice: Advice
    serving: ServingEstimate
    serving_fit: GpuFit  # base + adapters, unmerged, on the chosen card
    merged_fit: GpuFit
    scenario_fits: tuple[GpuFit, ...]  # each comparison column's peak on the chosen card
    notes: ComparisonNotes
    parameter_reduction: float
    oversized_ranks: tuple[AdaptedModule, ...]  # adapted modules whose r exceeds min(in, out)
    adapter_files: AdapterFileSizes


FILE_SIZE_RANKS = (8, 16, 32, 64)
FILE_SIZE_DTYPES = ("fp32", "bf16")


def calculator_results(
    *,
    request: EstimateRequest,
    options: PageOptions,
    target_sets: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> CalculatorResults:
    """The estimate plus the advice, serving and fits for the chosen GPU; ``target_sets`` (label,
    module names) are the columns of the adapter-file table. Raises `InputError` (``page.gpu`` for an
    unknown card)."""
    result = compute_estimate(request=request)
    catalog = gpus()
    gpu = default_gpu() if options.gpu is None else next((g for g in catalog if g.name == options.gpu), None)
    if gpu is None:
        raise InputError.single("page.gpu", "Unknown GPU; pick one from the list.")
    arch, lora, training = result.architecture, result.lora_settings, result.training
    serving = serving_estimate(arch, lora, training, options.adapters, (gpu,))
    (fit,) = fits(result.memory.total_bytes, (gpu,))
    return CalculatorResults(
        estimate=result,
        gpu=gpu,
        fit=fit,
        smallest_fit=smallest_fitting(result.fits),
        fitting=tuple(f for f in result.fits if f.fits),
        catalog=catalog,
        advice=advise(arch, lora, training, gpu),
        serving=serving,
        serving_fit=serving.fits[0],
        merged_fit=serving.merged_fits[0],
        scenario_fits=tuple(fits(s.memory.total_bytes, (gpu,))[0] for s in result.comparison),
        notes=comparison_notes(result),
        parameter_reduction=parameter_reduction(result.count),
        oversized_ranks=oversized_ranks(result.count),
        adapter_files=adapter_file_sizes(
            arch, lora, training.base_dtype, FILE_SIZE_RANKS, target_sets, FILE_SIZE_DTYPES
        ),
    )


def page_options(data: Mapping[str, Any]) -> PageOptions:
    """Validate the page's own inputs; errors are field-named under ``page.``."""
    try:
        return PageOptions.model_validate(data)
    except ValidationError as error:
        raise InputError({f"page.{k}": v for k, v in pydantic_errors(error).items()}) from None


@dataclass(frozen=True, slots=True)
class LearnResults:
    estimate: Estimate
    numbers: LearnNumbers


def learn(*, request: EstimateRequest) -> LearnResults:
    """The estimate and the worked numbers the Learn page substitutes into its formulas."""
    result = compute_estimate(request=request)
    return LearnResults(result, learn_numbers(result, gpus()))


def configuration_estimate(*, configuration: SavedConfiguration) -> Estimate:
    """A saved configuration, recomputed from its immutable inputs and the architecture it was saved with
    (named after its preset, when it was saved from one)."""
    preset = (configuration.inputs.get("model") or {}).get("preset") or ""
    entry = find_preset(preset) if preset else None
    return compute_estimate(request=configuration.to_request(), name=entry.name if entry else preset)


def saved_model_name(*, configuration: SavedConfiguration) -> str:
    """What a saved configuration's model is called: the preset's current name, the pasted config's
    ``_name_or_path``, or "Custom (model type)"."""
    model = configuration.inputs.get("model") or {}
    snapshot = configuration.model_snapshot or {}
    model_type = str(snapshot.get("model_type") or "unknown type")
    preset = model.get("preset")
    if preset:
        entry = find_preset(preset)
        return entry.name if entry else str(preset)
    if model.get("hf_config") is not None:
        name = snapshot.get("_name_or_path") or snapshot.get("name_or_path")
        return name if isinstance(name, str) and name else f"Pasted config.json ({model_type})"
    return f"Custom ({model_type})"


def save_configuration(*, request: SaveRequest, owner: AbstractBaseUser | None) -> SavedConfiguration:
    """Validate by computing once, then store the inputs and the architecture they resolve to."""
    from calculator.models import SavedConfiguration, new_slug

    compute_estimate(request=request)  # rejects what cannot be computed before anything is stored
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
                    owner_id=owner.pk if owner is not None else None,
                    inputs=inputs,
                    model_snapshot=snapshot,
                )
        except IntegrityError:
            continue
    raise IntegrityError("could not allocate a unique slug")


def _model_snapshot(choice: ModelChoice) -> dict[str, Any]:
    if choice.preset is not None:
        entry = find_preset(choice.preset)
        assert entry is not None  # compute_estimate resolved it a moment ago
        return dict(entry.config)
    if choice.hf_config is not None:
        return dict(choice.hf_config)
    assert choice.custom is not None
    snapshot = choice.custom.model_dump(exclude_none=True)
    snapshot["model_type"] = resolve_model(choice=choice).architecture.model_type
    return snapshot
