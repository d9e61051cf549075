"""Failure drills: real gunicorn servers (production settings) against a PostgreSQL of the drills' own,
which they stop, kill and freeze, and the real Redis under a key prefix of their own.

They need the machine's PostgreSQL server binaries (``postgresql`` package) and Redis on 127.0.0.1:6379;
without them they skip, except under CI, where that is a failure.
"""

from __future__ import annotations

import os
import uuid

import pytest

from tests.drills.harness import AppServer, ThrowawayPostgres, Visitor, app_environment, manage, postgres_bin

REDIS_URL = os.environ.get("DRILL_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "drill-password-that-is-long"


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg():
    bindir = postgres_bin()
    if bindir is None:
        unavailable("no PostgreSQL server binaries (apt-get install postgresql)")
    server = ThrowawayPostgres(bindir)
    try:
        server.start()
        server.create_database()
        yield server
    finally:
        server.destroy()


class RedisPrefixes:
    """Key prefixes handed out to the drills' servers, and their keys deleted one by one afterwards."""

    def __init__(self, client) -> None:
        self.client, self.given = client, []

    def new(self) -> str:
        prefix = f"lorasite-drill-{uuid.uuid4().hex}"
        self.given.append(prefix)
        return prefix

    def clean(self) -> None:
        for prefix in self.given:
            for key in self.client.scan_iter(match=f"{prefix}:*"):
                self.client.delete(key)


@pytest.fixture(scope="session")
def redis_prefixes():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        unavailable(f"no Redis at {REDIS_URL}")
    prefixes = RedisPrefixes(client)
    yield prefixes
    prefixes.clean()
    client.close()


@pytest.fixture(scope="session")
def environment(pg, redis_prefixes):
    """The deployment: migrations run as a step, an admin account made, Redis as the shared cache."""
    env = app_environment(DATABASE_URL=pg.url(), CACHE_URL=REDIS_URL, CACHE_KEY_PREFIX=redis_prefixes.new())
    manage(env, "migrate", "--noinput")
    manage({**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}, "createsuperuser", "--noinput", "--username", "alice",
           "--email", "alice@example.com")  # fmt: skip
    return env


@pytest.fixture(scope="session")
def server(environment):
    app = AppServer(environment).start()
    yield app
    app.stop()


@pytest.fixture
def signed_in(server):
    """A browser signed in as alice on the drills' server."""
    visitor = Visitor(server.base)
    assert visitor.login("alice", PASSWORD).status == 302
    return visitor
