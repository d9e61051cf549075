"""Shared by the web and browser tests: start every test from the state a fresh server has."""

from django.core.cache import cache

from calculator.services import invalidate_catalog
from calculator.web.render import clear_caches


def fresh_state() -> None:
    """The seeded catalog of this test's database, nothing rendered yet, no rate-limit counts."""
    invalidate_catalog()
    clear_caches()
    cache.clear()  # the anonymous-save rate limit counts in the default cache
