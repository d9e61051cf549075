"""Optimizer state bytes after the first step, per trainable tensor, as each implementation allocates.

- ``adamw``: ``torch.optim.AdamW`` keeps ``exp_avg`` and ``exp_avg_sq`` like the parameter (same dtype);
  its float32 ``step`` scalars live on the host (foreach implementation), not on the GPU.
- ``adamw_8bit`` / ``paged_adamw_8bit``: bitsandbytes' ``Optimizer2State`` with 8-bit block-wise states:
  two uint8 tensors like the parameter plus one float32 absmax per 256 elements each, and two shared
  256-entry float32 maps; tensors under 4096 elements keep two float32 states (``min_8bit_size``).
  Paged states live in CUDA unified memory: the same bytes, but they can be evicted to the host.
- ``sgd``: no state. ``sgd_momentum``: one ``momentum_buffer`` like the parameter.
- ``adafactor``: transformers' ``Adafactor`` (the HF Trainer's default settings, beta1=None): factored
  float32 row and column second moments for matrices, a full float32 second moment for vectors, and a
  float32 ``RMS`` scalar per parameter.
- ``lion``: bitsandbytes' 32-bit ``Lion``: one float32 momentum per element.
- ``adamw_torchao_8bit`` / ``adamw_torchao_4bit``: torchao 0.18.0 ``torchao.optim.AdamW8bit`` (block 256) and
  ``AdamW4bit`` (block 128), ``_AdamBase._new_buffer``: a tensor with at least 4096 elements *and* a multiple of
  the block size gets two quantized states, each uint8 codes (one byte per element, or two elements per byte
  for 4-bit), a float32 scale per block and its own float32 ``qmap`` (256 or 16 entries; a new tensor per state,
  ``OptimState8bit.zeros``); any other tensor keeps two states like the parameter (``torch.zeros_like``, the
  parameter's dtype). The ``step`` counter is a CPU tensor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from .dtypes import BNB_MIN_8BIT_SIZE, BNB_OPTIM_BLOCKSIZE, BNB_QMAP_BYTES, ceil_div

OPTIMIZERS: dict[str, str] = {
    "adamw": "AdamW (torch)",
    "adamw_8bit": "8-bit AdamW (bitsandbytes)",
    "paged_adamw_8bit": "Paged 8-bit AdamW (bitsandbytes)",
    "sgd": "SGD",
    "sgd_momentum": "SGD with momentum",
    "adafactor": "Adafactor (transformers)",
    "lion": "Lion (bitsandbytes, 32-bit)",
    "adamw_torchao_8bit": "8-bit AdamW (torchao)",
    "adamw_torchao_4bit": "4-bit AdamW (torchao)",
}

# torchao/optim/adam.py (0.18.0): AdamW8bit(block_size=256), AdamW4bit(block_size=128); quantize from 4096 values.
TORCHAO_MIN_QUANT_SIZE = 4096
TORCHAO_BLOCK: dict[str, int] = {"adamw_torchao_8bit": 256, "adamw_torchao_4bit": 128}
TORCHAO_QMAP_ENTRIES: dict[str, int] = {"adamw_torchao_8bit": 256, "adamw_torchao_4bit": 16}

ADAFACTOR_RMS_BYTES = 4  # transformers' Adafactor keeps a 0-d float32 RMS per parameter


@dataclass(frozen=True, slots=True)
class StateTensor:
    """``count`` trainable tensors of one shape, each ``element_bytes`` per element."""

    shape: tuple[int, ...]
    count: int
    element_bytes: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def optimizer_state_bytes(optimizer: str, tensors: Iterable[StateTensor]) -> int:
    """Exact bytes of ``optimizer.state`` after one step (each storage once)."""
    total = 0
    uses_qmaps = False
    for t in tensors:
        n = t.numel
        if optimizer == "adamw":
            per = 2 * n * t.element_bytes
        elif optimizer in ("adamw_8bit", "paged_adamw_8bit"):
            if n < BNB_MIN_8BIT_SIZE:
                per = 2 * 4 * n
            else:
                per = 2 * (n + 4 * ceil_div(n, BNB_OPTIM_BLOCKSIZE))
                uses_qmaps = True
        elif optimizer == "sgd":
            per = 0
        elif optimizer == "sgd_momentum":
            per = n * t.element_bytes
        elif optimizer == "adafactor":
            per = 4 * _adafactor_elements(t.shape) + ADAFACTOR_RMS_BYTES
        elif optimizer == "lion":
            per = 4 * n
        elif optimizer in TORCHAO_BLOCK:
            per = 2 * _torchao_state_bytes(optimizer, n, t.element_bytes)
        else:
            raise ValueError(f"unknown optimizer {optimizer!r}")
        total += per * t.count
    if uses_qmaps:
        total += 2 * BNB_QMAP_BYTES
    return total


def _adafactor_elements(shape: tuple[int, ...]) -> int:
    if len(shape) >= 2:
        rows = math.prod(shape[:-1])
        cols = math.prod(shape[:-2]) * shape[-1]
        return rows + cols
    return math.prod(shape)


def _torchao_state_bytes(optimizer: str, n: int, element_bytes: int) -> int:
    """One AdamW state of an ``n``-element tensor in torchao's 8/4-bit optimizers."""
    block = TORCHAO_BLOCK[optimizer]
    if n < TORCHAO_MIN_QUANT_SIZE or n % block:
        return n * element_bytes
    codes = n if optimizer == "adamw_torchao_8bit" else n // 2
    return codes + 4 * (n // block) + 4 * TORCHAO_QMAP_ENTRIES[optimizer]
