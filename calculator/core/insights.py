"""Facts about a configuration that the page points out, computed once here instead of in a template.

Each answers a question a user asks when a number surprises them: does PEFT pick targets by itself
for this model, how many times smaller is the adapter than the model, is a rank larger than the
matrix it adapts, why is the LoRA column above full fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from .adapter_file import adapter_file_bytes
from .architecture import Architecture, Kind
from .dtypes import QUANTIZED_DTYPES
from .errors import InputError
from .estimate import Estimate, estimate
from .gpus import Gpu
from .lora import AdaptedModule, LoraCount, LoraSettings, count_lora

QUANTIZED_4BIT = ("nf4", "fp4")


@lru_cache(maxsize=256)
def has_default_targets(arch: Architecture) -> bool:
    """Whether ``LoraConfig()`` without ``target_modules`` adapts anything in this model.

    PEFT has no defaults for some model types (phi3), and for transformers-5 MoE models the defaults
    convert to nothing (Mixtral): both raise, exactly as ``count_lora`` replays it.
    """
    try:
        count_lora(arch, LoraSettings())
    except InputError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class LayerGroup:
    """Layers of one kind in one stack (a hybrid model's linear-attention layers, a vision tower's layers)."""

    role: str  # text | vision_tower | audio_tower ...
    kind: str  # the layer kind's name (full_attention, linear_attention, moe, conv, ...)
    layers: int


def layer_groups(arch: Architecture) -> tuple[LayerGroup, ...]:
    """What the model is made of, per stack and layer kind, in model order (the page lists it)."""
    return tuple(
        LayerGroup(stack.role, kind.name, len(stack.layers_of(index)))
        for stack in arch.stacks
        for index, kind in enumerate(stack.kinds)
    )


def expert_params(arch: Architecture) -> int:
    """Parameters in 3-D MoE expert tensors: transformers 5 stores experts as 3-D parameters, which
    bitsandbytes does not quantize (they are not nn.Linear), so a 4-bit MoE base keeps them in 16 bit."""
    return sum(
        param.numel * len(stack.layers_of(index))
        for stack in arch.stacks
        for index, kind in enumerate(stack.kinds)
        for module in kind.modules
        if module.kind is Kind.EXPERTS
        for param in module.params
        if len(param.shape) == 3
    )


@dataclass(frozen=True, slots=True)
class ExpertQuantization:
    """A quantized MoE base whose 3-D expert tensors stay 16-bit, and what quantizing them too gives."""

    expert_params: int  # parameters in 3-D expert tensors
    quantized: Estimate  # the same configuration with quantize_moe_experts=True
    # Quantizing raises the peak: without gradient checkpointing every MoE layer keeps its dequantized experts
    # for the input's gradient, which outweighs the smaller stored weights.
    raises_peak: bool
    # When it does and checkpointing is off: quantized experts with checkpointing (one layer's copy at a time).
    checkpointed: Estimate | None


def expert_quantization(result: Estimate, gpus: tuple[Gpu, ...]) -> ExpertQuantization | None:
    """None unless the base is quantized (8 or 4 bit), the model has 3-D experts and they are left unquantized
    (the bitsandbytes default in transformers 5; Axolotl's ``quantize_moe_experts`` quantizes them)."""
    training = result.training
    if training.base_dtype not in QUANTIZED_DTYPES or training.quantize_moe_experts:
        return None
    params = expert_params(result.architecture)
    if not params:
        return None
    quantized = estimate(
        result.architecture, result.lora_settings, replace(training, quantize_moe_experts=True), gpus, result.name
    )
    raises_peak = quantized.memory.total_bytes > result.memory.total_bytes
    checkpointed = None
    if raises_peak and not training.gradient_checkpointing:
        both = replace(training, quantize_moe_experts=True, gradient_checkpointing=True)
        checkpointed = estimate(result.architecture, result.lora_settings, both, gpus, result.name)
    return ExpertQuantization(params, quantized, raises_peak, checkpointed)


def loss_baseline(result: Estimate, gpus: tuple[Gpu, ...]) -> Estimate | None:
    """The same configuration with transformers' own loss (full fp32 logits), to show what a chunked or
    fused loss saves; None when the configuration already uses it."""
    if result.training.loss == "hf":
        return None
    training = replace(result.training, loss="hf")
    return estimate(result.architecture, result.lora_settings, training, gpus, result.name)


def parameter_reduction(count: LoraCount) -> float:
    """How many times fewer parameters train than the base model has (0 when nothing trains)."""
    return count.base_params / count.trainable_params if count.trainable_params else 0.0


def oversized_ranks(count: LoraCount) -> tuple[AdaptedModule, ...]:
    """Adapted modules whose rank exceeds min(in, out): B·A cannot have a rank above that, so the
    extra rank only adds parameters (PEFT accepts it all the same)."""
    return tuple(m for m in count.modules if m.r > min(m.in_features, m.out_features))


def layers_out_of_range(arch: Architecture, lora: LoraSettings) -> InputError | None:
    """``layers_to_transform`` naming only layers the model does not have (PEFT then finds no target)."""
    layers = lora.layers_to_transform
    if layers is None or isinstance(lora.target_modules, str):
        return None
    indexes = (layers,) if isinstance(layers, int) else layers
    last = arch.num_layers - 1
    if not indexes or min(indexes) <= last:
        return None
    return InputError.single(
        "lora.layers_to_transform",
        f"This model has {arch.num_layers} layers (0 to {last}); none of the layers given exists.",
    )


@dataclass(frozen=True, slots=True)
class ComparisonNotes:
    """What the full fine-tuning / LoRA / QLoRA comparison needs said next to it."""

    lora_is_qlora: bool  # the configuration already loads a 4-bit base: the LoRA and QLoRA columns agree
    lora_above_full: bool  # LoRA's peak is above full fine-tuning's (fp32 adapters keep fp32 inputs)


def comparison_notes(result: Estimate) -> ComparisonNotes:
    full, lora = result.comparison[0].memory, result.comparison[1].memory
    return ComparisonNotes(
        lora_is_qlora=result.training.base_dtype in QUANTIZED_4BIT,
        lora_above_full=lora.total_bytes > full.total_bytes,
    )


@dataclass(frozen=True, slots=True)
class AdapterFileSizes:
    """``adapter_model.safetensors`` sizes across ranks (rows) and targets by adapter dtypes (columns);
    a size is None where those targets do not exist in the model."""

    ranks: tuple[int, ...]
    columns: tuple[tuple[str, str], ...]  # (targets label, adapter dtype)
    sizes: tuple[tuple[int | None, ...], ...]  # one row per rank


def adapter_file_sizes(
    arch: Architecture,
    lora: LoraSettings,
    base_dtype: str,
    ranks: tuple[int, ...],
    targets: tuple[tuple[str, tuple[str, ...]], ...],
    dtypes: tuple[str, ...],
) -> AdapterFileSizes:
    """The file for each rank, target set and adapter dtype, keeping the other LoRA settings (DoRA,
    biases...). Independent of the current rank, so it is cached across rank changes."""
    neutral = replace(lora, r=1, lora_alpha=1, rank_pattern=(), alpha_pattern=())
    return _adapter_file_sizes(arch, neutral, base_dtype, ranks, targets, dtypes)


@lru_cache(maxsize=256)
def _adapter_file_sizes(
    arch: Architecture,
    lora: LoraSettings,
    base_dtype: str,
    ranks: tuple[int, ...],
    targets: tuple[tuple[str, tuple[str, ...]], ...],
    dtypes: tuple[str, ...],
) -> AdapterFileSizes:
    rows = []
    for r in ranks:
        row: list[int | None] = []
        for _, names in targets:
            try:
                count = count_lora(arch, replace(lora, r=r, lora_alpha=r, target_modules=names))
            except InputError:
                row.extend(None for _ in dtypes)
                continue
            row.extend(adapter_file_bytes(count, dtype, base_dtype) for dtype in dtypes)
        rows.append(tuple(row))
    columns = tuple((label, dtype) for label, _ in targets for dtype in dtypes)
    return AdapterFileSizes(ranks, columns, tuple(rows))


def lora_hazards(arch: Architecture, count: LoraCount) -> tuple[str, ...]:
    """Why training would fail with these adapters although PEFT accepts them (measured: Llama 4's router
    under "all-linear" fails in the first forward, `validation/measure_memory_2026.py`)."""
    found: list[str] = []
    for suffix, why in arch.lora_hazards:
        if any(key.endswith(suffix) for key, _module, _r in count.adapted_keys) and why not in found:
            found.append(why)
    return tuple(found)
