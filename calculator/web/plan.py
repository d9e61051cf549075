"""The planning panels as strings: the verdict in three bands, time and cost on the chosen card, which GPU to
rent, advice rows with their peak, time and cost, and the sweep (table and chart). Every number is the
core's (through `services.PlannedEstimate`); this only formats it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from calculator import services
from calculator.web import formatting as fmt
from calculator.web import labels
from calculator.web.chart import sweep_chart

Link = Callable[[Mapping[str, object]], str]  # field changes -> the calculator URL of that state
BANDS = {"fits": "ok", "tight": "tight", "does_not_fit": "bad"}  # verdict -> css class
VERDICTS = {"fits": "fits", "tight": "tight", "does_not_fit": "does not fit"}


def verdict(fit: services.GpuFit) -> dict[str, str]:
    return {"band": BANDS[fit.verdict], "word": VERDICTS[fit.verdict], "key": fit.verdict}


def time_panel(planned: services.PlannedEstimate) -> dict[str, Any]:
    """Time and cost of the run on the chosen card (per epoch of the stated dataset)."""
    t, settings, gpu = planned.plan.time, planned.settings, planned.plan.gpu
    tokens = settings.tokens_per_epoch
    cost = t.cost(gpu.price_per_hour)  # also when it does not fit: the page says "if it did"
    return {
        "gpu": gpu.name,
        "gpus": str(t.num_gpus),
        "flops_per_token": fmt.short_count(t.flops_per_token),
        "peak": fmt.tflops(t.peak_flops),
        "known": t.tokens_per_second is not None,
        "mfu": fmt.share(t.mfu),
        "mfu_default": planned.settings.mfu is None,
        "method": {"lora": "LoRA", "qlora": "QLoRA", "full": "full fine-tuning"}[planned.method],
        "framework": labels.FRAMEWORK_SHORT.get(planned.estimate.training.framework, ""),
        "tokens_per_second": fmt.rate(t.tokens_per_second),
        "tokens_per_step": fmt.count(t.tokens_per_step),
        "step": fmt.duration(t.step_seconds),
        "steps": fmt.count(t.steps) if t.steps is not None else "—",
        "total": fmt.duration(t.total_seconds),
        "dataset": fmt.count(tokens) if tokens is not None else "",
        "epochs": fmt.number(settings.epochs),
        "example": planned.example_dataset,
        "cost": fmt.money(cost) if cost is not None else "",
        "price": fmt.money(gpu.price_per_hour) if gpu.price_per_hour is not None else "",
    }


def cost_rows(planned: services.PlannedEstimate) -> list[dict[str, Any]]:
    """Which GPU to rent: every card, the fewest that fit with the margin, time and cost, cheapest marked."""
    chosen = planned.plan.gpu.name
    rows = []
    for c in planned.plan.costs:
        rows.append(
            {
                "gpu": c.gpu,
                "chosen": c.gpu == chosen,
                "cheapest": c.cheapest,
                "gpus": str(c.gpus_needed) if c.gpus_needed is not None else "—",
                "verdict": VERDICTS[c.verdict],
                "band": BANDS[c.verdict],
                "peak": fmt.gib(c.total_bytes) if c.total_bytes is not None else "—",
                "hours": fmt.hours(c.hours),
                "price": fmt.money(c.price_per_hour),
                "total": fmt.money(c.total),
            }
        )
    return rows


def advice_rows(advice: services.Advice, link: Link) -> list[dict[str, Any]]:
    rows = []
    for c in advice.changes:
        values: dict[str, object] = {path.split(".", 1)[1]: value for path, value in c.settings}
        rows.append(
            {
                "label": c.label,
                "peak": fmt.gib(c.total_bytes),
                "verdict": VERDICTS[c.verdict],
                "band": BANDS[c.verdict],
                "time": fmt.duration(c.total_seconds),
                "cost": fmt.money(c.cost),
                "href": link(values),
            }
        )
    return rows


SWEEP_LABELS = {"r": "r (rank)", "seq_len": "Sequence length", "batch_size": "Micro-batch size"}


def sweep_panel(results: services.CalculatorResults, link: Link) -> dict[str, Any]:
    variable = results.sweep_variable
    current = {
        "r": results.estimate.lora_settings.r,
        "seq_len": results.estimate.training.seq_len,
        "batch_size": results.estimate.training.batch_size,
    }[variable]
    rows = [
        {
            "value": fmt.count(row.value),
            "current": row.value == current,
            "peak": fmt.gib(row.total_bytes),
            "verdict": VERDICTS[row.verdict],
            "band": BANDS[row.verdict],
            "tokens_per_second": fmt.rate(row.tokens_per_second),
            "time": fmt.duration(row.total_seconds),
            "cost": fmt.money(row.cost),
            "href": link({variable: row.value}),
        }
        for row in results.sweep
    ]
    return {
        "variable": variable,
        "label": SWEEP_LABELS[variable],
        "rows": rows,
        "chart": sweep_chart(results.sweep, results.fit),
        "choices": [
            {"value": v, "label": SWEEP_LABELS[v], "on": v == variable, "href": link({"sweep": v})}
            for v in services.SWEEP_VARIABLES
        ],
    }
