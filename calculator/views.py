"""The web pages: one view per page; an htmx request gets the same view's partial. Views read the
request, ask `calculator.services` (through `calculator.web`) and render; none computes anything.

- ``/``: the calculator. A plain GET renders the whole page; an htmx GET gets the results fragment
  plus out-of-band swaps, and ``HX-Push-Url`` with the canonical URL of the state.
- ``/save/``: "Save & share" (POST, CSRF) -> the permalink.
- ``/presets/``, ``/learn/`` (+ ``/learn/quiz/``, ``/learn/accuracy/``), ``/c/<slug>/``.
- ``/compare/?c=…&c=…``: two to four configurations side by side (saved ones or calculator states).
- ``/mine/``: the signed-in user's saved configurations; ``/mine/<slug>/edit/`` and ``/mine/<slug>/delete/``
  (owner only, POST with CSRF; deleting asks for confirmation first).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ObjectNotUpdated
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.middleware import HtmxDetails
from pydantic import ValidationError

from calculator import services
from calculator.models import SavedConfiguration
from calculator.schemas import SaveRequest
from calculator.throttling import AnonSaveThrottle
from calculator.web import cache, saved
from calculator.web import calculator as calculator_page
from calculator.web import compare as compare_content
from calculator.web import learn as learn_content
from calculator.web import presets as presets_content
from calculator.web import state as url_state
from lorasite.middleware import needs_account


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _is_partial(request: HtmxHttpRequest) -> bool:
    """An htmx request that swaps a part of the page (a history restore needs the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


@require_GET
@vary_on_headers("HX-Request")
def calculator(request: HtmxHttpRequest) -> HttpResponse:
    query = request.META.get("QUERY_STRING", "")
    if _is_partial(request):
        fragment = cache.cached("fragment", query, lambda: calculator_page.fragment(request.GET))
        return fragment.response(accepts_gzip="gzip" in request.headers.get("Accept-Encoding", ""))
    page = cache.cached("page", query, lambda: calculator_page.page(request.GET, query))
    return page.response(request)


@require_POST
def save(request: HttpRequest) -> HttpResponse:
    """Save & share: the state (the canonical query) plus a name and a note -> a new permalink."""
    state = request.POST.get("state", "")
    name = request.POST.get("name", "").strip()
    note = request.POST.get("note", "").strip()

    reading, results = calculator_page.compute(QueryDict(state))

    def failed(status: int, error: str) -> HttpResponse:
        save_form = {"name": name, "note": note, "error": error}
        context = calculator_page.page_context(reading, results, save=save_form)
        return render(request, "calculator/index.html", context, status=status)

    if "state" not in request.POST or results is None or reading.request is None:
        return failed(400, "Fix the inputs before saving.")
    if reading.request.training.gpu == services.CUSTOM_GPU:
        return failed(400, "A custom GPU is not saved with a configuration: pick a GPU from the list to save.")
    try:
        inputs = reading.request.model_dump(exclude_unset=True)  # what the framework fills stays unset
        save_request = SaveRequest.model_validate({**inputs, "name": name, "note": note})
    except ValidationError as error:
        return failed(400, "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in error.errors(include_url=False)))
    try:
        if needs_account(request):
            raise DatabaseError("the session could not be read")
        owner = request.user if request.user.is_authenticated else None
        if owner is None and not AnonSaveThrottle().allow_request(request, None):  # type: ignore[arg-type]
            return failed(429, "Too many saves from here; try later.")
        configuration = services.save_configuration(request=save_request, owner=owner)
    except services.InputError as error:
        return failed(400, "; ".join(f"{k}: {' '.join(v)}" for k, v in error.errors.items()))
    except DatabaseError:
        return failed(503, "Saving is unavailable right now (the database cannot be reached); computing still works.")
    return HttpResponseRedirect(configuration.get_absolute_url())


@require_GET
def presets(request: HttpRequest) -> HttpResponse:
    context = presets_content.context(request.GET.get("q", ""), request.GET.get("family", ""))
    return render(request, "calculator/presets.html", context)


@require_GET
def learn(request: HttpRequest) -> HttpResponse:
    return render(request, "calculator/learn.html", learn_content.context(request.GET))


@require_GET
def accuracy(request: HttpRequest) -> HttpResponse:
    """docs/accuracy.md, the repository's own account of every formula and its error, as a page."""
    return render(request, "calculator/accuracy.html", {"body": learn_content.accuracy_html(), "nav": "learn"})


@require_POST
def quiz(request: HtmxHttpRequest) -> HttpResponse:
    checked = learn_content.check_quiz(request.POST)
    if _is_partial(request):
        return render(request, "calculator/learn.html#quiz", {"quiz": checked})
    context = learn_content.context(QueryDict(request.POST.get("state", "")))
    return render(request, "calculator/learn.html", {**context, "quiz": checked})


@require_GET
def permalink(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        configuration = SavedConfiguration.objects.get(slug=slug)
    except SavedConfiguration.DoesNotExist:
        return render(request, "calculator/not_found.html", status=404)
    except DatabaseError:
        return render(request, "calculator/not_found.html", {"db_down": True}, status=503)
    state = saved.calculator_query(configuration)
    reading, results = calculator_page.compute(url_state.parse(state), saved=saved.saved_request(configuration))
    r = calculator_page.summary(reading, results)
    context = {
        "configuration": configuration,
        "state": state,
        "opens_in_calculator": url_state.fits_in_a_link(state),
        "page_drops": saved.page_drops(configuration),
        "results": calculator_page.results_html(reading, r) if r is not None else "",
        "summary": _summary(r),
        "api_url": reverse("configuration-detail", args=[slug]),
        "url": request.build_absolute_uri(configuration.get_absolute_url()),
        "is_owner": configuration.owner_id is not None and configuration.owner_id == request.user.id,
        "compare_choices": _compare_choices(request, exclude=slug),
    }
    return render(request, "calculator/permalink.html", context)


def _summary(r: dict[str, Any] | None) -> str:
    """The permalink's one-line description (link previews): what trains, the peak, time and cost."""
    if r is None:
        return "These inputs no longer compute."
    text = f"{r['name']}: {r['trainable']} trainable parameters, peak {r['peak']} ({r['verdict']['word']} {r['gpu']})"
    if r["verdict"]["key"] != "does_not_fit" and r["time"]["known"]:
        text += f", {r['time']['total']}{' and ' + r['time']['cost'] if r['time']['cost'] else ''} per epoch"
        text += f" of {r['time']['dataset']} tokens{' (example)' if r['time']['example'] else ''}"
    return text


def _compare_choices(request: HttpRequest, *, exclude: str) -> list[dict[str, str]]:
    """The signed-in user's other configurations, offered as suggestions for "Compare with…"."""
    if not request.user.is_authenticated:
        return []
    try:
        rows = request.user.configurations.exclude(slug=exclude).values_list("slug", "name")[:50]
        return [{"slug": s, "name": n} for s, n in rows]
    except DatabaseError:
        return []


@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    """Two to four configurations side by side. ``c`` takes slugs, permalinks, calculator links or presets."""
    given = request.GET.getlist("c")
    wanted = compare_content.requested(given)
    if wanted and wanted != given:
        # Pasted links, blanks or repeats: land on the clean, shareable URL of the same comparison.
        return HttpResponseRedirect(compare_content.compare_url(wanted))
    error = compare_content.count_error(wanted)
    if error:
        return _compare_error(request, error, wanted, status=400)
    slugs = compare_content.saved_slugs(wanted)
    try:
        found = {c.slug: c for c in SavedConfiguration.objects.filter(slug__in=slugs)} if slugs else {}
    except DatabaseError:
        message = "Saved configurations are unavailable right now (the database cannot be reached)."
        return _compare_error(request, message, wanted, status=503)
    missing = [s for s in slugs if s not in found]
    if missing:
        return _compare_error(request, compare_content.unknown_error(missing), wanted, status=404, missing=missing)
    items = [
        compare_content.state_item(key) if key.startswith("?") else compare_content.saved_item(found[key])
        for key in wanted
    ]
    return render(request, "calculator/compare.html", {**compare_content.comparison(items), "nav": "compare"})


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
            if needs_account(request):  # signed in or not, we cannot tell while the database is down
                raise DatabaseError("the session could not be read")
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            return view(request, *args, **kwargs)
        except (Http404, ObjectNotUpdated):  # not theirs, or deleted while they were renaming it
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
