"""Peak memory as an exact closed form in (batch_size, seq_len, r, num_gpus), derived once per structure.

Every field of `MemoryEstimate` is, for one structure (architecture, LoRA targets, training settings other
than micro-batch, sequence length, rank and GPU count), a polynomial with few monomials:

    c₁ + c_r·r + c_s·s + c_b·b + c_T·b·s + c_Tr·b·s·r + c_q·b·s² + c_p·b·⌈s/32⌉·32 + c_1·[b = 1] + c_m·s²

(tokens b·s for most activations and the logits, b·s·r for LoRA's rank-r activations, b·s² for eager
attention's scores and masks, s² for a mask the batch shares, s for the rotary tables and position ids;
the padded log-sum-exp of fp32 SDPA and the b = 1 view of the shifted labels are the exact rounding steps;
a sliding window adds a step at s = W, see `WindowedForm`), except the optimizer states,
which follow the optimizer's own per-tensor rule (8-bit states: a 4,096-element threshold and a per-256
absmax), computed from the trainable tensors' shapes, which are affine in r; a field that depends on r
alone but follows no such rule (ZeRO's fp32 copies of 8-bit states, an offload's size threshold) is
evaluated once per rank and cached. On n > 1 GPUs each field is ``ceil(shard / n) + replicated + n · per_gpu``
with the three parts in the same basis (FSDP/ZeRO shards, quantization constants and gathered layers kept
whole, host copies every process makes), derived the first time a question names more than one GPU.

The coefficients come from evaluating `memory_estimate` at a fixed set of points and solving exactly
(rationals); the form is then checked at other points, field by field, so it is exact or it says so:
a field that leaves this family (a new memory term the basis lacks; today the chunked and fused losses'
chunk and tile roundings, see docs/accuracy.md) is evaluated instead, and when a part of the peak does, the
goal seeking bisects on evaluations of `memory_estimate` (still exact, ~20 evaluations). Otherwise questions
(largest micro-batch, longest sequence, fewest GPUs) are solved arithmetically: affine in b, piecewise
quadratic in s, ``ceil(P / n)`` in n; the rank bisects over the form (8-bit states step in r).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from functools import lru_cache
from itertools import product
from math import gcd, isqrt, lcm
from operator import attrgetter

from .architecture import Architecture
from .bounds import MAX_BATCH_SIZE, MAX_GPUS, MAX_RANK, MAX_SEQ_LEN
from .dtypes import ceil_div
from .errors import InputError
from .estimate import MemoryEstimate, memory_estimate
from .lora import LoraCount, LoraSettings, count_lora
from .memory import trainable_state_tensors
from .optimizers import StateTensor, optimizer_state_bytes
from .training import TrainingSettings

LSE_PAD = 32  # fp32 SDPA pads the log-sum-exp's sequence to a multiple of 32
PEAK_PARTS: tuple[str, ...] = (
    "base_weights_bytes",
    "adapter_weights_bytes",
    "gradients_bytes",
    "optimizer_states_bytes",
    "activations_bytes",
    "logits_bytes",
    "transient_bytes",
    "overhead_bytes",
)
# total_bytes is the sum of the parts (checked at every evaluated point), not a field of its own
FIELDS: tuple[str, ...] = tuple(f.name for f in fields(MemoryEstimate) if f.name != "total_bytes")

# Points (b, s, r) where the estimate is evaluated to solve for the 10 coefficients, then points that check.
FIT_POINTS: tuple[tuple[int, int, int], ...] = (
    # four sequence lengths whose padded lengths are not a quadratic in s, b = 1 twice, r = 2 twice
    (1, 33, 1),
    (2, 33, 1),
    (3, 33, 1),
    (2, 64, 1),
    (2, 100, 1),
    (2, 130, 1),
    (2, 33, 2),
    (3, 100, 2),
    (1, 64, 1),
    (1, 130, 2),
)
# Check points span the whole range (a token, and the largest micro-batch and sequence) so that fields which
# are the larger of two polynomials (layers with different adapters) show where another one takes over.
CHECK_POINTS: tuple[tuple[int, int, int], ...] = (
    (1, 1, 1),
    (2, 1, 3),
    (1, 1, 64),
    (1, 2, 4096),
    (4, 33, 2),
    (1, 257, 3),
    (5, 1000, 1),
    (2, 4096, 3),
    (MAX_BATCH_SIZE, 64, 2),
    (1, MAX_SEQ_LEN, 1),
)
Rational = Fraction | int  # exact either way; ints where every denominator is 1
HUGE_GPUS = 2**64  # more GPUs than any field has bytes: ceil(shard / n) is 1 or 0


def _padded(s: int) -> int:
    return ceil_div(s, LSE_PAD) * LSE_PAD


def monomials(b: int, s: int, r: int) -> tuple[int, ...]:
    return (1, r, s, b, b * s, b * s * r, b * s * s, b * _padded(s), 1 if b == 1 else 0, s * s)


def dot(c: tuple[int, ...], b: int, s: int, r: int) -> int:
    """``sum(c · monomials(b, s, r))``, written out: the advice and the planner evaluate hundreds of peaks per
    request, and this is a few times faster than the generator over `monomials`."""
    t = b * s
    p = b * _padded(s)
    one = c[8] if b == 1 else 0
    return (
        c[0] + c[1] * r + c[2] * s + c[3] * b + c[4] * t + c[5] * t * r + c[6] * t * s + c[7] * p + one + c[9] * s * s
    )


def _inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    n = len(matrix)
    a = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next(i for i in range(col, n) if a[i][col] != 0)
        a[col], a[pivot] = a[pivot], a[col]
        p = a[col][col]
        a[col] = [x / p for x in a[col]]
        for i in range(n):
            if i != col and a[i][col] != 0:
                f = a[i][col]
                a[i] = [x - f * y for x, y in zip(a[i], a[col], strict=True)]
    return [row[n:] for row in a]


def _integer_inverse(points: tuple[tuple[int, int, int], ...]) -> tuple[tuple[tuple[int, ...], ...], int]:
    """The inverse of the monomials at the fit points as integers over one common denominator."""
    inverse = _inverse([[Fraction(m) for m in monomials(*p)] for p in points])
    denominator = 1
    for row in inverse:
        for x in row:
            denominator = lcm(denominator, x.denominator)
    return tuple(tuple(int(x * denominator) for x in row) for row in inverse), denominator


_FIT_INVERSE, _FIT_DENOMINATOR = _integer_inverse(FIT_POINTS)


# --- field models ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Poly:
    """Integer coefficients over a common denominator, in the order of `monomials`."""

    coefficients: tuple[int, ...]
    denominator: int

    def value(self, b: int, s: int, r: int) -> int:
        return dot(self.coefficients, b, s, r) // self.denominator

    def _rationals(self) -> tuple[Rational, ...]:
        """The coefficients as numbers: plain integers when the denominator is 1 (nearly always), which the
        goal seeking adds and multiplies several times faster than Fractions, with the same exact results."""
        if self.denominator == 1:
            return self.coefficients
        return tuple(Fraction(x, self.denominator) for x in self.coefficients)

    def in_batch(self, s: int, r: int) -> tuple[Rational, Rational, Rational]:
        """(per-b slope, constant, extra at b = 1) at fixed s and r."""
        c = self._rationals()
        slope = c[3] + c[4] * s + c[5] * s * r + c[6] * s * s + c[7] * _padded(s)
        return slope, c[0] + c[1] * r + c[2] * s + c[9] * s * s, c[8]

    def in_sequence(self, b: int, r: int) -> tuple[Rational, Rational, Rational, Rational]:
        """(s², s, padded s, constant) coefficients at fixed b and r."""
        c = self._rationals()
        return c[6] * b + c[9], c[2] + c[4] * b + c[5] * b * r, c[7] * b, c[0] + c[1] * r + c[3] * b + c[8] * (b == 1)


@dataclass(frozen=True, slots=True)
class OptimizerStates:
    """The optimizer's bytes from the trainable tensors, whose shapes are affine in r."""

    optimizer: str
    tensors: tuple[tuple[tuple[tuple[int, int], ...], int, int], ...]  # per-dim (d0, d1): d0 + d1·r; count; bytes

    def value(self, b: int, s: int, r: int) -> int:
        states = [StateTensor(tuple(d0 + d1 * r for d0, d1 in dims), n, e) for dims, n, e in self.tensors]
        return optimizer_state_bytes(self.optimizer, states)


