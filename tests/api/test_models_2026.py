"""Issue 7 in the API: the families of 2026 (exact and approximate readings), the 2026 catalog with both
counts, slugs with dots, and PEFT's trainable_token_indices / ensure_weight_tying. Counts are the core's
(tests/core); these check the wiring and the v1.1 names."""

import json
from pathlib import Path

import pytest

from calculator.api.openapi import EstimateResponse, PresetOut
from calculator.models import ModelPreset

pytestmark = pytest.mark.django_db
URL = "/api/v1/estimate/"
CATALOG = Path(__file__).resolve().parents[2] / "validation" / "configs" / "catalog"
PRESETS_2026 = json.loads((Path(__file__).resolve().parents[2] / "calculator/data/presets_2026.json").read_text())


def post(client, body):
    return client.post(URL, body, content_type="application/json")


@pytest.mark.parametrize(
    ("slug", "components"),
    [
        ("gemma-3-4b", {"language_model", "vision_tower", "projector"}),
        ("qwen3-30b-a3b", {"language_model", "lm_head"}),
        ("gpt-oss-20b", {"language_model", "lm_head"}),
        ("qwen2.5-vl-7b", {"language_model", "vision_tower", "lm_head"}),
    ],
)
def test_a_pasted_2026_config_is_exact_and_says_what_the_count_holds(client, slug, components):
    config = json.loads((CATALOG / f"{slug}.json").read_text())
    response = post(client, {"model": {"hf_config": config}, "lora": {"target_modules": "all-linear"}})
    assert response.status_code == 200, response.content[:300]
    model = response.json()["model"]
    EstimateResponse.model_validate(response.json())
    assert model["exact"] is True
    assert model["assumptions"] == []
    assert set(model["components"]) == components
    assert sum(model["components"].values()) == model["base_params"]
    expected = next(p["transformers_params"] for p in PRESETS_2026 if p["slug"] == slug)
    assert model["base_params"] == expected
    assert sum(g["layers"] for g in model["layers"] if g["stack"] == "text") == model["num_hidden_layers"]


def test_hybrid_layers_are_listed_by_kind(client):
    body = {"model": {"preset": "qwen3.5-35b-a3b"}, "lora": {"target_modules": ["q_proj", "v_proj"]}}
    model = post(client, body).json()["model"]
    kinds = {g["kind"]: g["layers"] for g in model["layers"]}
    assert kinds == {"linear_attention": 30, "full_attention": 10}
    assert model["num_local_experts"] == 256
    assert model["num_experts_per_tok"] == 8


def test_an_unknown_model_type_is_an_approximate_reading_marked_so(client):
    config = {
        "model_type": "my_new_llm",
        "hidden_size": 2048,
        "num_hidden_layers": 16,
        "num_attention_heads": 16,
        "vocab_size": 32000,
        "intermediate_size": 5632,
        "sliding_window_size": 4096,
    }
    response = post(client, {"model": {"hf_config": config}, "lora": {"target_modules": ["q_proj", "v_proj"]}})
    assert response.status_code == 200
    model = response.json()["model"]
    assert model["exact"] is False
    assert any("Llama-style" in a for a in model["assumptions"])
    assert any("sliding_window_size" in a for a in model["assumptions"])  # the keys it did not read are named


def test_an_unknown_type_without_the_usual_keys_is_a_400_listing_the_supported_ones(client):
    response = post(client, {"model": {"hf_config": {"model_type": "nope", "width": 3}}})
    assert response.status_code == 400
    message = " ".join(response.json()["model"]["hf_config"]["model_type"])
    assert "qwen3_moe" in message
    assert "gpt_oss" in message


def test_the_catalog_has_every_2026_preset_with_both_counts(client):
    presets = {p["slug"]: p for p in client.get("/api/v1/presets/").json()}
    for item in PRESETS_2026:
        preset = presets[item["slug"]]
        PresetOut.model_validate(preset)
        assert preset["base_params"] == item["transformers_params"]  # what the calculator counts
    gemma = presets["gemma-3-4b"]
    assert gemma["published_params"] == 4_000_000_000
    assert gemma["published_params_exact"] is False
    assert gemma["base_params"] == 4_300_079_472
    assert "rounded" in gemma["params_note"]
    assert presets["llama-3.1-8b"]["params_note"] == ""  # the 2024 starters are kept as they were


