"""Geometry of the memory chart (a stacked bar against GPU capacities), drawn as inline SVG by the
template. Layout only: every number comes from the core's `MemoryEstimate` and the GPU catalog."""

from __future__ import annotations

import re
from typing import Any

from calculator.core import Gpu
from calculator.web.formatting import GIB, size

HEIGHT = 132
LEFT, RIGHT = 1.5, 1.5  # percent of the width: x positions are percentages, so the SVG stretches
# to any width while its text keeps its size (no viewBox scaling)
BAR_Y, BAR_H = 46, 34
MERGE_WITHIN = 0.10  # capacities within 10% share one line (the 24 GB cards differ by a few %)


def _label(names: list[str], capacity: int) -> str:
    sizes = {m[1] for n in names if (m := re.search(r"(\d+)\s*GB", n))}
    return f"{sizes.pop()} GB" if len(sizes) == 1 else f"{capacity / GIB:.0f} GiB"


def capacity_groups(gpus: tuple[Gpu, ...]) -> list[tuple[int, list[str]]]:
    """GPUs grouped by similar capacity: (smallest capacity of the group, names)."""
    groups: list[tuple[int, list[str]]] = []
    for gpu in sorted(gpus, key=lambda g: g.memory_bytes):
        if groups and gpu.memory_bytes <= groups[-1][0] * (1 + MERGE_WITHIN):
            groups[-1][1].append(gpu.name)
        else:
            groups.append((gpu.memory_bytes, [gpu.name]))
    return groups


def memory_chart(parts: list[tuple[str, str, int]], total: int, gpus: tuple[Gpu, ...], chosen: Gpu) -> dict[str, Any]:
    """``parts``: (css key, label, bytes) in stacking order."""
    groups = capacity_groups(gpus)
    above = [c for c, _ in groups if c >= total]
    axis = max(total, above[0] if above else total, chosen.memory_bytes) * 1.06 or 1
    span = 100 - LEFT - RIGHT

    def x(value: float) -> float:
        return round(LEFT + span * value / axis, 2)

    segments = []
    offset = 0
    for key, label, value in parts:
        if value <= 0:
            continue
        width = max(round(x(offset + value) - x(offset), 2), 0.2)
        segments.append({"key": key, "x": f"{x(offset)}%", "w": f"{width}%", "title": f"{label}: {size(value)}"})
        offset += value
    lines = []
    for i, (capacity, names) in enumerate(c for c in groups if c[0] <= axis):
        lx = x(capacity)
        chosen_here = chosen.name in names
        ty = 14 if i % 2 == 0 else 30
        lines.append(
            {
                "x": f"{lx}%",
                "label": _label(names, capacity),
                "title": ", ".join(names) + f": {size(capacity)}",
                "fits": total <= capacity,
                "chosen": chosen_here,
                "ty": str(ty),
                "line_top": str(ty + 4),
                "anchor": "end" if lx > 93 else "start" if lx < 7 else "middle",
            }
        )
    step = _tick_step(axis)
    ticks = [
        {"x": f"{x(v)}%", "label": f"{v / GIB:.0f}", "anchor": "start" if v == 0 else "middle"}
        for v in range(0, int(axis) + 1, step)
        if v == 0 or x(v) < 95
    ]
    ticks[-1]["label"] += " GiB"
    # Strings, not numbers: the template must not localise every coordinate.
    return {
        "height": str(HEIGHT),
        "bar_y": str(BAR_Y),
        "bar_h": str(BAR_H),
        "line_bottom": str(BAR_Y + BAR_H + 8),
        "tick_y": str(BAR_Y + BAR_H + 24),
        "segments": segments,
        "lines": lines,
        "ticks": ticks,
    }


def _tick_step(axis: float) -> int:
    for gib in (1, 2, 4, 8, 10, 20, 40, 50, 100, 200, 500, 1000, 2000, 5000):
        if axis / (gib * GIB) <= 6:
            return gib * GIB
    return int(axis // 5) or 1
