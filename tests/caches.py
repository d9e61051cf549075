"""Shared by the web and browser tests: start every test from the state a fresh server has."""

from django.core.cache import cache as default_cache

from calculator.services import invalidate_catalog
from calculator.web import cache


def fresh_state() -> None:
    """The seeded catalog of this test's database, nothing rendered yet, no rate-limit counts."""
    invalidate_catalog()
    cache.clear()
    default_cache.clear()  # the anonymous-save rate limit counts in the default cache
