"""Storage formats: bytes per element of the float formats and the bitsandbytes layouts."""

from __future__ import annotations

FLOAT_BYTES: dict[str, int] = {"fp32": 4, "bf16": 2, "fp16": 2}
FLOAT_DTYPES: tuple[str, ...] = tuple(FLOAT_BYTES)
QUANTIZED_DTYPES: tuple[str, ...] = ("int8", "nf4", "fp4")
BASE_DTYPES: tuple[str, ...] = FLOAT_DTYPES + QUANTIZED_DTYPES

# bitsandbytes constants (bitsandbytes/functional.py, nn/modules.py)
BNB_4BIT_BLOCKSIZE = 64  # Linear4bit's default blocksize for the absmax of 4-bit weights
BNB_NESTED_BLOCKSIZE = 256  # double quantization: absmax re-quantized to 8 bit in blocks of 256
BNB_OPTIM_BLOCKSIZE = 256  # 8-bit optimizers' block-wise state quantization
BNB_MIN_8BIT_SIZE = 4096  # tensors with fewer elements keep 32-bit optimizer states
BNB_QMAP_BYTES = 256 * 4  # one float32 quantization map of 256 entries
BNB_4BIT_CODE_BYTES = 16 * 4  # the NF4/FP4 code book each 4-bit weight's QuantState carries (not shared)


def compute_dtype(base_dtype: str) -> str:
    """The dtype activations and unquantized weights use: bf16 under 8/4-bit (bnb compute dtype)."""
    return base_dtype if base_dtype in FLOAT_BYTES else "bf16"


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def linear_weight_bytes(numel: int, out_features: int, base_dtype: str, double_quant: bool) -> int:
    """Resident bytes of one linear weight as bitsandbytes (or plain torch) stores it.

    - int8 (LLM.int8, ``Int8Params``): the int8 matrix ``CB`` plus one float32 scale per output row ``SCB``.
    - nf4/fp4 (``Params4bit``): two weights per byte, one float32 absmax per block of 64 and the 16-entry
      float32 code book; with double quantization the absmax is itself stored as uint8 with one float32
      absmax per 256 of them, a float32 offset and the 256-entry float32 nested code
      (``QuantState.state2``, ``offset``). No part is shared between layers (measured with bitsandbytes).
    """
    if base_dtype in FLOAT_BYTES:
        return numel * FLOAT_BYTES[base_dtype]
    if base_dtype == "int8":
        return numel + 4 * out_features
    blocks = ceil_div(numel, BNB_4BIT_BLOCKSIZE)
    packed = ceil_div(numel, 2)
    if not double_quant:
        return packed + 4 * blocks + BNB_4BIT_CODE_BYTES
    nested = 4 * ceil_div(blocks, BNB_NESTED_BLOCKSIZE) + 4 + BNB_QMAP_BYTES
    return packed + blocks + nested + BNB_4BIT_CODE_BYTES
