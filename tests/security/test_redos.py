"""No request holds a worker for more than 100 ms of pattern matching, whatever pattern it sends.

The core matches user patterns with a linear-time automaton (`calculator.core.regex`); these tests send
known catastrophic-backtracking patterns through every door a pattern has — each API field that takes
one, and the calculator page's URL — and time the matcher itself inside the request (compiling included).
"""

from __future__ import annotations

import gc
import time
from urllib.parse import urlencode

import pytest

from calculator.core import regex
from tests.core.test_regex import REDOS

MATCHING_BUDGET_SECONDS = 0.100
ISSUE_PATTERNS = ["(.|.)*x", "[^x]*[^x]*[^x]*[^x]*[^x]*[^x]*x"]
CORPUS = list(dict.fromkeys([*ISSUE_PATTERNS, *REDOS]))
DEEP_MODEL = {  # the deepest model the bounds allow: 1,024 layers, 7 modules each
    "custom": {
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": 1024,
        "num_attention_heads": 4,
        "vocab_size": 1000,
    }
}


@pytest.fixture
def matching_time(monkeypatch):
    """CPU seconds spent compiling and running user patterns during the test (all requests). CPU time of the
    thread, not wall time, so other work on a busy machine does not count as the matcher's; the cyclic garbage
    collector is paused meanwhile, as a full collection of the whole suite's heap that happens to start inside
    a matcher call is not matching (seen: 1.4 s in one call, order-dependent, never alone)."""
    spent = [0.0]
    collecting = gc.isenabled()
    gc.disable()

    def timed(method):
        def wrapper(*args, **kwargs):
            started = time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                spent[0] += time.thread_time() - started

        return wrapper

    for name in (
        "__init__",
        "advance",
        "fullmatch",
        "match",
        "scan",
        "prefix_signature",
        "fullmatch_parts",
    ):  # nested: counted twice
        monkeypatch.setattr(regex.LinearPattern, name, timed(getattr(regex.LinearPattern, name)))
    regex.compile_pattern.cache_clear()
    try:
        yield spent
    finally:
        regex.compile_pattern.cache_clear()
        if collecting:
            gc.enable()


def lora_with(field: str, pattern: str) -> dict[str, object]:
    """A LoRA config that puts ``pattern`` where a user's pattern goes in ``field``."""
    return {
        "target_modules_regex": {"target_modules": pattern},
        "target_modules_list": {"target_modules": [pattern, "q_proj"]},
        "exclude_modules": {"target_modules": "all-linear", "exclude_modules": pattern},
        "rank_pattern": {"target_modules": "all-linear", "rank_pattern": {pattern: 16}},
        "alpha_pattern": {"target_modules": "all-linear", "alpha_pattern": {pattern: 32}},
        "modules_to_save": {"target_modules": ["q_proj"], "modules_to_save": [pattern]},
    }[field]


FIELDS = ["target_modules_regex", "target_modules_list", "exclude_modules", "rank_pattern", "alpha_pattern",
          "modules_to_save"]  # fmt: skip


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("pattern", CORPUS)
def test_an_estimate_spends_under_100_ms_matching_a_redos_pattern(client, matching_time, field, pattern):
    body = {"model": DEEP_MODEL, "lora": lora_with(field, pattern)}
    started = time.thread_time()  # CPU time: other work on a loaded machine does not count
    response = client.post("/api/v1/estimate/", body, content_type="application/json")
    elapsed = time.thread_time() - started
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:  # refused by name (e.g. nothing matched), never a 500
        assert response.json()
    assert matching_time[0] < MATCHING_BUDGET_SECONDS, f"{matching_time[0] * 1000:.0f} ms matching"
    assert elapsed < 5, f"{elapsed:.1f} s in all"  # and nothing else in the request backtracks either


@pytest.mark.parametrize("pattern", CORPUS)
def test_the_calculator_page_spends_under_100_ms_matching_a_redos_module_name(client, matching_time, pattern):
    query = urlencode({"preset": "llama-3.1-405b", "modules_to_save": pattern})
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):  # the whole page, then the live fragment
        matching_time[0] = 0.0
        response = client.get(f"/?{query}", **headers)
        assert response.status_code in (200, 400)
        assert matching_time[0] < MATCHING_BUDGET_SECONDS, f"{matching_time[0] * 1000:.0f} ms matching"


def test_the_issues_url_answers_at_once(client, matching_time):
    started = time.thread_time()
    response = client.get("/?preset=llama-3.1-8b&modules_to_save=%28.%7C.%29%2Ax")
    assert response.status_code in (200, 400)
    assert time.thread_time() - started < 2
    assert matching_time[0] < MATCHING_BUDGET_SECONDS
