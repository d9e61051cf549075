"""Static training memory in exact bytes: frozen weights, trainable weights, gradients, optimizer states,
per GPU and in host memory, for each way of spreading them over GPUs (`parallelism.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from .architecture import Architecture, Kind, Module
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
    (embeddings, norms, convolutions, the output head) in the compute dtype.

    transformers + bitsandbytes replaces every nn.Linear but the output embedding, tied modules and the last
    parameter's module (``get_keys_to_not_convert``), so vision towers and projectors are quantized too;
    torchtune's QLoRA (``quantize_scope="lora_targets"``) quantizes only the adapted linear layers. MoE expert
    tensors (3-D parameters, not nn.Linear) stay in the compute dtype unless ``quantize_moe_experts``
    quantizes them as Axolotl does (bitsandbytes ``replace_parameter_4bit`` / row-wise int8 on the whole 3-D
    tensor). ``replicated`` is the quantization constants (absmax, code books), which are attributes of the
    quantized weight, not parameters: FSDP and ZeRO-3 neither shard nor offload them."""
    dtype = training.base_dtype
    float_bytes = FLOAT_BYTES[training.float_dtype]
    total = arch.base_params * float_bytes
    if dtype not in QUANTIZED_DTYPES:
        return FrozenBase(total, 0)
    replicated = 0
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
        replicated += quantized * (stored - _packed_bytes(weight.numel, dtype))
    if training.quantize_moe_experts:
        for stack in arch.stacks:
            for kind_index, kind in enumerate(stack.kinds):
                copies = stack.layout.count(kind_index)
                for param in (p for m in kind.modules if m.kind == Kind.EXPERTS for p in m.params):
                    if len(param.shape) != 3:
                        continue  # expert biases stay as they are
                    rows = param.numel // param.shape[-1]  # int8: one float32 scale per row of the (-1, in) view
                    stored = linear_weight_bytes(param.numel, rows, dtype, training.double_quant)
                    total += copies * (stored - param.numel * float_bytes)
                    replicated += copies * (stored - _packed_bytes(param.numel, dtype))
    return FrozenBase(total, replicated)


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
    tensors = [
        StateTensor(p.shape, stack.layout.count(k), elem)
        for stack in arch.stacks
        for k, kind in enumerate(stack.kinds)
        for m in kind.modules
        for p in m.params
    ]
    tensors += [StateTensor(p.shape, 1, elem) for m in arch.global_modules for p in arch.own_params(m)]
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
