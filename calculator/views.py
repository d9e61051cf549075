"""The web pages. Views parse, call the services and render; every number comes from the core.

- ``/``: the calculator. A plain GET renders the whole page; an htmx GET (``HX-Request``) gets the
  results fragment plus out-of-band swaps, and ``HX-Push-Url`` with the canonical URL of the state.
- ``/save/``: "Save & share" (POST, CSRF) -> the permalink.
- ``/presets/``, ``/learn/`` (+ ``/learn/quiz/``), ``/c/<slug>/``.
- ``/compare/?c=<slug>&c=<slug>…``: two to four saved configurations side by side.
- ``/mine/``: the signed-in user's saved configurations; ``/mine/<slug>/edit/`` and ``/mine/<slug>/delete/``
  (owner only, POST with CSRF; deleting asks for confirmation first).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render
from django.template.loader import get_template
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from pydantic import ValidationError

from calculator.api.views import AnonSaveThrottle
from calculator.core import InputError
from calculator.models import SavedConfiguration
from calculator.schemas import SaveRequest
from calculator.services import catalog, save_configuration, saved_estimate
from calculator.web import compare as compare_content
from calculator.web import fields as F
from calculator.web import learn as learn_content
from calculator.web import saved
from calculator.web.formatting import short_count
from calculator.web.query import Parsed, parse, request_query
from calculator.web.render import GZIPPED, PAGES, RESPONSES, form_context, oob, results_html

FORM_ONLY_PARAMS = ("src", "names", "pick", "set_r")


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


@require_GET
@vary_on_headers("HX-Request")
def calculator(request: HttpRequest) -> HttpResponse:
    raw = request.META.get("QUERY_STRING", "")
    if _is_htmx(request):
        cached = RESPONSES.get(raw)
        if cached is None:
            p = parse(request.GET, htmx=True)
            body = results_html(p) + oob(p)
            cached = (200 if p.ok else 400, body.encode(), f"{request.path}?{p.canonical}" if p.ok else "")
            RESPONSES.put(raw, cached)
        status, body, push = cached
        response = _maybe_gzipped(request, raw, body, status)
        if push:
            response["HX-Push-Url"] = push
        return response
    cached = PAGES.get(raw)
    if cached is None:
        p = parse(request.GET)
        if p.ok and any(k in request.GET for k in FORM_ONLY_PARAMS) and raw != p.canonical:
            # A form submitted without JavaScript: land on the clean, shareable URL of the same state.
            cached = (302, f"{request.path}?{p.canonical}")
        else:
            cached = (200 if p.ok else 400, _page_html(p))
        PAGES.put(raw, cached)
    status, content = cached
    if status == 302:
        return HttpResponseRedirect(content)
    # The page is rendered once per state; only the CSRF token of the Save form and the signed-in
    # user's header link are per visitor.
    content = content.replace(CSRF_PLACEHOLDER, get_token(request))
    return HttpResponse(content.replace(USER_NAV_PLACEHOLDER, _user_nav(request)), status=status)


def _maybe_gzipped(request: HttpRequest, raw: str, body: bytes, status: int) -> HttpResponse:
    """The results fragment is the same bytes for every visitor (it holds no CSRF token), so it is
    compressed once and cached; GZipMiddleware leaves a response that is already encoded alone."""
    if "gzip" not in request.headers.get("Accept-Encoding", "") or len(body) < 200:
        response = HttpResponse(body, status=status)
    else:
        compressed = GZIPPED.get(raw)
        if compressed is None or compressed[0] != body:  # a recomputed body is recompressed
            compressed = (body, gzip.compress(body, compresslevel=6, mtime=0))
            GZIPPED.put(raw, compressed)
        response = HttpResponse(compressed[1], status=status)
        response["Content-Encoding"] = "gzip"
    patch_vary_headers(response, ("Accept-Encoding",))
    return response


CSRF_PLACEHOLDER = "csrf0placeholder0for0the0cached0page"
USER_NAV_PLACEHOLDER = "<!--user0nav0placeholder-->"


def _user_nav(request: HttpRequest) -> str:
    """The header's account links for this visitor (the cached page is shared between visitors)."""
    user = getattr(request, "user", None)  # absent on the warm-up's bare requests (no middleware)
    try:
        signed_in = user is not None and user.is_authenticated
    except DatabaseError:
        signed_in = False
    context = {"user": user if signed_in else None, "csrf_token": get_token(request) if signed_in else ""}
    return get_template("calculator/_user_nav.html").render(context)


def _context(p: Parsed, save: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        **form_context(p),
        "results": results_html(p),
        "gpus": catalog.gpus,
        "fields": F.BY_NAME,
        "rank_picks": [str(n) for n in F.RANK_PICKS],
        "seq_picks": [str(n) for n in F.SEQ_PICKS],
        "save": save or {},
        "canonical": p.canonical,
    }


