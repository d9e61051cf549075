"""The calculator page and its htmx results fragment, rendered from a query string.

`fragment` answers the live form (htmx): the results partial plus out-of-band swaps (each field's
error, form parts to redraw, the scaling hint, the header's Learn link, a short announcement for
screen readers). `page` is the whole page's per-state parts; the view adds the per-visitor ones.
Both are pure functions of the query and the catalogs, so `calculator.web.cache` keeps them.
"""

from __future__ import annotations

import gzip
import re
import secrets
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.middleware.csrf import get_token
from django.template.loader import get_template
from django.urls import reverse
from django.utils.cache import patch_vary_headers

from calculator import services
from calculator.schemas import EstimateRequest
from calculator.web import errors as error_mapping
from calculator.web import labels
from calculator.web.fields import (
    BY_NAME,
    CUSTOM_GPU_FIELDS,
    DIM_FIELDS,
    FORM_ONLY_PARAMS,
    FRAMEWORK_SECTIONS,
    SECTION_FIELDS,
    SECTION_TITLES,
    WIDE_FIELDS,
)
from calculator.web.form import Reading, read
from calculator.web.model import model_facts
from calculator.web.present import present
from calculator.web.state import write, write_layers
from calculator.web.targets import PICKS

TEMPLATE = "calculator/index.html"
GZIP_MIN_BYTES = 200


def compute(
    query: QueryDict, *, live: bool = False, saved: EstimateRequest | None = None
) -> tuple[Reading, services.CalculatorResults | None]:
    """Read the query and, when every field is valid, ask the services for every number. ``saved``: a saved
    configuration's own request, whose LoRA and training settings count in full (the page has no inputs for
    some of them, e.g. rank patterns and excludes, so its query cannot carry them)."""
    reading = read(query, live=live)
    if not reading.ok:
        return reading, None
    assert reading.request is not None
    assert reading.options is not None
    request = reading.request
    if saved is not None:
        request = request.model_copy(update={"lora": saved.lora, "training": saved.training})
    picks = tuple((label, reading.picks[key]) for key, label in PICKS if key in ("qv", "all") and key in reading.picks)
    try:
        results = services.calculator_results(request=request, options=reading.options, target_sets=picks)
    except services.InputError as error:
        return reading.with_errors(error.errors), None
    return reading, results


def summary(reading: Reading, results: services.CalculatorResults | None) -> dict[str, Any] | None:
    """The results formatted for the panel (None while some input is wrong)."""
    return present(results, reading.links()) if results is not None else None


def results_html(reading: Reading, r: dict[str, Any] | None) -> str:
    if r is None:
        return _render("errors", errors_context(reading))
    context = {"r": r, "canonical": reading.canonical, "custom_href": _custom_href(reading)}
    return get_template("calculator/_results.html", using="jinja2").render(context)


def errors_context(reading: Reading) -> dict[str, Any]:
    """The errors panel: each wrong field, and for a model that cannot be read, custom dimensions
    prefilled from the keys it has."""
    return {
        "error_list": error_mapping.error_list(reading.errors),
        "model_error": reading.model_error and reading.source.kind != "custom",
        "custom_href": _custom_href(reading) if reading.model_error else "",
    }


def _custom_href(reading: Reading) -> str:
    query = reading.custom_link()
    return f"{reverse('calculator')}?{query}" if query else ""


@dataclass
class Fragment:
    """An htmx answer: the same bytes for every visitor (no CSRF token), so gzipped once, lazily."""

    status: int
    body: bytes
    push_url: str = ""
    reswap: str = ""  # "none": only the out-of-band parts change (the last good results stay)

    @cached_property
    def gzipped(self) -> bytes:
        return gzip.compress(self.body, compresslevel=6, mtime=0)

    def response(self, *, accepts_gzip: bool) -> HttpResponse:
        """GZipMiddleware leaves a response that is already encoded alone."""
        if accepts_gzip and len(self.body) >= GZIP_MIN_BYTES:
            response = HttpResponse(self.gzipped, status=self.status)
            response["Content-Encoding"] = "gzip"
        else:
            response = HttpResponse(self.body, status=self.status)
        patch_vary_headers(response, ("Accept-Encoding",))
        if self.push_url:
            response["HX-Push-Url"] = self.push_url
        if self.reswap:
            response["HX-Reswap"] = self.reswap
        return response


