"""One call from inputs to every number the product shows: `estimate()`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

from .activations import estimate_activations, place_activations
from .adapter_file import adapter_file_size
from .architecture import Architecture
from .dtypes import FLOAT_BYTES, compute_dtype
from .errors import ErrorCollector, InputError
from .gpus import DEFAULT_GPUS, Gpu, GpuFit, fits
from .lora import LoraCount, LoraSettings, count_lora, scaling
from .memory import full_finetune_static_memory, static_memory
from .snippet import lora_config_snippet
from .training import TrainingSettings, validate_training

FUSED_HEAD_LOSSES = ("trl_chunked_nll", "fused_linear", "cut")

ENGINE_VERSION = "1.0.0"
ZERO3_BYTES_PER_GATHERED_PARAM = 4  # deepspeed/runtime/zero/stage3.py: largest_layer_memory = 4 * params
FP32_BYTES = FLOAT_BYTES["fp32"]


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    base_weights_bytes: int
    adapter_weights_bytes: int
    gradients_bytes: int
    optimizer_states_bytes: int
    activations_bytes: int
    logits_bytes: int
    overhead_bytes: int
    transient_bytes: int  # not saved for backward but alive at the peak (recompute, loss buffers...)
    total_bytes: int
    per_layer_activation_bytes: int
    host_bytes: int = 0  # CPU RAM: offloaded activations, parameters, gradients, optimizer states (pinned)

    def percent_of_total(self, part_bytes: int) -> float:
        """A part's share of the peak, in percent (the breakdown cards)."""
        return 100.0 * part_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """One column of the full fine-tuning / LoRA / QLoRA comparison."""

    label: str
    base_dtype: str
    trainable_params: int
    memory: MemoryEstimate


@dataclass(frozen=True, slots=True)
class Estimate:
    engine_version: str
    name: str
    architecture: Architecture
    lora_settings: LoraSettings
    training: TrainingSettings
    count: LoraCount
    scaling: float
    memory: MemoryEstimate
    adapter_file_bytes: int
    fits: tuple[GpuFit, ...]
    peft_config: str
    comparison: tuple[Scenario, ...]


def memory_estimate(
    arch: Architecture, count: LoraCount, training: TrainingSettings, *, full: bool = False
) -> MemoryEstimate:
    static = full_finetune_static_memory(arch, training) if full else static_memory(arch, count, training)
    acts = estimate_activations(arch, count, training, full=full)
    placed = place_activations(acts, training)
    transient = acts.recompute_bytes + acts.head_transient_bytes + placed.brought_back_bytes
    transient += max(_dequant_bytes(arch, training), acts.expert_dequant_bytes)
    transient += _dora_norm_bytes(count) if not full else 0
    transient += _gathered_bytes(arch, training, full)
    total = (
        static.base_weights_bytes
        + static.adapter_weights_bytes
        + static.gradients_bytes
        + static.optimizer_states_bytes
        + placed.activations_bytes
        + placed.logits_bytes
        + transient
        + training.overhead_bytes
    )
    return MemoryEstimate(
        base_weights_bytes=static.base_weights_bytes,
        adapter_weights_bytes=static.adapter_weights_bytes,
        gradients_bytes=static.gradients_bytes,
        optimizer_states_bytes=static.optimizer_states_bytes,
        activations_bytes=placed.activations_bytes,
        logits_bytes=placed.logits_bytes,
        overhead_bytes=training.overhead_bytes,
        transient_bytes=transient,
        total_bytes=total,
        per_layer_activation_bytes=acts.per_layer_bytes,
        host_bytes=static.host_bytes + placed.host_bytes,
    )


def _dequant_bytes(arch: Architecture, training: TrainingSettings) -> int:
    """bitsandbytes dequantizes one weight at a time to the compute dtype for the matmul."""
    if training.base_dtype in FLOAT_BYTES:
        return 0
    largest = max(
        (m.in_features * m.out_features for m, _ in arch.linear_weights() if m.path != arch.output_head), default=0
    )
    return largest * FLOAT_BYTES[compute_dtype(training.base_dtype)]


def _dora_norm_bytes(count: LoraCount) -> int:
    """DoRA recomputes ‖W + s·BA‖ every forward from an fp32 identity of the input size and about three
    fp32 (in x out) matrices, one adapted module at a time (PEFT's DoraLinearLayer.get_weight_norm)."""
    if not count.use_dora:
        return 0
    return max(
        (FP32_BYTES * (m.in_features**2 + 3 * m.in_features * m.out_features) for m in count.modules),
        default=0,
    )