@dataclass(frozen=True, slots=True)
class PerRank:
    """A field that does not depend on the micro-batch or the sequence (a model state whose rule is no
    polynomial in r, e.g. ZeRO's fp32 copies of 8-bit states or an offload's size threshold): one
    evaluation per rank, cached, then arithmetic for every batch, sequence and GPU question."""

    arch: Architecture
    lora: LoraSettings
    training: TrainingSettings
    name: str

    def value(self, b: int, s: int, r: int) -> int:
        return int(getattr(_at_rank(self.arch, self.lora, self.training, r), self.name))


Model = Poly | OptimizerStates | PerRank


@dataclass(frozen=True, slots=True)
class GpuRule:
    """A field on each of n > 1 GPUs: ``ceil(shard / n) + replicated + n · per_gpu`` (FSDP and ZeRO shard
    with ``ceil``; quantization constants, partly sharded gradients and gathered layers are replicated;
    host copies made by every process grow with n)."""

    shard: Model
    replicated: Model
    per_gpu: Model

    def value(self, b: int, s: int, r: int, n: int) -> int:
        return ceil_div(self.shard.value(b, s, r), n) + self.replicated.value(b, s, r) + n * self.per_gpu.value(b, s, r)


@dataclass(frozen=True, slots=True)
class FieldForm:
    name: str
    model: Model  # one GPU
    gpus: GpuRule | None = None  # n > 1; None: the same as on one GPU

    def value(self, b: int, s: int, r: int, n: int) -> int:
        if n <= 1 or self.gpus is None:
            return self.model.value(b, s, r)
        return self.gpus.value(b, s, r, n)

    def sharded(self) -> bool:
        return self.gpus is not None and not _is_zero(self.gpus.shard)


