"""Static training memory in exact bytes: frozen weights, trainable weights, gradients, optimizer states,
per GPU and in host memory, for each way of spreading them over GPUs (`parallelism.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from .architecture import LINEAR_KINDS, Architecture, Kind
from .dtypes import FLOAT_BYTES, QUANTIZED_DTYPES, compute_dtype, linear_weight_bytes
from .lora import ADAPTER, BIAS, LoraCount
from .optimizers import StateTensor, optimizer_state_bytes
from .parallelism import FrozenBase, Placement, distribute
from .training import TrainingSettings


@dataclass(frozen=True, slots=True)
class StaticMemory:
    base_weights_bytes: int
    adapter_weights_bytes: int
    gradients_bytes: int
    optimizer_states_bytes: int
    host_bytes: int = 0  # CPU RAM for offloaded parameters, gradients and optimizer states (pinned)


def frozen_base(arch: Architecture, count: LoraCount, training: TrainingSettings) -> FrozenBase:
    """The base model as loaded: linear layers quantized (8/4-bit) or in the float dtype, the rest
    (embeddings, norms, the output head) in the compute dtype; MoE expert tensors stay in the compute dtype
    (bitsandbytes' transformers integration replaces nn.Linear only) unless ``quantize_moe_experts``
    quantizes them as Axolotl does (bitsandbytes ``replace_parameter_4bit`` / row-wise int8 on the whole 3-D
    tensor). ``replicated`` is the quantization constants (absmax, code books), which are attributes of
    the quantized weight, not parameters: FSDP and ZeRO-3 neither shard nor offload them."""
    dtype = training.base_dtype
    float_bytes = FLOAT_BYTES[training.float_dtype]
    quantized = dtype in QUANTIZED_DTYPES
    adapted_layers: dict[str, int] = {}
    if quantized and training.quantize_scope == "lora_targets":
        for _key, module, _ in count.adapted_keys:
            adapted_layers[module.path] = adapted_layers.get(module.path, 0) + 1
    total = replicated = 0
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
                replicated += q_layers * (q_bytes - _packed_bytes(numel, dtype))
            elif quantized and module.kind == Kind.EXPERTS and training.quantize_moe_experts:
                rows = numel // param.shape[-1]  # int8: one float32 scale per row of the (-1, in) view
                q_bytes = linear_weight_bytes(numel, rows, dtype, training.double_quant)
                total += arch.num_layers * q_bytes
                replicated += arch.num_layers * (q_bytes - _packed_bytes(numel, dtype))
            else:
                total += arch.num_layers * numel * float_bytes
    return FrozenBase(total + arch.global_params * float_bytes, replicated)


def _packed_bytes(numel: int, dtype: str) -> int:
    return numel if dtype == "int8" else -(-numel // 2)


def base_weights_bytes(arch: Architecture, count: LoraCount, training: TrainingSettings) -> int:
    return frozen_base(arch, count, training).total_bytes


def trainable_state_tensors(count: LoraCount, training: TrainingSettings) -> list[StateTensor]:
    """Trainable tensors with their element size: LoRA in the adapter dtype, the rest in the base's."""
    adapter = FLOAT_BYTES[training.adapter_dtype]
    base = FLOAT_BYTES[training.float_dtype]
    return [StateTensor(t.shape, t.count, adapter if t.origin == ADAPTER else base) for t in count.tensors]


def static_memory(arch: Architecture, count: LoraCount, training: TrainingSettings) -> StaticMemory:
    tensors = trainable_state_tensors(count, training)
    trainable_bytes = sum(t.numel * t.count * t.element_bytes for t in tensors)
    bias_bytes = sum(t.params * FLOAT_BYTES[training.float_dtype] for t in count.tensors if t.origin == BIAS)
    base = frozen_base(arch, count, training)
    # Trainable base biases are part of the loaded base model; everything else trainable is new.
    placed = distribute(base, tensors, training, trainable_outside_base_bytes=trainable_bytes - bias_bytes)
    return _static(placed)


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
    weights = sum(t.numel * t.count * t.element_bytes for t in tensors)
    return _static(distribute(FrozenBase(weights, 0), tensors, training, trainable_outside_base_bytes=0))


def _static(p: Placement) -> StaticMemory:
    return StaticMemory(
        p.base_weights_bytes, p.adapter_weights_bytes, p.gradients_bytes, p.optimizer_states_bytes, p.host_bytes
    )


__all__ = [
    "StaticMemory",
    "base_weights_bytes",
    "frozen_base",
    "full_finetune_static_memory",
    "optimizer_state_bytes",
    "static_memory",
    "trainable_state_tensors",
]
