"""The Compare page: two to four configurations side by side, the cells that differ marked.

A configuration is a saved one (a slug or a pasted permalink) or an unsaved calculator state (a
calculator link, ``?preset=…&r=16``, or just a preset's slug), so the current configuration can be
compared with another without saving either. Every number comes from the services (one estimate per
column) and is formatted here; the template only prints. A row "differs" when its underlying values
(not their rounded text) are not all equal, so 14.21 GiB and 14.24 GiB are marked even if both round alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.http import QueryDict
from django.urls import reverse
from pydantic import ValidationError

from calculator import services
from calculator.models import SavedConfiguration
from calculator.schemas import EstimateRequest
from calculator.web.compare_rows import Item, approximate, sections
from calculator.web.form import read
from calculator.web.saved import calculator_query, model_label

MIN_COMPARED = 2
MAX_COMPARED = 4
MAX_SHOWN_LENGTH = 40  # of an unknown slug echoed in an error message
SLUG = re.compile(r"[a-z0-9]{4,16}")  # saved configurations' slugs (presets' have dots and dashes)


def slug_from(text: str) -> str:
    """A pasted permalink (``https://host/c/<slug>/``, ``/c/<slug>``) or a bare slug -> the slug."""
    text = text.strip()
    if "/c/" in text:
        text = text.rsplit("/c/", 1)[1]
    return re.split(r"[/?#\s]", text, maxsplit=1)[0].lower()


def requested(values: Sequence[str]) -> list[str]:
    """The ``c`` parameters, normalised: a saved configuration as its slug, an unsaved state as
    ``?<canonical query>`` (a bare preset slug becomes ``?preset=<slug>``); blanks and repeats dropped."""
    out: list[str] = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        if "/c/" not in text and ("?" in text or "=" in text):
            query = urlsplit(text).query if "?" in text else text
            item = "?" + read(QueryDict(query)).canonical
        elif (slug := slug_from(text)) and not SLUG.fullmatch(slug) and services.find_preset(slug):
            item = "?" + read(QueryDict(f"preset={slug}")).canonical
        else:
            item = slug_from(text)
        if item and item not in out:
            out.append(item)
    return out


def saved_slugs(items: Sequence[str]) -> list[str]:
    return [i for i in items if not i.startswith("?")]


def compare_url(items: Sequence[str]) -> str:
    return reverse("compare") + "?" + urlencode([("c", s) for s in items])


def count_error(slugs: Sequence[str]) -> str:
    """The message for a wrong number of configurations, or ``""``."""
    if len(slugs) < MIN_COMPARED:
        got = "none" if not slugs else "only one"
        return (
            f"Compare needs {MIN_COMPARED} to {MAX_COMPARED} different saved configurations; {got} given. "
            "Add a permalink or slug below."
        )
    if len(slugs) > MAX_COMPARED:
        return (
            f"Compare shows at most {MAX_COMPARED} configurations side by side; {len(slugs)} given. Remove some below."
        )
    return ""


def unknown_error(missing: Sequence[str]) -> str:
    shown = ", ".join(f"“{s[:MAX_SHOWN_LENGTH]}”" for s in missing)
    noun = "configuration" if len(missing) == 1 else "configurations"
    return f"No saved {noun} at {shown}. Check the permalink or slug; a deleted configuration is gone for good."


def saved_item(configuration: SavedConfiguration) -> Item:
    """A saved configuration, recomputed from its immutable inputs."""
    request: EstimateRequest | None
    planned: services.PlannedEstimate | None = None
    try:
        request = configuration.to_request()
        planned = services.configuration_plan(configuration=configuration, example_dataset=True)
    except ValidationError:
        request = None
    except services.InputError:
        pass
    return Item(
        configuration.slug,
        configuration.name,
        model_label(configuration),
        configuration.get_absolute_url(),
        request,
        planned.estimate if planned else None,
        planned,
        configuration.note,
        configuration.created,
        configuration.slug,
    )


def state_item(key: str) -> Item:
    """An unsaved calculator state (``?<query>``), computed as the calculator computes it."""
    reading = read(QueryDict(key.removeprefix("?")))
    planned = None
    if reading.ok and reading.request is not None:
        try:
            planned = services.plan_estimate(request=reading.request, example_dataset=True)
        except services.InputError:
            planned = None
    result = planned.estimate if planned else None
    model = result.name if result is not None else "—"
    href = reverse("calculator") + key
    request = reading.request if reading.ok else None
    return Item(key, f"{model} (unsaved)", model, href, request, result, planned)


def _no_result(item: Item) -> str:
    return "These inputs no longer compute." if item.created is not None else "These inputs do not compute."


def saved_query(configuration: SavedConfiguration) -> str:
    """The ``c`` value that compares a saved configuration's inputs as an unsaved state."""
    return "?" + calculator_query(configuration)


def comparison(items: Sequence[Item]) -> dict[str, Any]:
    """The page's context: one column per configuration, sections of rows, the differing cells marked."""
    slugs = [i.key for i in items]
    columns = []
    for item in items:
        others = [s for s in slugs if s != item.key]
        columns.append(
            {
                "slug": item.slug,
                "name": item.name,
                "note": item.note,
                "created": item.created,
                "href": item.href,
                "error": "" if item.result is not None else _no_result(item),
                "remove_href": compare_url(others) if len(others) >= MIN_COMPARED else "",
            }
        )
    groups = sections(items)
    rows: list[dict[str, Any]] = [r for s in groups for r in s["rows"]]
    return {
        "columns": columns,
        "sections": groups,
        "span": len(columns) + 1,
        "differing": sum(r["differs"] for r in rows),
        "row_count": len(rows),
        "slugs": slugs,
        "can_add": len(slugs) < MAX_COMPARED,
        "approximate": approximate(items),
    }
