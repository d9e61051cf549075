"""Static training memory in exact bytes: frozen weights, trainable weights, gradients, optimizer states."""

from __future__ import annotations

from dataclasses import dataclass

from .architecture import LINEAR_KINDS, Architecture
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
    (embeddings, norms, the output head, MoE expert tensors) in the compute dtype."""
    dtype = training.base_dtype
    float_bytes = FLOAT_BYTES[training.float_dtype]
    quantized = dtype not in FLOAT_BYTES
    adapted_layers: dict[str, int] = {}
    if quantized and training.quantize_scope == "lora_targets":
        for _key, module, _ in count.adapted_keys:
            adapted_layers[module.path] = adapted_layers.get(module.path, 0) + 1
    total = 0
    for module in arch.layer_modules:
        for param in module.params:
            numel = param.numel
            if quantized and module.kind in LINEAR_KINDS and param.name == "weight":
                q_layers = (
                    arch.num_layers
                    if training.quantize_scope == "all_linear"
                    else min(adapted_layers.get(module.path, 0), arch.num_layers)
                )
                q_bytes = linear_weight_bytes(numel, module.out_features, dtype, training.double_quant)
                total += q_layers * q_bytes + (arch.num_layers - q_layers) * numel * float_bytes
            else:
                total += arch.num_layers * numel * float_bytes
    return total + arch.global_params * float_bytes


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
    tensors = [StateTensor(p.shape, arch.num_layers, elem) for m in arch.layer_modules for p in m.params]
    tied = arch.dims.tie_word_embeddings
    tensors += [
        StateTensor(p.shape, 1, elem)
        for m in arch.global_modules
        if not (tied and m.path == arch.output_head)
        for p in m.params
    ]
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
