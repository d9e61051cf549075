"""Drill: the database goes away (killed), and comes back.

While it is down, everything that can work without it keeps working — computing, the calculator page and
its live fragment, the presets (from the catalog the server read last), the docs —, and everything else,
signed in or not, answers a clear 503 (JSON under /api/). When it is back, all of it recovers by itself.
"""

from __future__ import annotations

from tests.drills.conftest import PASSWORD
from tests.drills.harness import AppServer, Visitor, eventually

ESTIMATE = {"model": {"preset": "llama-3.1-8b"}, "lora": {"r": 16}}
SAVE = {"name": "drill", **ESTIMATE}
HTMX = {"HX-Request": "true"}

WORKS_WITHOUT_DATABASE = [
    ("GET", "/healthz"),
    ("GET", "/"),
    ("GET", "/?preset=llama-3.1-8b&r=32"),
    ("HTMX", "/?preset=llama-3.1-8b&r=64"),
    ("GET", "/presets/"),
    ("GET", "/learn/"),
    ("GET", "/learn/accuracy/"),
    ("GET", "/accounts/login/"),
    ("GET", "/api/docs/"),
    ("GET", "/api/v1/presets/"),
    ("GET", "/api/v1/presets/llama-3.1-8b/"),
    ("ESTIMATE", "/api/v1/estimate/"),
]


def call(visitor: Visitor, kind: str, path: str):
    if kind == "ESTIMATE":
        return visitor.post(path, data=ESTIMATE)
    return visitor.get(path, headers=HTMX if kind == "HTMX" else None)


def test_down_what_can_work_works_the_rest_is_a_clear_503_and_all_recovers(pg, server, signed_in):
    anonymous = Visitor(server.base)
    slug = signed_in.post("/api/v1/configurations/", data=SAVE).json()["slug"]
    token = signed_in.create_token()
    scripted = {"Authorization": f"Token {token}"}

    pg.stop("immediate")
    try:
        for visitor in (anonymous, signed_in):
            for kind, path in WORKS_WITHOUT_DATABASE:
                answer = call(visitor, kind, path)
                assert answer.status == 200, (kind, path, answer.status, answer.text[:300])
        assert (
            anonymous.post("/api/v1/estimate/", data=ESTIMATE).json()["lora"]["trainable_params"] == 6_815_744
        )  # r=16 on q,v
        assert len(anonymous.get("/api/v1/presets/").json()) >= 20

        unavailable = [
            anonymous.post("/api/v1/configurations/", data=SAVE),
            anonymous.get(f"/api/v1/configurations/{slug}/"),
            signed_in.get("/api/v1/configurations/"),
            signed_in.post("/api/v1/configurations/", data=SAVE),
            signed_in.request("PATCH", f"/api/v1/configurations/{slug}/", data={"name": "x"}),
            anonymous.get("/api/v1/configurations/", headers=scripted),
        ]
        for answer in unavailable:
            assert answer.status == 503, (answer.status, answer.text[:300])
            assert "database" in answer.json()["detail"]
        pages = [
            anonymous.get(f"/c/{slug}/"),
            signed_in.get("/mine/"),
            signed_in.get("/accounts/tokens/"),
            signed_in.get("/admin/"),
            signed_in.post("/save/", form={"state": "preset=gpt2", "name": "x"}),
            anonymous.post("/save/", form={"state": "preset=gpt2", "name": "x"}),
            anonymous.post("/accounts/login/", form={"username": "alice", "password": PASSWORD}),
        ]
        for answer in pages:
            assert answer.status == 503, (answer.status, answer.text[:300])
            assert "database" in answer.text
        assert "Sign in" in signed_in.get("/").text  # the calculator works; who is signed in cannot be known
    finally:
        pg.start()

    def recovered() -> bool:
        return signed_in.get("/mine/").status == 200 and anonymous.get(f"/c/{slug}/").status == 200

    assert eventually(recovered), "did not recover without a restart"
    assert signed_in.post("/api/v1/configurations/", data=SAVE).status == 201
    assert anonymous.get("/api/v1/configurations/", headers=scripted).status == 200
    assert "My configurations" in signed_in.get("/").text


def test_a_server_started_while_the_database_is_down_computes_from_the_seed_catalog(pg, environment):
    pg.stop("immediate")
    fresh = AppServer(environment)
    try:
        fresh.start()
        visitor = Visitor(fresh.base)
        assert visitor.post("/api/v1/estimate/", data=ESTIMATE).status == 200
        assert visitor.get("/?preset=qwen2.5-7b").status == 200
        presets = visitor.get("/api/v1/presets/")
        assert presets.status == 200
        assert "llama-3.1-8b" in {p["slug"] for p in presets.json()}
        assert visitor.post("/api/v1/configurations/", data=SAVE).status == 503
    finally:
        pg.start()
        fresh.stop()
