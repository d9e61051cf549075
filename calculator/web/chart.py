"""Geometry of the memory chart (a stacked bar against GPU capacities), drawn as inline SVG by the
template. Layout only: the parts come from the core's `MemoryEstimate`, the capacities and verdicts
from its `GpuFit`s (one per catalog card, plus the chosen card's own)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from calculator import services
from calculator.web.formatting import GIB, size

HEIGHT = 132
LEFT, RIGHT = 1.5, 1.5  # percent of the width: x positions are percentages, so the SVG stretches
# to any width while its text keeps its size (no viewBox scaling)
BAR_Y, BAR_H = 46, 34
MERGE_WITHIN = 0.10  # capacities within 10% share one line (the 24 GB cards differ by a few %)
LABEL_ROWS = (14, 30)  # baselines of the two rows the capacity labels alternate between
NARROW_GAP = 16.0  # percent of the width a label needs on a phone-width chart (~330 px)
WIDE_GAP = 6.0  # ... and on a desktop-width one


def _label(names: list[str], capacity: int) -> str:
    sizes = {m[1] for n in names if (m := re.search(r"(\d+)\s*GB", n))}
    return f"{sizes.pop()} GB" if len(sizes) == 1 else f"{capacity / GIB:.0f} GiB"


def capacity_groups(fits: Sequence[services.GpuFit], chosen: str = "") -> list[tuple[int, list[services.GpuFit]]]:
    """Cards grouped by similar capacity: (smallest capacity of the group, its fits). The chosen card
    is a group of its own, so its line stands at its own capacity."""
    groups: list[tuple[int, list[services.GpuFit]]] = []
    for fit in sorted((f for f in fits if f.gpu != chosen), key=lambda f: f.memory_bytes):
        if groups and fit.memory_bytes <= groups[-1][0] * (1 + MERGE_WITHIN):
            groups[-1][1].append(fit)
        else:
            groups.append((fit.memory_bytes, [fit]))
    return groups


def memory_chart(
    parts: list[tuple[str, str, int]], total: int, fits: Sequence[services.GpuFit], chosen: services.GpuFit
) -> dict[str, Any]:
    """``parts``: (css key, label, bytes) in stacking order; ``fits``: the catalog's verdicts."""
    groups = capacity_groups(fits, chosen.gpu)
    groups.append((chosen.memory_bytes, [chosen]))
    groups.sort(key=lambda g: (g[0], g[1][0].gpu != chosen.gpu))
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
    shown = [(capacity, group) for capacity, group in groups if capacity <= axis]
    placed = _place_labels([x(c) for c, _ in shown], [g[0].gpu == chosen.gpu for _, g in shown])
    lines = []
    for (capacity, group), (row, minor, crowded) in zip(shown, placed, strict=True):
        lx = x(capacity)
        is_chosen = group[0].gpu == chosen.gpu
        names = [f.gpu for f in group]
        lines.append(
            {
                "x": f"{lx}%",
                "label": _label(names, capacity),
                "title": ", ".join(names) + f": {size(capacity)}",
                "fits": all(f.fits for f in group),
                "chosen": is_chosen,
                "minor": minor,
                "crowded": crowded,
                "ty": str(LABEL_ROWS[row]),
                "line_top": str(LABEL_ROWS[row] + 4),
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


def _place_labels(xs: list[float], chosen: list[bool]) -> list[tuple[int, bool, bool]]:
    """(row, minor, crowded) per label. Two rows, so neighbours do not overprint on a desktop-width
    chart; a label with no free row is "crowded" (its line stays, its text is hidden: the line's tooltip
    names it); one too close to a kept label for a phone-width chart is "minor" (hidden there). The
    chosen card's label is placed first and always shown."""
    order = sorted(range(len(xs)), key=lambda i: (not chosen[i], xs[i]))
    rows: list[list[float]] = [[], []]
    kept: list[float] = []
    placed: dict[int, tuple[int, bool, bool]] = {}
    for i in order:
        free = [r for r in (0, 1) if not any(abs(xs[i] - o) < WIDE_GAP for o in rows[r])]
        crowded = not free and not chosen[i]
        row = free[0] if free else 0
        if not crowded:
            rows[row].append(xs[i])
        minor = crowded or any(abs(xs[i] - o) < NARROW_GAP for o in kept)
        if not minor:
            kept.append(xs[i])
        placed[i] = (row, minor, crowded)
    return [placed[i] for i in range(len(xs))]


def _tick_step(axis: float) -> int:
    for gib in (1, 2, 4, 8, 10, 20, 40, 50, 100, 200, 500, 1000, 2000, 5000):
        if axis / (gib * GIB) <= 6:
            return gib * GIB
    return int(axis // 5) or 1


def host_chart(host_bytes: int, ram_bytes: int, fits: bool) -> dict[str, Any]:
    """Host memory (offloaded activations, states, parameters) as a bar against the host RAM line."""
    axis = max(host_bytes, ram_bytes) * 1.06 or 1
    span = 100 - LEFT - RIGHT

    def x(value: float) -> str:
        return f"{round(LEFT + span * value / axis, 2)}%"

    return {
        "height": "64",
        "bar_y": "22",
        "bar_h": "18",
        "x": x(0),
        "w": f"{max(round(span * host_bytes / axis, 2), 0.2)}%",
        "line_x": x(ram_bytes),
        "anchor": "end" if ram_bytes / axis > 0.9 else "middle",
        "label": f"host RAM {size(ram_bytes)}",
        "fits": fits,
        "title": f"Host memory {size(host_bytes)} of {size(ram_bytes)} RAM",
    }