def _page_html(p: Parsed) -> str:
    context = {**_context(p), "csrf_token": CSRF_PLACEHOLDER, "user_nav": USER_NAV_PLACEHOLDER}
    return get_template("calculator/index.html").render(context)


def _page(request: HttpRequest, p: Parsed, *, status: int = 200, save: dict[str, str] | None = None) -> HttpResponse:
    return render(request, "calculator/index.html", _context(p, save), status=status)


@require_POST
def save(request: HttpRequest) -> HttpResponse:
    """Save & share: the state (the canonical query) plus a name and a note -> a new permalink."""
    state = request.POST.get("state", "")
    p = parse(QueryDict(state))
    name = request.POST.get("name", "").strip()
    note = request.POST.get("note", "").strip()
    form = {"name": name, "note": note}
    if "state" not in request.POST or not p.ok or p.request is None:
        return _page(request, p, status=400, save={**form, "error": "Fix the inputs before saving."})
    try:
        save_request = SaveRequest.model_validate({**p.request.model_dump(), "name": name, "note": note})
    except ValidationError as error:
        messages = [f"{e['loc'][-1]}: {e['msg']}" for e in error.errors(include_url=False)]
        return _page(request, p, status=400, save={**form, "error": "; ".join(messages)})
    message = "Saving is unavailable right now (the database cannot be reached); computing still works."
    try:
        owner = request.user if request.user.is_authenticated else None
        if owner is None and not AnonSaveThrottle().allow_request(request, None):  # type: ignore[arg-type]
            return _page(request, p, status=429, save={**form, "error": "Too many saves from here; try later."})
        configuration = save_configuration(save_request, owner)
    except InputError:
        return _page(request, p, status=400, save={**form, "error": "These inputs cannot be computed."})
    except DatabaseError:
        return _page(request, p, status=503, save={**form, "error": message})
    return HttpResponseRedirect(configuration.get_absolute_url())


@require_GET
def presets(request: HttpRequest) -> HttpResponse:
    catalog.refresh()
    rows = []
    for entry in catalog.presets.values():
        d = entry.architecture.dims
        arch = entry.architecture
        rows.append(
            {
                "slug": entry.slug,
                "name": entry.name,
                "family": entry.family,
                "model_type": arch.model_type,
                "params": short_count(entry.published_params),
                "params_exact": f"{entry.published_params:,}",
                "hidden": f"{d.hidden_size:,}",
                "intermediate": f"{d.intermediate_size:,}",
                "layers": d.num_hidden_layers,
                "heads": f"{d.num_attention_heads}/{d.num_key_value_heads}",
                "vocab": f"{d.vocab_size:,}",
                "experts": d.num_local_experts,
                "href": reverse("calculator") + "?" + request_query(entry),
                "source_url": entry.source_url,
            }
        )
    return render(request, "calculator/presets.html", {"rows": rows, "nav": "presets"})


@require_GET
def learn(request: HttpRequest) -> HttpResponse:
    p = parse(request.GET)
    return render(request, "calculator/learn.html", learn_content.context(p))


@require_GET
def accuracy(request: HttpRequest) -> HttpResponse:
    """docs/accuracy.md, the repository's own account of every formula and its error, as a page."""
    return render(request, "calculator/accuracy.html", {"body": learn_content.accuracy_html(), "nav": "learn"})


@require_http_methods(["POST"])
def quiz(request: HttpRequest) -> HttpResponse:
    checked = learn_content.check_quiz(request.POST)
    if _is_htmx(request):
        return render(request, "calculator/learn.html#quiz", {"quiz": checked})
    p = parse(QueryDict(request.POST.get("state", "")))
    return render(request, "calculator/learn.html", {**learn_content.context(p), "quiz": checked})


