"""Size on disk of the saved adapter (``adapter_model.safetensors``), header included.

safetensors writes an 8-byte little-endian header length, a compact JSON header (``__metadata__``
then one entry per tensor with dtype, shape and byte offsets) padded with spaces to a multiple of 8,
then the raw tensor bytes, sorted by dtype (largest first) and name. PEFT saves the keys of
``get_peft_model_state_dict`` under ``base_model.model.`` with the adapter name removed.

Every tensor's shape is a few dimensions of the form ``a + b·(r // g)`` in its module's rank (`Template`),
so a structure's layout (names, dtypes, the file's order, the header's fixed text) is built once
(`adapter_file_size`, cached per architecture and LoRA structure) and a new rank only re-adds sizes and
the digits of shapes and offsets: a new configuration used to format and sort ~450 entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import accumulate

from .architecture import Architecture
from .dtypes import FLOAT_BYTES
from .lora import LoraCount, LoraSettings, parameter_in_out

SAFETENSORS_DTYPE = {"fp32": "F32", "bf16": "BF16", "fp16": "F16"}
PREFIX = "base_model.model."
KIND_BYTES = {dtype: len(kind) for dtype, kind in SAFETENSORS_DTYPE.items()}
ENTRY_BYTES = len(',"":{"dtype":"","shape":[],"data_offsets":[,]}')  # an entry without its variable parts
METADATA_BYTES = len('{"__metadata__":{"format":"pt"}}')

Dim = tuple[int, int, int]  # a + b * (r // g)
R: Dim = (0, 1, 1)


def _fixed(n: int) -> Dim:
    return (n, 0, 1)


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    dims: tuple[Dim, ...]
    dtype: str
    rank: int | None  # index into `ranks(count)`: the rank the shape follows (None: a fixed shape)


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def ranks(count: LoraCount) -> list[int]:
    """Each adapted module's rank, then each target parameter's: what `Template.rank` indexes."""
    return [r for _key, _module, r in count.adapted_keys] + [r for _key, _shape, r in count.parameter_keys]


def templates(count: LoraCount, adapter_dtype: str, base_dtype: str) -> list[Template]:
    """Every tensor PEFT writes for this adapter, with its shape as a function of its module's rank."""
    out: list[Template] = []
    for i, (key, module, _r) in enumerate(count.adapted_keys):
        size_in, size_out = _fixed(module.in_features), _fixed(module.out_features)
        if module.kind.value == "embedding":
            out.append(Template(f"{PREFIX}{key}.lora_embedding_A", (R, size_in), adapter_dtype, i))
            out.append(Template(f"{PREFIX}{key}.lora_embedding_B", (size_out, R), adapter_dtype, i))
        elif module.kind.value == "conv":
            kernel = tuple(_fixed(k) for k in module.kernel)
            ones = (_fixed(1),) * len(kernel)
            out.append(Template(f"{PREFIX}{key}.lora_A.weight", (R, size_in, *kernel), adapter_dtype, i))
            out.append(
                Template(f"{PREFIX}{key}.lora_B.weight", (size_out, (0, 1, module.groups), *ones), adapter_dtype, i)
            )
            if count.lora_bias:
                out.append(Template(f"{PREFIX}{key}.lora_B.bias", (size_out,), adapter_dtype, None))
        else:
            out.append(Template(f"{PREFIX}{key}.lora_A.weight", (R, size_in), adapter_dtype, i))
            out.append(Template(f"{PREFIX}{key}.lora_B.weight", (size_out, R), adapter_dtype, i))
            if count.lora_bias:
                out.append(Template(f"{PREFIX}{key}.lora_B.bias", (size_out,), adapter_dtype, None))
        if count.use_dora:
            out.append(Template(f"{PREFIX}{key}.lora_magnitude_vector", (size_out,), adapter_dtype, None))
    first = len(count.adapted_keys)
    for j, (key, shape, _r) in enumerate(count.parameter_keys):
        experts, a, b = parameter_in_out(shape)
        module_key = key.rsplit(".", 1)[0]
        rows: Dim = (0, experts, 1)
        out.append(Template(f"{PREFIX}{module_key}.lora_A.weight", (rows, _fixed(a)), adapter_dtype, first + j))
        out.append(Template(f"{PREFIX}{module_key}.lora_B.weight", (_fixed(b), rows), adapter_dtype, first + j))
    stored = base_dtype if base_dtype in FLOAT_BYTES else "bf16"
    for name, shape in (*count.bias_keys, *count.copy_keys):
        out.append(Template(f"{PREFIX}{name}", tuple(_fixed(d) for d in shape), stored, None))
    return out


