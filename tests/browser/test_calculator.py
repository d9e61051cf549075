"""The calculator in a real browser: live recompute, the URL as the state, back/forward, errors, no-JS."""

import json
import re

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def trainable(page):
    return page.get_by_test_id("trainable").inner_text()


def settle(page):
    """Wait for htmx to finish the debounced request and its swap."""
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    page.wait_for_timeout(50)
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def mark_document(page):
    page.evaluate("() => { window.__no_reload = 1 }")


def still_same_document(page):
    return page.evaluate("() => window.__no_reload === 1")


def test_pick_a_preset_then_change_the_rank_recomputes_without_a_reload(page):
    page.goto(page.base + "/")
    mark_document(page)
    page.select_option("#preset", "qwen2.5-7b")
    page.wait_for_url(re.compile(r"preset=qwen2\.5-7b"))
    settle(page)
    # The architecture fields were refilled from the preset and stay editable.
    assert page.input_value("#hidden_size") == "3584"
    assert page.is_editable("#hidden_size")
    before = trainable(page)
    page.fill("#r", "64")
    page.wait_for_url(re.compile(r"r=64"))
    settle(page)
    assert trainable(page) != before
    assert still_same_document(page)
    assert "Qwen2.5-7B" in page.locator("#verdict").inner_text()


