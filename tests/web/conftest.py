import pytest
from django.core.cache import cache

from calculator.services import invalidate_catalog
from calculator.web.render import FRAGMENTS, GZIPPED, PAGES, RESPONSES


@pytest.fixture(autouse=True)
def _fresh_caches(db):
    """Every test sees the seeded catalog of its own database and renders from scratch."""
    invalidate_catalog()
    FRAGMENTS.clear()
    RESPONSES.clear()
    GZIPPED.clear()
    PAGES.clear()
    cache.clear()  # the anonymous-save rate limit counts in the default cache
    yield
    invalidate_catalog()
