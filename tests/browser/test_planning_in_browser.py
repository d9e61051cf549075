"""Issue 9 in a real browser: the issue's example from its first answer to a plan that fits, a custom GPU,
the sweep, and the planning panels on a phone."""

import re

import pytest

pytestmark = pytest.mark.django_db(transaction=True)
PHONE = {"width": 390, "height": 844}
ISSUE = "/?preset=llama-3.1-8b&r=16&lora_alpha=32&target_modules=all-linear&base_dtype=nf4&seq_len=4096&batch_size=4"


def settle(page):
    page.wait_for_timeout(350)  # the form's debounce
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    page.wait_for_timeout(50)
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def test_the_issue_example_goes_from_does_not_fit_to_a_plan_that_fits(page):
    page.goto(page.base + ISSUE)
    assert page.get_attribute("#verdict", "data-verdict") == "does_not_fit"
    page.fill("#dataset_tokens", "40000000")
    settle(page)
    page.wait_for_url(re.compile(r"dataset_tokens=40000000"))
    first = page.get_by_test_id("advice").locator("tbody tr").first
    assert "micro-batch 1 with 4 accumulation steps" in first.inner_text()
    assert "fits" in first.locator("td").nth(2).inner_text()
    assert re.search(r"\d+ h \d\d min", first.inner_text())
    assert "$" in first.inner_text()
    first.get_by_role("link", name="apply").click()
    page.wait_for_url(re.compile(r"gradient_accumulation_steps=4"))
    assert page.get_attribute("#verdict", "data-verdict") == "fits"
    assert page.input_value("#gradient_accumulation_steps") == "4"
    assert page.get_by_test_id("time-card").is_visible()
    assert page.locator("[data-testid=rent] .badge").count() == 1  # the cheapest card


def test_a_custom_gpu_shows_its_fields_and_its_numbers(page):
    page.goto(page.base + "/?gradient_checkpointing=true")
    assert not page.is_visible("#custom_gpu_memory_gib")
    page.select_option("#gpu", "custom")
    assert page.is_visible("#custom_gpu_memory_gib")
    page.fill("#custom_gpu_memory_gib", "40")
    page.fill("#custom_gpu_tflops", "200")
    page.fill("#custom_gpu_price", "1.25")
    settle(page)
    page.wait_for_url(re.compile(r"custom_gpu_price=1.25"))
    assert "Custom GPU 40 GiB" in page.inner_text("#verdict")
    assert "$1.25 per GPU-hour" in page.get_by_test_id("time").inner_text()


def test_the_sweep_switches_variable_and_fits_a_phone(page):
    page.set_viewport_size(PHONE)
    page.goto(page.base + "/?gradient_checkpointing=true")
    sweep = page.get_by_test_id("sweep")
    sweep.get_by_role("link", name="Micro-batch size").click()
    page.wait_for_url(re.compile(r"sweep=batch_size"))
    sweep = page.get_by_test_id("sweep")
    assert "against Micro-batch size" in sweep.inner_text()
    assert sweep.locator("svg rect.bar").count() == 7
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
