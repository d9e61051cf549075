import pytest

from calculator.services import invalidate_catalog
from calculator.web.render import FRAGMENTS, RESPONSES


@pytest.fixture(autouse=True)
def _fresh_caches(db):
    """Every test sees the seeded catalog of its own database and renders from scratch."""
    invalidate_catalog()
    FRAGMENTS.clear()
    RESPONSES.clear()
    yield
    invalidate_catalog()
