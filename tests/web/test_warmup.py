from calculator.warmup import warm_up
from calculator.web import cache


def test_warm_up_renders_the_default_page_into_the_caches():
    version = cache.services.catalog_version()
    assert not cache._STORES["page"].data  # the autouse fixture emptied the caches
    warm_up()
    assert cache._STORES["page"].get((version, "")) is not None
    assert cache._STORES["fragment"].get((version, "")) is not None