def fragment(query: QueryDict) -> Fragment:
    reading, results = compute(query, live=True)
    r = summary(reading, results)
    if r is None and reading.model_error:
        # The model cannot be read: say why above the last good results, which stay (marked stale).
        return Fragment(400, out_of_band(reading, r, keep=True).encode(), reswap="none")
    body = results_html(reading, r) + out_of_band(reading, r)
    if r is None:
        return Fragment(400, body.encode())
    return Fragment(200, body.encode(), f"{reverse('calculator')}?{reading.canonical}")


def out_of_band(reading: Reading, r: dict[str, Any] | None, *, keep: bool = False) -> str:
    """The swaps that go with a results fragment, each a partial of the page's template. ``keep``: the
    results are not replaced, and the model problem is shown above them."""
    context: dict[str, Any] = {**form_context(reading), "oob": True, "r": r, "keep": keep, **errors_context(reading)}
    parts = [
        _render("field_error", {"oob": True, "name": name, "error": context["errors"][name]})
        for name in reading.errors
        if name in ERROR_SLOTS
    ]
    always = ("model_facts", "model_problem", "scaling_hint", "announce")
    parts += [_render(name, context) for name in (*sorted(reading.refresh - {"sections"}), *always)]
    if "sections" in reading.refresh:  # another framework: its fields show its values
        parts += [
            _render("section", {**context, "s": s}) for s in context["sections"] if s["key"] in FRAMEWORK_SECTIONS
        ]
    else:
        parts.append(_render("framework_note", context))
    parts.append(get_template("base.html#learn_link").render(context))
    return "".join(parts)


def _render(partial: str, context: dict[str, Any]) -> str:
    return get_template(f"{TEMPLATE}#{partial}").render(context)


# Fields whose error paragraph (id "e-<field>") is on the page.
ERROR_SLOTS = frozenset({"preset", "hf_config", "target_modules", "form", *DIM_FIELDS, *BY_NAME})


# The page is the same for every visitor but for two slots: the CSRF token of the Save form and the
# header's account links. It is rendered once per state with a marker in each slot, split there, and
# filled per request. The marker is random per process, so no user text can contain it.
SLOT = f"slot{secrets.token_hex(12)}"
SLOTS = {f"{SLOT}csrf": "csrf", f"{SLOT}nav": "user_nav"}
SPLIT = re.compile("(" + "|".join(SLOTS) + ")")


@dataclass
class Page:
    """The whole page for one state, split around its per-visitor slots; or a redirect."""

    status: int = 200
    segments: tuple[str, ...] = ()  # text, slot, text, slot, ..., text
    location: str = ""

    def response(self, request: HttpRequest) -> HttpResponse:
        if self.location:
            return HttpResponseRedirect(self.location)
        fill = {"csrf": lambda: get_token(request), "user_nav": lambda: user_nav(request)}
        parts = [fill[SLOTS[text]]() if i % 2 else text for i, text in enumerate(self.segments)]
        return HttpResponse("".join(parts), status=self.status)


def user_nav(request: HttpRequest) -> str:
    """The header's account links for this visitor."""
    user = getattr(request, "user", None)  # absent on the warm-up's bare requests (no middleware)
    try:
        signed_in = user is not None and user.is_authenticated
    except DatabaseError:
        signed_in = False
    context = {"user": user if signed_in else None, "csrf_token": get_token(request) if signed_in else ""}
    return get_template("calculator/_user_nav.html").render(context)


def page(query: QueryDict, raw_query: str) -> Page:
    reading, results = compute(query)
    if reading.ok and any(k in query for k in FORM_ONLY_PARAMS) and raw_query != reading.canonical:
        # A form submitted without JavaScript: land on the clean, shareable URL of the same state.
        return Page(location=f"{reverse('calculator')}?{reading.canonical}")
    context = {**page_context(reading, results), "csrf_token": f"{SLOT}csrf", "user_nav_slot": f"{SLOT}nav"}
    html = get_template(TEMPLATE).render(context)
    return Page(200 if results is not None else 400, tuple(SPLIT.split(html)))


def page_context(reading: Reading, results: services.CalculatorResults | None, **extra: Any) -> dict[str, Any]:
    """The page's template context (the view adds a Save error to it when saving failed)."""
    r = summary(reading, results)
    return {
        "nav": "calc",
        "canonical": reading.canonical,
        "form_html": _render("calc_form", form_context(reading)),
        "results_html": results_html(reading, r),
        "r": r,
        **extra,
    }


