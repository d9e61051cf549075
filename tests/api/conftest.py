import pytest

from calculator.services import invalidate_catalog
from tests.caches import fresh_state


@pytest.fixture(autouse=True)
def _fresh_caches(db):
    fresh_state()
    yield
    invalidate_catalog()
