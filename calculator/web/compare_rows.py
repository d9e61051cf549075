"""The Compare page's rows: each configuration's inputs and results as cells, a row marked where they differ.

A row "differs" when its underlying values (not their rounded text) are not all equal, so 14.21 GiB and
14.24 GiB are marked even if both round alike. Every number is the services'; this only formats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from calculator import services
from calculator.schemas import EstimateRequest, LoraInput, TrainingInput
from calculator.web import formatting as fmt
from calculator.web import labels
from calculator.web.state import write_layers


@dataclass(frozen=True)
class Item:
    """One compared configuration: its inputs, and its estimate and plan when they compute."""

    key: str  # what the ``c`` parameter holds for it
    name: str
    model: str  # what its model is called
    href: str
    request: EstimateRequest | None  # None when the inputs do not validate (any more)
    result: services.Estimate | None  # None when they do not compute
    planned: services.PlannedEstimate | None = None  # its time and cost on its card
    note: str = ""
    created: datetime | None = None  # None: not saved
    slug: str = ""


def _cell(text: str, key: object = None, *, sub: str = "", state: str = "", code: bool = False) -> dict[str, Any]:
    return {"text": text, "key": text if key is None else key, "sub": sub, "state": state, "code": code}


MISSING = {"text": "—", "key": None, "sub": "", "state": "", "code": False}


def _row(
    label: str, cells: Sequence[dict[str, Any] | None], *, mark: bool = True, total: bool = False
) -> dict[str, Any]:
    filled = [dict(c) if c is not None else dict(MISSING) for c in cells]
    differs = mark and len({repr(c["key"]) for c in filled}) > 1
    for c in filled:
        c["diff"] = differs
    return {"label": label, "cells": filled, "differs": differs, "total": total}


def _yes_no(value: bool) -> dict[str, Any]:
    return _cell("yes" if value else "no", value)


def _targets(lora: LoraInput, result: services.Estimate | None) -> dict[str, Any]:
    spec = lora.target_modules
    adapted = list(dict.fromkeys(m.name for m in result.count.modules)) if result else []
    if spec is None:
        text = "PEFT default"
    elif isinstance(spec, str):
        text = spec
    else:
        text = ", ".join(spec)
    sub = ", ".join(adapted) if adapted and text != ", ".join(adapted) else ""
    return _cell(text, (text, tuple(adapted)), sub=f"adapts {sub}" if sub else "", code=True)


def _base_dtype(t: TrainingInput) -> dict[str, Any]:
    double = t.base_dtype in services.FOUR_BIT and t.double_quant
    text = labels.choice("base_dtype", t.base_dtype) + (" + double quant" if double else "")
    return _cell(text, (t.base_dtype, double))


def _names(value: list[str] | None) -> dict[str, Any]:
    return _cell(", ".join(value) if value else "—", tuple(value or ()), code=bool(value))


def _layers(value: int | list[int] | None) -> dict[str, Any]:
    if value is None:
        return _cell("all", None)
    layers = [value] if isinstance(value, int) else list(value)
    return _cell(write_layers(layers), tuple(sorted(set(layers))))


def _pattern(value: dict[str, Any]) -> dict[str, Any]:
    text = ", ".join(f"{k}: {fmt.number(v)}" for k, v in value.items()) or "—"
    return _cell(text, tuple(sorted(value.items())), code=bool(value))


def _inputs(items: Sequence[Item], label: str, get: Callable[[Item], dict[str, Any]]) -> dict[str, Any]:
    return _row(label, [get(i) if i.request is not None else None for i in items])


def _results(
    items: Sequence[Item], label: str, get: Callable[[services.Estimate], dict[str, Any]], **kw: Any
) -> dict[str, Any]:
    return _row(label, [get(i.result) if i.result is not None else None for i in items], **kw)


def _lora_rows(items: Sequence[Item]) -> list[dict[str, Any]]:
    def lora(i: Item) -> LoraInput:
        assert i.request is not None
        return i.request.lora

    given = [i for i in items if i.request is not None]
    rows = [
        _inputs(items, "r", lambda i: _cell(str(lora(i).r), lora(i).r)),
        _inputs(items, "lora_alpha", lambda i: _cell(fmt.number(lora(i).lora_alpha), lora(i).lora_alpha)),
        _results(
            items,
            "Scaling",
            lambda r: _cell(
                f"{r.scaling:.4g}",
                r.scaling,
                sub="lora_alpha / √r" if r.lora_settings.use_rslora else "lora_alpha / r",
            ),
        ),
        _inputs(items, "target_modules", lambda i: _targets(lora(i), i.result)),
        _inputs(items, "use_dora", lambda i: _yes_no(lora(i).use_dora)),
        _inputs(items, "use_rslora", lambda i: _yes_no(lora(i).use_rslora)),
        _inputs(items, "bias", lambda i: _cell(lora(i).bias, code=True)),
        _inputs(items, "lora_dropout", lambda i: _cell(fmt.number(lora(i).lora_dropout), lora(i).lora_dropout)),
    ]
    # Rarely set: a row only when one of the compared configurations sets it.
    if any(lora(i).modules_to_save for i in given):
        rows.append(_inputs(items, "modules_to_save", lambda i: _names(lora(i).modules_to_save)))
    if any(lora(i).layers_to_transform is not None for i in given):
        rows.append(_inputs(items, "layers_to_transform", lambda i: _layers(lora(i).layers_to_transform)))
    if any(lora(i).rank_pattern for i in given):
        rows.append(_inputs(items, "rank_pattern", lambda i: _pattern(lora(i).rank_pattern)))
    if any(lora(i).alpha_pattern for i in given):
        rows.append(_inputs(items, "alpha_pattern", lambda i: _pattern(lora(i).alpha_pattern)))
    return rows


def _training_rows(items: Sequence[Item]) -> list[dict[str, Any]]:
    def t(i: Item) -> TrainingInput:
        assert i.request is not None
        return i.request.training

    given = [i for i in items if i.request is not None]
    rows = [
        _inputs(items, labels.label("base_dtype"), lambda i: _base_dtype(t(i))),
        _inputs(
            items, labels.label("adapter_dtype"), lambda i: _cell(labels.choice("adapter_dtype", t(i).adapter_dtype))
        ),
        _inputs(items, labels.label("optimizer"), lambda i: _cell(labels.choice("optimizer", t(i).optimizer))),
        _inputs(items, labels.label("batch_size"), lambda i: _cell(fmt.count(t(i).batch_size), t(i).batch_size)),
        _inputs(items, labels.label("seq_len"), lambda i: _cell(fmt.count(t(i).seq_len), t(i).seq_len)),
        _inputs(items, labels.label("gradient_checkpointing"), lambda i: _yes_no(t(i).gradient_checkpointing)),
        _inputs(items, labels.label("attn_implementation"), lambda i: _cell(t(i).attn_implementation, code=True)),
    ]
    if any(t(i).num_gpus > 1 for i in given):
        rows.append(
            _inputs(
                items,
                "GPUs (data parallel)",
                lambda i: _cell(f"{t(i).num_gpus} \u00d7 {t(i).parallelism}", (t(i).num_gpus, t(i).parallelism)),
            )
        )
    if any(t(i).prepare_model_for_kbit_training for i in given):
        rows.append(
            _inputs(items, "prepare_model_for_kbit_training", lambda i: _yes_no(t(i).prepare_model_for_kbit_training))
        )
    return rows


def _result_rows(items: Sequence[Item]) -> list[dict[str, Any]]:
    return [
        _results(
            items,
            "Trainable parameters",
            lambda r: _cell(
                fmt.count(r.count.trainable_params),
                r.count.trainable_params,
                sub=fmt.short_count(r.count.trainable_params),
            ),
        ),
        _results(
            items,
            "% of base model",
            lambda r: _cell(
                fmt.percent(r.count.percent_of_base),
                (r.count.trainable_params, r.architecture.base_params),
                sub=f"of {fmt.short_count(r.architecture.base_params)}",
            ),
        ),
        _results(
            items,
            "Adapter file",
            lambda r: _cell(
                fmt.size(r.adapter_file_bytes), r.adapter_file_bytes, sub=f"{r.training.adapter_dtype} safetensors"
            ),
        ),
    ]


def _memory_rows(items: Sequence[Item]) -> list[dict[str, Any]]:
    rows = []
    for _key, attr, label, _what in labels.MEMORY_PARTS:
        rows.append(
            _results(
                items,
                label,
                lambda r, attr=attr: _cell(fmt.size(getattr(r.memory, attr)), getattr(r.memory, attr)),  # type: ignore[misc]
            )
        )
    rows.append(
        _results(items, "Peak", lambda r: _cell(fmt.gib(r.memory.total_bytes), r.memory.total_bytes), total=True)
    )
    return rows


def _fit_rows(items: Sequence[Item]) -> list[dict[str, Any]]:
    """Every card's verdict with each configuration's safety margin (fits, tight, does not fit)."""

    def summary(p: services.PlannedEstimate) -> dict[str, Any]:
        fitting = [f for f in p.plan.fits if f.verdict == "fits"]
        smallest = services.smallest_fitting(fitting)
        return _cell(
            f"{len(fitting)} of {len(p.plan.fits)} GPUs",
            tuple(f.gpu for f in fitting),
            sub=f"with the margin; smallest: {smallest.gpu}" if smallest else "none with the margin",
        )

    rows = [_plans(items, "Fits", summary)]
    gpus = list(dict.fromkeys(f.gpu for i in items if i.planned is not None for f in i.planned.plan.fits))
    states = {"fits": ("\u2713 fits", "yes"), "tight": ("tight", "tight"), "does_not_fit": ("\u2717 no", "no")}
    for gpu in gpus:

        def on(p: services.PlannedEstimate, gpu: str = gpu) -> dict[str, Any] | None:
            fit = next((f for f in p.plan.fits if f.gpu == gpu), None)
            if fit is None:
                return None
            room = fmt.gib(abs(fit.headroom_bytes))
            text, state = states[fit.verdict]
            return _cell(text, fit.verdict, sub=f"{room} {'to spare' if fit.fits else 'too much'}", state=state)

        rows.append(_row(gpu, [on(i.planned) if i.planned is not None else None for i in items]))
    return rows


def _plans(
    items: Sequence[Item], label: str, get: Callable[[services.PlannedEstimate], dict[str, Any]]
) -> dict[str, Any]:
    return _row(label, [get(i.planned) if i.planned is not None else None for i in items])


def _time_rows(items: Sequence[Item]) -> list[dict[str, Any]]:
    """Time and cost on each configuration's card (its ``gpu``, else the default card), per epoch of its
    dataset (or of the example dataset the calculator states)."""

    def dataset(p: services.PlannedEstimate) -> dict[str, Any]:
        tokens = p.settings.tokens_per_epoch
        text = fmt.count(tokens) if tokens is not None else "—"
        return _cell(text, (tokens, p.settings.epochs), sub="example: not set" if p.example_dataset else "tokens")

    def verdict(p: services.PlannedEstimate) -> dict[str, Any]:
        state = {"fits": "yes", "tight": "tight", "does_not_fit": "no"}[p.plan.verdict]
        sub = f"{fmt.share(p.settings.safety_margin)} safety margin"
        return _cell(p.plan.verdict.replace("_", " "), p.plan.verdict, sub=sub, state=state)

    def cost(p: services.PlannedEstimate) -> dict[str, Any]:
        mine = next((c for c in p.plan.costs if c.gpu == p.plan.gpu.name), None)
        total = mine.total if mine is not None else None
        price = p.plan.gpu.price_per_hour
        return _cell(fmt.money(total), total, sub=f"{fmt.money(price)} per GPU-hour" if price is not None else "")

    def cheapest(p: services.PlannedEstimate) -> dict[str, Any]:
        best = next((c for c in p.plan.costs if c.cheapest), None)
        if best is None:
            return _cell("—", None)
        return _cell(best.gpu, best.gpu, sub=f"{best.gpus_needed} \u00d7, {fmt.money(best.total)}")

    return [
        _plans(items, "GPU", lambda p: _cell(p.plan.gpu.name, p.plan.gpu.name)),
        _plans(items, "Verdict", verdict),
        _plans(items, "Dataset per epoch", dataset),
        _plans(
            items,
            "Time per epoch",
            lambda p: _cell(fmt.duration(p.plan.time.total_seconds), p.plan.time.total_seconds),
        ),
        _plans(items, "Cost per epoch", cost),
        _plans(
            items,
            "Throughput",
            lambda p: _cell(fmt.rate(p.plan.time.tokens_per_second), p.plan.time.tokens_per_second, sub="tokens/s"),
        ),
        _plans(items, "Cheapest GPU to rent", cheapest),
    ]


def _model_rows(items: Sequence[Item]) -> list[dict[str, Any]]:
    cells = []
    for i in items:
        label = i.model
        if i.result is None:
            cells.append(_cell(label, (label, None)))
            continue
        arch = i.result.architecture
        sub = f"{arch.model_type} · {fmt.short_count(arch.base_params)} parameters"
        if not arch.exact:
            sub += " · approximate reading"
        cells.append(_cell(label, (label, arch.base_params), sub=sub))
    rows = [_row("Model", cells)]
    if any(i.result is not None and not i.result.architecture.exact for i in items):
        rows.append(
            _results(
                items,
                "Reading",
                lambda r: _cell("exact" if r.architecture.exact else "approximate", r.architecture.exact),
            )
        )
    return rows


def approximate(items: Sequence[Item]) -> list[dict[str, Any]]:
    """The columns read approximately (an unknown model_type), with what was assumed: said above the table."""
    return [
        {"name": i.name, "assumptions": list(i.result.architecture.assumptions)}
        for i in items
        if i.result is not None and not i.result.architecture.exact
    ]


def sections(items: Sequence[Item]) -> list[dict[str, Any]]:
    """The comparison's sections of rows, one cell per configuration."""
    return [
        {"title": "Model", "rows": _model_rows(items)},
        {"title": "LoRA", "rows": _lora_rows(items)},
        {"title": "Training", "rows": _training_rows(items)},
        {"title": "Results", "rows": _result_rows(items)},
        {"title": "Memory per GPU", "rows": _memory_rows(items)},
        {"title": "Time and cost", "rows": _time_rows(items)},
        {"title": "GPU fit", "rows": _fit_rows(items)},
    ]
