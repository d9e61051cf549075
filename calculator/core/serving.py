"""Serving a trained adapter: the base model with N adapters loaded (an adapter zoo), or merged.

- Unmerged: the frozen base is loaded once (in the training base dtype, so a QLoRA base stays 4-bit)
  and every adapter adds its own weights (in the adapter dtype); each adapted module runs one extra
  low-rank pair per token, i.e. about ``2 * lora_params`` extra FLOPs against ``2 * base_params``.
- Merged: ``W + scaling * B @ A`` has W's shape, so the merged model costs exactly the base model in
  memory and latency. A 4-bit base cannot absorb the update without dequantizing, so merging a QLoRA
  adapter means serving the base in its compute dtype (or re-quantizing, with rounding error).
- A KV cache for one sequence of ``context_len`` tokens (K and V of every attention layer that keeps its
  own, in the compute dtype: DeepSeek's MLA caches the decompressed per-head k and v as transformers does,
  Gemma 4's KV-sharing layers none; Gated DeltaNet and short-convolution layers a fixed recurrent/conv state
  instead), and the same CUDA context / allocator allowance as training. Sliding-window layers are counted
  over the whole context (transformers trims them to the window: a conservative figure).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from .architecture import Architecture
from .dtypes import FLOAT_BYTES, compute_dtype
from .expressions import num
from .families.spec import Attention, GatedDeltaNet, Mla, ShortConv
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
    element = FLOAT_BYTES[compute_dtype(dtype)]
    stack = arch.text
    total = 0
    for kind_index, kind in enumerate(stack.kinds):
        layers = stack.layout.count(kind_index)
        per_token, fixed = _layer_cache(kind.block)
        total += layers * (per_token * tokens + fixed) * element
    return total


def _layer_cache(block: object) -> tuple[int, int]:
    """(cached elements per token, fixed-size state elements) of one layer kind."""
    mixer = getattr(block, "mixer", None)
    if isinstance(mixer, Attention):
        if mixer.cross or not mixer.has_kv:
            return 0, 0
        return 2 * num(mixer.kv_heads) * num(mixer.head_dim), 0
    if isinstance(mixer, Mla):
        heads = num(mixer.heads)
        return heads * (num(mixer.qk_nope_head_dim) + num(mixer.qk_rope_head_dim) + num(mixer.v_head_dim)), 0
    if isinstance(mixer, GatedDeltaNet):
        value_heads, key_dim, value_dim = num(mixer.value_heads), num(mixer.key_dim), num(mixer.value_dim)
        conv_dim = 2 * num(mixer.key_heads) * key_dim + value_heads * value_dim
        return 0, value_heads * key_dim * value_dim + conv_dim * num(mixer.kernel)
    if isinstance(mixer, ShortConv):
        return 0, num(mixer.hidden) * num(mixer.kernel)
    return 0, 0


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
