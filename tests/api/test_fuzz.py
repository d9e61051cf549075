"""Bad input gets a 400 naming the problem, never a 500: generated request bodies and query strings."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calculator.core import SUPPORTED_MODEL_TYPES
from calculator.core.families import CUSTOM_FIELDS
from calculator.schemas import LoraInput, TrainingInput
from calculator.web.fields import BY_NAME, FORM_ONLY_PARAMS

JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)

# Field lists from the schemas (whose choices and defaults are the core's): a new field is fuzzed at once.
LORA_KEYS = list(LoraInput.model_fields)
TRAINING_KEYS = list(TrainingInput.model_fields)
CONFIG_KEYS = [*CUSTOM_FIELDS, "model_type", "n_embd", "n_layer", "n_head", "attention_dropout", "resid_pdrop"]
MODEL_TYPES = st.sampled_from(SUPPORTED_MODEL_TYPES)
# Every choice the training fields take (the core's), so combinations of real values are tried too.
CHOICES = sorted({str(v) for f in TrainingInput.model_json_schema()["properties"].values() for v in f.get("enum", ())})
SMALL = st.one_of(st.integers(-4, 4096), JSON_LEAF)
NAMES = st.one_of(
    st.sampled_from(["q_proj", "v_proj", "all-linear", ".*", "(", "w1", "gate", "lm_head", "experts"]),
    st.lists(st.integers(-2, 300_000), max_size=3),  # token ids (trainable_token_indices)
    st.dictionaries(st.sampled_from(["embed_tokens", "lm_head", "wte", ""]), st.lists(st.integers(-1, 10)), max_size=2),
    JSON,
)

bodies = st.fixed_dictionaries(
    {
        "model": st.one_of(
            st.fixed_dictionaries({"preset": st.one_of(st.sampled_from(["gpt2", "phi-3-mini", "mixtral-8x7b"]), JSON)}),
            st.builds(
                lambda model_type, rest: {"hf_config": {"model_type": model_type, **rest}},
                MODEL_TYPES,
                st.dictionaries(st.sampled_from(CONFIG_KEYS), SMALL, max_size=8),
            ),
            st.fixed_dictionaries({"custom": st.dictionaries(st.sampled_from(CONFIG_KEYS), SMALL, max_size=8)}),
            JSON,
        ),
        "lora": st.dictionaries(st.sampled_from(LORA_KEYS), st.one_of(SMALL, NAMES), max_size=6),
        "training": st.dictionaries(
            st.sampled_from(TRAINING_KEYS),
            st.one_of(SMALL, st.sampled_from([*CHOICES, 0.5, [1], {"a": 1}])),
            max_size=5,
        ),
    }
)


@pytest.mark.django_db
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_estimate_never_fails_with_a_server_error(client, body):
    response = client.post("/api/v1/estimate/", json.dumps(body, allow_nan=True), content_type="application/json")
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:
        assert response.json()


QUERY = st.lists(
    st.tuples(
        st.sampled_from(
            ["preset", "hf_config", "target_modules", *CUSTOM_FIELDS, *BY_NAME, *FORM_ONLY_PARAMS, "rank_pattern"]
        ),
        st.one_of(st.text(max_size=10), st.sampled_from(CHOICES)),
    ),
    max_size=6,
)


@pytest.mark.django_db
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=QUERY, htmx=st.booleans())
def test_calculator_page_never_fails_with_a_server_error(client, pairs, htmx):
    from urllib.parse import urlencode

    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.get("/?" + urlencode(pairs), **headers)
    assert response.status_code in (200, 302, 400), response.content[:300]


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=bodies,
    goal=st.one_of(st.sampled_from(["max_batch_size", "max_seq_len", "max_r", "min_gpus"]), JSON_LEAF),
    gpu=st.one_of(st.none(), st.sampled_from(["NVIDIA RTX 4090 24 GB", "NVIDIA T4 16 GB", "custom"]), JSON_LEAF),
)
def test_plan_never_fails_with_a_server_error(client, body, goal, gpu):
    response = client.post(
        "/api/v1/plan/", json.dumps({**body, "goal": goal, "gpu": gpu}, allow_nan=True), content_type="application/json"
    )
    assert response.status_code in (200, 400), response.content[:300]