def _is_zero(model: Model) -> bool:
    return isinstance(model, Poly) and not any(model.coefficients)


ZERO = Poly((0,) * 10, 1)


# --- the form ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryForm:
    """One structure's `MemoryEstimate` for any (b, s, r, n), always equal to `memory_estimate`.

    ``exact``: every field is in closed form. ``closed``: at least the peak's parts are, so the goal
    seeking is arithmetic. A field outside the basis (``evaluated``; e.g. the largest layer's activations
    when layers with different adapters cross over as the tokens grow) is evaluated instead; a peak
    outside it makes the goal seeking bisect on evaluations.

    The form is derived for one GPU; the GPU rules (`GpuRule`) are derived the first time a question
    names more than one (`on_gpus`) and kept with it."""

    arch: Architecture
    lora: LoraSettings
    training: TrainingSettings
    fields: tuple[FieldForm, ...]
    exact: bool
    evaluated: frozenset[str] = frozenset()
    closed: bool = True
    multi_gpu: bool = False  # the fields carry their GPU rules
    _many: list[MemoryForm] = field(default_factory=list, compare=False, hash=False, repr=False)
    _one_gpu: list[_PeakOnOneGpu] = field(default_factory=list, compare=False, hash=False, repr=False)

    def on_gpus(self, num_gpus: int) -> MemoryForm:
        """The form that answers for ``num_gpus`` (this one, or the one with GPU rules)."""
        if num_gpus <= 1 or self.multi_gpu:
            return self
        if not self._many:
            self._many.append(_gpu_form(self))
        return self._many[0]

    @property
    def sharded(self) -> bool:
        """Some part of the peak falls as GPUs are added (or may: a part that is evaluated)."""
        many = self.on_gpus(2)
        return not many.closed or any(f.sharded() for f in many.fields if f.name in PEAK_PARTS)

    def estimate(self, batch_size: int, seq_len: int, r: int, num_gpus: int = 1) -> MemoryEstimate:
        if num_gpus > 1 and not self.multi_gpu:
            return self.on_gpus(num_gpus).estimate(batch_size, seq_len, r, num_gpus)
        if self.evaluated:
            return _evaluate(self.arch, self.lora, self.training, batch_size, seq_len, r, num_gpus)
        values = {f.name: f.value(batch_size, seq_len, r, num_gpus) for f in self.fields}
        return MemoryEstimate(total_bytes=sum(values[name] for name in PEAK_PARTS), **values)

    def total(self, batch_size: int, seq_len: int, r: int, num_gpus: int = 1) -> int:
        if num_gpus > 1 and not self.multi_gpu:
            return self.on_gpus(num_gpus).total(batch_size, seq_len, r, num_gpus)
        if not self.closed:
            return self.estimate(batch_size, seq_len, r, num_gpus).total_bytes
        if num_gpus <= 1:
            if not self._one_gpu:
                self._one_gpu.append(_PeakOnOneGpu.of([f.model for f in self._parts()]))
            return self._one_gpu[0].value(batch_size, seq_len, r)
        return sum(f.value(batch_size, seq_len, r, num_gpus) for f in self.fields if f.name in PEAK_PARTS)

    # --- goal seeking: the largest value whose peak is at most `limit` ---

    def _parts(self) -> list[FieldForm]:
        return [f for f in self.fields if f.name in PEAK_PARTS]

    def _terms(self, n: int) -> list[tuple[Model, int]]:
        """The peak's models at n GPUs as (model, multiplier), with the ``ceil(shard / n)`` parts apart."""
        terms: list[tuple[Model, int]] = []
        for f in self._parts():
            if n <= 1 or f.gpus is None:
                terms.append((f.model, 1))
            else:
                terms += [(f.gpus.replicated, 1), (f.gpus.per_gpu, n)]
        return terms

    def _shards(self, n: int) -> list[Model]:
        return [f.gpus.shard for f in self._parts() if n > 1 and f.gpus is not None and not _is_zero(f.gpus.shard)]

    def max_batch_size(self, limit: int, seq_len: int, r: int, num_gpus: int = 1) -> int | None:
        """Affine in b (above b = 1): solved by division."""
        if num_gpus > 1 and not self.multi_gpu:
            return self.on_gpus(num_gpus).max_batch_size(limit, seq_len, r, num_gpus)
        shards = self._shards(num_gpus)
        if not self.closed or any(_in_batch(m, seq_len, r)[0] != 0 for m in shards):
            return _bisect(lambda b: self.total(b, seq_len, r, num_gpus), limit, 1, MAX_BATCH_SIZE)
        slope: Rational = 0
        constant: Rational = 0
        for model, k in self._terms(num_gpus):
            a, c = _in_batch(model, seq_len, r)
            slope, constant = slope + k * a, constant + k * c
        constant += sum(ceil_div(m.value(2, seq_len, r), num_gpus) for m in shards)
        best = None
        if self.total(1, seq_len, r, num_gpus) <= limit:
            best = 1
        if slope <= 0:
            return MAX_BATCH_SIZE if constant + 2 * slope <= limit else best
        b = min((limit - constant) // slope, MAX_BATCH_SIZE)
        return int(b) if b >= 2 else best

    def max_seq_len(self, limit: int, batch_size: int, r: int, num_gpus: int = 1, hi: int = MAX_SEQ_LEN) -> int | None:
        """Quadratic in s between the 32-token steps of a padded log-sum-exp: solved per step."""
        if num_gpus > 1 and not self.multi_gpu:
            return self.on_gpus(num_gpus).max_seq_len(limit, batch_size, r, num_gpus, hi)

        def search() -> int | None:
            return _bisect(lambda s: self.total(batch_size, s, r, num_gpus), limit, 1, hi)

        shards = self._shards(num_gpus)
        if not self.closed or any(any(_in_sequence(m, batch_size, r)[:3]) for m in shards):
            return search()  # a sharded part that grows with s: not expected, but stay exact
        quadratic: Rational = 0
        linear: Rational = 0
        padded: Rational = 0
        constant: Rational = 0
        for model, k in self._terms(num_gpus):
            q, lin, p, c = _in_sequence(model, batch_size, r)
            quadratic, linear, padded, constant = quadratic + k * q, linear + k * lin, padded + k * p, constant + k * c
        constant += sum(ceil_div(m.value(batch_size, 1, r), num_gpus) for m in shards)
        if min(quadratic, linear, padded) < 0:
            return search()
        return _largest_sequence(quadratic, linear, padded, constant, limit, hi)

    def max_rank(self, limit: int, batch_size: int, seq_len: int, num_gpus: int = 1, hi: int = MAX_RANK) -> int | None:
        """The peak grows with r but the 8-bit optimizers' per-tensor rules make it a step function:
        bisection over the closed form (each step is arithmetic, not an estimate)."""
        return _bisect(lambda r: self.total(batch_size, seq_len, r, num_gpus), limit, 1, hi)

    def min_gpus(self, limit: int, batch_size: int, seq_len: int, r: int) -> int | None:
        """Fewest GPUs whose per-GPU peak is at most ``limit``: sharded parts fall as ``ceil(P/n)``."""
        if self.total(batch_size, seq_len, r, 1) <= limit:
            return 1
        if not self.sharded:
            return None
        many, point = self.on_gpus(2), (batch_size, seq_len, r)
        if not many.closed:
            return _bisect_min(lambda n: many.total(*point, n), limit, 2, MAX_GPUS)
        if sum(m.value(*point) for m, k in many._terms(2) if k == 2) != 0:
            # a peak part that grows with n (not expected): scan, each step arithmetic
            return next((n for n in range(2, MAX_GPUS + 1) if many.total(*point, n) <= limit), None)
        fixed = sum(m.value(*point) for m, _ in many._terms(2))
        shardable = sum(m.value(*point) for m in many._shards(2))
        if fixed >= limit:
            return None
        n = max(2, ceil_div(shardable, limit - fixed))
        for candidate in range(n, min(n + len(many.fields), MAX_GPUS) + 1):  # each part rounds up by < 1 byte/GPU
            if many.total(*point, candidate) <= limit:
                return candidate
        return None


MAX_RANKS_REMEMBERED = 1024


@dataclass(frozen=True, slots=True)
class _PeakOnOneGpu:
    """The peak on one GPU as one sum: the integer polynomials' coefficients added into one vector (exact: each
    part is a whole number of bytes), and the parts that depend on r alone (optimizer states, per-rank fields)
    remembered per rank. Why: the advice and the planner ask for hundreds of peaks per request; this makes each
    one a single 10-term dot product instead of eight models evaluated and summed."""

    coefficients: tuple[int, ...]
    per_rank: tuple[Model, ...]  # OptimizerStates and PerRank: functions of r only
    others: tuple[Model, ...]  # polynomials over a denominator: evaluated as they are
    ranks: dict[int, int] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @staticmethod
    def of(models: list[Model]) -> _PeakOnOneGpu:
        coefficients = [0] * len(ZERO.coefficients)
        per_rank: list[Model] = []
        others: list[Model] = []
        for model in models:
            if isinstance(model, Poly) and model.denominator == 1:
                coefficients = [a + b for a, b in zip(coefficients, model.coefficients, strict=True)]
            elif isinstance(model, Poly):
                others.append(model)
            else:
                per_rank.append(model)
        return _PeakOnOneGpu(tuple(coefficients), tuple(per_rank), tuple(others))

    def value(self, b: int, s: int, r: int) -> int:
        total = dot(self.coefficients, b, s, r)
        if self.per_rank:
            known = self.ranks.get(r)
            if known is None:
                if len(self.ranks) >= MAX_RANKS_REMEMBERED:
                    self.ranks.clear()
                known = self.ranks[r] = sum(m.value(1, 1, r) for m in self.per_rank)
            total += known
        if self.others:
            total += sum(m.value(b, s, r) for m in self.others)
        return total


def _in_batch(model: Model, s: int, r: int) -> tuple[Rational, Rational]:
    """(per-b slope, constant) for b >= 2 at fixed s and r."""
    if isinstance(model, Poly):
        return model.in_batch(s, r)[:2]
    return 0, model.value(2, s, r)


def _in_sequence(model: Model, b: int, r: int) -> tuple[Rational, Rational, Rational, Rational]:
    if isinstance(model, Poly):
        return model.in_sequence(b, r)
    return 0, 0, 0, model.value(b, 1, r)


def _bisect(peak: Callable[[int], int], limit: int, lo: int, hi: int) -> int | None:
    """Largest x in [lo, hi] with peak(x) <= limit, for a non-decreasing peak."""
    if peak(lo) > limit:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if peak(mid) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _bisect_min(peak: Callable[[int], int], limit: int, lo: int, hi: int) -> int | None:
    """Smallest x in [lo, hi] with peak(x) <= limit, for a non-increasing peak."""
    if peak(hi) > limit:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if peak(mid) <= limit:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _largest_root(a: Rational, b: Rational, c: Rational) -> int:
    """Largest integer x >= 0 with a·x² + b·x + c <= 0 (a, b >= 0), or -1 when none."""
    if c > 0:
        return -1
    if a == 0:
        return MAX_SEQ_LEN if b == 0 else int(-c // b)
    scale = a.denominator * b.denominator * c.denominator
    ai, bi, ci = int(a * scale), int(b * scale), int(c * scale)
    x = max((-bi + isqrt(bi * bi - 4 * ai * ci)) // (2 * ai), 0)
    while ai * (x + 1) ** 2 + bi * (x + 1) + ci <= 0:
        x += 1
    while x >= 0 and ai * x * x + bi * x + ci > 0:
        x -= 1
    return x


def _largest_sequence(q: Rational, lin: Rational, pad: Rational, k: Rational, limit: int, hi: int) -> int | None:
    """Largest s in [1, hi] with q·s² + lin·s + pad·⌈s/32⌉·32 + k <= limit (non-decreasing in s)."""

    def peak(s: int) -> Rational:
        return q * s * s + lin * s + pad * _padded(s) + k

    if peak(1) > limit:
        return None
    if peak(hi) <= limit:
        return hi
    s = min(_largest_root(q, lin + pad, k - limit), hi)  # the padded length is at least s
    while s >= 1:  # the answer lies in this 32-token step or the one before
        step_end = _padded(s)
        candidate = min(s, _largest_root(q, lin, pad * step_end + k - limit))
        if candidate > step_end - LSE_PAD:
            return candidate
        s = step_end - LSE_PAD
    return None


# --- derivation -------------------------------------------------------------------------------------------


def _evaluate(
    arch: Architecture, lora: LoraSettings, training: TrainingSettings, b: int, s: int, r: int, n: int
) -> MemoryEstimate:
    return memory_estimate(arch, lora_count(arch, lora, r), replace(training, batch_size=b, seq_len=s, num_gpus=n))


@lru_cache(maxsize=4096)
def _at_rank(arch: Architecture, lora: LoraSettings, training: TrainingSettings, r: int) -> MemoryEstimate:
    return _evaluate(arch, lora, training, 1, 1, r, 1)


@lru_cache(maxsize=256)
def lora_count(arch: Architecture, lora: LoraSettings, r: int) -> LoraCount:
    """`count_lora` at rank ``r`` (cached: the forms and the advice ask for the same few ranks)."""
    return count_lora(arch, replace(lora, r=r))


def memory_form(arch: Architecture, lora: LoraSettings, training: TrainingSettings) -> MemoryForm | WindowedForm:
    """The form for this structure (the rank, micro-batch, sequence length and GPU count of the
    arguments do not matter). Raises what `count_lora` raises for invalid LoRA settings."""
    key = (arch, *structure_of(lora, training))
    form = _derived.get(key)  # the one store of derived forms
    if form is None:
        lora, training = structure_key(lora, training)
        window = arch.forward.sliding_window if arch.forward is not None else None
        if window is None or training.attn_implementation != "sdpa":
            form = _memory_form(arch, lora, training)
        else:
            form = _windowed_form(arch, lora, training, window)
        if len(_derived) >= MAX_COUNTED_STRUCTURES:
            _derived.clear()
        _derived[key] = form
    return form


# A structure's closed form costs about as much as FORM_AFTER direct estimates to derive, so a structure is
# evaluated directly until it has been asked for that often (one advice asks ~20 times for the divisors of a
# micro-batch; new configurations of the same structure keep asking), then from its form: never much more than
# the direct cost on the first request of an unusual structure (1,024 layers), arithmetic on the next ones.
FORM_AFTER = 24
MAX_COUNTED_STRUCTURES = 4096
# What `structure_key` keeps, read as tuples: a new rank, micro-batch or sequence length (every request) then
# costs two attribute reads instead of two dataclass copies.
_LORA_STRUCTURE = attrgetter(*(f.name for f in fields(LoraSettings) if f.name != "r"))
_TRAINING_STRUCTURE = attrgetter(
    *(f.name for f in fields(TrainingSettings) if f.name not in ("batch_size", "seq_len", "num_gpus"))
)
StructureKey = tuple[Architecture, tuple[object, ...], tuple[object, ...]]
_asked: dict[Hashable, int] = {}
_derived: dict[StructureKey, MemoryForm | WindowedForm] = {}  # every form derived (`memory_form`), by structure


def asked_often(key: Hashable, after: int) -> bool:
    """Count one more question about ``key`` (a structure); True once it has been asked ``after`` times, when
    deriving something for the structure has paid for itself (bounded: the counts restart when full)."""
    asked = _asked.get(key, 0) + 1
    if asked <= after:
        if len(_asked) >= MAX_COUNTED_STRUCTURES:
            _asked.clear()
        _asked[key] = asked
    return asked >= after


def structure_of(lora: LoraSettings, training: TrainingSettings) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """`structure_key` as attribute tuples (no dataclass copies)."""
    return _LORA_STRUCTURE(lora), _TRAINING_STRUCTURE(training)


def warm_form(arch: Architecture, lora: LoraSettings, training: TrainingSettings) -> MemoryForm | WindowedForm | None:
    """The structure's form once it has been asked for often enough to pay for itself, else None (evaluate
    `memory_estimate` directly: the form equals it exactly, see `tests/core/test_plan_form.py`)."""
    if not asked_often((arch, *structure_of(lora, training)), FORM_AFTER):
        return None
    return memory_form(arch, lora, training)


def memory_at(arch: Architecture, lora: LoraSettings, count: LoraCount, training: TrainingSettings) -> MemoryEstimate:
    """`memory_estimate` for ``count`` (``lora``'s count), from the structure's form once it is warm."""
    form = warm_form(arch, lora, training)
    if form is None:
        return memory_estimate(arch, count, training)
    return form.estimate(training.batch_size, training.seq_len, lora.r, training.num_gpus)


@dataclass(frozen=True, slots=True)
class WindowedForm:
    """Two forms split at the sliding window W: while the keys are fewer than the window (s < W) sdpa needs no
    mask; from there on, the sliding-window layers get a 4-D mask and their k and v are repeated to every head
    (a step in s that no polynomial crosses). Each regime is an exact form of its own, derived on the
    architecture with the window moved out of the way (never masked) or to 0 (always masked)."""

    window: int
    low: MemoryForm
    high: MemoryForm

    def _at(self, seq_len: int) -> MemoryForm:
        return self.low if seq_len < self.window else self.high

    @property
    def exact(self) -> bool:
        return self.low.exact and self.high.exact

    @property
    def closed(self) -> bool:
        return self.low.closed and self.high.closed

    @property
    def sharded(self) -> bool:
        return self.low.sharded or self.high.sharded

    def estimate(self, batch_size: int, seq_len: int, r: int, num_gpus: int = 1) -> MemoryEstimate:
        return self._at(seq_len).estimate(batch_size, seq_len, r, num_gpus)

    def total(self, batch_size: int, seq_len: int, r: int, num_gpus: int = 1) -> int:
        return self._at(seq_len).total(batch_size, seq_len, r, num_gpus)

    def max_batch_size(self, limit: int, seq_len: int, r: int, num_gpus: int = 1) -> int | None:
        return self._at(seq_len).max_batch_size(limit, seq_len, r, num_gpus)

    def max_rank(self, limit: int, batch_size: int, seq_len: int, num_gpus: int = 1, hi: int = MAX_RANK) -> int | None:
        return self._at(seq_len).max_rank(limit, batch_size, seq_len, num_gpus, hi)

    def min_gpus(self, limit: int, batch_size: int, seq_len: int, r: int) -> int | None:
        return self._at(seq_len).min_gpus(limit, batch_size, seq_len, r)

    def max_seq_len(self, limit: int, batch_size: int, r: int, num_gpus: int = 1, hi: int = MAX_SEQ_LEN) -> int | None:
        """The peak grows with s in both regimes and jumps up at the window: the longest sequence past the
        window if one fits there, else the longest up to it."""
        if hi >= self.window:
            longest = self.high.max_seq_len(limit, batch_size, r, num_gpus, hi)
            if longest is not None and longest >= self.window:
                return longest
        return self.low.max_seq_len(limit, batch_size, r, num_gpus, min(hi, self.window - 1))


def _windowed_form(arch: Architecture, lora: LoraSettings, training: TrainingSettings, window: int) -> WindowedForm:
    never = replace(arch, forward=replace(arch.forward, sliding_window=MAX_SEQ_LEN + 1))
    always = replace(arch, forward=replace(arch.forward, sliding_window=0))
    return WindowedForm(window, _memory_form(never, lora, training), _memory_form(always, lora, training))


def _memory_form(arch: Architecture, lora: LoraSettings, training: TrainingSettings) -> MemoryForm:
    def at(b: int, s: int, r: int, n: int = 1) -> MemoryEstimate:
        return _evaluate(arch, lora, training, b, s, r, n)

    evaluated = {p: at(*p) for p in FIT_POINTS + CHECK_POINTS}
    samples = [evaluated[p] for p in FIT_POINTS]
    optimizer = _optimizer_model(arch, lora, training)
    field_forms: list[FieldForm] = []
    outside: set[str] = set()
    for name in FIELDS:
        candidates: list[Model] = [_fit([getattr(e, name) for e in samples])]
        if name == "optimizer_states_bytes" and optimizer is not None:
            candidates.insert(0, optimizer)
        candidates.append(PerRank(arch, lora, training, name))
        model = next(
            (m for m in candidates if all(m.value(*p) == getattr(e, name) for p, e in evaluated.items())), None
        )
        if model is None:
            outside.add(name)
        field_forms.append(FieldForm(name, model if model is not None else candidates[0]))
    if not all(sum(getattr(e, n) for n in PEAK_PARTS) == e.total_bytes for e in evaluated.values()):
        outside = set(FIELDS)  # the peak is not the sum of the parts any more
    closed = not outside & set(PEAK_PARTS)
    return MemoryForm(arch, lora, training, tuple(field_forms), not outside, frozenset(outside), closed)


def _gpu_form(single: MemoryForm) -> MemoryForm:
    def at(b: int, s: int, r: int, n: int) -> MemoryEstimate:
        return _evaluate(single.arch, single.lora, single.training, b, s, r, n)

    outside = set(single.evaluated)
    forms = _gpu_rules(list(single.fields), at, outside)
    closed = not outside & set(PEAK_PARTS)
    return replace(
        single,
        fields=tuple(forms),
        exact=not outside,
        evaluated=frozenset(outside),
        closed=closed,
        multi_gpu=True,
        _many=[],
    )


def _fit(values: list[int]) -> Poly:
    numerators = [sum(x * v for x, v in zip(row, values, strict=True)) for row in _FIT_INVERSE]
    d = _FIT_DENOMINATOR
    denominator = lcm(*(d // gcd(n, d) for n in numerators))  # 1 when every coefficient is an integer
    return Poly(tuple(n * denominator // d for n in numerators), denominator)


def _optimizer_model(arch: Architecture, lora: LoraSettings, training: TrainingSettings) -> OptimizerStates | None:
    """Trainable tensor shapes at r = 1 and r = 2 give each dimension as d0 + d1·r."""
    try:
        one = trainable_state_tensors(lora_count(arch, lora, 1), training)
        two = trainable_state_tensors(lora_count(arch, lora, 2), training)
    except InputError:
        return None
    if len(one) != len(two):
        return None
    tensors = []
    for t1, t2 in zip(one, two, strict=True):
        if len(t1.shape) != len(t2.shape) or t1.count != t2.count or t1.element_bytes != t2.element_bytes:
            return None
        dims = tuple((2 * d1 - d2, d2 - d1) for d1, d2 in zip(t1.shape, t2.shape, strict=True))
        tensors.append((dims, t1.count, t1.element_bytes))
    return OptimizerStates(training.optimizer, tuple(tensors))


def _gpu_rules(forms: list[FieldForm], at: Callable[..., MemoryEstimate], outside: set[str]) -> list[FieldForm]:
    """Each closed field's `GpuRule` from evaluations at n = 2 and at a GPU count larger than any field
    (there ``ceil(shard / n)`` is 1 or 0, and ``n · per_gpu`` stands apart), checked at n = 2, 3 and 8.
    A field the rule does not reproduce joins ``outside`` (evaluated)."""
    two = {p: at(*p, 2) for p in FIT_POINTS}
    big = {p: at(*p, HUGE_GPUS) for p in FIT_POINTS}
    three: dict[tuple[int, int, int], MemoryEstimate] = {}
    checks = {(p, n): at(*p, n) for p in CHECK_POINTS for n in (2, 3, 8)}
    if not all(sum(getattr(e, n) for n in PEAK_PARTS) == e.total_bytes for e in [*two.values(), *checks.values()]):
        outside.update(FIELDS)
    out = []
    for f in forms:
        if f.name in outside:
            out.append(f)
            continue
        shard, replicated, per_gpu = [], [], []
        for p in FIT_POINTS:
            per, rest = divmod(getattr(big[p], f.name), HUGE_GPUS)
            half = getattr(two[p], f.name) - 2 * per - rest  # ceil(shard / 2) - [shard > 0]
            if half <= 0:  # nothing sharded (a shard of 1 or 2 bytes is the same for every n >= 2)
                shard.append(0)
                replicated.append(rest)
            else:
                candidates = (2 * half + 1, 2 * half + 2)  # ceil(shard / 2) = half + 1
                one = f.model.value(*p)
                chosen = [a for a in candidates if a + rest - 1 + per == one]  # usually the whole field on one GPU
                if len(chosen) != 1:
                    if p not in three:
                        three[p] = at(*p, 3)
                    v3 = getattr(three[p], f.name) - 3 * per - rest + 1
                    chosen = [a for a in candidates if ceil_div(a, 3) == v3] or [candidates[0]]
                shard.append(chosen[-1])
                replicated.append(rest - 1)
            per_gpu.append(per)
        rule = None
        for shard_model, replicated_model in product(_models(f.model, shard), _models(f.model, replicated)):
            candidate = GpuRule(shard_model, replicated_model, _fit(per_gpu))
            if all(candidate.value(*p, n) == getattr(e, f.name) for (p, n), e in checks.items()):
                rule = candidate
                break
        if rule is None:
            outside.add(f.name)
            out.append(f)
        elif (
            _is_zero(rule.shard)
            and _is_zero(rule.per_gpu)
            and all(rule.replicated.value(*p) == f.model.value(*p) for p in FIT_POINTS + CHECK_POINTS)
        ):
            out.append(f)
        else:
            out.append(FieldForm(f.name, f.model, rule))
    return out


def _models(one_gpu: Model, values: list[int]) -> list[Model]:
    """A polynomial through the values, and first the one-GPU model when they are its values (the 8-bit
    optimizer states are not a polynomial)."""
    fitted: list[Model] = [_fit(values)]
    if all(one_gpu.value(*p) == v for p, v in zip(FIT_POINTS, values, strict=True)):
        return [one_gpu, *fitted]
    return fitted


def structure_key(lora: LoraSettings, training: TrainingSettings) -> tuple[LoraSettings, TrainingSettings]:
    """What identifies a structure: everything but r, micro-batch, sequence length and GPU count, as the
    settings a form is derived with (`structure_of` is the same key as tuples, for lookups)."""
    return replace(lora, r=1), replace(training, batch_size=1, seq_len=1, num_gpus=1)
