"""Where the model states live: per GPU and in host memory, for DDP, FSDP2 and DeepSpeed ZeRO 1/2/3, with
CPU offload of the optimizer and of the parameters.

- ``ddp``: every GPU holds everything. ``optimizer_offload`` is torchao 0.18.0's ``CPUOffloadOptimizer``
  (``torchao/optim/cpu_offload.py``): every trainable tensor of at least 4096 elements gets a pinned host copy,
  a pinned host gradient and its optimizer states on the host; smaller ones stay on the GPU with their
  states; the GPU gradients stay (``offload_gradients=False``).
- ``fsdp``: FSDP2 ``fully_shard`` splits every parameter (frozen or not), its gradient and its optimizer
  states across the GPUs, in their own dtype; ``param_offload`` (``CPUOffloadPolicy``) moves parameters,
  gradients and the optimizer step to the host.
- ``zero1``/``zero2``/``zero3``: DeepSpeed 0.19.8 with bf16/fp16 enabled casts the model to 16 bit and keeps
  an fp32 master copy, fp32 gradients and fp32 optimizer states per partition
  (``runtime/zero/stage_1_and_2.py``, ``stage3.py``). Per trainable parameter: 16-bit weight (replicated in
  stages 1-2, partitioned in 3), 16-bit gradient (whole in stage 1, partitioned in 2, none in 3, which
  reduces straight into an fp32 partition), fp32 gradient, fp32 master and the optimizer's fp32 states,
  partitioned. Frozen parameters are partitioned only by stage 3 (they are in no optimizer group).
  ``optimizer_offload`` moves master, fp32 gradients and states to pinned host memory (and, in stage 2,
  the gradient partitions); ``param_offload`` (stage 3) the 16-bit parameters. This reproduces DeepSpeed's
  own ``estimate_zero2/3_model_states_mem_needs`` (``tests/core/golden/recipes_measured.json``).

Host memory is for one machine that holds all ``num_gpus`` GPUs. Quantization constants are attributes of
the quantized weights, not parameters: no sharding or offload moves them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dtypes import FLOAT_BYTES, ceil_div
from .optimizers import StateTensor, optimizer_state_bytes
from .training import ZERO_STAGES, TrainingSettings

FP32 = 4
TORCHAO_OFFLOAD_MIN_SIZE = 4096  # CPUOffloadOptimizer(minimal_size=4096)


@dataclass(frozen=True, slots=True)
class FrozenBase:
    total_bytes: int  # the base model as loaded (trainable base tensors such as biases included)
    replicated_bytes: int  # quantization constants: never sharded, never offloaded


@dataclass(frozen=True, slots=True)
class Placement:
    base_weights_bytes: int
    adapter_weights_bytes: int
    gradients_bytes: int
    optimizer_states_bytes: int
    host_bytes: int


def distribute(
    base: FrozenBase, tensors: list[StateTensor], training: TrainingSettings, *, trainable_outside_base_bytes: int
) -> Placement:
    """Per-GPU bytes of each part and the host bytes. ``tensors`` are the trainable tensors in their own
    dtype; ``trainable_outside_base_bytes`` the part of them that is not in ``base`` (the adapters; 0 for
    full fine-tuning, where ``base`` is the trainable model itself)."""
    trainable = sum(t.numel * t.count * t.element_bytes for t in tensors)
    states = optimizer_state_bytes(training.optimizer, tensors)
    n = training.num_gpus
    if training.parallelism in ZERO_STAGES:
        return _zero(base, tensors, training, adapters=trainable_outside_base_bytes > 0)
    if training.parallelism == "fsdp" and (n > 1 or training.param_offload):
        shardable = base.total_bytes - base.replicated_bytes
        if training.param_offload:
            host = shardable + trainable_outside_base_bytes + trainable + states
            return Placement(base.replicated_bytes, 0, 0, 0, host)
        return Placement(
            ceil_div(shardable, n) + base.replicated_bytes,
            ceil_div(trainable_outside_base_bytes, n),
            ceil_div(trainable, n),
            ceil_div(states, n),
            0,
        )
    if training.optimizer_offload:  # torchao CPUOffloadOptimizer in every process
        offloaded = [t for t in tensors if t.numel >= TORCHAO_OFFLOAD_MIN_SIZE]
        kept = [t for t in tensors if t.numel < TORCHAO_OFFLOAD_MIN_SIZE]
        copies = 2 * sum(t.numel * t.count * t.element_bytes for t in offloaded)  # pinned parameter + gradient
        host = n * (copies + optimizer_state_bytes(training.optimizer, offloaded))
        gpu_states = optimizer_state_bytes(training.optimizer, kept) if kept else 0
        return Placement(base.total_bytes, trainable_outside_base_bytes, trainable, gpu_states, host)
    return Placement(base.total_bytes, trainable_outside_base_bytes, trainable, states, 0)


def _zero(base: FrozenBase, tensors: list[StateTensor], training: TrainingSettings, *, adapters: bool) -> Placement:
    stage = ZERO_STAGES[training.parallelism]
    n = training.num_gpus
    params = sum(t.numel * t.count for t in tensors)
    p16 = FLOAT_BYTES[training.float_dtype]  # the engine's working dtype (bf16/fp16, or fp32 without mixed precision)
    mixed = p16 != FP32
    master = FP32 * params if mixed else 0
    grads16 = p16 * params if mixed else 0
    grads32 = FP32 * params
    fp32_states = optimizer_state_bytes(training.optimizer, [StateTensor(t.shape, t.count, FP32) for t in tensors])
    frozen = base.total_bytes - (0 if adapters else base.total_bytes)
    shardable = frozen - base.replicated_bytes if adapters else 0
    working = p16 * params
    if stage == 3:
        weights_gpu = ceil_div(shardable, n) + (base.replicated_bytes if adapters else 0)
        working_gpu = ceil_div(working, n)
        grads_gpu = ceil_div(grads32, n)
    else:
        weights_gpu = frozen
        working_gpu = working
        grads_gpu = grads16 + ceil_div(grads32, n) if stage == 1 else ceil_div(grads16 + grads32, n)
    partitioned = ceil_div(master + fp32_states, n)
    host = 0
    if training.optimizer_offload:
        host += master + fp32_states + grads32
        partitioned = 0
        grads_gpu = grads16 if stage == 1 else 0
    if training.param_offload:  # stage 3 only (validated)
        host += working + shardable
        weights_gpu = base.replicated_bytes if adapters else 0
        working_gpu = 0
    if adapters:
        return Placement(weights_gpu, working_gpu, grads_gpu, partitioned, host)
    return Placement(weights_gpu + working_gpu, 0, grads_gpu, partitioned, host)
