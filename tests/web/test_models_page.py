"""Issue 7 on the pages: 2026 configs pasted, an approximate reading marked on the calculator, the permalink
and compare, a model that cannot be read keeping the last good results with custom dimensions offered, both
preset counts with the reason, layer kinds, the 2026 LoRA inputs, and the filterable catalog."""

import html
import json
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest

from calculator.schemas import SaveRequest
from calculator.services import save_configuration

HX = {"HTTP_HX_REQUEST": "true"}
CATALOG = Path(__file__).resolve().parents[2] / "validation" / "configs" / "catalog"
UNKNOWN = {
    "model_type": "my_new_llm",
    "hidden_size": 2048,
    "num_hidden_layers": 16,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
    "intermediate_size": 5632,
    "sliding_window_size": 4096,
}
pytestmark = pytest.mark.django_db


def text(response):
    return response.content.decode()


def pasted(config, **more):
    return "/?" + urlencode({"hf_config": json.dumps(config), **more})


@pytest.mark.parametrize("slug", ["gemma-3-4b", "qwen3-30b-a3b", "gpt-oss-20b"])
def test_pasting_a_2026_config_shows_results(client, slug):
    config = json.loads((CATALOG / f"{slug}.json").read_text())
    for headers in ({}, HX):  # a submitted form (src: the fields were custom) lands on the canonical URL
        response = client.get(pasted(config, src="custom"), follow=not headers, **headers)
        assert response.status_code == 200, text(response)[:2000]
        assert 'data-testid="trainable"' in text(response)
        assert 'data-testid="approximate"' not in text(response)


def test_an_unknown_type_is_marked_approximate_with_its_assumptions(client):
    body = text(client.get(pasted(UNKNOWN)))
    assert 'data-testid="approximate"' in body
    assert "Llama-style" in body
    assert "sliding_window_size" in body
    assert re.search(r'data-testid="peak">≈', body)
    assert 'data-testid="approximate-flag"' in body  # and in the Model group
    offer = re.search(r'href="(/\?[^"]*)">Edit it as custom dimensions', body)
    assert offer
    assert "hidden_size=2048" in html.unescape(offer[1])
    assert "hf_config" not in offer[1]


def test_an_approximate_configuration_is_marked_on_its_permalink_and_in_compare(client):
    request = {"model": {"hf_config": UNKNOWN}, "lora": {"target_modules": ["q_proj", "v_proj"]}}
    odd = save_configuration(request=SaveRequest.model_validate({**request, "name": "odd"}), owner=None)
    plain = save_configuration(
        request=SaveRequest.model_validate({"model": {"preset": "llama-3.1-8b"}, "name": "plain"}), owner=None
    )
    assert 'data-testid="approximate"' in text(client.get(f"/c/{odd.slug}/"))
    assert 'data-testid="approximate"' not in text(client.get(f"/c/{plain.slug}/"))
    compare = text(client.get(f"/compare/?c={odd.slug}&c={plain.slug}"))
    assert 'data-testid="approximate"' in compare
    assert "odd: approximate reading" in compare
    assert "approximate reading" in compare.split('class="comparison"')[1]  # the Model row says so too


def test_a_model_that_cannot_be_read_keeps_the_last_results_and_offers_custom_dimensions(client):
    weird = {"model_type": "weird", "n_embd": 1024, "n_layer": 12, "num_experts": 4}
    response = client.get(pasted(weird, preset="llama-3.1-8b", src="preset:llama-3.1-8b", r="8"), **HX)
    assert response.status_code == 400
    assert response["HX-Reswap"] == "none"  # the results already on the page stay
    body = text(response)
    assert 'id="results"' not in body
    assert 'data-testid="trainable"' not in body
    problem = body.split('id="model-problem"')[1]
    assert "This model cannot be read" in problem
    assert "last model that worked" in problem
    offer = re.search(r'href="(/\?[^"]*)">Use custom dimensions', problem)
    assert offer
    query = html.unescape(offer[1])
    assert "hidden_size=1024" in query
    assert "num_hidden_layers=12" in query
    assert "num_local_experts=4" in query
    # the dimension fields show the keys it has (not emptied), read-only
    dims = body.split('id="dims"')[1]
    assert re.search(r'id="hidden_size" name="hidden_size" value="1024" disabled', dims)


