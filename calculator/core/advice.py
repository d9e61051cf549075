"""Advice for one GPU, computed from the memory model rather than written by hand.

For the chosen card: the largest micro-batch and the longest sequence that fit, and, when the
configuration does not fit, what each usual remedy (gradient checkpointing, a 4-bit base, an 8-bit
optimizer, a smaller rank, a smaller micro-batch, a shorter sequence) would bring the peak to.

Peak memory grows monotonically with the micro-batch, the sequence length and the rank, so "the
largest value that fits" is a search over a monotone function; `largest_fitting` interpolates
(the peak is close to affine in batch and rank, and at most quadratic in sequence length) and
falls back to bisection, so an answer costs a handful of `memory_estimate` calls, not dozens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

from .architecture import Architecture
from .bounds import MAX_BATCH_SIZE, MAX_SEQ_LEN
from .estimate import memory_estimate
from .gpus import Gpu
from .lora import LoraCount, LoraSettings, count_lora
from .training import TrainingSettings

QUANTIZED_4BIT = ("nf4", "fp4")
EIGHT_BIT_OPTIMIZERS = ("adamw_8bit", "paged_adamw_8bit")


@dataclass(frozen=True, slots=True)
class Change:
    """One remedy: what to change (API field paths and values), and the peak it leads to."""

    key: str  # gradient_checkpointing | qlora | optimizer_8bit | rank | batch_size | seq_len | combined
    label: str
    settings: tuple[tuple[str, object], ...]  # e.g. (("training.gradient_checkpointing", True),)
    total_bytes: int
    fits: bool


@dataclass(frozen=True, slots=True)
class Advice:
    gpu: Gpu
    total_bytes: int
    fits: bool
    headroom_bytes: int  # negative when it does not fit
    max_batch_size: int | None  # largest micro-batch at this sequence length; None: not even 1
    max_seq_len: int | None  # longest sequence at this micro-batch; None: not even 1 token
    seq_len_limit: int  # where the sequence search stops (the model's context, if known)
    changes: tuple[Change, ...]  # remedies, each alone, then together; empty when it fits


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


def advise(arch: Architecture, lora: LoraSettings, training: TrainingSettings, gpu: Gpu) -> Advice:
    """Raises whatever `estimate` raises for invalid inputs; call it with inputs `estimate` accepted."""
    return _advise(arch, lora, training, gpu)


@lru_cache(maxsize=512)
def _advise(arch: Architecture, lora: LoraSettings, training: TrainingSettings, gpu: Gpu) -> Advice:
    count = count_lora(arch, lora)
    limit = gpu.memory_bytes

    seen: dict[tuple[TrainingSettings, int], int] = {}

    def peak(t: TrainingSettings, c: LoraCount = count) -> int:
        key = (t, c.trainable_params)
        if key not in seen:
            seen[key] = memory_estimate(arch, c, t).total_bytes
        return seen[key]

    total = peak(training)
    fits = total <= limit
    seq_limit = min(arch.dims.max_position_embeddings or MAX_SEQ_LEN, MAX_SEQ_LEN)
    seq_limit = max(seq_limit, training.seq_len)
    if fits:
        max_batch = largest_fitting(
            lambda b: peak(replace(training, batch_size=b)), limit, MAX_BATCH_SIZE, lo=training.batch_size
        )
        max_seq = largest_fitting(lambda s: peak(replace(training, seq_len=s)), limit, seq_limit, lo=training.seq_len)
    else:
        max_batch = largest_fitting(lambda b: peak(replace(training, batch_size=b)), limit, training.batch_size)
        max_seq = largest_fitting(lambda s: peak(replace(training, seq_len=s)), limit, training.seq_len)
    changes: tuple[Change, ...] = ()
    if not fits:
        changes = _remedies(arch, lora, training, limit, peak, max_batch, max_seq)
    return Advice(gpu, total, fits, limit - total, max_batch, max_seq, seq_limit, changes)


def _remedies(
    arch: Architecture,
    lora: LoraSettings,
    training: TrainingSettings,
    limit: int,
    peak: Callable[..., int],
    max_batch: int | None,
    max_seq: int | None,
) -> tuple[Change, ...]:
    changes: list[Change] = []
    combined = training
    combined_settings: list[tuple[str, object]] = []

    def single(key: str, label: str, settings: tuple[tuple[str, object], ...], changed: TrainingSettings) -> None:
        value = peak(changed)
        changes.append(Change(key, label, settings, value, value <= limit))

    if not training.gradient_checkpointing:
        settings: tuple[tuple[str, object], ...] = (("training.gradient_checkpointing", True),)
        single(
            "gradient_checkpointing",
            "Turn on gradient checkpointing",
            settings,
            replace(training, gradient_checkpointing=True),
        )
        combined = replace(combined, gradient_checkpointing=True)
        combined_settings += settings
    if training.optimizer == "adamw":
        settings = (("training.optimizer", "paged_adamw_8bit"),)
        single(
            "optimizer_8bit",
            "Use the paged 8-bit AdamW optimizer",
            settings,
            replace(training, optimizer="paged_adamw_8bit"),
        )
        combined = replace(combined, optimizer="paged_adamw_8bit")
        combined_settings += settings
    if training.base_dtype not in QUANTIZED_4BIT:
        settings = (("training.base_dtype", "nf4"), ("training.double_quant", True))
        single(
            "qlora",
            "Load the base in 4-bit NF4 with double quantization (QLoRA)",
            settings,
            replace(training, base_dtype="nf4", double_quant=True),
        )
        combined = replace(combined, base_dtype="nf4", double_quant=True)
        combined_settings += settings
    if training.batch_size > 1 and max_batch is not None:
        single(
            "batch_size",
            f"Use a micro-batch of {max_batch} (and gradient accumulation)",
            (("training.batch_size", max_batch),),
            replace(training, batch_size=max_batch),
        )
    if max_seq is not None and max_seq < training.seq_len:
        single(
            "seq_len",
            f"Shorten sequences to {max_seq:,} tokens",
            (("training.seq_len", max_seq),),
            replace(training, seq_len=max_seq),
        )
    if lora.r > 1 and not lora.rank_pattern:
        r = largest_fitting(lambda x: peak(training, count_lora(arch, replace(lora, r=x))), limit, lora.r - 1)
        if r is not None:
            value = peak(training, count_lora(arch, replace(lora, r=r)))
            changes.append(Change("rank", f"Lower the rank to r={r}", (("lora.r", r),), value, value <= limit))
    if len({path for path, _ in combined_settings} - {"training.double_quant"}) > 1:
        value = peak(combined)
        changes.append(
            Change(
                "combined",
                "All of gradient checkpointing, 8-bit AdamW and QLoRA together",
                tuple(combined_settings),
                value,
                value <= limit,
            )
        )
    return tuple(changes)
