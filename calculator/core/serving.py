"""Serving a trained adapter: the base model with N adapters loaded (an adapter zoo), or merged.

- Unmerged: the frozen base is loaded once (in the training base dtype, so a QLoRA base stays 4-bit)
  and every adapter adds its own weights (in the adapter dtype); each adapted module runs one extra
  low-rank pair per token, i.e. about ``2 * lora_params`` extra FLOPs against ``2 * base_params``.
- Merged: ``W + scaling * B @ A`` has W's shape, so the merged model costs exactly the base model in
  memory and latency. A 4-bit base cannot absorb the update without dequantizing, so merging a QLoRA
  adapter means serving the base in its compute dtype (or re-quantizing, with rounding error).
- A KV cache for one sequence of ``context_len`` tokens (K and V, every layer, in the compute dtype)
  and the same CUDA context / allocator allowance as training.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from .architecture import Architecture
from .dtypes import FLOAT_BYTES, compute_dtype
from .gpus import Gpu, GpuFit, fits
from .lora import LoraSettings, count_lora
from .memory import base_weights_bytes, static_memory
from .training import TrainingSettings

MAX_ADAPTERS = 10_000


@dataclass(frozen=True, slots=True)
class ServingEstimate:
    adapters: int
    base_weights_bytes: int  # the base as loaded for training (quantized layers stay quantized)
    adapter_bytes: int  # one adapter's weights in memory
    adapters_bytes: int  # all of them
    kv_cache_bytes: int  # one sequence of context_len tokens
    context_len: int
    overhead_bytes: int
    total_bytes: int
    merged_weights_bytes: int  # the merged model: the base's shapes, in the compute dtype if it was quantized
    merged_total_bytes: int
    merged_needs_dequantization: bool
    extra_flops_fraction: float  # unmerged: extra matmul FLOPs per token relative to the base
    fits: tuple[GpuFit, ...]
    merged_fits: tuple[GpuFit, ...]


def kv_cache_bytes(arch: Architecture, tokens: int, dtype: str) -> int:
    d = arch.dims
    return 2 * d.num_hidden_layers * d.num_key_value_heads * d.head_dim * tokens * FLOAT_BYTES[compute_dtype(dtype)]


def serving_estimate(
    arch: Architecture,
    lora: LoraSettings,
    training: TrainingSettings,
    adapters: int,
    gpus: tuple[Gpu, ...],
) -> ServingEstimate:
    if not 1 <= adapters <= MAX_ADAPTERS:
        raise ValueError(f"adapters must be between 1 and {MAX_ADAPTERS}")
    return _serving(arch, lora, training, adapters, gpus)


@lru_cache(maxsize=512)
def _serving(
    arch: Architecture, lora: LoraSettings, training: TrainingSettings, adapters: int, gpus: tuple[Gpu, ...]
) -> ServingEstimate:
    one_gpu = replace(training, num_gpus=1, parallelism="ddp")
    count = count_lora(arch, lora)
    base = base_weights_bytes(arch, count, one_gpu)
    adapter = static_memory(arch, count, one_gpu).adapter_weights_bytes
    kv = kv_cache_bytes(arch, training.seq_len, training.base_dtype)
    overhead = training.overhead_bytes
    total = base + adapters * adapter + kv + overhead
    quantized = training.base_dtype not in FLOAT_BYTES
    merged = base_weights_bytes(arch, count, replace(one_gpu, base_dtype=compute_dtype(training.base_dtype)))
    merged_total = merged + kv + overhead
    extra = count.lora_params / arch.base_params if arch.base_params else 0.0
    return ServingEstimate(
        adapters=adapters,
        base_weights_bytes=base,
        adapter_bytes=adapter,
        adapters_bytes=adapters * adapter,
        kv_cache_bytes=kv,
        context_len=training.seq_len,
        overhead_bytes=overhead,
        total_bytes=total,
        merged_weights_bytes=merged,
        merged_total_bytes=merged_total,
        merged_needs_dequantization=quantized,
        extra_flops_fraction=extra,
        fits=fits(total, gpus),
        merged_fits=fits(merged_total, gpus),
    )
