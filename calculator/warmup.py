"""Warm a freshly forked app server before it takes traffic, so the first users don't pay for it.

gunicorn calls `warm_up()` in each worker (`post_worker_init`): it loads the preset catalog and renders
the calculator once, which compiles the templates and fills the per-process caches.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.test import RequestFactory
from django_htmx.middleware import HtmxDetails

logger = logging.getLogger(__name__)


def warm_up() -> None:
    from calculator.views import calculator

    host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h != "*"), "localhost")
    factory = RequestFactory(HTTP_HOST=host)
    try:
        for request in (factory.get("/"), factory.get("/", HTTP_HX_REQUEST="true")):
            request.htmx = HtmxDetails(request)  # type: ignore[attr-defined]  # what HtmxMiddleware adds
            calculator(request)  # type: ignore[arg-type]
    except Exception:  # a cold worker must still start: warming is an optimisation only
        logger.warning("warm-up failed", exc_info=True)
