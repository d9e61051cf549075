"""Peak memory as an exact closed form in (batch_size, seq_len, r, num_gpus), derived once per structure.

Every field of `MemoryEstimate` is, for one structure (architecture, LoRA targets, training settings other
than micro-batch, sequence length, rank and GPU count), a polynomial with few monomials:

    c₁ + c_r·r + c_s·s + c_b·b + c_T·b·s + c_Tr·b·s·r + c_q·b·s² + c_p·b·⌈s/32⌉·32 + c_1·[b = 1]

(tokens b·s for most activations and the logits, b·s·r for LoRA's rank-r activations, b·s² for eager
attention's scores and masks, s for the rotary tables and position ids; the padded log-sum-exp of fp32 SDPA
and the b = 1 view of the shifted labels are the exact rounding steps), except the optimizer states,
which follow the optimizer's own per-tensor rule (8-bit states: a 4,096-element threshold and a per-256
absmax), computed from the trainable tensors' shapes, which are affine in r. Sharding across GPUs applies
per field: unchanged, divided with ``ceil``, or plus a gathered layer.

The coefficients come from evaluating `memory_estimate` at a fixed set of points and solving exactly
(rationals); the form is then checked at other points, field by field, so it is exact or it says so:
a field that leaves this family (a new memory term the basis lacks) is evaluated instead, and when the
peak itself does, every question falls back to evaluating `memory_estimate`. Questions (largest micro-batch, longest
sequence, fewest GPUs) are then solved arithmetically: affine in b, piecewise quadratic in s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from fractions import Fraction
from functools import lru_cache
from math import gcd, isqrt, lcm

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
SAME, CEIL, PLUS = "same", "ceil", "plus"

# Points (b, s, r) where the estimate is evaluated to solve for the 9 coefficients, then points that check.
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
SHARD_POINTS: tuple[tuple[int, int, int], ...] = ((3, 100, 2), (1, 257, 3))
SHARD_GPUS: tuple[int, ...] = (2, 3)


def _padded(s: int) -> int:
    return ceil_div(s, LSE_PAD) * LSE_PAD


def monomials(b: int, s: int, r: int) -> tuple[int, ...]:
    return (1, r, s, b, b * s, b * s * r, b * s * s, b * _padded(s), 1 if b == 1 else 0)


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
        return sum(c * m for c, m in zip(self.coefficients, monomials(b, s, r), strict=True)) // self.denominator

    def in_batch(self, s: int, r: int) -> tuple[Fraction, Fraction, Fraction]:
        """(per-b slope, constant, extra at b = 1) at fixed s and r."""
        c = [Fraction(x, self.denominator) for x in self.coefficients]
        slope = c[3] + c[4] * s + c[5] * s * r + c[6] * s * s + c[7] * _padded(s)
        return slope, c[0] + c[1] * r + c[2] * s, c[8]

    def in_sequence(self, b: int, r: int) -> tuple[Fraction, Fraction, Fraction, Fraction]:
        """(s², s, padded s, constant) coefficients at fixed b and r."""
        c = [Fraction(x, self.denominator) for x in self.coefficients]
        return c[6] * b, c[2] + c[4] * b + c[5] * b * r, c[7] * b, c[0] + c[1] * r + c[3] * b + c[8] * (b == 1)


@dataclass(frozen=True, slots=True)
class OptimizerStates:
    """The optimizer's bytes from the trainable tensors, whose shapes are affine in r."""

    optimizer: str
    tensors: tuple[tuple[tuple[tuple[int, int], ...], int, int], ...]  # per-dim (d0, d1): d0 + d1·r; count; bytes

    def value(self, b: int, s: int, r: int) -> int:
        states = [StateTensor(tuple(d0 + d1 * r for d0, d1 in dims), n, e) for dims, n, e in self.tensors]
        return optimizer_state_bytes(self.optimizer, states)


@dataclass(frozen=True, slots=True)
class FieldForm:
    name: str
    model: Poly | OptimizerStates
    sharding: str = SAME  # how the field changes with the GPU count (n > 1)
    plus_bytes: int = 0

    def value(self, b: int, s: int, r: int, n: int) -> int:
        v = self.model.value(b, s, r)
        if n <= 1 or self.sharding == SAME:
            return v
        return ceil_div(v, n) if self.sharding == CEIL else v + self.plus_bytes


