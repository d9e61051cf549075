"""Drill: two app servers against one PostgreSQL and one Redis, as behind a load balancer.

A session made on one is valid on the other (sessions live in PostgreSQL), and so is an API token; the
anonymous save limit and the sign-in lockout are counted once for both (in Redis), whichever server a
request lands on.
"""

from __future__ import annotations

import pytest

from tests.drills.conftest import PASSWORD, REDIS_URL
from tests.drills.harness import AppServer, Visitor, app_environment

SAVE = {"name": "two servers", "model": {"preset": "gpt2"}}


@pytest.fixture(scope="module")
def two_servers(pg, environment, redis_prefixes):
    """Servers A and B: same database, same Redis (a key prefix of this drill's own), small limits."""
    env = app_environment(
        DATABASE_URL=pg.url(),
        CACHE_URL=REDIS_URL,
        CACHE_KEY_PREFIX=redis_prefixes.new(),
        ANON_SAVE_RATE="4/hour",
        LOGIN_FAILURE_LIMIT="3",
    )
    servers = [AppServer(env), AppServer(env)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_a_session_and_a_token_made_on_one_server_work_on_the_other(two_servers):
    a, b = two_servers
    on_a = Visitor(a.base)
    assert on_a.login("alice", PASSWORD).status == 302
    on_b = on_a.at(b.base)  # the same browser, sent to the other server by the load balancer
    assert on_b.get("/mine/").status == 200
    token = on_b.create_token("made on B")
    scripted = {"Authorization": f"Token {token}"}
    assert Visitor(a.base).post("/api/v1/configurations/", data=SAVE, headers=scripted).status == 201
    assert on_a.post("/accounts/logout/", form={}).status == 302
    assert on_b.get("/mine/").status == 302  # signed out everywhere


def test_the_anonymous_save_limit_is_one_count_across_servers(two_servers):
    a, b = two_servers
    statuses = [Visitor(server.base).post("/api/v1/configurations/", data=SAVE).status for server in (a, b) * 3]
    assert statuses == [201, 201, 201, 201, 429, 429]


def test_a_sign_in_lockout_on_one_server_holds_on_the_other(two_servers):
    """Last in this module: it locks 127.0.0.1 out of signing in (under this drill's key prefix only)."""
    a, b = two_servers
    for _ in range(3):
        Visitor(a.base).login("alice", "wrong password")
    locked = Visitor(b.base).login("alice", PASSWORD)
    assert locked.status == 429
    assert "Too many failed sign-in attempts" in locked.text
