"""The pages' wiring: full page vs htmx fragment, the URL as the state, errors, saving, permalinks."""

import re
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import DatabaseError

from calculator.models import SavedConfiguration
from calculator.schemas import EstimateRequest
from calculator.services import compute_estimate

HX = {"HTTP_HX_REQUEST": "true"}
API_LIKE = "/?preset=llama-3.1-8b&r=16&target_modules=q_proj&target_modules=v_proj"


def text(response):
    return response.content.decode()


def test_the_calculator_renders_the_full_page(client):
    response = client.get("/")
    body = text(response)
    assert response.status_code == 200
    assert "<html" in body
    assert 'id="calc"' in body
    assert 'id="results"' in body
    assert 'name="csrfmiddlewaretoken"' in body  # the Save & share form
    assert "htmx-2.0.10.min.js" in body
    assert "unpkg" not in body
    assert not re.search(r'(?:src|href)="[^"]*(?:cdn|unpkg|jsdelivr)', body, re.IGNORECASE)  # all assets local
    assert 'value="llama-3.1-8b" selected' in body
    assert response["Vary"].count("HX-Request") == 1


def test_an_htmx_request_gets_only_the_results_fragment_and_the_canonical_url(client):
    response = client.get(API_LIKE + "&src=preset%3Allama-3.1-8b&lora_alpha=8", **HX)
    body = text(response)
    assert response.status_code == 200
    assert "<html" not in body
    assert 'id="calc"' not in body
    assert "csrfmiddlewaretoken" not in body
    assert 'data-testid="trainable"' in body
    push = response["HX-Push-Url"]
    assert push == "/?preset=llama-3.1-8b&target_modules=q_proj&target_modules=v_proj&r=16"
    assert "HX-Request" in response["Vary"]


def test_an_api_shaped_url_opens_that_exact_state_with_the_apis_numbers(client):
    body = text(client.get(API_LIKE))
    expected = compute_estimate(
        request=EstimateRequest.model_validate(
            {"model": {"preset": "llama-3.1-8b"}, "lora": {"r": 16, "target_modules": ["q_proj", "v_proj"]}}
        )
    )
    assert f"{expected.count.trainable_params:,}" in body
    assert re.search(r'id="r" name="r" value="16"', body)
    assert re.search(r'value="q_proj" checked', body)
    assert re.search(r'value="v_proj" checked', body)
    assert not re.search(r'value="k_proj" checked', body)


def test_a_form_submitted_without_javascript_lands_on_the_clean_url(client):
    query = (
        "preset=llama-3.1-8b&src=preset%3Allama-3.1-8b&hidden_size=4096&r=32&lora_alpha=8"
        "&names=q_proj+k_proj&target_modules=q_proj&target_modules=v_proj&double_quant=false&double_quant=true"
    )
    response = client.get("/?" + query)
    assert response.status_code == 302
    assert response["Location"] == "/?preset=llama-3.1-8b&target_modules=q_proj&target_modules=v_proj&r=32"
    assert client.get(response["Location"]).status_code == 200


def test_quick_picks_work_without_javascript(client):
    response = client.get("/?preset=llama-3.1-8b&src=preset%3Allama-3.1-8b&pick=all&set=r%3D64")
    location = parse_qs(urlsplit(response["Location"]).query)
    assert location["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert location["r"] == ["64"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("r=0", "r", "greater than or equal to 1"),
        ("r=abc", "r", "whole number"),
        ("batch_size=four", "batch_size", "whole number"),
        ("layers_to_transform=40-45", "layers_to_transform", "has 32 layers"),
        ("lora_dropout=1.5", "lora_dropout", "less than 1"),
        ("seq_len=99999999999", "seq_len", "less than or equal"),
        ("base_dtype=int3", "base_dtype", "fp32"),
        ("hidden_size=4095", "num_attention_heads", "divisible"),
        ("layers_to_transform=a-b", "layers_to_transform", "layer indexes"),
        ("target_modules=nope", "target_modules", "not found"),
        ("gpu=Voodoo", "gpu", "Unknown GPU"),
        ("adapters=0", "adapters", "greater than or equal to 1"),
        ("adapters=10001", "adapters", "less than or equal to 10000"),
    ],
)
def test_bad_input_shows_the_fields_error_never_a_500(client, query, field, message):
    page = client.get("/?preset=llama-3.1-8b&" + query)
    assert page.status_code == 400
    error = re.search(rf'<p class="err" id="e-{field}"[^>]*>([^<]*)</p>', text(page))
    assert error
    assert message in error[1]
    fragment = client.get("/?preset=llama-3.1-8b&" + query, **HX)
    assert fragment.status_code == 400
    assert re.search(rf'id="e-{field}" hx-swap-oob="true">[^<]*{re.escape(message)}', text(fragment))
    assert "HX-Push-Url" not in fragment