def test_a_model_that_cannot_be_read_on_a_full_page_keeps_the_pasted_text(client):
    raw = '{"model_type": "llama", "hidden_size": 40'
    response = client.get("/?" + urlencode({"hf_config": raw}))
    assert response.status_code == 400
    body = text(response)
    assert html.escape(raw) in body or raw.replace('"', "&quot;") in body
    assert "This model cannot be read" in body
    assert "Not valid JSON" in body


def test_an_error_elsewhere_still_replaces_the_results_with_the_error_list(client):
    response = client.get("/?preset=llama-3.1-8b&r=abc", **HX)
    assert response.status_code == 400
    assert "HX-Reswap" not in response
    assert "Some inputs need fixing" in text(response)


def test_a_later_good_answer_clears_the_model_problem(client):
    body = text(client.get("/?preset=llama-3.1-8b&r=16", **HX))
    assert re.search(r'<div id="model-problem" class="model-problem" hx-swap-oob="true"></div>', body)


def test_both_preset_counts_with_the_reason_and_the_layer_kinds(client):
    body = text(client.get("/?preset=gemma-3-4b"))
    counts = body.split('data-testid="preset-counts"')[1].split("</p>")[0]
    assert "≈4.00 B" in counts
    assert "4,300,079,472" in counts
    assert "rounded" in counts
    assert "Why two counts?" in counts
    kinds = text(client.get("/?preset=qwen3.5-35b-a3b")).split('data-testid="layer-kinds"')[1].split("</ul>")[0]
    assert "30 \u00d7 linear attention (Gated DeltaNet)" in kinds
    assert "10 \u00d7 full attention" in kinds
    moe = text(client.get("/?preset=qwen3-30b-a3b"))
    assert "128 experts, 8 active per token" in moe
    assert "as published and as transformers builds it" in text(client.get("/?preset=llama-3.1-8b"))


def test_the_preset_picker_is_grouped_by_family_and_searchable(client):
    body = text(client.get("/"))
    assert 'id="preset-search"' in body
    assert re.search(r'<optgroup label="Qwen3.5">.*?value="qwen3.5-35b-a3b"', body, re.S)
    assert re.search(r'<optgroup label="gpt-oss">.*?value="gpt-oss-20b"', body, re.S)


def test_trainable_token_indices_and_ensure_weight_tying_on_the_page(client):
    base = "/?preset=qwen3-0.6b&target_modules=q_proj&target_modules=v_proj"
    plain = re.search(r'data-testid="trainable">([\d,]+)', text(client.get(base)))[1]
    tokens = re.search(
        r'data-testid="trainable">([\d,]+)', text(client.get(base + "&trainable_token_indices=151643-151644"))
    )[1]
    assert int(tokens.replace(",", "")) == int(plain.replace(",", "")) + 2 * 1024
    body = text(client.get(base + "&trainable_token_indices=151643-151644&ensure_weight_tying=true"))
    assert re.search(r'id="trainable_token_indices" name="trainable_token_indices" value="151643-151644"', body)
    assert re.search(r'id="ensure_weight_tying" name="ensure_weight_tying" value="true" checked', body)
    bad = client.get(base + "&trainable_token_indices=x1", **HX)
    assert bad.status_code == 400
    assert "token ids like" in text(bad)


def test_the_presets_page_filters_by_words_and_family_and_shows_both_counts(client):
    every = text(client.get("/presets/"))
    assert "60 of 60 shown" in every or re.search(r"(\d+) of \1 shown", every)
    moe = text(client.get("/presets/?q=qwen+moe"))
    assert "Qwen3-30B-A3B" in moe
    assert "Llama-3.1-8B" not in moe
    gemma = text(client.get("/presets/?family=Gemma+3"))
    assert "Gemma 3 4B" in gemma
    assert "Gemma 2 9B" not in gemma
    assert "why two counts" in gemma
    assert "published ≈4.00 B" in gemma
    assert "No preset matches" in text(client.get("/presets/?q=zzzz"))
    assert 'href="/?preset=llama-3.1-8b"' in every  # dotted slugs link as they are
