"""Planning (issue 9): the card a request is for, the verdicts with its safety margin, time and cost, which
GPU to rent, advice, goals and sweeps, from the core's `planner`. Nothing here computes: it picks the card,
the catalog and the settings, and asks the core."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from calculator.core import Estimate, Gpu, InputError
from calculator.core.planner import (
    GOALS,
    SWEEP_VARIABLES,
    CostRow,
    GoalAnswer,
    Plan,
    SweepRow,
    find_gpu,
    plan,
    solve_goal,
    sweep,
)
from calculator.core.runtime import PlanSettings, TimeEstimate, default_mfu, method_of
from calculator.schemas import CUSTOM_GPU, GIB, EstimateRequest, PageOptions, PlanRequest
from calculator.services.catalog import default_gpu, gpus
from calculator.services.estimates import compute_estimate, configuration_name

if TYPE_CHECKING:
    from calculator.models import SavedConfiguration

__all__ = [
    "CUSTOM_GPU",
    "EXAMPLE_DATASET_TOKENS",
    "GOALS",
    "SWEEP_VARIABLES",
    "CostRow",
    "GoalAnswer",
    "GoalResult",
    "Plan",
    "PlanSettings",
    "PlannedEstimate",
    "SweepRow",
    "TimeEstimate",
    "choose_gpu",
    "configuration_plan",
    "custom_gpu",
    "plan_estimate",
    "solve",
    "sweep_rows",
]

# The page states time and cost per epoch of this many tokens until the user gives a dataset size.
EXAMPLE_DATASET_TOKENS = 10_000_000


@dataclass(frozen=True, slots=True)
class PlannedEstimate:
    estimate: Estimate
    plan: Plan  # the verdicts with the margin, time, which GPU to rent, advice, on `plan.gpu`
    settings: PlanSettings  # what the plan was made with (the example dataset included)
    example_dataset: bool  # True: no dataset size was given; time and cost are per EXAMPLE_DATASET_TOKENS
    default_mfu: float  # the stated MFU for this method and framework (used unless the request sets one)
    method: str  # lora | qlora | full


def custom_gpu(options: PageOptions) -> Gpu | None:
    """The page's card that is not in the catalog, when its memory is given."""
    if options.custom_gpu_memory_gib is None:
        return None
    memory = round(options.custom_gpu_memory_gib * GIB)
    name = f"Custom GPU {options.custom_gpu_memory_gib:g} GiB"
    return Gpu(name, memory, options.custom_gpu_tflops, options.custom_gpu_price)


def choose_gpu(*, name: str | None, custom: Gpu | None = None) -> Gpu:
    """The card ``training.gpu`` names (``custom``: the page's custom card), else the default card; raises
    `InputError` on ``training.gpu`` for a name the catalog does not have."""
    if name == CUSTOM_GPU and custom is not None:
        return custom
    return find_gpu(name, gpus(), default_gpu())


def plan_estimate(
    *, request: EstimateRequest, custom: Gpu | None = None, example_dataset: bool = False, name: str | None = None
) -> PlannedEstimate:
    """The estimate and its plan on the request's card. ``example_dataset``: without a dataset size, state
    time and cost per epoch of `EXAMPLE_DATASET_TOKENS` (the page); the API leaves them out instead."""
    result = compute_estimate(request=request, name=name)
    gpu = choose_gpu(name=request.training.gpu, custom=custom)
    settings = request.training.plan()
    example = example_dataset and settings.tokens_per_epoch is None
    if example:
        settings = replace(settings, dataset_tokens=EXAMPLE_DATASET_TOKENS)
    catalog = gpus()
    cards = catalog if gpu in catalog else (*catalog, gpu)
    arch, lora, training = result.architecture, result.lora_settings, result.training
    return PlannedEstimate(
        estimate=result,
        plan=plan(arch, lora, training, settings, gpu, cards),
        settings=settings,
        example_dataset=example,
        default_mfu=default_mfu(training),
        method=method_of(training),
    )


def configuration_plan(*, configuration: SavedConfiguration, example_dataset: bool = False) -> PlannedEstimate:
    """A saved configuration's estimate and plan, recomputed from its immutable inputs (raises pydantic's
    ValidationError for inputs that no longer validate, `InputError` for what no longer computes)."""
    return plan_estimate(
        request=configuration.to_request(), example_dataset=example_dataset, name=configuration_name(configuration)
    )


def sweep_rows(*, planned: PlannedEstimate, variable: str) -> tuple[SweepRow, ...]:
    """Peak, verdict, time and cost against r, sequence length or micro-batch, on the plan's card."""
    r = planned.estimate
    return sweep(r.architecture, r.lora_settings, r.training, planned.settings, planned.plan.gpu, variable)


@dataclass(frozen=True, slots=True)
class GoalResult:
    answer: GoalAnswer
    gpu: Gpu
    request: EstimateRequest | None  # the request at the answer's value (None: nothing fits)
    planned: PlannedEstimate | None  # its estimate and plan


def solve(*, request: PlanRequest) -> GoalResult:
    """``POST /api/v1/plan/``: the best value of the goal that fits the card with the safety margin, and the
    estimate at that value."""
    result = compute_estimate(request=request)
    try:
        gpu = choose_gpu(name=request.gpu if request.gpu is not None else request.training.gpu)
    except InputError as error:  # name the field the card came from
        if request.gpu is None:
            raise
        raise InputError({"gpu": [m for messages in error.errors.values() for m in messages]}) from None
    settings = request.training.plan()
    arch, lora, training = result.architecture, result.lora_settings, result.training
    answer = solve_goal(arch, lora, training, settings, gpu, request.goal)
    if answer.value is None:
        return GoalResult(answer, gpu, None, None)
    changed = _changed(request, answer, gpu)
    return GoalResult(answer, gpu, changed, plan_estimate(request=changed))


def _changed(request: PlanRequest, answer: GoalAnswer, gpu: Gpu) -> EstimateRequest:
    """The request with the goal's field set to the answer (and the card it was solved for)."""
    field = {"max_batch_size": "batch_size", "max_seq_len": "seq_len", "min_gpus": "num_gpus"}.get(answer.goal)
    training = request.training.model_copy(update={"gpu": gpu.name})
    lora = request.lora
    if field is not None:
        training = training.model_copy(update={field: getattr(answer.training, field)})
    else:
        lora = lora.model_copy(update={"r": answer.lora.r})
    return EstimateRequest(model=request.model, lora=lora, training=training)
