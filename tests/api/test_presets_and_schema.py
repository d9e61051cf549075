import re

import pytest

from calculator.core import architecture_from_config
from calculator.services import invalidate_catalog

pytestmark = pytest.mark.django_db


def test_preset_list_has_the_starter_catalog(client):
    presets = client.get("/api/v1/presets/").json()
    slugs = {p["slug"] for p in presets}
    assert {"llama-3.1-8b", "mixtral-8x7b", "qwen3-8b", "gemma-2-9b", "phi-3-mini", "gpt2"} <= slugs
    for preset in presets:
        assert set(preset) >= {"slug", "name", "family", "base_params", "config", "source_url"}
        assert architecture_from_config(preset["config"]).base_params == preset["base_params"]


def test_preset_detail_and_404(client):
    assert client.get("/api/v1/presets/gpt2/").json()["base_params"] == 124_439_808
    assert client.get("/api/v1/presets/nope/").status_code == 404


def test_unpublished_presets_are_hidden(client):
    from calculator.models import ModelPreset

    ModelPreset.objects.filter(slug="gpt2").update(is_published=False)
    invalidate_catalog()  # what the admin's publish/unpublish actions do (else: within CATALOG_TTL_SECONDS)
    assert client.get("/api/v1/presets/gpt2/").status_code == 404


def test_openapi_schema_documents_the_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert {"/api/v1/estimate/", "/api/v1/presets/", "/api/v1/configurations/"} <= set(schema["paths"])
    request = schema["paths"]["/api/v1/estimate/"]["post"]["requestBody"]
    assert request["content"]["application/json"]["schema"]


def test_docs_page_uses_no_cdn(client):
    html = client.get("/api/docs/").content.decode()
    assert not re.search(r'(?:src|href)="[^"]*(?:cdn|unpkg|jsdelivr)', html, re.IGNORECASE)
    assert "/static/drf_spectacular_sidecar/" in html


def test_healthz_touches_no_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.content == b"ok"


def test_every_try_it_out_example_in_the_schema_answers_successfully(client, django_user_model):
    """The docs' "Try it out" starts from the schema's examples: each must be a working request."""
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    user = django_user_model.objects.create_user("docs", password="pw-docs-123")
    client.force_login(user)
    saved = client.post("/api/v1/configurations/", {"name": "x", "model": {"preset": "gpt2"}}, "application/json")
    tried = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            examples = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("examples")
            for example in (examples or {}).values():
                url = path.replace("{slug}", saved.json()["slug"])
                response = getattr(client, method)(url, example["value"], content_type="application/json")
                assert response.status_code in (200, 201), (method, path, response.content[:300])
                tried += 1
    assert tried >= 3