def test_rank_chip_and_quick_pick_update_the_numbers_and_the_url(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    mark_document(page)
    before = trainable(page)
    page.get_by_role("button", name="32", exact=True).click()
    page.wait_for_url(re.compile(r"r=32"))
    settle(page)
    after_rank = trainable(page)
    assert after_rank != before
    page.get_by_role("button", name="all linear").click()
    page.wait_for_url(re.compile(r"target_modules=down_proj"))
    settle(page)
    assert trainable(page) != after_rank
    assert page.locator('input[name="target_modules"]:checked').count() == 7
    assert still_same_document(page)


def test_back_and_forward_restore_the_state(page):
    page.goto(page.base + "/?preset=llama-3.1-8b&r=8")
    r8 = trainable(page)
    page.fill("#r", "16")
    page.wait_for_url(re.compile(r"r=16"))
    settle(page)
    r16 = trainable(page)
    assert r16 != r8
    page.go_back()
    page.wait_for_url(re.compile(r"r=8$|r=8&"))
    page.wait_for_function("() => document.querySelector('#r').value === '8'")
    assert trainable(page) == r8
    page.go_forward()
    page.wait_for_url(re.compile(r"r=16"))
    page.wait_for_function("() => document.querySelector('#r').value === '16'")
    assert trainable(page) == r16
    page.reload()
    assert page.input_value("#r") == "16"
    assert trainable(page) == r16
    assert trainable(page) == r16


def test_a_pasted_url_reopens_the_exact_state(page):
    url = "/?preset=llama-3.1-8b&r=16&target_modules=q_proj&target_modules=v_proj&base_dtype=nf4&seq_len=4096"
    page.goto(page.base + url)
    assert page.input_value("#r") == "16"
    assert page.input_value("#base_dtype") == "nf4"
    assert page.input_value("#seq_len") == "4096"
    checked = page.locator('input[name="target_modules"]:checked')
    assert sorted(checked.evaluate_all("els => els.map(e => e.value)")) == ["q_proj", "v_proj"]
    page.reload()
    assert page.input_value("#r") == "16"


GPT2_CONFIG = {
    "_name_or_path": "gpt2",
    "architectures": ["GPT2LMHeadModel"],
    "model_type": "gpt2",
    "n_ctx": 1024,
    "n_embd": 768,
    "n_head": 12,
    "n_layer": 12,
    "n_positions": 1024,
    "vocab_size": 50257,
    "torch_dtype": "float32",
}


def test_pasting_a_config_json_fills_the_model_fields(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    mark_document(page)
    page.click("text=Paste a config.json")
    page.fill("#hf_config", json.dumps(GPT2_CONFIG, indent=2))
    page.wait_for_url(re.compile(r"hf_config="))
    settle(page)
    assert page.input_value("#hidden_size") == "768"
    assert page.input_value("#num_hidden_layers") == "12"
    assert page.input_value("#preset") == ""
    names = page.locator('input[name="target_modules"]').evaluate_all("els => els.map(e => e.value)")
    assert names == ["c_attn", "c_proj", "c_fc"]
    assert "124,439,808" in page.locator(".cards").first.inner_text()  # GPT-2's exact base parameter count
    assert still_same_document(page)
    # The URL alone reopens it.
    page.goto(page.url)
    assert page.input_value("#hidden_size") == "768"


def test_a_bad_value_shows_the_fields_error_and_recovers(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    page.fill("#r", "0")
    page.wait_for_selector("#e-r:not(:empty)")
    assert "greater than or equal to 1" in page.inner_text("#e-r")
    assert "Some inputs need fixing" in page.inner_text("#results")
    page.fill("#r", "8")
    page.wait_for_selector("[data-testid=trainable]")
    settle(page)
    assert page.inner_text("#e-r") == ""


def test_without_javascript_the_form_submits_and_the_full_page_renders(nojs_page):
    page = nojs_page
    page.goto(page.base + "/?preset=llama-3.1-8b&r=8")
    r8 = trainable(page)
    page.fill("#r", "64")
    page.get_by_role("button", name="Update results").click()
    page.wait_for_url(re.compile(r"r=64"))
    assert "src=" not in page.url  # redirected to the clean, shareable URL
    assert page.input_value("#r") == "64"
    assert trainable(page) != r8
    page.select_option("#preset", "gpt2")
    page.get_by_role("button", name="Update results").click()
    page.wait_for_url(re.compile(r"preset=gpt2"))
    assert page.input_value("#hidden_size") == "768"
    page.fill("#r", "-3")
    page.get_by_role("button", name="Update results").click()
    page.wait_for_selector("#e-r:not(:empty)")


def test_does_llama_8b_qlora_all_linear_seq_4096_fit_on_a_24_gb_card(page):
    page.goto(page.base + "/")
    page.get_by_role("button", name="16", exact=True).click()
    page.get_by_role("button", name="all linear").click()
    page.select_option("#base_dtype", "nf4")
    page.fill("#seq_len", "4096")
    page.wait_for_url(re.compile(r"seq_len=4096"))
    settle(page)
    url = page.url
    assert "r=16" in url
    assert "base_dtype=nf4" in url
    assert "target_modules=down_proj" in url
    verdict = page.inner_text("#verdict")
    assert "RTX 4090 24 GB" in verdict
    advice = page.inner_text("#h-adv >> xpath=..")
    if "does not fit" in verdict:
        assert "gradient checkpointing" in advice
        page.click("#h-adv >> xpath=.. >> tr:has-text('gradient checkpointing') >> text=apply")
        page.wait_for_url(re.compile(r"gradient_checkpointing=true"))
        assert "fits on" in page.inner_text("#verdict")


def test_first_load_is_a_handful_of_small_requests(page):
    """Bytes as they travel (the page is gzipped; the test server sends static files uncompressed)."""
    responses = []
    page.on("requestfinished", lambda request: responses.append(request))
    page.goto(page.base + "/")
    page.wait_for_load_state("networkidle")
    sizes = [(r.url, r.sizes()["responseBodySize"]) for r in responses]
    assert len(sizes) <= 5, sizes
    assert sum(s for _, s in sizes) < 100_000, sizes


def test_a_recompute_swaps_only_the_results(page):
    page.goto(page.base + "/")
    bodies = []
    page.on(
        "response",
        lambda r: (
            bodies.append(r.text())
            if "HX-Request" in r.request.all_headers().get("hx-request", "") or r.request.headers.get("hx-request")
            else None
        ),
    )
    page.fill("#r", "12")
    page.wait_for_url(re.compile(r"r=12"))
    settle(page)
    assert bodies
    assert "<html" not in bodies[-1]
    assert "<form" not in bodies[-1]


def test_the_learn_quiz_is_checked_on_the_server(page):
    page.goto(page.base + "/learn/?preset=llama-3.1-8b&r=16")
    assert "16 · (4,096 + 4,096)" in page.inner_text("#lora")
    mark_document(page)
    page.check("#quiz-q1 input[value=b]")
    page.check("#quiz-q2 input[value=c]")
    page.get_by_role("button", name="Check my answers").click()
    page.wait_for_selector("#quiz-score")
    assert "1 of 6 right" in page.inner_text("#quiz-score")
    assert still_same_document(page)


def test_save_and_share_opens_the_permalink(page):
    page.goto(page.base + "/?preset=llama-3.1-8b&r=32")
    page.fill("#save-name", "8B at r=32")
    page.get_by_role("button", name="Save & get a permalink").click()
    page.wait_for_url(re.compile(r"/c/[a-z0-9]+/$"))
    assert page.inner_text("h1") == "8B at r=32"
    page.get_by_role("link", name="Open in the calculator").click()
    page.wait_for_url(re.compile(r"r=32"))
    assert page.input_value("#r") == "32"


@pytest.mark.parametrize("path", ["/", "/presets/", "/learn/", "/?preset=gpt2&r=0"])
def test_pages_fit_a_phone_width_without_sideways_scrolling(page, path):
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(page.base + path)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0


def test_the_calculator_is_usable_with_the_keyboard(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    before = trainable(page)
    page.focus("#r")
    page.keyboard.press("Control+A")
    page.keyboard.type("24")
    page.keyboard.press("Tab")
    page.wait_for_url(re.compile(r"r=24"))
    settle(page)
    assert trainable(page) != before
    # A quick pick reached by Tab and pressed with Space.
    page.focus("#targets button[value=all]")
    page.keyboard.press("Space")
    page.wait_for_url(re.compile(r"target_modules=down_proj"))
    # Enter in a field recomputes (the form's default button), it does not press a quick pick.
    page.focus("#seq_len")
    page.keyboard.press("Control+A")
    page.keyboard.type("1024")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"seq_len=1024"))
    settle(page)
    assert page.input_value("#r") == "24"