@pytest.mark.parametrize("slug", ["llama-3.1-8b", "qwen3.5-9b", "qwen2.5-vl-7b", "gpt2"])
def test_preset_slugs_with_dots_work_in_the_api(client, slug):
    response = client.get(f"/api/v1/presets/{slug}/")
    assert response.status_code == 200
    assert response.json()["slug"] == slug
    body = {"model": {"preset": slug}, "lora": {"target_modules": ["q_proj", "v_proj"] if slug != "gpt2" else None}}
    assert post(client, body).status_code == 200


def test_the_schema_documents_the_dotted_slug_pattern(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    (parameter,) = schema["paths"]["/api/v1/presets/{slug}/"]["get"]["parameters"]
    import re

    assert re.fullmatch(parameter["schema"]["pattern"].strip("^$"), "llama-3.1-8b")
    assert not re.fullmatch(parameter["schema"]["pattern"].strip("^$"), "Llama 3.1")


def test_a_malformed_preset_slug_is_a_400_on_model(client):
    response = post(client, {"model": {"preset": "../etc"}})
    assert response.status_code == 400
    assert "preset" in response.json()["model"]


def test_trainable_token_indices_and_ensure_weight_tying(client):
    base = {"model": {"preset": "qwen3-0.6b"}, "lora": {"target_modules": ["q_proj", "v_proj"]}}
    plain = post(client, base).json()["lora"]["trainable_params"]
    tokens = post(client, {**base, "lora": {**base["lora"], "trainable_token_indices": [151643, 151644]}}).json()
    assert tokens["lora"]["trainable_params"] == plain + 2 * 1024  # two embedding rows of width 1,024
    per_layer = {**base["lora"], "trainable_token_indices": {"embed_tokens": [5, 6, 7]}}
    assert post(client, {**base, "lora": per_layer}).json()["lora"]["trainable_params"] == plain + 3 * 1024
    saved = {**base["lora"], "modules_to_save": ["embed_tokens", "lm_head"]}
    untied = post(client, {**base, "lora": saved}).json()["lora"]["trainable_params"]
    tied = post(client, {**base, "lora": {**saved, "ensure_weight_tying": True}}).json()["lora"]["trainable_params"]
    assert tied < untied  # the tied copies are one tensor


@pytest.mark.parametrize(
    "value", [[-1], [5_000_000], {"": [1]}, {"embed_tokens": ["x"]}, "3", list(range(2000)), {"nope_layer": [1]}]
)
def test_bad_trainable_token_indices_are_a_400_naming_the_field(client, value):
    response = post(client, {"model": {"preset": "gpt2"}, "lora": {"trainable_token_indices": value}})
    assert response.status_code == 400
    assert "trainable_token_indices" in response.json()["lora"]


def test_the_admin_saves_a_preset_whose_slug_has_dots(admin_client):
    config = json.loads((CATALOG / "qwen3-0.6b.json").read_text())
    data = {
        "name": "Qwen3 0.6B copy",
        "slug": "qwen3-0.6b-copy.v2",
        "family": "Qwen3",
        "config": json.dumps(config),
        "published_params": "751632384",
        "published_params_exact": "on",
        "transformers_params": "596049920",
        "params_note": "tied head",
        "source_url": "",
        "hf_repo": "Qwen/Qwen3-0.6B",
        "notes": "",
        "is_published": "on",
        "order": "0",
    }
    response = admin_client.post("/admin/calculator/modelpreset/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ModelPreset.objects.get(slug="qwen3-0.6b-copy.v2").transformers_params == 596_049_920
    bad = admin_client.post("/admin/calculator/modelpreset/add/", {**data, "slug": "Has Spaces"})
    assert bad.status_code == 200
    assert "Lower-case letters and digits" in bad.content.decode()
