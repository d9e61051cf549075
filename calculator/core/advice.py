"""Advice for one GPU: the changes that bring a configuration under the card with the safety margin, each
with its peak, verdict, and effect on time and cost, ordered by what they cost the user.

The remedies people use, alone and combined: gradient checkpointing; a smaller micro-batch with more
gradient accumulation (the same effective batch); a paged 8-bit optimizer; a 4-bit base (QLoRA); LoRA on
attention only; sharding over more GPUs (FSDP); a smaller rank; shorter sequences. A change already in
effect is never offered. Rows are ordered by verdict (fits, then tight), then by what the change costs the
user (nothing but time: checkpointing, accumulation; hardware or numerics: more GPUs, an 8-bit optimizer;
a quantized base; a smaller adapter; truncated data), then by money (or time when the card has no price).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import combinations

from .architecture import Architecture
from .bounds import MAX_SEQ_LEN
from .estimate import memory_estimate
from .flops import attention_module_names, lora_flops_form
from .form import lora_count, memory_form, warm_form
from .gpus import DOES_NOT_FIT, FITS, TIGHT, Gpu, safety_margin_bytes, verdict
from .lora import LoraSettings
from .runtime import PlanSettings, TimeEstimate, time_estimate
from .training import TrainingSettings

QUANTIZED_4BIT = ("nf4", "fp4")
ADAMW = ("adamw",)
VERDICT_ORDER = {FITS: 0, TIGHT: 1, DOES_NOT_FIT: 2}
MAX_ROWS = 12


@dataclass(frozen=True, slots=True)
class Change:
    """One advice row (api.md ``advice``: ``changes``, ``total_bytes``, ``verdict``, ``total_seconds``)."""

    key: str  # the changes' keys joined by "+": gradient_checkpointing, batch_size, optimizer_8bit, qlora, ...
    label: str
    settings: tuple[tuple[str, object], ...]  # (API field path, new value), e.g. ("training.batch_size", 1)
    total_bytes: int
    fits: bool  # the peak is at most the card's memory
    verdict: str = FITS  # with the safety margin
    total_seconds: float | None = None  # for the dataset (None without one, or without the card's peak)
    cost: float | None = None  # USD on this card (all its GPUs), None without a price or a dataset
    tier: int = 0  # what the change costs the user beyond time and money (see the module doc)
    tokens_per_second: float | None = None  # all GPUs; None without the card's peak
    given_up: float = 1.0  # the share of sequence (or rank) the change gives up, as old / new (1: none)

    @property
    def changes(self) -> dict[str, object]:
        return dict(self.settings)


@dataclass(frozen=True, slots=True)
class Advice:
    gpu: Gpu
    total_bytes: int
    fits: bool  # at most the card's memory
    headroom_bytes: int  # negative when it does not fit
    max_batch_size: int | None  # largest micro-batch at this sequence length within the limit; None: not even 1
    max_seq_len: int | None  # longest sequence at this micro-batch within the limit; None: not even 1 token
    seq_len_limit: int  # where the sequence search stops (the model's context, if known)
    changes: tuple[Change, ...]  # best first; empty when the configuration fits with the margin
    verdict: str = FITS
    margin_bytes: int = 0


def largest_fitting(peak: Callable[[int], int], limit: int, hi: int, *, lo: int = 1) -> int | None:
    """The largest ``x`` in ``[lo, hi]`` with ``peak(x) <= limit`` (``peak`` non-decreasing), or None."""
    seen: dict[int, int] = {}

    def f(x: int) -> int:
        if x not in seen:
            seen[x] = peak(x)
        return seen[x]

    if f(lo) > limit:
        return None
    if f(hi) <= limit:
        return hi
    # Invariant: f(lo) <= limit < f(hi). Interpolate (exact for affine and quadratic peaks), then halve.
    for step in range(64):
        if hi - lo <= 1:
            break
        guess = _interpolate(seen, lo, hi, limit) if step < 6 else None
        if guess is None or not lo < guess < hi:
            guess = (lo + hi) // 2
        if f(guess) <= limit:
            lo = guess
            if guess + 1 < hi and f(guess + 1) > limit:
                return guess
        else:
            hi = guess
    return lo


def _interpolate(seen: dict[int, int], lo: int, hi: int, limit: int) -> int | None:
    """Where the curve through the bracket's sampled points crosses ``limit`` (quadratic when 3 are known)."""
    inside = sorted(x for x in seen if lo <= x <= hi)
    points = [inside[0], inside[-1]]
    if len(inside) > 2:
        points.insert(1, inside[len(inside) // 2])
    xs = [float(x) for x in points]
    ys = [float(seen[x]) for x in points]
    if len(points) == 3:
        (x0, x1, x2), (y0, y1, y2) = xs, ys
        d01, d12 = (y1 - y0) / (x1 - x0), (y2 - y1) / (x2 - x1)
        c = (d12 - d01) / (x2 - x0)
        b = d01 - c * (x0 + x1)
        a = y0 - b * x0 - c * x0 * x0
        if abs(c) > 1e-12:
            disc = b * b - 4 * c * (a - limit)
            if disc >= 0:
                for root in sorted(((-b + disc**0.5) / (2 * c), (-b - disc**0.5) / (2 * c))):
                    if lo <= root <= hi:
                        return int(root)
    (x0, x1), (y0, y1) = (xs[0], xs[-1]), (ys[0], ys[-1])
    if y1 <= y0:
        return None
    return int(x0 + (limit - y0) * (x1 - x0) / (y1 - y0))


def advise(
    arch: Architecture,
    lora: LoraSettings,
    training: TrainingSettings,
    gpu: Gpu,
    plan: PlanSettings | None = None,
) -> Advice:
    """Advice for ``gpu``. Without ``plan`` the limit is the card itself (the v1 meaning: no margin);
    with one, its safety margin, accumulation and dataset shape verdicts, time and cost. Raises whatever
    `estimate` raises for invalid inputs; call it with inputs `estimate` accepted."""
    return _advise(arch, lora, training, gpu, plan if plan is not None else PlanSettings(safety_margin=0.0))


@dataclass(frozen=True, slots=True)
class _Toggle:
    key: str
    tier: int
    label: str
    settings: tuple[tuple[str, object], ...]
    apply: Callable[[LoraSettings, TrainingSettings], tuple[LoraSettings, TrainingSettings]]


@dataclass(frozen=True, slots=True)
class _Row:
    """A candidate: the changes so far and the configuration they lead to."""

    keys: tuple[str, ...]
    labels: tuple[str, ...]
    settings: tuple[tuple[str, object], ...]
    tier: int
    lora: LoraSettings
    training: TrainingSettings
    accumulation: int
    given_up: float = 1.0

    def then(
        self,
        key: str,
        label: str,
        settings: tuple[tuple[str, object], ...],
        tier: int,
        *,
        lora: LoraSettings | None = None,
        training: TrainingSettings | None = None,
        accumulation: int | None = None,
        given_up: float = 1.0,
    ) -> _Row:
        return _Row(
            (*self.keys, key),
            (*self.labels, label),
            (*self.settings, *settings),
            max(self.tier, tier),
            self.lora if lora is None else lora,
            self.training if training is None else training,
            self.accumulation if accumulation is None else accumulation,
            self.given_up * given_up,
        )

    def toggled(self, toggle: _Toggle) -> _Row:
        lora, training = toggle.apply(self.lora, self.training)
        return self.then(toggle.key, toggle.label, toggle.settings, toggle.tier, lora=lora, training=training)

    @staticmethod
    def every(
        toggles: list[_Toggle], lora: LoraSettings, training: TrainingSettings, accumulation: int
    ) -> dict[tuple[_Toggle, ...], _Row]:
        """A row for every combination of ``toggles`` (in their order), each built on the one without its
        last toggle."""
        rows: dict[tuple[_Toggle, ...], _Row] = {(): _Row((), (), (), 0, lora, training, accumulation)}
        for size in range(1, len(toggles) + 1):
            for chosen in combinations(toggles, size):
                rows[chosen] = rows[chosen[:-1]].toggled(chosen[-1])
        return rows


@lru_cache(maxsize=512)
def _advise(arch: Architecture, lora: LoraSettings, training: TrainingSettings, gpu: Gpu, plan: PlanSettings) -> Advice:
    form = memory_form(arch, lora, training)
    b, s, r, n = training.batch_size, training.seq_len, lora.r, training.num_gpus
    margin = safety_margin_bytes(gpu.memory_bytes, plan.safety_margin)
    limit = gpu.memory_bytes - margin
    total = form.total(b, s, r, n)
    seq_limit = max(min(arch.dims.max_position_embeddings or MAX_SEQ_LEN, MAX_SEQ_LEN), s)
    current = verdict(total, gpu.memory_bytes, plan.safety_margin)
    changes: tuple[Change, ...] = ()
    if current != FITS:
        changes = _remedies(arch, lora, training, plan, gpu, limit)
    return Advice(
        gpu=gpu,
        total_bytes=total,
        fits=total <= gpu.memory_bytes,
        headroom_bytes=gpu.memory_bytes - total,
        max_batch_size=form.max_batch_size(limit, s, r, n),
        max_seq_len=form.max_seq_len(limit, b, r, n, hi=seq_limit),
        seq_len_limit=seq_limit,
        changes=changes,
        verdict=current,
        margin_bytes=margin,
    )


def _toggles(arch: Architecture, lora: LoraSettings, training: TrainingSettings) -> list[_Toggle]:
    toggles = []
    if not training.gradient_checkpointing:
        toggles.append(
            _Toggle(
                "gradient_checkpointing",
                0,
                "Turn on gradient checkpointing",
                (("training.gradient_checkpointing", True),),
                lambda lo, t: (lo, replace(t, gradient_checkpointing=True)),
            )
        )
    if training.optimizer in ADAMW:
        toggles.append(
            _Toggle(
                "optimizer_8bit",
                1,
                "Use the paged 8-bit AdamW optimizer",
                (("training.optimizer", "paged_adamw_8bit"),),
                lambda lo, t: (lo, replace(t, optimizer="paged_adamw_8bit")),
            )
        )
    if training.base_dtype not in QUANTIZED_4BIT:
        toggles.append(
            _Toggle(
                "qlora",
                2,
                "Load the base in 4-bit NF4 with double quantization (QLoRA)",
                (("training.base_dtype", "nf4"), ("training.double_quant", True)),
                lambda lo, t: (lo, replace(t, base_dtype="nf4", double_quant=True)),
            )
        )
    attention = _attention_only(arch, lora)
    if attention is not None:
        toggles.append(
            _Toggle(
                "targets",
                3,
                f"LoRA on attention only ({', '.join(attention)})",
                (("lora.target_modules", attention),),
                lambda lo, t: (replace(lo, target_modules=attention, layers_to_transform=None), t),
            )
        )
    return toggles


def _attention_only(arch: Architecture, lora: LoraSettings) -> tuple[str, ...] | None:
    """The attention projections' names, when LoRA currently adapts something else too."""
    names = attention_module_names(arch)
    if not names or lora.target_parameters or lora.rank_pattern:
        return None
    return names if _adapted_names(arch, replace(lora, r=1)) - set(names) else None


@lru_cache(maxsize=512)
def _adapted_names(arch: Architecture, lora: LoraSettings) -> frozenset[str]:
    """The names of the modules LoRA adapts: the same at every rank (``lora`` is the structure, at r = 1)."""
    return frozenset(m.name for m in lora_count(arch, lora, 1).modules)


def _remedies(
    arch: Architecture, lora: LoraSettings, training: TrainingSettings, plan: PlanSettings, gpu: Gpu, limit: int
) -> tuple[Change, ...]:
    toggles = _toggles(arch, lora, training)
    g = plan.gradient_accumulation_steps
    rows: list[_Row] = []
    combined = _Row.every(toggles, lora, training, g)
    peaks: dict[int, int] = {}  # by id: every row stays alive in `combined` or `rows` until the end

    def peak(row: _Row) -> int:
        known = peaks.get(id(row))
        if known is None:
            known = peaks[id(row)] = _peak(arch, row.lora, row.training)
        return known

    for chosen, row in combined.items():
        if chosen:
            rows.append(row)
        if peak(row) > limit:
            split = _split(arch, row, limit)
            if split is not None:
                rows.append(split)
    for prefix in _cheap_prefixes(toggles):
        if len(prefix) > 1 and any(r.tier <= 1 and peak(r) <= limit for r in rows):
            break  # cheap changes already fit: no need to look further up for sequences, GPUs or ranks
        rows += _structural(arch, combined[prefix], limit)
    changes = [_change(arch, row, plan, gpu, peak(row)) for row in rows]
    singles = {row.keys[0] for row in rows if len(row.keys) == 1}
    kept = [c for c in changes if c.verdict != DOES_NOT_FIT or (c.key in singles and "+" not in c.key)]
    unique = {c.settings: c for c in sorted(kept, key=_order)}
    # a change on top of a set that already fits with the margin is one change too many
    enough = [set(c.settings) for c in unique.values() if c.verdict == FITS]
    useful = [c for c in unique.values() if not any(fit < set(c.settings) for fit in enough)]
    return tuple(sorted(useful, key=_order))[:MAX_ROWS]


def _cheap_prefixes(toggles: list[_Toggle]) -> list[tuple[_Toggle, ...]]:
    """Where more GPUs, a smaller rank or shorter sequences are worth looking for: no change, the cheapest
    change, and every change short of touching the adapter (tiers below 3)."""
    cheap = tuple(t for t in toggles if t.tier < 3)
    return list(dict.fromkeys([(), cheap[:1], cheap]))


def _split(arch: Architecture, row: _Row, limit: int) -> _Row | None:
    """The largest micro-batch dividing the effective batch that fits, with accumulation making up the rest
    (the peak grows with the micro-batch: the divisors are tried from the largest down)."""
    t = row.training
    effective = t.batch_size * row.accumulation
    peak = _batch_peak(arch, row.lora, t)
    divisor = next((d for d in range(t.batch_size - 1, 0, -1) if effective % d == 0 and peak(d) <= limit), None)
    if divisor is None:
        return None
    steps = effective // divisor
    return row.then(
        "batch_size",
        f"micro-batch {divisor} with {steps} accumulation steps (the same effective batch)",
        (("training.batch_size", divisor), ("training.gradient_accumulation_steps", steps)),
        0,
        training=replace(t, batch_size=divisor),
        accumulation=steps,
    )


def _structural(arch: Architecture, base: _Row, limit: int) -> list[_Row]:
    """More GPUs (FSDP), a smaller rank, shorter sequences, on top of ``base``."""
    lo, t = base.lora, base.training
    b, s, r, n = t.batch_size, t.seq_len, lo.r, t.num_gpus
    form = memory_form(arch, lo, t)
    if form.total(b, s, r, n) <= limit:
        return []
    rows = []
    sharded = replace(t, parallelism="fsdp") if t.parallelism == "ddp" else t
    gpus = memory_form(arch, lo, sharded).min_gpus(limit, b, s, r)
    if gpus is not None and gpus > 1:
        # keep the effective batch: fewer accumulation steps when the GPUs divide them
        accumulation = base.accumulation * n // gpus if (base.accumulation * n) % gpus == 0 else base.accumulation
        settings: tuple[tuple[str, object], ...] = (
            ("training.parallelism", sharded.parallelism),
            ("training.num_gpus", gpus),
        )
        if accumulation != base.accumulation:
            settings += (("training.gradient_accumulation_steps", accumulation),)
        label = f"shard over {gpus} GPUs with {sharded.parallelism.upper()}"
        training = replace(sharded, num_gpus=gpus)
        rows.append(base.then("gpus", label, settings, 1, training=training, accumulation=max(accumulation, 1)))
    if r > 1 and not lo.rank_pattern:
        rank = form.max_rank(limit, b, s, n, hi=r - 1)
        if rank is not None:
            lower = replace(lo, r=rank)
            rows.append(base.then("rank", f"rank r={rank}", (("lora.r", rank),), 3, lora=lower, given_up=r / rank))
    seq = form.max_seq_len(limit, b, r, n, hi=s - 1) if s > 1 else None
    if seq is not None:
        settings = (("training.seq_len", seq),)
        shorter = replace(t, seq_len=seq)
        label = f"sequences of {seq:,} tokens"
        rows.append(base.then("seq_len", label, settings, 4, training=shorter, given_up=s / seq))
    return rows


def _peak(arch: Architecture, lora: LoraSettings, training: TrainingSettings) -> int:
    form = warm_form(arch, lora, training)
    if form is None:
        return _evaluated_peak(arch, lora, training)
    return form.total(training.batch_size, training.seq_len, lora.r, training.num_gpus)


def _batch_peak(arch: Architecture, lora: LoraSettings, training: TrainingSettings) -> Callable[[int], int]:
    """The peak as a function of the micro-batch alone (the divisors `_split` tries)."""
    form = warm_form(arch, lora, training)
    if form is None:
        return lambda b: _peak(arch, lora, replace(training, batch_size=b))
    s, r, n = training.seq_len, lora.r, training.num_gpus
    return lambda b: form.total(b, s, r, n)


@lru_cache(maxsize=4096)
def _evaluated_peak(arch: Architecture, lora: LoraSettings, training: TrainingSettings) -> int:
    return memory_estimate(arch, lora_count(arch, lora, lora.r), training).total_bytes


def _change(arch: Architecture, row: _Row, plan: PlanSettings, gpu: Gpu, total: int) -> Change:
    """The advice row for ``row``, whose peak is ``total``."""
    t, lo = row.training, row.lora
    if row.accumulation != plan.gradient_accumulation_steps:
        plan = replace(plan, gradient_accumulation_steps=row.accumulation)
    timing = _time(arch, lo, t, plan, gpu)
    cost = timing.cost(gpu.price_per_hour)
    label = "; ".join(row.labels)
    return Change(
        key="+".join(row.keys),
        label=label[:1].upper() + label[1:],
        settings=row.settings,
        total_bytes=total,
        fits=total <= gpu.memory_bytes,
        verdict=verdict(total, gpu.memory_bytes, plan.safety_margin),
        total_seconds=timing.total_seconds,
        cost=cost,
        tier=row.tier,
        tokens_per_second=timing.tokens_per_second,
        given_up=row.given_up,
    )


def _time(
    arch: Architecture, lora: LoraSettings, training: TrainingSettings, plan: PlanSettings, gpu: Gpu
) -> TimeEstimate:
    return time_estimate(lora_flops_form(arch, lora, training), training, plan, gpu)


def _order(c: Change) -> tuple[int, int, float, float, int, int]:
    """Verdict, then what the change costs the user (its tier, then how much sequence or rank it gives up),
    then money (or time per token without a price or a dataset: the same card, so the same ordering), then
    the fewest changes."""
    if c.cost is not None:
        expense = c.cost
    elif c.tokens_per_second:
        expense = 1 / c.tokens_per_second
    else:
        expense = float("inf")
    return (VERDICT_ORDER[c.verdict], c.tier, c.given_up, expense, len(c.settings), c.total_bytes)
