"""How long a run takes: the planning inputs, model FLOP utilization (MFU) and the time model.

time = FLOPs / (peak FLOP/s x MFU). The FLOPs are those `flops.py` counts (forward, backward and
checkpoint recomputation, as the GPU executes them), the peak is the catalog's dense tensor throughput for
the compute dtype, and the MFU is the share of that peak a real run reaches. An optimizer step is
``gradient_accumulation_steps`` micro-batches on each of ``num_gpus`` data-parallel GPUs; a dataset of
``dataset_tokens`` per epoch is packed into sequences of ``seq_len`` tokens. Not modelled (the MFU absorbs
them): the optimizer update itself, data loading, communication between GPUs, dequantization kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from .dtypes import QUANTIZED_DTYPES, compute_dtype
from .errors import ErrorCollector
from .flops import FlopsForm
from .gpus import DEFAULT_SAFETY_MARGIN, MAX_SAFETY_MARGIN, Gpu
from .training import TrainingSettings

LORA, QLORA, FULL = "lora", "qlora", "full"
METHODS: tuple[str, ...] = (LORA, QLORA, FULL)
# The share of peak a run reaches, by framework and method, from published throughput (docs/accuracy.md "Time",
# validation/planning/time_comparison.py), by our FLOP count:
# - transformers + PEFT (huggingface/peft method_comparison/MetaMathQA, Llama-3.2-3B on an NVIDIA L40S, batch 4,
#   no checkpointing, no compile): LoRA r32 q,v 6,770 tokens/s = 0.24; full fine-tuning 2,313 tokens/s = 0.12;
#   QLoRA has no such measurement: LoRA's x 0.85, torchtune's QLoRA/LoRA ratio on one RTX 4090.
# - torchtune (its README, Llama 3.1 8B/70B/405B, batch 2 x 2,048 packed, torch.compile, checkpointing):
#   LoRA 0.80 (RTX 4090) and 0.55 (8x A100), QLoRA 0.68 and 0.64, full 0.58 and 0.33; the medians.
# Frameworks without a measurement use transformers' figures; `PlanSettings.mfu` overrides all of them.
MFU_BY_FRAMEWORK: dict[str, dict[str, float]] = {
    "transformers": {LORA: 0.24, QLORA: 0.20, FULL: 0.12},
    "torchtune": {LORA: 0.68, QLORA: 0.66, FULL: 0.46},
}
DEFAULT_FRAMEWORK = "transformers"
DEFAULT_MFU: dict[str, float] = MFU_BY_FRAMEWORK[DEFAULT_FRAMEWORK]
MAX_ACCUMULATION = 65_536
MAX_DATASET_TOKENS = 10**14
MAX_EPOCHS = 1_000.0


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """The planning inputs (api.md v1.1, in the request's ``training`` group)."""

    gpu: str | None = None  # a catalog name: the card time, advice and goals are for
    gradient_accumulation_steps: int = 1
    safety_margin: float = DEFAULT_SAFETY_MARGIN  # fraction of each card kept free
    dataset_tokens: int | None = None  # tokens per epoch
    dataset_examples: int | None = None  # or examples x mean length
    mean_example_tokens: int | None = None
    epochs: float = 1.0
    mfu: float | None = None  # None: DEFAULT_MFU of the method

    @property
    def tokens_per_epoch(self) -> int | None:
        if self.dataset_tokens is not None:
            return self.dataset_tokens
        if self.dataset_examples is not None and self.mean_example_tokens is not None:
            return self.dataset_examples * self.mean_example_tokens
        return None


def validate_plan(plan: PlanSettings, errors: ErrorCollector) -> None:
    def check(field: str, ok: bool, message: str) -> None:
        if not ok:
            errors.add(f"training.{field}", message)

    g = plan.gradient_accumulation_steps
    check("gradient_accumulation_steps", 1 <= g <= MAX_ACCUMULATION, f"Must be between 1 and {MAX_ACCUMULATION:,}.")
    check("safety_margin", 0 <= plan.safety_margin <= MAX_SAFETY_MARGIN, f"Must be between 0 and {MAX_SAFETY_MARGIN}.")
    check("epochs", 0 < plan.epochs <= MAX_EPOCHS, f"Must be above 0 and at most {MAX_EPOCHS:g}.")
    check("mfu", plan.mfu is None or 0 < plan.mfu <= 1, "Must be above 0 and at most 1.")
    for field in ("dataset_tokens", "dataset_examples", "mean_example_tokens"):
        value = getattr(plan, field)
        check(
            field, value is None or 1 <= value <= MAX_DATASET_TOKENS, f"Must be between 1 and {MAX_DATASET_TOKENS:,}."
        )
    if plan.dataset_tokens is not None and plan.dataset_examples is not None:
        errors.add("training.dataset_examples", "Give either dataset_tokens or dataset_examples, not both.")
    if (plan.dataset_examples is None) != (plan.mean_example_tokens is None):
        errors.add("training.mean_example_tokens", "dataset_examples and mean_example_tokens go together.")


def default_mfu(training: TrainingSettings, full: bool = False) -> float:
    """The stated MFU for the run's method and framework (the recipes' ``framework`` field when present)."""
    framework = getattr(training, "framework", DEFAULT_FRAMEWORK)
    table = MFU_BY_FRAMEWORK.get(framework if isinstance(framework, str) else DEFAULT_FRAMEWORK, DEFAULT_MFU)
    return table[method_of(training, full)]


def method_of(training: TrainingSettings, full: bool = False) -> str:
    if full:
        return FULL
    return QLORA if training.base_dtype in QUANTIZED_DTYPES else LORA


@dataclass(frozen=True, slots=True)
class TimeEstimate:
    """api.md `time`: flops_per_token, tokens_per_second, step_seconds, total_seconds (for the chosen GPU).
    Fields other than the FLOPs are None when the catalog has no peak for the card and dtype, and the
    dataset-dependent ones when no dataset size is given."""

    gpu: str
    num_gpus: int
    mfu: float
    peak_flops: float | None  # per GPU, for the compute dtype
    flops_per_token: int
    tokens_per_step: int
    tokens_per_second: float | None
    step_seconds: float | None
    steps: int | None
    total_seconds: float | None

    @property
    def hours(self) -> float | None:
        return None if self.total_seconds is None else self.total_seconds / 3600

    def cost(self, price_per_hour: float | None) -> float | None:
        """USD for the run on all its GPUs at ``price_per_hour`` each (None without a price or a dataset)."""
        if self.total_seconds is None or price_per_hour is None:
            return None
        return self.total_seconds / 3600 * self.num_gpus * price_per_hour


def time_estimate(
    flops: FlopsForm,
    training: TrainingSettings,
    plan: PlanSettings,
    gpu: Gpu,
    *,
    num_gpus: int | None = None,
    full: bool = False,
) -> TimeEstimate:
    n = training.num_gpus if num_gpus is None else num_gpus
    b, s, g = training.batch_size, training.seq_len, plan.gradient_accumulation_steps
    micro_batch = flops.at(b, s).total
    mfu = plan.mfu if plan.mfu is not None else default_mfu(training, full)
    peak = gpu.peak_flops(compute_dtype(training.base_dtype))
    tokens_per_step = b * s * g * n
    steps = None
    tokens = plan.tokens_per_epoch
    if tokens is not None:
        sequences = ceil(plan.epochs * ceil(tokens / s))
        steps = max(1, ceil(sequences / (b * g * n)))
    step_seconds = tokens_per_second = total_seconds = None
    if peak is not None:
        step_seconds = g * micro_batch / (peak * mfu)
        tokens_per_second = tokens_per_step / step_seconds
        total_seconds = None if steps is None else steps * step_seconds
    return TimeEstimate(
        gpu=gpu.name,
        num_gpus=n,
        mfu=mfu,
        peak_flops=peak,
        flops_per_token=round(micro_batch / (b * s)),
        tokens_per_step=tokens_per_step,
        tokens_per_second=tokens_per_second,
        step_seconds=step_seconds,
        steps=steps,
        total_seconds=total_seconds,
    )
