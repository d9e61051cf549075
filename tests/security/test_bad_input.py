"""Input that belongs to the web and API edges: nothing that cannot be read back is stored, deep or huge
bodies are refused clearly, and every refusal names the field (a 400), or the limit (a JSON 413)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from calculator.models import SavedConfiguration

URL = "/api/v1/configurations/"


def post_raw(client, body: str, url: str = URL):
    return client.post(url, body, content_type="application/json")


def gpt2_config(extra: str) -> str:
    """A save body whose pasted config.json carries ``extra`` (raw JSON text: escapes stay escapes)."""
    return '{"name": "n", "model": {"hf_config": {"model_type": "gpt2", ' + extra + "}}}"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('"junk": "\\udc00"', "junk"),  # a lone low surrogate as a value
        ('"\\ud800": 1', "\\ud800"),  # ... as a key
        ('"nested": {"deeper": ["ok", "\\udfff"]}', "nested"),
    ],
)
def test_a_lone_surrogate_in_a_config_is_a_400_naming_the_field_and_is_never_stored(client, extra, field):
    response = post_raw(client, gpt2_config(extra))
    assert response.status_code == 400, response.content
    errors = response.json()["model"]["hf_config"]
    assert field in json.dumps(errors, ensure_ascii=False).encode("utf-8", "backslashreplace").decode()
    assert "surrogate" in json.dumps(errors)
    assert not SavedConfiguration.objects.exists()
    assert client.get(URL).status_code in (401, 403)  # and nothing else broke


@pytest.mark.parametrize("depth", [33, 500, 600])
def test_json_nested_hundreds_of_levels_is_a_400_on_save(client, depth):
    response = post_raw(client, gpt2_config('"deep": ' + "[" * depth + "]" * depth))
    assert response.status_code == 400, response.content[:300]
    assert "Nested more than" in json.dumps(response.json()["model"]["hf_config"])
    assert not SavedConfiguration.objects.exists()


def test_nesting_deeper_than_the_parser_allows_is_a_400_too(client):
    response = post_raw(client, gpt2_config('"deep": ' + "[" * 100_000 + "]" * 100_000))
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (gpt2_config('"junk": "a\\u0000b"'), ("model", "hf_config", "junk")),
        ('{"name": "a\\u0000b", "model": {"preset": "gpt2"}}', ("name",)),
        ('{"name": "n", "note": "\\u0000", "model": {"preset": "gpt2"}}', ("note",)),
        ('{"name": "n", "model": {"preset": "gpt2"}, "lora": {"modules_to_save": ["lm_head\\u0000"]}}', ("lora",)),
    ],
)
def test_a_nul_character_is_a_400_naming_the_field_on_every_database(client, body, path):
    response = post_raw(client, body)
    assert response.status_code == 400, response.content
    node = response.json()
    for key in path:
        node = node[key]
    assert "NUL" in json.dumps(node)
    assert not SavedConfiguration.objects.exists()


def test_an_api_body_over_the_limit_is_a_json_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    for url in ("/api/v1/estimate/", URL):
        response = post_raw(client, gpt2_config('"pad": "%s"' % ("x" * 20_000)), url)
        assert response.status_code == 413
        assert response["Content-Type"] == "application/json"
        assert "10,000 bytes" in response.json()["detail"]


def test_a_body_read_past_the_limit_is_a_413_too(client, settings):
    """Without a declared length the limit trips while reading: the same answer (the page: plain text)."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    response = client.post("/save/", {"state": "preset=gpt2", "name": "x" * 5_000})
    assert response.status_code == 413


ANON_CAP = 4_096


def big_config(size: int) -> dict[str, object]:
    return {"name": "big", "model": {"hf_config": {"model_type": "gpt2", "pad": "x" * size}}}


def test_anonymous_saves_are_capped_in_size_and_the_error_names_the_config(client, settings):
    settings.ANON_SAVE_MAX_BYTES = ANON_CAP
    response = client.post(URL, big_config(ANON_CAP), content_type="application/json")
    assert response.status_code == 400
    message = response.json()["model"]["hf_config"][0]
    assert "Too large to save" in message
    assert "sign in" in message
    assert not SavedConfiguration.objects.exists()
    assert client.post(URL, big_config(100), content_type="application/json").status_code == 201


def test_a_signed_in_user_may_store_more_up_to_the_general_cap(client, settings):
    settings.ANON_SAVE_MAX_BYTES, settings.MAX_SAVE_BYTES = ANON_CAP, 4 * ANON_CAP
    client.force_login(get_user_model().objects.create_user("carol", password="pw"))
    assert client.post(URL, big_config(ANON_CAP), content_type="application/json").status_code == 201
    assert client.post(URL, big_config(4 * ANON_CAP), content_type="application/json").status_code == 400
