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
LABEL_ROWS = (14, 30)  # baselines of the two rows the capacity labels alternate between
NARROW_GAP = 16.0  # percent of the width a label needs on a phone-width chart (~330 px)
WIDE_GAP = 6.0  # ... and on a desktop-width one


def _label(name: str, capacity: int) -> str:
    m = re.search(r"(\d+)\s*GB", name)
    return f"{m[1]} GB" if m else f"{capacity / GIB:.0f} GiB"


def memory_chart(
    parts: list[tuple[str, str, int]],
    total: int,
    fits: Sequence[services.GpuFit],
    chosen: services.GpuFit,
) -> dict[str, Any]:
    """``parts``: (css key, label, bytes) in stacking order; ``fits``: every card's verdict (the chosen one
    among them). Each card's line stands at its own capacity, coloured by its verdict; the chosen card's
    safety margin is a shaded band below its line."""
    cards = sorted({f.gpu: f for f in (*fits, chosen)}.values(), key=lambda f: (f.memory_bytes, f.gpu != chosen.gpu))
    above = [f.memory_bytes for f in cards if f.memory_bytes >= total]
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
    shown = [f for f in cards if f.memory_bytes <= axis]
    placed = _place_labels([_label_center(x(f.memory_bytes)) for f in shown], [f.gpu == chosen.gpu for f in shown])
    lines = []
    for f, (row, minor, crowded) in zip(shown, placed, strict=True):
        lx = x(f.memory_bytes)
        lines.append(
            {
                "x": f"{lx}%",
                "label": _label(f.gpu, f.memory_bytes),
                "title": f"{f.gpu}: {size(f.memory_bytes)}, {f.verdict.replace('_', ' ')}",
                "band": {"fits": "ok", "tight": "tight", "does_not_fit": "bad"}[f.verdict],
                "chosen": f.gpu == chosen.gpu,
                "minor": minor,
                "crowded": crowded,
                "ty": str(LABEL_ROWS[row]),
                "line_top": str(LABEL_ROWS[row] + 4),
                "anchor": _anchor(lx),
            }
        )
    # Two cards of one size (H100 and H100 PCIe, 80 GB): one label says it; the other line keeps its tooltip.
    said: dict[str, float] = {}
    for line in sorted(lines, key=lambda item: not item["chosen"]):
        lx = float(str(line["x"]).rstrip("%"))
        if line["crowded"]:
            continue
        if line["label"] in said and abs(said[line["label"]] - lx) < WIDE_GAP:
            line["crowded"] = line["minor"] = True
        else:
            said[str(line["label"])] = lx
    margin_start = x(chosen.memory_bytes - chosen.margin_bytes)
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
        "margin": {
            "x": f"{margin_start}%",
            "w": f"{max(round(x(chosen.memory_bytes) - margin_start, 2), 0.0)}%",
            "y": str(BAR_Y - 6),
            "h": str(BAR_H + 12),
            "title": f"Safety margin on {chosen.gpu}: {size(chosen.margin_bytes)}",
        },
    }


LABEL_HALF = 2.5  # half a label's width, in percent of a desktop-width chart


def _anchor(lx: float) -> str:
    return "end" if lx > 93 else "start" if lx < 7 else "middle"


def _label_center(lx: float) -> float:
    """Where a label's middle is: labels near the edges are anchored at their start or end."""
    return {"start": lx + LABEL_HALF, "end": lx - LABEL_HALF, "middle": lx}[_anchor(lx)]


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


SWEEP_HEIGHT = 150
SWEEP_TOP, SWEEP_BOTTOM = 16, 120  # the plot area's top and bottom (y grows downwards)


def sweep_chart(rows: Sequence[services.SweepRow], chosen: services.GpuFit) -> dict[str, Any]:
    """Peak against the swept value as bars (one per value, coloured by verdict) under the chosen card's
    memory and its margin."""
    top = max([r.total_bytes for r in rows] + [chosen.memory_bytes]) * 1.08 or 1
    plot = SWEEP_BOTTOM - SWEEP_TOP
    width = 100 / max(len(rows), 1)

    def y(value: float) -> float:
        return round(SWEEP_BOTTOM - plot * value / top, 1)

    bars = [
        {
            "x": f"{round(i * width + width * 0.15, 2)}%",
            "cx": f"{round(i * width + width / 2, 2)}%",
            "w": f"{round(width * 0.7, 2)}%",
            "y": str(y(r.total_bytes)),
            "h": str(round(SWEEP_BOTTOM - y(r.total_bytes), 1)),
            "band": {"fits": "ok", "tight": "tight", "does_not_fit": "bad"}[r.verdict],
            "label": f"{r.value:,}" if r.value < 10_000 else f"{r.value // 1024}k",
            "title": f"{r.value:,}: {size(r.total_bytes)}",
        }
        for i, r in enumerate(rows)
    ]
    return {
        "height": str(SWEEP_HEIGHT),
        "bars": bars,
        "capacity_y": str(y(chosen.memory_bytes)),
        "limit_y": str(y(chosen.memory_bytes - chosen.margin_bytes)),
        "label_y": str(SWEEP_BOTTOM + 16),
        "capacity": f"{chosen.gpu}: {size(chosen.memory_bytes)}",
    }