def _shape(dims: tuple[Dim, ...], r: int) -> tuple[int, ...]:
    return tuple(a + b * (r // g) for a, b, g in dims)


def saved_tensors(count: LoraCount, adapter_dtype: str, base_dtype: str) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, dtype) of every tensor PEFT writes for this adapter."""
    rs = ranks(count)
    return [
        (t.name, _shape(t.dims, rs[t.rank] if t.rank is not None else 0), t.dtype)
        for t in templates(count, adapter_dtype, base_dtype)
    ]


def safetensors_file_bytes(tensors: list[tuple[str, tuple[int, ...], str]]) -> int:
    """Exact size of the safetensors file holding ``tensors`` (``{"format": "pt"}`` metadata).

    The header is compact JSON; its length is summed entry by entry from the lengths of its parts
    (``,"{name}":{"dtype":"{kind}","shape":[{shape}],"data_offsets":[{start},{end}]}``).
    """
    order = sorted(tensors, key=lambda t: (-FLOAT_BYTES[t[2]], t[0]))
    header_bytes = METADATA_BYTES
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


@dataclass(frozen=True, slots=True)
class Layout:
    """One structure's file in write order: per tensor the header's fixed bytes (name, dtype, commas and
    the digits of fixed dimensions), its element size, its rank index and the dimensions that follow r."""

    entries: tuple[tuple[int, int, int | None, tuple[Dim, ...]], ...]  # fixed bytes, element bytes, rank, dims
    first_key: str | None  # checks that a count is of this structure
    ranks: int

    @staticmethod
    def of(count: LoraCount, adapter_dtype: str, base_dtype: str) -> Layout:
        order = sorted(templates(count, adapter_dtype, base_dtype), key=lambda t: (-FLOAT_BYTES[t.dtype], t.name))
        entries = []
        for t in order:
            commas = len(t.dims) - 1 if t.dims else 0
            fixed_digits = sum(len(str(a)) for a, b, _g in t.dims if b == 0)
            fixed = ENTRY_BYTES + _utf8_length(t.name) + KIND_BYTES[t.dtype] + commas + fixed_digits
            entries.append((fixed, FLOAT_BYTES[t.dtype], t.rank, t.dims))
        first = count.adapted_keys[0][0] if count.adapted_keys else None
        return Layout(tuple(entries), first, len(ranks(count)))

    def file_bytes(self, count: LoraCount) -> int:
        rs = ranks(count)
        sized: dict[tuple[int, int, tuple[Dim, ...]], tuple[int, int]] = {}  # most tensors share a shape

        def size(element: int, r: int, dims: tuple[Dim, ...]) -> tuple[int, int]:
            """(bytes, digits of the dimensions that follow r)"""
            numel, variable = 1, 0
            for a, b, g in dims:
                d = a + b * (r // g)
                numel *= d
                if b:
                    variable += len(str(d))
            return numel * element, variable

        header_bytes = METADATA_BYTES
        sizes = []
        for fixed, element, rank, dims in self.entries:
            key = (element, rs[rank] if rank is not None else 0, dims)
            known = sized.get(key)
            if known is None:
                known = sized[key] = size(*key)
            sizes.append(known[0])
            header_bytes += fixed + known[1]
        if sizes:
            # each entry's data_offsets are [start, end]: every end is written twice (as the next start) but
            # the last, and the first start is "0"
            ends = list(accumulate(sizes))
            header_bytes += 1 + 2 * sum(map(len, map(str, ends))) - len(str(ends[-1]))
        padded = header_bytes + (-header_bytes % 8)
        return 8 + padded + (ends[-1] if sizes else 0)


def adapter_file_size(
    arch: Architecture, lora: LoraSettings, count: LoraCount, adapter_dtype: str, base_dtype: str
) -> int:
    """`adapter_file_bytes` for ``count`` (the count of ``lora`` on ``arch``), from the structure's cached
    layout; equal by construction (`test_speed_paths` checks it against the tensor-by-tensor sum)."""
    layout = _layout(arch, _structure(lora), adapter_dtype, base_dtype, count)
    first = count.adapted_keys[0][0] if count.adapted_keys else None
    if layout.ranks != len(count.adapted_keys) + len(count.parameter_keys) or layout.first_key != first:
        return adapter_file_bytes(count, adapter_dtype, base_dtype)  # not this structure: never expected
    return layout.file_bytes(count)


@lru_cache(maxsize=1024)
def _structure(lora: LoraSettings) -> LoraSettings:
    return replace(lora, r=1)


_layouts: dict[tuple[Architecture, LoraSettings, str, str], Layout] = {}
MAX_LAYOUTS = 256


def _layout(arch: Architecture, lora: LoraSettings, adapter_dtype: str, base_dtype: str, count: LoraCount) -> Layout:
    key = (arch, lora, adapter_dtype, base_dtype)
    layout = _layouts.get(key)
    if layout is None:
        if len(_layouts) >= MAX_LAYOUTS:
            _layouts.clear()
        layout = _layouts[key] = Layout.of(count, adapter_dtype, base_dtype)
    return layout