def _gathered_bytes(arch: Architecture, training: TrainingSettings, full: bool) -> int:
    """Weights gathered for compute while the rest stays sharded or offloaded: FSDP one decoder layer (its
    unit), ZeRO-3 DeepSpeed's ``largest_layer_memory`` (4 bytes per parameter of the largest module)."""
    sharded = training.num_gpus > 1 or training.param_offload
    if training.parallelism == "fsdp" and sharded:
        largest = max((kind.params for stack in arch.stacks for kind in stack.kinds), default=0)
        return largest * FLOAT_BYTES[compute_dtype(training.base_dtype)]
    if training.parallelism == "zero3":
        largest = max((m.numel for _key, m in arch.modules()), default=0)
        return ZERO3_BYTES_PER_GATHERED_PARAM * largest
    return 0


def validate_recipe(arch: Architecture, count: LoraCount, training: TrainingSettings) -> None:
    """Combinations the libraries refuse. The fused losses compute the logits from ``lm_head.weight``
    directly, so a LoRA adapter on the head would never train: TRL 1.16.0 raises (sft_trainer.py, "Applying a
    PEFT adapter to `lm_head` is not supported"), Liger and cut-cross-entropy would silently ignore it."""
    if training.loss in FUSED_HEAD_LOSSES and any(path == arch.output_head for path, _ in count.global_adapters):
        raise InputError.single(
            "training.loss",
            f"The {training.loss} loss reads the output head's weight directly, so a LoRA adapter on "
            f"{arch.output_head} would never train (TRL refuses it); remove it from target_modules or use "
            "loss hf or chunked.",
        )


def compare_scenarios(
    arch: Architecture,
    count: LoraCount,
    training: TrainingSettings,
    lora_memory: Callable[[TrainingSettings], MemoryEstimate] | None = None,
) -> tuple[Scenario, ...]:
    """Full fine-tuning vs this LoRA vs the same LoRA on a 4-bit NF4 base, same batch and optimizer.
    ``lora_memory``: the LoRA's memory under a training setting (`estimate` passes its own, which reuses the
    estimate's and reads the structure's closed form once it is warm); `memory_estimate` by default."""
    of = lora_memory or (lambda t: memory_estimate(arch, count, t))
    full_training = replace(training, base_dtype=compute_dtype(training.base_dtype))
    qlora_training = replace(training, base_dtype="nf4", double_quant=True)
    return (
        Scenario(
            "Full fine-tuning",
            full_training.base_dtype,
            arch.base_params,
            memory_estimate(arch, count, full_training, full=True),
        ),
        Scenario("LoRA", training.base_dtype, count.trainable_params, of(training)),
        Scenario("QLoRA (NF4)", "nf4", count.trainable_params, of(qlora_training)),
    )


def estimate(
    arch: Architecture,
    lora: LoraSettings,
    training: TrainingSettings,
    gpus: tuple[Gpu, ...] = DEFAULT_GPUS,
    name: str = "",
) -> Estimate:
    """Every number for one configuration; raises `InputError` naming bad fields. Pure and cached."""
    return _estimate(arch, lora, training, gpus, name)


@lru_cache(maxsize=1024)
def _estimate(
    arch: Architecture, lora: LoraSettings, training: TrainingSettings, gpus: tuple[Gpu, ...], name: str
) -> Estimate:
    errors = ErrorCollector()
    validate_training(training, errors)
    errors.raise_if_any()
    count = count_lora(arch, lora)
    validate_recipe(arch, count, training)
    from .form import memory_at  # the closed forms are derived from memory_estimate (a circular import)

    memory = memory_at(arch, lora, count, training)

    def lora_memory(t: TrainingSettings) -> MemoryEstimate:
        return memory if t == training else memory_at(arch, lora, count, t)

    resolved = arch.default_target_modules if lora.target_modules is None and not arch.moe_conversion else None
    return Estimate(
        engine_version=ENGINE_VERSION,
        name=name,
        architecture=arch,
        lora_settings=lora,
        training=training,
        count=count,
        scaling=scaling(lora.lora_alpha, lora.r, lora.use_rslora),
        memory=memory,
        adapter_file_bytes=adapter_file_size(arch, lora, count, training.adapter_dtype, training.base_dtype),
        fits=fits(memory.total_bytes, gpus),
        peft_config=lora_config_snippet(lora, resolved),
        comparison=compare_scenarios(arch, count, training, lora_memory),
    )
