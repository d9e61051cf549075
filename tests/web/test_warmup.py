from calculator.warmup import warm_up
from calculator.web.render import PAGES, RESPONSES


def test_warm_up_renders_the_default_page_into_the_caches():
    assert PAGES.get("") is None  # the autouse fixture emptied the caches
    warm_up()
    assert PAGES.get("") is not None
    assert RESPONSES.get("") is not None