def test_an_unknown_preset_is_an_error_on_the_preset_field(client):
    response = client.get("/?preset=llama-99b")
    assert response.status_code == 400
    assert "Unknown preset" in re.search(r'id="e-preset"[^>]*>([^<]*)<', text(response))[1]


def test_picking_another_preset_refills_the_model_fields_out_of_band(client):
    stale = "preset=qwen2.5-7b&src=preset%3Allama-3.1-8b&hidden_size=4096&num_hidden_layers=32"
    names = "&names=q_proj+k_proj+v_proj+o_proj+gate_proj+up_proj+down_proj&target_modules=q_proj"
    body = text(client.get("/?" + stale + names, **HX))
    assert '<div id="dims" class="dims" hx-swap-oob="true">' in body
    assert 'name="hidden_size" value="3584"' in body  # Qwen2.5-7B's, not the stale 4096
    assert "Qwen2.5-7B" in body
    assert "(edited)" not in body


def test_editing_a_preset_dimension_overrides_it(client):
    response = client.get("/?preset=llama-3.1-8b&num_hidden_layers=16", **HX)
    assert "Llama-3.1-8B (edited)" in text(response)
    assert response["HX-Push-Url"] == "/?preset=llama-3.1-8b&num_hidden_layers=16"
    body = text(response)
    for part in ('id="dims"', 'id="targets"', 'id="preset-field"', 'id="config-field"'):
        assert part not in body  # nothing under the user's cursor is replaced


def test_switching_to_gpt2_carries_the_module_choice_over(client):
    query = "preset=gpt2&src=preset%3Allama-3.1-8b&names=q_proj+k_proj&target_modules=q_proj&target_modules=v_proj"
    response = client.get("/?" + query, **HX)
    body = text(response)
    assert 'id="targets"' in body
    assert 'value="c_attn" checked' in body
    assert response["HX-Push-Url"] == "/?preset=gpt2&target_modules=c_attn"


GPT2 = (
    '{"model_type":"gpt2","n_embd":768,"n_head":12,"n_layer":12,"n_positions":1024,"vocab_size":50257,'
    '"torch_dtype":"float32","architectures":["GPT2LMHeadModel"]}'
)


def test_a_pasted_config_json_computes_and_keeps_only_the_keys_that_matter(client):
    response = client.get("/", {"preset": "llama-3.1-8b", "src": "preset:llama-3.1-8b", "hf_config": GPT2}, **HX)
    body = text(response)
    assert response.status_code == 200
    assert "124,439,808" in body  # GPT-2's exact parameter count
    push = parse_qs(urlsplit(response["HX-Push-Url"]).query)
    assert "torch_dtype" not in push["hf_config"][0]
    assert '"n_embd":768' in push["hf_config"][0]
    assert 'id="preset-field" hx-swap-oob="true"' in body  # the select no longer shows Llama
    assert 'name="hidden_size" value="768"' in body


def test_choosing_a_preset_after_a_pasted_config_clears_it(client):
    first = client.get("/", {"hf_config": GPT2}, **HX)
    src = re.search(r'name="src" value="([^"]+)"', text(client.get(first["HX-Push-Url"])))[1]
    response = client.get("/", {"hf_config": GPT2, "src": src, "preset": "llama-3.2-1b"}, **HX)
    assert response["HX-Push-Url"].startswith("/?preset=llama-3.2-1b")
    assert '<textarea id="hf_config" name="hf_config"' in text(response)


@pytest.mark.parametrize(
    ("config", "message"),
    [("{not json", "Not valid JSON"), ("[1, 2]", "JSON object"), ('{"model_type": "bert"}', "Unsupported model_type")],
)
def test_a_bad_config_json_is_an_error_on_that_field(client, config, message):
    response = client.get("/", {"hf_config": config})
    assert response.status_code == 400
    assert message in re.search(r'id="e-hf_config"[^>]*>([^<]*)<', text(response))[1]


def test_custom_dimensions_without_a_preset(client):
    query = "hidden_size=1024&intermediate_size=4096&num_hidden_layers=8&num_attention_heads=16&vocab_size=32000"
    response = client.get("/?" + query, **HX)
    assert response.status_code == 200
    assert "Custom model" in text(response)
    assert response["HX-Push-Url"] == "/?" + query


