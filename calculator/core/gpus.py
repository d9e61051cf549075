"""GPUs to compare the peak against: name and the memory a training job can use."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MIB = 1024**2


@dataclass(frozen=True, slots=True)
class Gpu:
    name: str
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class GpuFit:
    gpu: str
    memory_bytes: int
    fits: bool
    headroom_bytes: int


# Seed catalog (admin-editable in the app): the total memory nvidia-smi / rocm-smi report for each card
# (MiB x 2**20), which is what a process can allocate at most.
DEFAULT_GPUS: tuple[Gpu, ...] = (
    Gpu("NVIDIA T4 16 GB", 15_360 * MIB),
    Gpu("NVIDIA L4 24 GB", 23_034 * MIB),
    Gpu("NVIDIA A10G 24 GB", 23_028 * MIB),
    Gpu("NVIDIA RTX 3090 24 GB", 24_576 * MIB),
    Gpu("NVIDIA RTX 4090 24 GB", 24_564 * MIB),
    Gpu("NVIDIA RTX 5090 32 GB", 32_607 * MIB),
    Gpu("NVIDIA V100 32 GB", 32_768 * MIB),
    Gpu("NVIDIA A100 40 GB", 40_960 * MIB),
    Gpu("NVIDIA L40S 48 GB", 46_068 * MIB),
    Gpu("NVIDIA RTX 6000 Ada 48 GB", 49_140 * MIB),
    Gpu("NVIDIA A100 80 GB", 81_920 * MIB),
    Gpu("NVIDIA H100 80 GB", 81_559 * MIB),
    Gpu("NVIDIA H200 141 GB", 143_771 * MIB),
    Gpu("AMD MI300X 192 GB", 196_608 * MIB),
)


def fits(total_bytes: int, gpus: tuple[Gpu, ...]) -> tuple[GpuFit, ...]:
    return tuple(
        GpuFit(g.name, g.memory_bytes, total_bytes <= g.memory_bytes, g.memory_bytes - total_bytes) for g in gpus
    )


def smallest_fitting(gpu_fits: Iterable[GpuFit]) -> GpuFit | None:
    """The card with the least memory among those the peak fits on, or None."""
    return min((f for f in gpu_fits if f.fits), key=lambda f: f.memory_bytes, default=None)
