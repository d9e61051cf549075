"""Issue 7 in a real browser: 2026 configs pasted show results, an unknown type is marked approximate, a model
that cannot be read keeps the last good results and offers custom dimensions, the preset search."""

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db(transaction=True)
CATALOG = Path(__file__).resolve().parents[2] / "validation" / "configs" / "catalog"
PHONE = {"width": 390, "height": 844}


def settle(page):
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    page.wait_for_timeout(50)
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def paste(page, text):
    page.click("#config-field summary")
    page.fill("#hf_config", text)
    page.wait_for_timeout(400)
    settle(page)


@pytest.mark.parametrize(
    ("slug", "name"), [("gemma-3-4b", "Gemma 3"), ("qwen3-30b-a3b", "Qwen3"), ("gpt-oss-20b", "gpt")]
)
def test_pasting_a_2026_config_shows_its_results(page, slug, name):
    page.goto(page.base + "/")
    paste(page, (CATALOG / f"{slug}.json").read_text())
    page.wait_for_url(re.compile(r"hf_config="))
    assert name in page.locator("#verdict").inner_text()
    assert page.get_by_test_id("trainable").is_visible()
    assert not page.get_by_test_id("approximate").count()
    assert page.locator("#model-facts").inner_text().strip()  # what the model is made of


def test_an_unknown_type_shows_an_approximate_answer_clearly_marked(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    config = {
        "model_type": "brand_new",
        "hidden_size": 1024,
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "vocab_size": 32000,
        "intermediate_size": 2816,
        "rope_kind": 3,
    }
    paste(page, json.dumps(config))
    notice = page.get_by_test_id("approximate")
    assert notice.is_visible()
    assert "Approximate reading" in notice.inner_text()
    assert page.get_by_test_id("peak").inner_text().startswith("≈")
    assert page.get_by_test_id("approximate-flag").is_visible()


def test_a_model_that_cannot_be_read_keeps_the_last_results_and_offers_custom_dimensions(page):
    page.set_viewport_size(PHONE)
    page.goto(page.base + "/?preset=llama-3.1-8b")
    before = page.get_by_test_id("trainable").inner_text()
    broken = '{"model_type": "weird", "n_embd": 1024, "n_layer": 12, "num_experts": 4}'
    paste(page, broken)
    problem = page.locator("#model-problem")
    assert problem.is_visible()
    assert "This model cannot be read" in problem.inner_text()
    assert page.get_by_test_id("trainable").inner_text() == before  # the last good results stay
    assert page.evaluate("getComputedStyle(document.getElementById('results')).opacity") != "1"
    assert page.input_value("#hf_config") == broken or json.loads(page.input_value("#hf_config"))["n_layer"] == 12
    assert page.input_value("#hidden_size") == "1024"  # prefilled from its keys, not emptied
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.get_by_role("link", name="Use custom dimensions").click()
    page.wait_for_url(re.compile(r"hidden_size=1024"))
    assert page.input_value("#hidden_size") == "1024"
    assert page.is_editable("#hidden_size")
    assert page.input_value("#num_local_experts") == "4"


def test_the_model_problem_goes_away_when_the_model_reads_again(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    paste(page, '{"model_type": "llama", "hidden_size": 40')
    assert page.locator("#model-problem").is_visible()
    page.select_option("#preset", "qwen2.5-7b")
    page.wait_for_url(re.compile(r"preset=qwen2\.5-7b"))
    settle(page)
    assert "Qwen2.5-7B" in page.locator("#verdict").inner_text()
    assert not page.locator("#model-problem").inner_text().strip()
    page.wait_for_function("() => getComputedStyle(document.getElementById('results')).opacity === '1'")
    assert not page.locator("#hf_config").input_value()  # the preset replaced the text


def test_the_preset_search_narrows_the_list_and_enter_picks_the_first_match(page):
    page.goto(page.base + "/")
    page.fill("#preset-search", "gpt oss 20")
    visible = page.evaluate(
        "() => [...document.querySelectorAll('#preset option')].filter(o => !o.hidden && o.value).map(o => o.value)"
    )
    assert visible == ["gpt-oss-20b", "gpt-oss-120b"]  # words match anywhere: "20" is in "120" too
    assert "htmx-request" not in (page.get_attribute("#results", "class") or "")  # typing did not recompute
    page.press("#preset-search", "Enter")
    page.wait_for_url(re.compile(r"preset=gpt-oss-20b"))
    settle(page)
    assert "gpt-oss" in page.locator("#verdict").inner_text()


def test_the_presets_page_filters_as_you_type(page):
    page.goto(page.base + "/presets/")
    page.fill("#preset-filter", "gemma 3")
    shown = page.locator("#preset-table tbody tr:not([hidden])")
    assert shown.count() >= 3
    assert all("gemma" in shown.nth(i).inner_text().lower() for i in range(shown.count()))
    assert re.match(r"\d+ of \d+ shown", page.inner_text("#preset-count"))