# --- the form ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryForm:
    """One structure's `MemoryEstimate` for any (b, s, r, n), always equal to `memory_estimate`.

    ``exact``: every field is in closed form. ``closed``: at least the peak's parts are, so the goal
    seeking is arithmetic. A field outside the basis (``evaluated``; e.g. the largest layer's activations
    when layers with different adapters cross over as the tokens grow) is evaluated instead; a peak
    outside it makes the goal seeking bisect on evaluations."""

    arch: Architecture
    lora: LoraSettings
    training: TrainingSettings
    fields: tuple[FieldForm, ...]
    exact: bool
    sharded: bool  # some field depends on the GPU count
    evaluated: frozenset[str] = frozenset()
    closed: bool = True

    def estimate(self, batch_size: int, seq_len: int, r: int, num_gpus: int = 1) -> MemoryEstimate:
        if self.evaluated:
            return _evaluate(self.arch, self.lora, self.training, batch_size, seq_len, r, num_gpus)
        values = {f.name: f.value(batch_size, seq_len, r, num_gpus) for f in self.fields}
        return MemoryEstimate(total_bytes=sum(values[name] for name in PEAK_PARTS), **values)

    def total(self, batch_size: int, seq_len: int, r: int, num_gpus: int = 1) -> int:
        if not self.closed:
            return self.estimate(batch_size, seq_len, r, num_gpus).total_bytes
        return sum(f.value(batch_size, seq_len, r, num_gpus) for f in self.fields if f.name in PEAK_PARTS)

    # --- goal seeking: the largest value whose peak is at most `limit` ---

    def max_batch_size(self, limit: int, seq_len: int, r: int, num_gpus: int = 1) -> int | None:
        """Affine in b (above b = 1): solved by division."""
        parts = [f for f in self.fields if f.name in PEAK_PARTS]
        if not self.closed or any(f.sharding == CEIL and _batch_dependent(f, seq_len, r) for f in parts):
            return _bisect(lambda b: self.total(b, seq_len, r, num_gpus), limit, 1, MAX_BATCH_SIZE)
        slope, constant = Fraction(0), Fraction(0)
        for f in parts:
            if isinstance(f.model, Poly) and not (f.sharding == CEIL and num_gpus > 1):
                a, c, _ = f.model.in_batch(seq_len, r)
                slope, constant = slope + a, constant + c + (f.plus_bytes if num_gpus > 1 else 0)
            else:
                constant += f.value(2, seq_len, r, num_gpus)
        best = None
        if self.total(1, seq_len, r, num_gpus) <= limit:
            best = 1
        if slope <= 0:
            return MAX_BATCH_SIZE if constant + 2 * slope <= limit else best
        b = min((limit - constant) // slope, MAX_BATCH_SIZE)
        return int(b) if b >= 2 else best

    def max_seq_len(self, limit: int, batch_size: int, r: int, num_gpus: int = 1, hi: int = MAX_SEQ_LEN) -> int | None:
        """Quadratic in s between the 32-token steps of a padded log-sum-exp: solved per step."""

        def search() -> int | None:
            return _bisect(lambda s: self.total(batch_size, s, r, num_gpus), limit, 1, hi)

        if not self.closed:
            return search()
        quadratic = linear = padded = constant = Fraction(0)
        for f in self.fields:
            if f.name not in PEAK_PARTS:
                continue
            coefficients = f.model.in_sequence(batch_size, r) if isinstance(f.model, Poly) else None
            if coefficients is None or (f.sharding == CEIL and num_gpus > 1):
                if coefficients is not None and any(coefficients[:3]):
                    return search()  # a sharded part that grows with s: not expected, but stay exact
                constant += f.value(batch_size, 1, r, num_gpus)
                continue
            q, lin, p, c = coefficients
            quadratic, linear, padded = quadratic + q, linear + lin, padded + p
            constant += c + (f.plus_bytes if num_gpus > 1 else 0)
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
        if not self.closed:
            return _bisect_min(lambda n: self.total(batch_size, seq_len, r, n), limit, 2, MAX_GPUS)
        parts = [f for f in self.fields if f.name in PEAK_PARTS]
        fixed = sum(f.value(batch_size, seq_len, r, 2) for f in parts if f.sharding != CEIL)
        shardable = sum(f.model.value(batch_size, seq_len, r) for f in parts if f.sharding == CEIL)
        if fixed >= limit:
            return None
        n = max(2, ceil_div(shardable, limit - fixed))
        for candidate in range(n, min(n + len(parts), MAX_GPUS) + 1):  # each part rounds up by < 1 byte per GPU
            if self.total(batch_size, seq_len, r, candidate) <= limit:
                return candidate
        return None


def _batch_dependent(f: FieldForm, seq_len: int, r: int) -> bool:
    return isinstance(f.model, Poly) and f.model.in_batch(seq_len, r)[0] != 0


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


def _largest_root(a: Fraction, b: Fraction, c: Fraction) -> int:
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


def _largest_sequence(q: Fraction, lin: Fraction, pad: Fraction, k: Fraction, limit: int, hi: int) -> int | None:
    """Largest s in [1, hi] with q·s² + lin·s + pad·⌈s/32⌉·32 + k <= limit (non-decreasing in s)."""

    def peak(s: int) -> Fraction:
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


@lru_cache(maxsize=256)
def lora_count(arch: Architecture, lora: LoraSettings, r: int) -> LoraCount:
    """`count_lora` at rank ``r`` (cached: the forms and the advice ask for the same few ranks)."""
    return count_lora(arch, replace(lora, r=r))


def memory_form(arch: Architecture, lora: LoraSettings, training: TrainingSettings) -> MemoryForm:
    """The form for this structure (the rank, micro-batch, sequence length and GPU count of the
    arguments do not matter). Raises what `count_lora` raises for invalid LoRA settings."""
    return _memory_form(arch, replace(lora, r=1), replace(training, batch_size=1, seq_len=1, num_gpus=1))


@lru_cache(maxsize=512)
def _memory_form(arch: Architecture, lora: LoraSettings, training: TrainingSettings) -> MemoryForm:
    def at(b: int, s: int, r: int, n: int = 1) -> MemoryEstimate:
        return _evaluate(arch, lora, training, b, s, r, n)

    if training.parallelism != "ddp":
        # on one GPU every parallelism is the same: reuse that form and classify how the GPUs share each field
        single = _memory_form(arch, lora, replace(training, parallelism="ddp"))
        if not single.closed:
            return replace(single, training=training, sharded=True)
        forms, sharded, ok = _sharding(list(single.fields), at, single.evaluated)
        return replace(
            single,
            training=training,
            fields=tuple(forms),
            exact=single.exact and ok,
            sharded=sharded or not ok,
            closed=ok,
        )

    evaluated = {p: at(*p) for p in FIT_POINTS + CHECK_POINTS}
    samples = [evaluated[p] for p in FIT_POINTS]
    optimizer = _optimizer_model(arch, lora, training)
    field_forms: list[FieldForm] = []
    outside: set[str] = set()
    for name in FIELDS:
        candidates: list[Poly | OptimizerStates] = [_fit([getattr(e, name) for e in samples])]
        if name == "optimizer_states_bytes" and optimizer is not None:
            candidates.insert(0, optimizer)
        model = next(
            (m for m in candidates if all(m.value(*p) == getattr(e, name) for p, e in evaluated.items())), None
        )
        if model is None:
            outside.add(name)
        field_forms.append(FieldForm(name, model if model is not None else candidates[-1]))
    if not all(sum(getattr(e, n) for n in PEAK_PARTS) == e.total_bytes for e in evaluated.values()):
        outside = set(FIELDS)  # the peak is not the sum of the parts any more
    closed = not outside & set(PEAK_PARTS)
    return MemoryForm(arch, lora, training, tuple(field_forms), not outside, not closed, frozenset(outside), closed)


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


def _sharding(
    forms: list[FieldForm], at: Callable[..., MemoryEstimate], skip: frozenset[str]
) -> tuple[list[FieldForm], bool, bool]:
    """Classify each closed-form field's dependence on the GPU count from evaluations at n = 2 and 3."""
    evaluated = {(p, n): at(*p, n) for p in SHARD_POINTS for n in SHARD_GPUS}
    out: list[FieldForm] = []
    sharded = False
    for f in forms:
        if f.name in skip:
            out.append(f)
            continue
        rule, plus = SAME, 0
        for p in SHARD_POINTS:
            base = f.model.value(*p)
            for n in SHARD_GPUS:
                v = getattr(evaluated[p, n], f.name)
                if v == base and rule == SAME and plus == 0:
                    continue
                if v == ceil_div(base, n) and rule in (SAME, CEIL) and plus == 0:
                    rule = CEIL
                elif rule in (SAME, PLUS) and (plus == 0 or v - base == plus):
                    rule, plus = PLUS, v - base
                else:
                    return forms, False, False
        sharded = sharded or rule != SAME
        out.append(FieldForm(f.name, f.model, rule, plus))
    for (p, n), e in evaluated.items():  # the classification must reproduce every evaluated point
        if any(f.value(*p, n) != getattr(e, f.name) for f in out if f.name not in skip):
            return forms, False, False
    return out, sharded, True


def structure_key(lora: LoraSettings, training: TrainingSettings) -> tuple[LoraSettings, TrainingSettings]:
    """What identifies a structure: everything but r, micro-batch, sequence length and GPU count."""
    return replace(lora, r=1), replace(training, batch_size=1, seq_len=1, num_gpus=1)
