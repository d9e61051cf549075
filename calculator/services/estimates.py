"""From a validated request to the core's estimate: the model it means, every number, saving a configuration
and recomputing a saved one, the Learn page's worked numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction

from calculator.core import (
    Architecture,
    Estimate,
    InputError,
    architecture_from_config,
    architecture_from_dimensions,
)
from calculator.core import estimate as core_estimate
from calculator.core.explain import LearnNumbers, learn_numbers
from calculator.core.insights import layers_out_of_range
from calculator.schemas import EstimateRequest, ModelChoice, SaveRequest
from calculator.services.catalog import find_preset, gpus

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from calculator.models import SavedConfiguration


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
    return compute_estimate(request=configuration.to_request(), name=configuration_name(configuration))


def configuration_name(configuration: SavedConfiguration) -> str:
    """The name a saved configuration's estimate carries: its preset's current name (or slug), else ""."""
    preset = (configuration.inputs.get("model") or {}).get("preset") or ""
    entry = find_preset(preset) if preset else None
    return entry.name if entry else str(preset)


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
    from calculator.storable import check_save_request

    check_save_request(request, anonymous=owner is None)  # only what every database reads back, capped
    compute_estimate(request=request)  # rejects what cannot be computed before anything is stored
    snapshot = _model_snapshot(request.model)
    inputs = request.model_dump(mode="json", include={"model", "lora"}, exclude_none=False)
    # Every training field explicit, the framework's defaults filled in: a permalink keeps its meaning even if a
    # framework's defaults change later.
    inputs["training"] = request.training.resolved().model_dump(mode="json")
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
