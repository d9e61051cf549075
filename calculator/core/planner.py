"""Planning on top of the estimate: which GPU to rent, goal seeking, a sweep, and everything for one card.

- `cost_table`: for every catalog GPU, whether the run fits on one (with the safety margin), else the fewest
  GPUs that fit with the chosen parallelism, the time and the cost; sorted by cost, the cheapest marked.
- `solve_goal`: the largest micro-batch, longest sequence, largest rank, or fewest GPUs that fit a card with
  the margin, solved on the peak's closed form (`form.py`), and the settings at that value.
- `sweep`: peak, verdict, time and cost against r, sequence length or micro-batch.
- `plan`: the verdicts, time, costs and advice for one configuration and one chosen card.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .advice import Advice, advise
from .architecture import Architecture
from .bounds import MAX_SEQ_LEN
from .errors import ErrorCollector, InputError
from .estimate import MemoryEstimate
from .flops import lora_flops_form
from .form import memory_form
from .gpus import DOES_NOT_FIT, FITS, Gpu, GpuFit, fits, safety_margin_bytes, verdict
from .lora import LoraSettings
from .runtime import PlanSettings, TimeEstimate, time_estimate, validate_plan
from .training import TrainingSettings, validate_training

GOALS: tuple[str, ...] = ("max_batch_size", "max_seq_len", "max_r", "min_gpus")
SWEEP_VARIABLES: tuple[str, ...] = ("r", "seq_len", "batch_size")
SWEEP_DEFAULTS: dict[str, tuple[int, ...]] = {
    "r": (4, 8, 16, 32, 64, 128, 256),
    "seq_len": (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072),
    "batch_size": (1, 2, 4, 8, 16, 32, 64),
}
MAX_SWEEP_VALUES = 64


@dataclass(frozen=True, slots=True)
class CostRow:
    """api.md `cost`: gpu, gpus_needed, hours, price_per_hour, total."""

    gpu: str
    gpus_needed: int | None  # fewest GPUs that fit with the margin (tight: only without it); None: none does
    verdict: str  # at gpus_needed
    total_bytes: int | None  # per GPU at gpus_needed
    hours: float | None  # None: no dataset, no peak for the card, or it does not fit
    price_per_hour: float | None  # per GPU
    total: float | None  # USD for all GPUs
    cheapest: bool = False


@dataclass(frozen=True, slots=True)
class GoalAnswer:
    goal: str
    value: int | None  # None: not even the smallest value fits
    lora: LoraSettings  # the settings at that value (unchanged when None)
    training: TrainingSettings
    total_bytes: int | None
    verdict: str
    limit_bytes: int  # the card's memory less the safety margin


@dataclass(frozen=True, slots=True)
class SweepRow:
    value: int
    total_bytes: int
    verdict: str
    flops_per_token: int
    tokens_per_second: float | None
    total_seconds: float | None
    cost: float | None


@dataclass(frozen=True, slots=True)
class Plan:
    gpu: Gpu
    memory: MemoryEstimate
    verdict: str
    margin_bytes: int
    fits: tuple[GpuFit, ...]  # every catalog GPU, with verdicts
    time: TimeEstimate
    costs: tuple[CostRow, ...]
    advice: Advice


GPU_VENDORS = frozenset({"nvidia", "amd", "intel"})


def find_gpu(name: str | None, gpus: tuple[Gpu, ...], default: Gpu | None = None) -> Gpu:
    """The catalog card called ``name`` (``training.gpu``), or ``default`` when no name is given.

    The exact catalog name wins; otherwise a name that picks out one card once case, spacing and the memory
    suffix are ignored ("NVIDIA RTX 4090", "rtx 4090", "H100 NVL") is that card, since people write GPU names
    as they know them. A name that fits several cards ("A100") is refused with the candidates.
    """
    if name is None:
        if default is None:
            raise InputError.single("training.gpu", "Choose a GPU.")
        return default
    for g in gpus:
        if g.name == name:
            return g
    wanted = _gpu_words(name)
    if wanted:
        same = [g for g in gpus if _gpu_words(g.name) == wanted or _gpu_words(g.name, memory=False) == wanted]
        within = same or [g for g in gpus if _contains_words(_gpu_words(g.name), wanted)]
        if len(within) == 1:
            return within[0]
        if len(within) > 1:
            raise InputError.single(
                "training.gpu", f"GPU {name!r} fits several cards: {', '.join(g.name for g in within)}; choose one."
            )
    raise InputError.single(
        "training.gpu", f"Unknown GPU {name!r}; the catalog has: {', '.join(g.name for g in gpus)}."
    )


def _gpu_words(name: str, *, memory: bool = True) -> tuple[str, ...]:
    """A GPU name as lower-case words without its vendor; without its trailing memory size ("24 GB") too when
    ``memory`` is false."""
    words = tuple(name.casefold().replace("gb", " gb").split())
    if words and words[0] in GPU_VENDORS:
        words = words[1:]
    if not memory and len(words) >= 2 and words[-1] == "gb" and words[-2].isdecimal():
        return words[:-2]
    return words


def _contains_words(words: tuple[str, ...], part: tuple[str, ...]) -> bool:
    return any(words[i : i + len(part)] == part for i in range(len(words) - len(part) + 1))


def validate(training: TrainingSettings, plan: PlanSettings) -> None:
    errors = ErrorCollector()
    validate_training(training, errors)
    validate_plan(plan, errors)
    errors.raise_if_any()


def run_time(
    arch: Architecture,
    lora: LoraSettings,
    training: TrainingSettings,
    plan: PlanSettings,
    gpu: Gpu,
    num_gpus: int | None = None,
) -> TimeEstimate:
    return time_estimate(lora_flops_form(arch, lora, training), training, plan, gpu, num_gpus=num_gpus)


def cost_table(
    arch: Architecture, lora: LoraSettings, training: TrainingSettings, plan: PlanSettings, gpus: tuple[Gpu, ...]
) -> tuple[CostRow, ...]:
    """Which GPU to rent. More GPUs only lower the per-GPU peak when the parallelism shards (FSDP/ZeRO);
    with DDP a card either fits on one or not at all."""
    form = memory_form(arch, lora, training)
    b, s, r = training.batch_size, training.seq_len, lora.r
    rows = []
    for gpu in gpus:
        safe_limit = gpu.memory_bytes - safety_margin_bytes(gpu.memory_bytes, plan.safety_margin)
        n = form.min_gpus(safe_limit, b, s, r)
        if n is None:
            n = form.min_gpus(gpu.memory_bytes, b, s, r)
        if n is None:
            rows.append(CostRow(gpu.name, None, DOES_NOT_FIT, None, None, gpu.price_per_hour, None))
            continue
        total = form.total(b, s, r, n)
        timing = run_time(arch, lora, replace(training, num_gpus=n), plan, gpu)
        hours, cost = timing.hours, timing.cost(gpu.price_per_hour)
        rows.append(
            CostRow(
                gpu.name,
                n,
                verdict(total, gpu.memory_bytes, plan.safety_margin),
                total,
                hours,
                gpu.price_per_hour,
                cost,
            )
        )

    def order(row: CostRow) -> tuple[int, float, float]:
        rank = 0 if row.total is not None else 1 if row.hours is not None else 2
        return (rank, row.total or 0.0, row.hours or 0.0)

    ordered = sorted(rows, key=order)
    cheapest = next((i for i, row in enumerate(ordered) if row.total is not None and row.verdict == FITS), None)
    if cheapest is not None:
        ordered[cheapest] = replace(ordered[cheapest], cheapest=True)
    return tuple(ordered)


def solve_goal(
    arch: Architecture, lora: LoraSettings, training: TrainingSettings, plan: PlanSettings, gpu: Gpu, goal: str
) -> GoalAnswer:
    """The best value of ``goal`` whose peak fits ``gpu`` with the safety margin, the rest unchanged."""
    if goal not in GOALS:
        raise InputError.single("goal", f"Must be one of {', '.join(GOALS)}; got {goal!r}.")
    form = memory_form(arch, lora, training)
    b, s, r, n = training.batch_size, training.seq_len, lora.r, training.num_gpus
    limit = gpu.memory_bytes - safety_margin_bytes(gpu.memory_bytes, plan.safety_margin)
    context = max(min(arch.dims.max_position_embeddings or MAX_SEQ_LEN, MAX_SEQ_LEN), 1)
    new_lora, new_training = lora, training
    value: int | None
    if goal == "max_batch_size":
        value = form.max_batch_size(limit, s, r, n)
        if value is not None:
            new_training = replace(training, batch_size=value)
    elif goal == "max_seq_len":
        value = form.max_seq_len(limit, b, r, n, hi=context)
        if value is not None:
            new_training = replace(training, seq_len=value)
    elif goal == "max_r":
        value = form.max_rank(limit, b, s, n)
        if value is not None:
            new_lora = replace(lora, r=value)
    else:
        value = form.min_gpus(limit, b, s, r)
        if value is not None:
            new_training = replace(training, num_gpus=value)
    total = None
    result = DOES_NOT_FIT
    if value is not None:
        total = form.total(new_training.batch_size, new_training.seq_len, new_lora.r, new_training.num_gpus)
        result = verdict(total, gpu.memory_bytes, plan.safety_margin)
    return GoalAnswer(goal, value, new_lora, new_training, total, result, limit)


def sweep(
    arch: Architecture,
    lora: LoraSettings,
    training: TrainingSettings,
    plan: PlanSettings,
    gpu: Gpu,
    variable: str,
    values: tuple[int, ...] | None = None,
) -> tuple[SweepRow, ...]:
    """Peak, verdict, time and cost at each value of ``variable`` (r, seq_len or batch_size)."""
    if variable not in SWEEP_VARIABLES:
        raise InputError.single("variable", f"Must be one of {', '.join(SWEEP_VARIABLES)}; got {variable!r}.")
    chosen = SWEEP_DEFAULTS[variable] if values is None else values
    if not 1 <= len(chosen) <= MAX_SWEEP_VALUES or any(v < 1 for v in chosen):
        raise InputError.single("values", f"Give 1 to {MAX_SWEEP_VALUES} positive values.")
    form = memory_form(arch, lora, training)
    rows = []
    for value in chosen:
        lo = replace(lora, r=value) if variable == "r" else lora
        t = training
        if variable == "seq_len":
            t = replace(training, seq_len=value)
        elif variable == "batch_size":
            t = replace(training, batch_size=value)
        total = form.total(t.batch_size, t.seq_len, lo.r, t.num_gpus)
        timing = run_time(arch, lo, t, plan, gpu)
        cost = timing.cost(gpu.price_per_hour)
        rows.append(
            SweepRow(
                value,
                total,
                verdict(total, gpu.memory_bytes, plan.safety_margin),
                timing.flops_per_token,
                timing.tokens_per_second,
                timing.total_seconds,
                cost,
            )
        )
    return tuple(rows)


def plan(
    arch: Architecture,
    lora: LoraSettings,
    training: TrainingSettings,
    settings: PlanSettings,
    gpu: Gpu,
    gpus: tuple[Gpu, ...],
) -> Plan:
    """Everything for one configuration on the chosen card; raises `InputError` naming bad fields."""
    validate(training, settings)
    form = memory_form(arch, lora, training)
    memory = form.estimate(training.batch_size, training.seq_len, lora.r, training.num_gpus)
    return Plan(
        gpu=gpu,
        memory=memory,
        verdict=verdict(memory.total_bytes, gpu.memory_bytes, settings.safety_margin),
        margin_bytes=safety_margin_bytes(gpu.memory_bytes, settings.safety_margin),
        fits=fits(memory.total_bytes, gpus, settings.safety_margin),
        time=run_time(arch, lora, training, settings, gpu),
        costs=cost_table(arch, lora, training, settings, gpus),
        advice=advise(arch, lora, training, gpu, settings),
    )