def form_context(reading: Reading) -> dict[str, Any]:
    """What the form's partials need (the full page and the out-of-band swaps alike)."""
    # Numbers as strings, as people write them (8, not 8.0), and without per-number localisation.
    v = {
        k: write(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for k, x in reading.values.items()
    }
    errors = {k: " ".join(m) for k, m in reading.errors.items()}
    shown = set(v.get("target_modules_shown") or ())
    fw = framework_context(reading)
    by_framework = {d["field"]: fw["short"] for d in fw["filled"]}
    return {
        "fw": fw,
        "nav": "calc",
        "v": v,
        "errors": errors,
        "canonical": reading.canonical,
        "preset_groups": preset_groups(),
        "gpus": services.gpus(),
        "custom_gpu": services.CUSTOM_GPU,
        "sections": [
            {
                "key": key,
                "title": SECTION_TITLES[key],
                "fields": [_field(f, v, errors, by_framework.get(f.name, "")) for f in fields],
            }
            for key, fields in SECTION_FIELDS.items()
        ],
        "dims": [
            {
                "name": name,
                "label": labels.label(name),
                "hint": labels.hint(name),
                "value": "" if v.get(name) is None else v.get(name),
                "enabled": name in reading.applicable,
                "error": errors.get(name, ""),
            }
            for name in DIM_FIELDS
        ],
        "modules": [{"name": n, "checked": n in shown} for n in reading.module_names],
        "facts": model_facts(reading),
        "picks": [
            {"key": k, "label": label, "names": " ".join(reading.picks.get(k, ()))}
            for k, label in PICKS
            if reading.picks
        ],
        "names": " ".join(reading.module_names),
    }


def framework_context(reading: Reading) -> dict[str, Any]:
    """The framework and the fields it filled (value and source), for the note and the field marks."""
    framework = reading.framework
    name = framework.name if framework else str(BY_NAME["framework"].default)
    filled = [
        {
            "field": d.field,
            "label": labels.label(d.field),
            "value": labels.value(d.field, d.value),
            "source": d.source,
        }
        for d in (framework.filled if framework else ())
    ]
    return {
        "name": name,
        "label": labels.choice("framework", name),
        "short": labels.FRAMEWORK_SHORT.get(name, name),
        "filled": filled,
        "given": len(filled) < len(services.framework_sets(framework=name)),  # the user overrode some
        "none": not services.framework_sets(framework=name),
    }


def _field(f: Any, v: dict[str, Any], errors: dict[str, str], by_framework: str = "") -> dict[str, Any]:
    value = v.get(f.name)
    current = "" if value is None else value
    if f.kind == "names" and isinstance(value, list):
        current = ", ".join(value)
    elif f.kind == "layers" and isinstance(value, list):
        current = ",".join(str(i) for i in value)
    elif f.kind == "tokens" and isinstance(value, list):
        current = write_layers(value)  # runs of new tokens as ranges
    return {
        "name": f.name,
        "kind": f.kind,
        "label": f.label,
        "hint": f.hint,
        "value": current,
        "checked": value is True,
        "choices": [{"value": c, "label": labels.choice(f.name, c), "selected": c == value} for c in f.choices],
        "picks": [{"value": p, "label": label, "on": p == write(value)} for p, label in labels.PICKS.get(f.name, ())],
        "suggestions": [str(n) for n in labels.SUGGESTIONS.get(f.name, ())],
        "numeric": (f.kind == "int" and "numeric") or (f.kind == "float" and "decimal") or "",
        "error": errors.get(f.name, ""),
        "wide": f.kind in ("names", "layers", "tokens", "gpu")
        or (f.kind == "bool" and bool(f.hint))
        or f.name in WIDE_FIELDS,
        "by_framework": f"{by_framework} default" if by_framework else "",
        "custom": f.name in CUSTOM_GPU_FIELDS,
    }


_groups: tuple[int, list[dict[str, Any]]] = (0, [])


def preset_groups() -> list[dict[str, Any]]:
    """The preset select's option groups, by family (rebuilt when the catalog changes)."""
    global _groups
    version = services.catalog_version()
    if _groups[0] != version or not _groups[1]:
        groups: dict[str, list[dict[str, str]]] = {}
        for entry in services.presets():
            groups.setdefault(entry.family, []).append({"slug": entry.slug, "name": entry.name})
        _groups = (version, [{"family": k, "presets": v} for k, v in groups.items()])
    return _groups[1]
