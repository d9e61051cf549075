"""Size on disk of the saved adapter (``adapter_model.safetensors``), header included.

safetensors writes an 8-byte little-endian header length, a compact JSON header (``__metadata__``
then one entry per tensor with dtype, shape and byte offsets) padded with spaces to a multiple of 8,
then the raw tensor bytes, sorted by dtype (largest first) and name. PEFT saves the keys of
``get_peft_model_state_dict`` under ``base_model.model.`` with the adapter name removed.
"""

from __future__ import annotations

import math

from .dtypes import FLOAT_BYTES
from .lora import LoraCount, parameter_in_out

SAFETENSORS_DTYPE = {"fp32": "F32", "bf16": "BF16", "fp16": "F16"}
PREFIX = "base_model.model."
KIND_BYTES = {dtype: len(kind) for dtype, kind in SAFETENSORS_DTYPE.items()}
ENTRY_BYTES = len(',"":{"dtype":"","shape":[],"data_offsets":[,]}')  # an entry without its variable parts


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def saved_tensors(count: LoraCount, adapter_dtype: str, base_dtype: str) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, dtype) of every tensor PEFT writes for this adapter."""
    tensors: list[tuple[str, tuple[int, ...], str]] = []
    for key, module, r in count.adapted_keys:
        if module.kind.value == "embedding":
            tensors.append((f"{PREFIX}{key}.lora_embedding_A", (r, module.in_features), adapter_dtype))
            tensors.append((f"{PREFIX}{key}.lora_embedding_B", (module.out_features, r), adapter_dtype))
        elif module.kind.value == "conv":
            kernel = module.kernel
            a_shape = (r, module.in_features, *kernel)
            b_shape = (module.out_features, r // module.groups, *(1,) * len(kernel))
            tensors.append((f"{PREFIX}{key}.lora_A.weight", a_shape, adapter_dtype))
            tensors.append((f"{PREFIX}{key}.lora_B.weight", b_shape, adapter_dtype))
            if count.lora_bias:
                tensors.append((f"{PREFIX}{key}.lora_B.bias", (module.out_features,), adapter_dtype))
        else:
            tensors.append((f"{PREFIX}{key}.lora_A.weight", (r, module.in_features), adapter_dtype))
            tensors.append((f"{PREFIX}{key}.lora_B.weight", (module.out_features, r), adapter_dtype))
            if count.lora_bias:
                tensors.append((f"{PREFIX}{key}.lora_B.bias", (module.out_features,), adapter_dtype))
        if count.use_dora:
            tensors.append((f"{PREFIX}{key}.lora_magnitude_vector", (module.out_features,), adapter_dtype))
    for key, shape, r in count.parameter_keys:
        experts, a, b = parameter_in_out(shape)
        module_key = key.rsplit(".", 1)[0]
        tensors.append((f"{PREFIX}{module_key}.lora_A.weight", (r * experts, a), adapter_dtype))
        tensors.append((f"{PREFIX}{module_key}.lora_B.weight", (b, r * experts), adapter_dtype))
    stored = base_dtype if base_dtype in FLOAT_BYTES else "bf16"
    tensors.extend((f"{PREFIX}{name}", shape, stored) for name, shape in count.bias_keys)
    tensors.extend((f"{PREFIX}{name}", shape, stored) for name, shape in count.copy_keys)
    return tensors


def safetensors_file_bytes(tensors: list[tuple[str, tuple[int, ...], str]]) -> int:
    """Exact size of the safetensors file holding ``tensors`` (``{"format": "pt"}`` metadata).

    The header is compact JSON; its length is summed entry by entry from the lengths of its parts
    (``,"{name}":{"dtype":"{kind}","shape":[{shape}],"data_offsets":[{start},{end}]}``) rather than built
    as strings: a new rank is a new layout, and formatting ~450 entries per request was half an estimate.
    """
    order = sorted(tensors, key=lambda t: (-FLOAT_BYTES[t[2]], t[0]))
    header_bytes = len('{"__metadata__":{"format":"pt"}}')
    offset = 0
    for name, shape, dtype in order:
        size = math.prod(shape) * FLOAT_BYTES[dtype]
        shape_text = sum(len(str(d)) for d in shape) + len(shape) - 1 if shape else 0
        end = offset + size
        header_bytes += ENTRY_BYTES + _utf8_length(name) + KIND_BYTES[dtype] + shape_text
        header_bytes += len(str(offset)) + len(str(end))
        offset = end
    padded = header_bytes + (-header_bytes % 8)
    return 8 + padded + offset


def adapter_file_bytes(count: LoraCount, adapter_dtype: str, base_dtype: str) -> int:
    return safetensors_file_bytes(saved_tensors(count, adapter_dtype, base_dtype))
