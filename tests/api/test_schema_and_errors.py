"""The OpenAPI document is valid 3.1 and says what the API answers; errors under /api/ are JSON; request
types are as strict as the document says."""

import json

import pytest
from django.test import Client
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from accounts.models import ApiToken
from calculator import services

pytestmark = pytest.mark.django_db
SCHEMA_URL = "/api/schema/"
SAVE_URL = "/api/v1/configurations/"


@pytest.fixture
def schema(client):
    response = client.get(SCHEMA_URL, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def component(schema, name):
    """A component as a standalone JSON Schema (its $refs resolve against the whole document)."""
    return {**schema["components"]["schemas"][name], "components": schema["components"]}


def test_the_schema_is_valid_openapi_3_1(schema):
    assert schema["openapi"] == "3.1.0"
    validate(schema)  # openapi-spec-validator: raises on any violation


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/api/v1/estimate/", {"200", "400", "413"}),
        ("post", "/api/v1/plan/", {"200", "400", "413"}),
        ("get", "/api/v1/presets/", {"200", "406"}),
        ("get", "/api/v1/presets/{slug}/", {"200", "404", "406"}),
        ("get", "/api/v1/configurations/", {"200", "401", "406", "503"}),
        ("post", "/api/v1/configurations/", {"201", "400", "401", "403", "406", "413", "415", "429", "503"}),
        ("get", "/api/v1/configurations/{slug}/", {"200", "401", "404", "406", "503"}),
        ("patch", "/api/v1/configurations/{slug}/", {"200", "400", "401", "403", "404", "406", "413", "415", "503"}),
        ("delete", "/api/v1/configurations/{slug}/", {"204", "401", "403", "404", "406", "503"}),
    ],
)
def test_every_answer_an_operation_gives_is_documented_with_a_body(schema, method, path, statuses):
    responses = schema["paths"][path][method]["responses"]
    assert set(responses) == statuses
    for status, response in responses.items():
        if status != "204":
            assert response["content"]["application/json"]["schema"], status
    for status in {"429", "503"} & statuses:
        assert responses[status]["headers"]["Retry-After"]["required"]


def test_the_list_is_documented_as_what_it_answers(client, schema, django_user_model):
    client.force_login(django_user_model.objects.create_user("alice"))
    client.post(SAVE_URL, {"name": "a", "model": {"preset": "gpt2"}}, content_type="application/json")
    listed = client.get(SAVE_URL).json()
    documented = schema["paths"][SAVE_URL]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert documented["type"] == "array"
    item = component(schema, documented["items"]["$ref"].rsplit("/", 1)[1])
    assert not list(Draft202012Validator(item).iter_errors(listed[0]))
    assert "estimate" not in listed[0]


def test_anonymous_and_signed_in_access_is_documented(schema):
    def security(method, path):
        return schema["paths"][path][method]["security"]

    assert {} in security("post", SAVE_URL)  # anyone saves
    assert {} in security("get", "/api/v1/configurations/{slug}/")  # anyone reads a permalink
    assert {} not in security("get", SAVE_URL)  # the list is your own
    assert {} not in security("patch", "/api/v1/configurations/{slug}/")


def test_a_save_links_to_reading_renaming_and_deleting_it(schema):
    operation_ids = {op["operationId"] for ops in schema["paths"].values() for op in ops.values()}
    links = schema["paths"][SAVE_URL]["post"]["responses"]["201"]["links"]
    assert (
        {link["operationId"] for link in links.values()}
        == {
            "v1_configurations_retrieve",
            "v1_configurations_partial_update",
            "v1_configurations_destroy",
        }
        <= operation_ids
    )
    assert all(link["parameters"] == {"slug": "$response.body#/slug"} for link in links.values())


def test_every_published_slug_fits_the_documented_path_pattern(client, schema):
    pattern = next(p for p in schema["paths"]["/api/v1/presets/{slug}/"]["get"]["parameters"] if p["name"] == "slug")
    validator = Draft202012Validator(pattern["schema"])
    slugs = [preset.slug for preset in services.presets()]
    assert any("." in slug for slug in slugs)
    for slug in slugs:
        assert validator.is_valid(slug), slug
        assert client.get(f"/api/v1/presets/{slug}/").status_code == 200, slug


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (
            {
                "model": {
                    "custom": {
                        **{"hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 1},
                        "num_attention_heads": 8,
                        "vocab_size": 10,
                        "tie_word_embeddings": 0,
                    }
                }
            },
            ("model", "custom", "tie_word_embeddings"),
        ),
        ({"model": {"preset": "gpt2"}, "lora": {"r": True}}, ("lora", "r")),
        ({"model": {"preset": "gpt2"}, "lora": {"r": 8.0}}, ("lora", "r")),
        ({"model": {"preset": "gpt2"}, "lora": {"use_dora": "true"}}, ("lora", "use_dora")),
        ({"model": {"preset": "gpt2"}, "training": {"safety_margin": False}}, ("training", "safety_margin")),
        ({"model": {"preset": "gpt2"}, "training": {"batch_size": "2"}}, ("training", "batch_size")),
        ({"model": {"preset": "gpt2"}, "training": {"double_quant": 1}}, ("training", "double_quant")),
    ],
)
@pytest.mark.parametrize("url", ["/api/v1/estimate/", "/api/v1/plan/", SAVE_URL])
def test_types_are_as_strict_as_the_schema_says(client, body, path, url):
    if url == SAVE_URL:
        body = {**body, "name": "strict"}
    if url == "/api/v1/plan/":
        body = {**body, "goal": "max_batch_size"}
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 400, response.content
    node = response.json()
    for key in path:
        node = node[key]
    assert node


