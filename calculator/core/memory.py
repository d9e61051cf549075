"""Static training memory in exact bytes: frozen weights, trainable weights, gradients, optimizer states."""

from __future__ import annotations

from dataclasses import dataclass

from .architecture import Architecture, Module
from .dtypes import FLOAT_BYTES, ceil_div, compute_dtype, linear_weight_bytes
from .lora import ADAPTER, BIAS, LoraCount
from .optimizers import StateTensor, optimizer_state_bytes
from .training import TrainingSettings


@dataclass(frozen=True, slots=True)
class StaticMemory:
    base_weights_bytes: int
    adapter_weights_bytes: int
    gradients_bytes: int
    optimizer_states_bytes: int


def base_weights_bytes(arch: Architecture, count: LoraCount, training: TrainingSettings) -> int:
    """The base model as loaded: linear layers quantized (8/4-bit) or in the float dtype, the rest
    (embeddings, norms, convolutions, MoE expert tensors, the output head) in the compute dtype.

    transformers + bitsandbytes replaces every nn.Linear but the output embedding, tied modules and the last
    parameter's module (``get_keys_to_not_convert``), so vision towers and projectors are quantized too;
    torchtune's QLoRA (``quantize_scope="lora_targets"``) quantizes only the adapted linear layers."""
    dtype = training.base_dtype
    float_bytes = FLOAT_BYTES[training.float_dtype]
    total = arch.base_params * float_bytes
    if dtype in FLOAT_BYTES:
        return total
    remaining: dict[Module, int] = {}
    if training.quantize_scope == "lora_targets":
        for _key, module, _ in count.adapted_keys:
            remaining[module] = remaining.get(module, 0) + 1
    for module, copies in arch.linear_weights():
        if module.path == arch.output_head:
            continue
        if training.quantize_scope == "all_linear":
            quantized = copies
        else:
            quantized = min(remaining.get(module, 0), copies)
            remaining[module] = remaining.get(module, 0) - quantized
        weight = next(p for p in module.params if p.name == "weight")
        stored = linear_weight_bytes(weight.numel, module.out_features, dtype, training.double_quant)
        total += quantized * (stored - weight.numel * float_bytes)
    return total


def trainable_state_tensors(count: LoraCount, training: TrainingSettings) -> list[StateTensor]:
    """Trainable tensors with their element size: LoRA in the adapter dtype, the rest in the base's."""
    adapter = FLOAT_BYTES[training.adapter_dtype]
    base = FLOAT_BYTES[training.float_dtype]
    return [StateTensor(t.shape, t.count, adapter if t.origin == ADAPTER else base) for t in count.tensors]


def static_memory(arch: Architecture, count: LoraCount, training: TrainingSettings) -> StaticMemory:
    tensors = trainable_state_tensors(count, training)
    trainable_bytes = sum(t.numel * t.count * t.element_bytes for t in tensors)
    bias_bytes = sum(t.params * FLOAT_BYTES[training.float_dtype] for t in count.tensors if t.origin == BIAS)
    memory = StaticMemory(
        base_weights_bytes=base_weights_bytes(arch, count, training),
        # Trainable base biases are part of the loaded base model; everything else trainable is new.
        adapter_weights_bytes=trainable_bytes - bias_bytes,
        gradients_bytes=trainable_bytes,
        optimizer_states_bytes=optimizer_state_bytes(training.optimizer, tensors),
    )
    return sharded(memory, training)


def full_finetune_static_memory(arch: Architecture, training: TrainingSettings) -> StaticMemory:
    """Full fine-tuning: every base tensor trains, in the (unquantized) compute dtype."""
    elem = FLOAT_BYTES[compute_dtype(training.base_dtype)]
    tensors = [
        StateTensor(p.shape, stack.layout.count(k), elem)
        for stack in arch.stacks
        for k, kind in enumerate(stack.kinds)
        for m in kind.modules
        for p in m.params
    ]
    tied = arch.tied_paths
    tensors += [StateTensor(p.shape, 1, elem) for m in arch.global_modules if m.path not in tied for p in m.params]
    weights = arch.base_params * elem
    return sharded(StaticMemory(weights, 0, weights, optimizer_state_bytes(training.optimizer, tensors)), training)


def sharded(memory: StaticMemory, training: TrainingSettings) -> StaticMemory:
    """Per GPU: FSDP / ZeRO-3 splits weights, gradients and optimizer states; DDP replicates them."""
    if training.parallelism != "fsdp" or training.num_gpus <= 1:
        return memory
    n = training.num_gpus
    return StaticMemory(
        ceil_div(memory.base_weights_bytes, n),
        ceil_div(memory.adapter_weights_bytes, n),
        ceil_div(memory.gradients_bytes, n),
        ceil_div(memory.optimizer_states_bytes, n),
    )
