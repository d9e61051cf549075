"""Rendering the calculator's results, fast: per-process caches in front of pure rendering.

Results are pure functions of the validated inputs (and the catalog, re-read every few seconds), so
the rendered results fragment is cached by the canonical query string, and a whole htmx response by
the raw query string (the fast path: one dict lookup). Entries expire with the catalog's TTL so
admin edits show up; the caches are bounded LRUs.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from django.template.loader import get_template
from django.utils.html import escape

from calculator.services import CATALOG_TTL_SECONDS, catalog
from calculator.web import fields as F
from calculator.web.query import Parsed
from calculator.web.query import fmt as fmt_value
from calculator.web.targets import PICKS


class TtlLru:
    def __init__(self, maxsize: int, ttl: float) -> None:
        self.maxsize, self.ttl = maxsize, ttl
        self.data: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> Any:
        item = self.data.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self.data.pop(key, None)
            return None
        return item[1]

    def put(self, key: str, value: Any) -> None:
        self.data[key] = (time.monotonic() + self.ttl, value)
        self.data.move_to_end(key)
        while len(self.data) > self.maxsize:
            self.data.popitem(last=False)

    def clear(self) -> None:
        self.data.clear()


FRAGMENTS = TtlLru(512, CATALOG_TTL_SECONDS)  # canonical query -> results HTML
RESPONSES = TtlLru(1024, CATALOG_TTL_SECONDS)  # raw query -> (status, body, push url)
GZIPPED = TtlLru(1024, CATALOG_TTL_SECONDS)  # raw query -> (body, gzipped body)
PAGES = TtlLru(256, CATALOG_TTL_SECONDS)
RENDER_CACHES = (FRAGMENTS, RESPONSES, GZIPPED, PAGES)


def clear_caches() -> None:
    """Forget every rendered page and fragment (tests; nothing else needs to: entries expire with the
    catalog's lifetime)."""
    for cache in RENDER_CACHES:
        cache.clear()  # raw query -> (status, page with a CSRF placeholder) or a redirect


def results_html(p: Parsed) -> str:
    if not p.ok:
        return get_template("calculator/_errors.html").render({"errors": error_list(p)})
    cached = FRAGMENTS.get(p.canonical)
    if cached is not None:
        return cached
    from calculator.web.present import present

    html = get_template("calculator/_results.html").render({"r": present(p), "canonical": p.canonical})
    FRAGMENTS.put(p.canonical, html)
    return html


LABELS = {"hf_config": "config.json", "form": "input", "preset": "model"}
ANCHORS = {"target_modules": "targets", "form": "calc"}


def error_list(p: Parsed) -> list[dict[str, str]]:
    return [
        {"field": ANCHORS.get(name, name), "label": LABELS.get(name, name), "message": " ".join(messages)}
        for name, messages in p.errors.items()
    ]


def form_context(p: Parsed) -> dict[str, Any]:
    """What the form's partials need (the full page and the out-of-band swaps alike)."""
    # Numbers as strings, as people write them (8, not 8.0), and without per-number localisation.
    v = {k: fmt_value(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for k, x in p.values.items()}
    shown = set(v.get("target_modules_shown") or ())
    return {
        "nav": "calc",
        "v": v,
        "p": p,
        "errors": {k: " ".join(m) for k, m in p.errors.items()},
        "preset_groups": preset_groups(),
        "dims": [
            {
                "name": name,
                "label": F.DIM_LABELS[name],
                "value": "" if v.get(name) is None else v.get(name),
                "enabled": name in p.applicable,
                "error": " ".join(p.errors.get(name, ())),
            }
            for name in F.DIM_FIELDS
        ],
        "modules": [{"name": n, "checked": n in shown} for n in p.module_names],
        "picks": [{"key": k, "label": label, "names": " ".join(p.picks.get(k, ()))} for k, label in PICKS if p.picks],
        "names": " ".join(p.module_names),
        "all_linear": v.get("target_modules") == "all-linear",
    }


_groups_cache: tuple[int, list[dict[str, Any]]] = (0, [])


def preset_groups() -> list[dict[str, Any]]:
    global _groups_cache
    presets = catalog.presets
    if _groups_cache[0] != id(presets):
        groups: dict[str, list[dict[str, str]]] = {}
        for entry in presets.values():
            groups.setdefault(entry.family, []).append({"slug": entry.slug, "name": entry.name})
        _groups_cache = (id(presets), [{"family": k, "presets": v} for k, v in groups.items()])
    return _groups_cache[1]


def oob(p: Parsed) -> str:
    """Out-of-band swaps that go with an htmx results response: field errors, refilled form parts."""
    parts: list[str] = []
    for name, messages in p.errors.items():
        parts.append(f'<p class="err" id="e-{escape(name)}" hx-swap-oob="true">{escape(" ".join(messages))}</p>')
    partials = []
    if p.source_changed:
        partials.append("dims")
    if p.source_changed or p.names_changed:
        partials.append("targets")
    if p.select_stale:
        partials.append("preset_select")
    if p.clear_config:
        partials.append("config")
    if partials:
        ctx = {**form_context(p), "oob": True}
        for name in partials:
            parts.append(get_template(f"calculator/index.html#{name}").render(ctx))
    return "".join(parts)