def test_a_float_in_a_number_field_and_an_integer_in_a_float_field_are_fine(client):
    body = {"model": {"preset": "gpt2"}, "lora": {"lora_alpha": 16}, "training": {"safety_margin": 0.2, "epochs": 2}}
    assert client.post("/api/v1/estimate/", body, content_type="application/json").status_code == 200


def test_a_utilisation_too_small_to_give_finite_times_is_refused(client):
    """0 < mfu used to pass: 5e-324 made the time infinite, a 500 on save and `Infinity` (not JSON) on estimate."""
    body = {"model": {"preset": "gpt2"}, "training": {"mfu": 5e-324, "dataset_tokens": 1000}}
    for url in ("/api/v1/estimate/", SAVE_URL):
        response = client.post(url, {**body, "name": "x"} if url == SAVE_URL else body, content_type="application/json")
        assert response.status_code == 400, response.content
        assert "mfu" in response.json()["training"]
    ok = client.post("/api/v1/estimate/", {**body, "training": {"mfu": 0.001}}, content_type="application/json")
    assert ok.status_code == 200
    json.loads(ok.content, parse_constant=lambda name: pytest.fail(f"{name} in the answer"))


def test_listing_without_signing_in_is_a_401_that_names_the_token_scheme(client):
    response = client.get(SAVE_URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert "Sign in" in response.json()["detail"]  # before the fix: a 403 with no WWW-Authenticate


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/nope/", 404),
        ("get", "/api/v1/presets/Not%20A%20Slug/", 404),
        ("get", "/api/v1/presets/no-such-model/", 404),
        ("get", "/api/v1/configurations/no-such-slug/", 404),
        ("put", "/api/v1/estimate/", 405),
        ("delete", "/api/v1/presets/", 405),
        ("put", "/api/v1/configurations/no-such-slug/", 405),
    ],
)
def test_every_error_under_api_is_json(client, method, path, status):
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]


def test_a_crash_under_api_is_a_json_500(monkeypatch):
    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "presets", broken)
    response = Client(raise_request_exception=False).get("/api/v1/presets/")
    assert response.status_code == 500
    assert response.json() == {"detail": "Server error."}


def test_outside_api_a_missing_page_is_still_the_html_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_session_write_without_its_csrf_token_is_a_json_403(django_user_model):
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user("csrf"))
    response = client.post(SAVE_URL, {"name": "x", "model": {"preset": "gpt2"}}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_a_csrf_failure_outside_drf_is_json_under_api_and_a_page_elsewhere(rf):
    from lorasite.errors import csrf_failure

    api = csrf_failure(rf.post("/api/v1/anything/"), reason="CSRF cookie not set.")
    assert api.status_code == 403
    assert json.loads(api.content) == {"detail": "CSRF Failed: CSRF cookie not set."}
    page = csrf_failure(rf.post("/save/"), reason="CSRF cookie not set.")
    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")


def test_a_bad_token_is_a_401_and_a_good_one_lists(client, django_user_model):
    user = django_user_model.objects.create_user("script")
    _, token = ApiToken.objects.create(user, expiry=None, name="t")
    assert client.get(SAVE_URL, HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    bad = client.get(SAVE_URL, HTTP_AUTHORIZATION="Token lorasite_nope")
    assert bad.status_code == 401
    assert bad.json()["detail"]


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_an_anonymous_rename_or_delete_is_a_401_whether_the_slug_exists_or_not(client, method):
    saved = client.post(SAVE_URL, {"name": "x", "model": {"preset": "gpt2"}}, content_type="application/json")
    for slug in (saved.json()["slug"], "no-such-slug"):
        response = getattr(client, method)(f"{SAVE_URL}{slug}/", {"name": "y"}, content_type="application/json")
        assert response.status_code == 401, (slug, response.content)  # was 403 or 404


def test_negotiated_endpoints_answer_406_and_415_in_json_and_the_json_only_ones_ignore_the_headers(client):
    refused = client.get("/api/v1/presets/", HTTP_ACCEPT="text/html")
    assert refused.status_code == 406
    assert refused.json()["detail"]
    body = "name=x"
    unsupported = client.post(SAVE_URL, body, content_type="application/x-www-form-urlencoded")
    assert unsupported.status_code == 415
    assert unsupported.json()["detail"]
    estimate = client.post(
        "/api/v1/estimate/",
        json.dumps({"model": {"preset": "gpt2"}}),
        content_type="text/plain",
        HTTP_ACCEPT="text/html",
    )
    assert estimate.status_code == 200
    assert estimate["Content-Type"] == "application/json"


def test_the_schema_says_a_config_json_needs_its_model_type(schema):
    hf_config = schema["components"]["schemas"]["ModelChoice"]["properties"]["hf_config"]
    validator = Draft202012Validator(hf_config)
    assert not validator.is_valid({"hidden_size": 64})
    assert validator.is_valid({"model_type": "llama", "hidden_size": 64})
    assert validator.is_valid(None)  # not given


def test_the_schema_says_exactly_one_model_source(schema):
    validator = Draft202012Validator(component(schema, "ModelChoice"))
    assert validator.is_valid({"preset": "gpt2"})
    assert validator.is_valid({"preset": "gpt2", "custom": None})
    assert not validator.is_valid({})
    assert not validator.is_valid({"preset": "gpt2", "hf_config": {"model_type": "gpt2"}})


def test_a_config_json_keeps_transformers_leniency_for_integral_floats_only(client):
    def estimate(**config):
        body = {"model": {"hf_config": {"model_type": "gpt2", **config}}}
        return client.post("/api/v1/estimate/", body, content_type="application/json")

    assert estimate(n_embd=768.0).status_code == 200  # as README says: an integral float is that integer
    assert estimate(tie_word_embeddings=0).status_code == 400
    assert estimate(n_layer=True).status_code == 400
    assert estimate(n_layer="12").status_code == 400
