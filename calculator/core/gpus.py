"""GPUs: the memory a training job can use, peak tensor throughput and a rental price, and the verdict
of a peak against a card with a safety margin.

The seed catalog is ``calculator/data/gpus.json``: the total memory nvidia-smi / rocm-smi report (MiB),
peak dense BF16/FP16 tensor TFLOPS (no sparsity) and a typical on-demand price per GPU-hour, each with its
source and date; ``null`` where no source was found (the planner then says "unknown").
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

MIB = 1024**2
CATALOG_FILE = Path(__file__).resolve().parent.parent / "data" / "gpus.json"

FITS, TIGHT, DOES_NOT_FIT = "fits", "tight", "does_not_fit"
VERDICTS: tuple[str, ...] = (FITS, TIGHT, DOES_NOT_FIT)
# docs/accuracy.md: reserved-memory and whole-card peaks published for named setups run 8-15 % above our
# estimate (the caching allocator's slack and fragmentation); a peak within 15 % of a card is a risk.
DEFAULT_SAFETY_MARGIN = 0.15
MAX_SAFETY_MARGIN = 0.9


@dataclass(frozen=True, slots=True)
class Gpu:
    name: str
    memory_bytes: int
    peak_bf16_tflops: float | None = None  # dense tensor throughput, no sparsity; None: unknown
    price_per_hour: float | None = None  # USD per GPU-hour, on demand; None: unknown
    peak_fp16_tflops: float | None = None  # for cards without BF16 (T4, V100); else as BF16

    def peak_flops(self, compute_dtype: str) -> float | None:
        """Peak FLOP/s for matmuls in ``compute_dtype`` (bf16, fp16), or None when the catalog has none."""
        tflops = {"bf16": self.peak_bf16_tflops, "fp16": self.peak_fp16_tflops}.get(compute_dtype)
        return None if tflops is None else tflops * 1e12


@dataclass(frozen=True, slots=True)
class GpuFit:
    gpu: str
    memory_bytes: int
    fits: bool  # the peak is at most the card's memory (v1 meaning)
    headroom_bytes: int  # memory - peak; negative when it does not fit
    verdict: str = FITS  # fits, tight (inside the safety margin), does_not_fit
    margin_bytes: int = 0  # the safety margin on this card


@dataclass(frozen=True, slots=True)
class GpuSource:
    """Where a catalog row's numbers come from (for the admin and docs; not needed to compute)."""

    memory: str
    tflops: str
    price: str
    price_date: str | None
    note: str


def safety_margin_bytes(memory_bytes: int, safety_margin: float = DEFAULT_SAFETY_MARGIN) -> int:
    return int(memory_bytes * safety_margin)


def verdict(total_bytes: int, memory_bytes: int, safety_margin: float = DEFAULT_SAFETY_MARGIN) -> str:
    """``fits`` only with the safety margin to spare; ``tight`` when it fits only inside the margin."""
    if total_bytes > memory_bytes:
        return DOES_NOT_FIT
    if total_bytes > memory_bytes - safety_margin_bytes(memory_bytes, safety_margin):
        return TIGHT
    return FITS


def fits(total_bytes: int, gpus: tuple[Gpu, ...], safety_margin: float = DEFAULT_SAFETY_MARGIN) -> tuple[GpuFit, ...]:
    return tuple(
        GpuFit(
            g.name,
            g.memory_bytes,
            total_bytes <= g.memory_bytes,
            g.memory_bytes - total_bytes,
            verdict(total_bytes, g.memory_bytes, safety_margin),
            safety_margin_bytes(g.memory_bytes, safety_margin),
        )
        for g in gpus
    )


def smallest_fitting(gpu_fits: Iterable[GpuFit]) -> GpuFit | None:
    """The card with the least memory among those the peak fits on, or None."""
    return min((f for f in gpu_fits if f.fits), key=lambda f: f.memory_bytes, default=None)


def _read_catalog() -> tuple[tuple[Gpu, ...], dict[str, GpuSource]]:
    rows: list[dict[str, Any]] = json.loads(CATALOG_FILE.read_text())["gpus"]
    gpus = tuple(
        Gpu(r["name"], r["memory_mib"] * MIB, r["peak_bf16_tflops"], r["price_per_hour"], r["peak_fp16_tflops"])
        for r in rows
    )
    sources = {
        r["name"]: GpuSource(r["memory_source"], r["tflops_source"], r["price_source"], r["price_date"], r["note"])
        for r in rows
    }
    return gpus, sources


DEFAULT_GPUS, GPU_SOURCES = _read_catalog()
_BY_NAME = {g.name: g for g in DEFAULT_GPUS}


def with_catalog_specs(gpus: tuple[Gpu, ...]) -> tuple[Gpu, ...]:
    """Fill unknown TFLOPS and prices from the seed catalog by name (an admin catalog that only stores
    names and memory still gets time and cost)."""
    out = []
    for g in gpus:
        seed = _BY_NAME.get(g.name)
        if seed is not None:
            g = replace(
                g,
                peak_bf16_tflops=g.peak_bf16_tflops if g.peak_bf16_tflops is not None else seed.peak_bf16_tflops,
                peak_fp16_tflops=g.peak_fp16_tflops if g.peak_fp16_tflops is not None else seed.peak_fp16_tflops,
                price_per_hour=g.price_per_hour if g.price_per_hour is not None else seed.price_per_hour,
            )
        out.append(g)
    return tuple(out)
