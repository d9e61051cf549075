"""Issue 8 in a real browser: the framework fills the Training recipe and Training fields (every field stays
editable, the user's values win), the export panel copies, and the new panels fit a phone."""

import re

import pytest

pytestmark = pytest.mark.django_db(transaction=True)
PHONE = {"width": 390, "height": 844}


def settle(page):
    page.wait_for_timeout(350)  # the form's debounce
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    page.wait_for_timeout(50)
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def test_a_framework_fills_the_fields_and_the_users_values_win(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    page.select_option("#framework", "trl")
    settle(page)
    page.wait_for_url(re.compile(r"framework=trl$"))
    assert page.is_checked("#gradient_checkpointing")
    assert page.input_value("#seq_len") == "1024"
    assert page.input_value("#loss") == "trl_chunked_nll"
    assert "TRL SFTTrainer sets" in page.inner_text("#framework-note")
    assert page.locator("#g-training .by-fw").count() >= 3
    page.fill("#seq_len", "4096")
    settle(page)
    page.wait_for_url(re.compile(r"framework=trl&seq_len=4096$"))
    page.select_option("#framework", "torchtune")
    settle(page)
    page.wait_for_url(re.compile(r"framework=torchtune&seq_len=4096$"))
    assert page.input_value("#loss") == "chunked"
    assert page.input_value("#batch_size") == "4"
    assert page.input_value("#seq_len") == "4096"  # the user's value stayed
    assert page.is_editable("#batch_size")
    assert "torchtune" in page.locator("#results").inner_text()


def test_the_export_panel_opens_the_frameworks_format_and_copies(page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(page.base + "/?preset=llama-3.2-3b&framework=axolotl&base_dtype=nf4")
    panel = page.get_by_test_id("recipe-export")
    assert panel.locator("#export-axolotl").is_visible()
    assert not panel.locator("#export-trl").is_visible()
    panel.locator("summary", has_text="TRL").click()
    button = panel.locator('[data-copy="#export-trl"]')
    button.click()
    page.wait_for_function("() => document.querySelector('[data-copy=\"#export-trl\"]').textContent === 'Copied'")
    assert "SFTConfig(" in page.evaluate("navigator.clipboard.readText()")


def test_offloading_shows_host_memory_and_a_4bit_moe_explains_its_experts_on_a_phone(page):
    page.set_viewport_size(PHONE)
    page.goto(page.base + "/?gradient_checkpointing=true&activation_offloading=true&seq_len=8192")
    assert page.get_by_test_id("host-card").is_visible()
    assert page.get_by_test_id("host-chart").is_visible()
    page.goto(page.base + "/?preset=qwen3-30b-a3b&target_modules=q_proj&target_modules=v_proj&base_dtype=nf4")
    note = page.get_by_test_id("moe-experts")
    assert note.is_visible()
    note.get_by_role("link", name="Quantize the experts").click()
    page.wait_for_url(re.compile(r"quantize_moe_experts=true"))
    assert page.is_checked("#quantize_moe_experts")
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
