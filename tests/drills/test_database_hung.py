"""Drill: the database hangs (every server process SIGSTOPped: connections are accepted, nothing answers).

Computing never waits on it: the estimate API, the calculator page and its live fragment answer at once,
also after the catalog's refresh interval has passed (the catalog is re-read in the background). A request
that needs the database gives up after the connect and query timeouts with a clear 503 instead of holding
its worker until gunicorn kills it. When the database thaws, everything recovers by itself.
"""

from __future__ import annotations

import threading
import time

from calculator.services import CATALOG_TTL_SECONDS
from tests.drills.harness import Visitor, eventually

FAST_SECONDS = 1.0  # a compute request on this shared 2-core machine, with margin
GIVE_UP_SECONDS = 2 + 2 + 2.5  # DATABASE_CONNECT_TIMEOUT + DATABASE_TIMEOUT (drill settings) + margin


def test_hung_computing_never_waits_database_requests_give_up_with_503_then_recover(pg, server, signed_in):
    anonymous = Visitor(server.base)
    slug = signed_in.post("/api/v1/configurations/", data={"name": "hung", "model": {"preset": "gpt2"}}).json()["slug"]
    waiting: list[tuple[str, int, float]] = []

    def needs_database(visitor: Visitor, path: str) -> None:
        answer = visitor.get(path, timeout=60)
        waiting.append((path, answer.status, answer.seconds))

    pg.pause()
    try:
        stuck = [
            threading.Thread(target=needs_database, args=(signed_in, "/mine/")),
            threading.Thread(target=needs_database, args=(anonymous, f"/c/{slug}/")),
            threading.Thread(target=needs_database, args=(anonymous, f"/api/v1/configurations/{slug}/")),
        ]
        for thread in stuck:
            thread.start()
        slowest, started, r = 0.0, time.monotonic(), 1
        while time.monotonic() - started < CATALOG_TTL_SECONDS + 2:  # past the catalog's refresh interval
            r = r % 512 + 1  # a new configuration every time: nothing comes from a cache
            for answer in (
                anonymous.post("/api/v1/estimate/", data={"model": {"preset": "llama-3.1-8b"}, "lora": {"r": r}}),
                anonymous.get(f"/?preset=qwen2.5-7b&r={r}", headers={"HX-Request": "true"}),
                signed_in.get(f"/?preset=mistral-7b&r={r}", headers={"HX-Request": "true"}),
                anonymous.get(f"/?preset=gpt2&r={r}"),
            ):
                assert answer.status == 200, answer.text[:300]
                slowest = max(slowest, answer.seconds)
            time.sleep(0.2)
        assert slowest < FAST_SECONDS, f"a compute request took {slowest:.2f} s while the database hung"
        for thread in stuck:
            thread.join(60)
        assert len(waiting) == 3
        for path, status, seconds in waiting:
            assert status == 503, (path, status)
            assert seconds < GIVE_UP_SECONDS, (path, seconds)
        saving = anonymous.post("/api/v1/configurations/", data={"name": "x", "model": {"preset": "gpt2"}}, timeout=60)
        assert saving.status == 503
        assert saving.seconds < GIVE_UP_SECONDS
    finally:
        pg.resume()

    assert eventually(lambda: signed_in.get("/mine/").status == 200), "did not recover without a restart"
    assert anonymous.get(f"/c/{slug}/").status == 200
    assert anonymous.post("/api/v1/configurations/", data={"name": "y", "model": {"preset": "gpt2"}}).status == 201
