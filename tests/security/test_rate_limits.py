"""The anonymous save limit: one atomic count per client in the shared cache (Redis in production),
client addresses taken from X-Forwarded-For only when a configured proxy sent it, and a site-wide cap."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
from django.core.cache import cache
from django.test import RequestFactory

from calculator.throttling import AnonSaveThrottle
from lorasite.clients import client_ip, parse_networks

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CONFIGS = "/api/v1/configurations/"
BODY = {"name": "anon", "model": {"preset": "gpt2"}}


@pytest.fixture
def rate(settings):
    """Set the per-client and site-wide rates for this test (DRF reads its rates once, at import)."""

    def set_rates(per_client: str, site: str = "1000/hour") -> None:
        AnonSaveThrottle.THROTTLE_RATES = {"anon_save": per_client}
        settings.ANON_SAVE_SITE_RATE = site

    original = AnonSaveThrottle.THROTTLE_RATES
    yield set_rates
    AnonSaveThrottle.THROTTLE_RATES = original


def save(client, **headers):
    return client.post(CONFIGS, BODY, content_type="application/json", **headers).status_code


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.5", "", [], "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", [], "203.0.113.5"),  # nobody trusted: the header is the client's word
        ("10.0.0.2", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", "1.2.3.4, 198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),  # the client's own prefix is ignored
        ("10.0.0.2", "198.51.100.1, 10.0.0.9", ["10.0.0.0/8"], "198.51.100.1"),  # two proxies of ours
        ("10.0.0.2", "10.0.0.7", ["10.0.0.0/8"], "10.0.0.7"),  # all ours: the first one
        ("10.0.0.2", "not-an-ip", ["10.0.0.0/8"], "10.0.0.2"),
        ("203.0.113.5", "198.51.100.1", ["10.0.0.0/8"], "203.0.113.5"),  # not from a proxy of ours
        ("::1", "2001:db8::7", ["::1"], "2001:db8::7"),
    ],
)
def test_the_client_address_trusts_forwarded_for_only_from_configured_proxies(
    settings, remote, forwarded, trusted, expected
):
    settings.TRUSTED_PROXIES = parse_networks(trusted)
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_a_bad_trusted_proxies_entry_is_refused_by_name():
    with pytest.raises(ValueError, match="nonsense"):
        parse_networks(["10.0.0.0/8", "nonsense"])


def test_a_forged_forwarded_for_does_not_reset_the_limit(client, rate):
    rate("3/hour")
    codes = [save(client, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}") for i in range(5)]
    assert codes == [201, 201, 201, 429, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(client, rate, settings):
    rate("2/hour")
    settings.TRUSTED_PROXIES = parse_networks(["127.0.0.1"])
    first = [save(client, HTTP_X_FORWARDED_FOR="198.51.100.1") for _ in range(3)]
    second = [save(client, HTTP_X_FORWARDED_FOR="198.51.100.2") for _ in range(3)]
    assert first == second == [201, 201, 429]


def test_many_addresses_together_meet_the_site_wide_cap(client, rate):
    rate("100/hour", site="3/hour")
    codes = [save(client, REMOTE_ADDR=f"198.51.100.{i}") for i in range(5)]
    assert codes == [201, 201, 201, 429, 429]


def test_the_page_and_the_api_count_against_one_limit(client, rate):
    rate("2/hour")
    assert client.post("/save/", {"state": "preset=gpt2", "name": "page"}).status_code == 302
    assert save(client) == 201
    assert save(client) == 429
    assert client.post("/save/", {"state": "preset=gpt2", "name": "page"}).status_code == 429


def test_a_429_says_when_to_come_back(client, rate):
    rate("1/hour")
    save(client)
    response = client.post(CONFIGS, BODY, content_type="application/json")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 3600


def allowed_in_parallel(threads: int, tries: int) -> int:
    """Saves allowed when ``threads`` clients from one address try ``tries`` times each, all at once."""
    request = RequestFactory().post(CONFIGS, REMOTE_ADDR="192.0.2.44")
    allowed, lock, start = [0], threading.Lock(), threading.Barrier(threads)

    def hammer() -> None:
        start.wait()
        for _ in range(tries):
            if AnonSaveThrottle().allow_request(request, None):  # type: ignore[arg-type]
                with lock:
                    allowed[0] += 1

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return allowed[0]


def test_concurrent_requests_never_pass_the_limit_together(rate):
    rate("25/hour")
    assert allowed_in_parallel(threads=8, tries=10) == 25


@pytest.fixture
def redis_cache(settings):
    """The real Redis, under a key prefix of this test's own (cleaned up key by key; never FLUSHALL)."""
    redis = pytest.importorskip("redis")
    server = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        server.ping()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail(f"no Redis at {REDIS_URL}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"lorasite-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
        }
    }
    yield server, prefix
    for key in server.scan_iter(match=f"{prefix}:*"):
        server.delete(key)
    server.close()


def test_with_redis_the_limit_is_counted_in_redis_atomically(redis_cache, rate):
    server, prefix = redis_cache
    rate("25/hour")
    assert allowed_in_parallel(threads=8, tries=10) == 25  # each thread has its own Redis connection
    keys = [key.decode() for key in server.scan_iter(match=f"{prefix}:*")]
    assert any("anon_save:192.0.2.44" in key for key in keys), keys
    assert all(0 < server.ttl(key) <= 3601 for key in keys)  # every count expires with its window


def test_with_redis_every_process_shares_the_count(client, redis_cache, rate):
    """Another app server's process is another Redis connection: the count it sees is the same."""
    rate("2/hour")
    assert save(client) == 201
    cache.close()  # drop this thread's connection, as another process would not have it
    assert save(client) == 201
    assert save(client) == 429