def test_a_history_restore_gets_the_full_page(client):
    response = client.get(API_LIKE, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in text(response)


def test_recomputes_are_served_from_the_per_process_cache(client):
    first = client.get(API_LIKE, **HX)
    with mock.patch("calculator.web.calculator.compute", side_effect=AssertionError("not cached")):
        second = client.get(API_LIKE, **HX)
    assert first.content == second.content


def test_advice_links_apply_a_change(client):
    body = text(client.get("/?preset=llama-3.1-8b&target_modules=all-linear&r=16&base_dtype=nf4&seq_len=4096"))
    assert "Turn on gradient checkpointing" in body
    link = re.search(r'<a href="(/\?[^"]*gradient_checkpointing=true[^"]*)">apply</a>', body)
    assert link
    assert "seq_len=4096" in link[1]
    assert "base_dtype=nf4" in link[1]


def test_presets_page_lists_the_catalog_with_calculator_links(client):
    body = text(client.get("/presets/"))
    assert "Llama-3.1-8B" in body
    assert "GPT-2" in body
    assert 'href="/?preset=llama-3.1-8b"' in body
    assert 'href="/?preset=phi-3-mini&amp;target_modules=qkv_proj"' in body  # PEFT has no default for phi3
    for href in re.findall(r'href="(/\?preset=[^"]+)"', body):
        assert client.get(href.replace("&amp;", "&")).status_code == 200, href


def test_learn_page_puts_the_current_numbers_in_the_formulas(client):
    body = text(client.get("/learn/?preset=llama-3.1-8b&r=16&lora_alpha=32"))
    assert "16 · (4,096 + 4,096)" in body  # q_proj
    assert "4,096 → 8 \u00d7 128 = 1,024" in body  # GQA k/v
    assert "32 / 16 = <b>2</b>" in body


def test_the_quiz_is_checked_on_the_server(client):
    answers = {"q1": "b", "q2": "a", "q3": "a"}
    fragment = client.post("/learn/quiz/", answers, **HX)
    assert "<html" not in text(fragment)
    assert "2 of 6 right" in text(fragment)
    page = client.post("/learn/quiz/", {**answers, "state": "preset=gpt2"})
    assert "<html" in text(page)
    assert "2 of 6 right" in text(page)


def test_save_and_share_creates_a_permalink(client):
    response = client.post("/save/", {"state": "preset=llama-3.1-8b&r=32", "name": "8B r=32", "note": "for the doc"})
    configuration = SavedConfiguration.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/c/{configuration.slug}/"
    assert configuration.inputs["lora"]["r"] == 32
    page = text(client.get(response["Location"]))
    assert "<h1>8B r=32</h1>" in page
    assert "for the doc" in page
    assert 'property="og:title" content="8B r=32"' in page
    assert f'href="/api/v1/configurations/{configuration.slug}/" download=' in page
    assert 'href="/?preset=llama-3.1-8b&amp;r=32">Open in the calculator' in page
    assert 'data-testid="trainable"' in page


def test_saving_needs_valid_inputs_and_a_name(client):
    assert client.post("/save/", {"state": "preset=llama-3.1-8b&r=0", "name": "x"}).status_code == 400
    response = client.post("/save/", {"state": "preset=llama-3.1-8b", "name": ""})
    assert response.status_code == 400
    assert "name" in text(response)
    assert client.post("/save/", {"name": "no state"}).status_code == 400
    assert not SavedConfiguration.objects.exists()


def test_saving_while_the_database_is_down_says_so_and_still_computes(client):
    with mock.patch("calculator.services.save_configuration", side_effect=DatabaseError("down")):
        response = client.post("/save/", {"state": "preset=llama-3.1-8b&r=32", "name": "x"})
    assert response.status_code == 503
    assert "database cannot be reached" in text(response)
    assert 'data-testid="trainable"' in text(response)


def test_saving_requires_csrf(client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/save/", {"state": "preset=gpt2", "name": "x"}).status_code == 403
    page = text(strict.get("/?preset=gpt2"))  # the page is cached per state; its token is per visitor
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    assert "placeholder" not in token
    response = strict.post("/save/", {"state": "preset=gpt2", "name": "x", "csrfmiddlewaretoken": token})
    assert response.status_code == 302


def test_an_unknown_permalink_is_a_404(client):
    assert client.get("/c/doesnotexist/").status_code == 404


def test_every_wrong_field_is_reported_at_once(client):
    response = client.get("/?preset=llama-3.1-8b&r=0&seq_len=abc&base_dtype=int3")
    body = text(response)
    for field in ("r", "seq_len", "base_dtype"):
        assert re.search(rf'id="e-{field}"[^>]*>[^<]+<', body), field


def test_a_permalink_says_so_when_the_database_is_down(client):
    with mock.patch("calculator.views.SavedConfiguration.objects.get", side_effect=DatabaseError("down")):
        response = client.get("/c/abcdefghij/")
    assert response.status_code == 503
    assert "calculator still works" in text(response)


def test_anonymous_saves_are_rate_limited(client):
    with mock.patch("calculator.views.AnonSaveThrottle.allow_request", return_value=False):
        response = client.post("/save/", {"state": "preset=gpt2", "name": "x"})
    assert response.status_code == 429
    assert "Too many saves" in text(response)
    assert not SavedConfiguration.objects.exists()


def test_accuracy_page_renders_docs_accuracy(client):
    response = client.get("/learn/accuracy/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<table>" in html
    assert "How far to trust each number" in html


def test_learn_page_links_the_accuracy_page(client):
    assert 'href="/learn/accuracy/"' in client.get("/learn/").content.decode()


def test_kbit_preparation_is_on_the_form_and_in_the_url(client):
    url = "/?preset=llama-3.1-8b&base_dtype=nf4&prepare_model_for_kbit_training=true"
    html = client.get(url).content.decode()
    assert 'id="prepare_model_for_kbit_training" name="prepare_model_for_kbit_training" value="true" checked' in html
    plain = client.get("/?preset=llama-3.1-8b&base_dtype=nf4", HTTP_HX_REQUEST="true")
    prepared = client.get(url, HTTP_HX_REQUEST="true")
    assert prepared.content != plain.content
    assert "prepare_model_for_kbit_training=true" in prepared["HX-Push-Url"]


def test_htmx_fragment_is_gzipped_for_browsers_that_accept_it(client):
    import gzip

    url = "/?preset=llama-3.1-8b&r=32"
    plain = client.get(url, HTTP_HX_REQUEST="true")
    packed = client.get(url, HTTP_HX_REQUEST="true", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert packed["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.content) == plain.content
    assert len(packed.content) < len(plain.content) / 3
    assert "Accept-Encoding" in packed["Vary"]
    assert packed["HX-Push-Url"] == plain["HX-Push-Url"]


def test_a_model_without_peft_default_targets_opens_with_the_q_v_modules(client):
    """PEFT has no default targets for phi3, and Mixtral's convert to nothing: not an error to start from."""
    for preset, expected in (
        ("mixtral-8x7b", "target_modules=q_proj&target_modules=v_proj"),
        ("phi-3-mini", "target_modules=qkv_proj"),
    ):
        response = client.get(f"/?preset={preset}", **HX)
        assert response.status_code == 200, text(response)[:300]
        assert response["HX-Push-Url"] == f"/?preset={preset}&{expected}"


def test_a_permalink_of_a_configuration_with_thousands_of_module_names_renders(client, django_user_model):
    """One URL field per module name: a 1,024-layer configuration with named targets has over 2,000, more than
    Django parses from a request, so the permalink computes from the saved state directly and offers no
    calculator link that the server would refuse."""
    client.force_login(django_user_model.objects.create_user("deep", password="a-long-enough-password-1"))
    body = {
        "name": "deep",
        "model": {"custom": {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 1024,
                             "num_attention_heads": 4, "vocab_size": 1000}},
        "lora": {"target_modules": [f"layers.{i}.self_attn.q_proj" for i in range(1024)],
                 "exclude_modules": [f"layers.{i}.self_attn.q_proj" for i in range(0, 1024, 2)]},
    }  # fmt: skip
    saved = client.post("/api/v1/configurations/", body, content_type="application/json")
    assert saved.status_code == 201, saved.content[:300]
    page = client.get(f"/c/{saved.json()['slug']}/")
    assert page.status_code == 200
    body_text = text(page)
    assert 'data-testid="trainable">' in body_text
    assert 'data-testid="too-large-to-open"' in body_text
    assert "Open in the calculator" not in body_text


def test_a_permalink_counts_the_saved_settings_the_page_has_no_inputs_for(client):
    """Rank patterns and excludes are API-only: the permalink's numbers are the API's, and it says that opening
    the configuration in the calculator leaves them out."""
    body = {
        "name": "patterns",
        "model": {"preset": "llama-3.1-8b"},
        "lora": {"r": 16, "target_modules": "all-linear", "exclude_modules": ["down_proj"],
                 "rank_pattern": {"q_proj": 4}},
    }  # fmt: skip
    saved = client.post("/api/v1/configurations/", body, content_type="application/json")
    assert saved.status_code == 201, saved.content[:300]
    trainable = saved.json()["estimate"]["lora"]["trainable_params"]
    page = text(client.get(f"/c/{saved.json()['slug']}/"))
    assert re.search(r'data-testid="trainable">([\d,]+)', page)[1] == f"{trainable:,}"
    drops = page.split('data-testid="page-drops">')[1].split("</p>")[0]
    assert "rank_pattern" in drops
    assert "exclude_modules" in drops