@require_GET
def permalink(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        configuration = SavedConfiguration.objects.get(slug=slug)
    except SavedConfiguration.DoesNotExist:
        return render(request, "calculator/not_found.html", status=404)
    except DatabaseError:
        return render(request, "calculator/not_found.html", {"db_down": True}, status=503)
    state = _state_of(configuration)
    p = parse(QueryDict(state))
    context = {
        "configuration": configuration,
        "state": state,
        "results": "",
        "api_url": reverse("configuration-detail", args=[slug]),
        "url": request.build_absolute_uri(configuration.get_absolute_url()),
        "is_owner": configuration.owner_id is not None and configuration.owner_id == request.user.id,
        "compare_choices": _compare_choices(request, exclude=slug),
    }
    try:
        result = saved_estimate(configuration)
        context["summary"] = (
            f"{result.name or 'Model'}: {result.count.trainable_params:,} trainable parameters, "
            f"peak {result.memory.total_bytes / 2**30:.1f} GiB"
        )
    except InputError:
        context["summary"] = "These inputs no longer compute."
    if p.ok:
        context["results"] = results_html(p)
    return render(request, "calculator/permalink.html", context)


def _state_of(configuration: SavedConfiguration) -> str:
    """The calculator query for a saved configuration: by preset while the preset still means the same model."""
    from calculator.web.query import query_from_request

    inputs = dict(configuration.inputs)
    model = inputs.get("model") or {}
    preset = model.get("preset")
    catalog.refresh()
    entry = catalog.presets.get(preset) if preset else None
    if entry is None or entry.config != configuration.model_snapshot:
        inputs["model"] = (
            {"hf_config": configuration.model_snapshot} if not model.get("custom") else {"custom": model["custom"]}
        )
    return query_from_request(inputs)


def _compare_choices(request: HttpRequest, *, exclude: str) -> list[dict[str, str]]:
    """The signed-in user's other configurations, offered as suggestions for "Compare with…"."""
    if not request.user.is_authenticated:
        return []
    try:
        rows = request.user.configurations.exclude(slug=exclude).values_list("slug", "name")[:50]  # type: ignore[union-attr]
        return [{"slug": s, "name": n} for s, n in rows]
    except DatabaseError:
        return []


@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    """Two to four saved configurations side by side. ``c`` takes slugs or pasted permalinks."""
    given = request.GET.getlist("c")
    slugs = compare_content.requested_slugs(given)
    if slugs and slugs != given:
        # Pasted links, blanks or repeats: land on the clean, shareable URL of the same comparison.
        return HttpResponseRedirect(compare_content.compare_url(slugs))
    error = compare_content.count_error(slugs)
    if error:
        return _compare_error(request, error, slugs, status=400)
    try:
        found = {c.slug: c for c in SavedConfiguration.objects.filter(slug__in=slugs)}
    except DatabaseError:
        message = "Saved configurations are unavailable right now (the database cannot be reached)."
        return _compare_error(request, message, slugs, status=503)
    missing = [s for s in slugs if s not in found]
    if missing:
        return _compare_error(request, compare_content.unknown_error(missing), slugs, status=404, missing=missing)
    context = compare_content.comparison([found[s] for s in slugs])
    return render(request, "calculator/compare.html", {**context, "nav": "compare"})


def _compare_error(
    request: HttpRequest, message: str, slugs: list[str], *, status: int, missing: list[str] | None = None
) -> HttpResponse:
    shown = slugs[:10]
    inputs = [{"value": s, "missing": s in (missing or ())} for s in shown]
    inputs += [{"value": "", "missing": False}] * max(0, compare_content.MAX_COMPARED - len(inputs))
    context = {"error": message, "inputs": inputs, "nav": "compare"}
    return render(request, "calculator/compare.html", context, status=status)


def _signed_in(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``login_required`` (to LOGIN_URL with ``?next=``), but a clear 503 when the session store is down."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            return view(request, *args, **kwargs)
        except Http404:
            return render(request, "calculator/not_found.html", status=404)
        except DatabaseError:
            return render(request, "calculator/not_found.html", {"db_down": True}, status=503)

    return wrapper


MINE_PAGE_SIZE = 50


@require_GET
@_signed_in
def mine(request: HttpRequest) -> HttpResponse:
    """My configurations: the signed-in user's saved configurations, newest first."""
    page = Paginator(request.user.configurations.all(), MINE_PAGE_SIZE).get_page(request.GET.get("page"))  # type: ignore[union-attr]
    context = {"page": page, "rows": [saved.row(c) for c in page], "nav": "mine"}
    return render(request, "calculator/mine.html", context)


def _own(request: HttpRequest, slug: str) -> SavedConfiguration:
    """The signed-in user's configuration; anyone else's (or none) is a 404, never a 403 that confirms it exists."""
    return get_object_or_404(SavedConfiguration, slug=slug, owner_id=request.user.id)


@require_http_methods(["GET", "POST"])
@_signed_in
def mine_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """Rename / annotate (the inputs stay immutable). GET shows the form; POST saves it."""
    configuration = _own(request, slug)
    if request.method == "POST":
        form = saved.RenameForm(request.POST, instance=configuration)
        if form.is_valid():
            form.save()
            messages.success(request, f"Saved “{configuration.name}”.")
            return HttpResponseRedirect(reverse("mine"))
        configuration.refresh_from_db(fields=["name", "note"])
        status = 400
    else:
        form = saved.RenameForm(instance=configuration)
        status = 200
    context = {"configuration": configuration, "row": saved.row(configuration), "form": form, "nav": "mine"}
    return render(request, "calculator/mine_edit.html", context, status=status)


@require_http_methods(["GET", "POST"])
@_signed_in
def mine_delete(request: HttpRequest, slug: str) -> HttpResponse:
    """GET asks for confirmation; POST deletes (the permalink stops working for everyone)."""
    configuration = _own(request, slug)
    if request.method == "POST":
        name = configuration.name
        configuration.delete()
        messages.success(request, f"Deleted “{name}”. Its permalink no longer works.")
        return HttpResponseRedirect(reverse("mine"))
    context = {"configuration": configuration, "row": saved.row(configuration), "nav": "mine"}
    return render(request, "calculator/mine_delete.html", context)
