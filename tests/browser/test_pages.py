"""What a new user meets on every page: nothing overlaps or scrolls sideways on a phone, no console
errors, and the calculator's defects found by trying it (each with the behaviour that fixes it)."""

import re

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
PAGES = [
    "/",
    "/?preset=gpt2&r=0",
    "/?preset=mixtral-8x7b&target_modules=all-linear&base_dtype=nf4",
    "/presets/",
    "/presets/?family=Gemma+3",
    "/?preset=gemma-3-4b",
    "/?preset=qwen3.5-35b-a3b&target_modules=q_proj&target_modules=v_proj",
    "/?hf_config=%7B%22model_type%22%3A%22my_llm%22%2C%22hidden_size%22%3A1024%2C%22num_hidden_layers%22%3A8%2C"
    "%22num_attention_heads%22%3A8%2C%22vocab_size%22%3A32000%7D&target_modules=q_proj",
    "/?framework=unsloth&preset=qwen3-30b-a3b&target_modules=q_proj&target_modules=v_proj",
    "/?framework=trl&activation_offloading=true&parallelism=zero3&num_gpus=2&optimizer_offload=true&param_offload=true",
    "/?preset=llama-3.1-8b&r=16&lora_alpha=32&target_modules=all-linear&base_dtype=nf4&seq_len=4096&batch_size=4",
    "/?gradient_checkpointing=true&gpu=custom&custom_gpu_memory_gib=40&custom_gpu_tflops=200&sweep=seq_len",
    "/learn/",
    "/learn/accuracy/",
    "/compare/?c=llama-3.1-8b&c=qwen2.5-7b",
    "/accounts/login/",
]

OVERLAPS = """() => {
  const seen = [...document.querySelectorAll(
    'label, legend, h1, h2, input:not([type=hidden]), select, textarea, button, .chart g.cap text, .card .v')]
    .filter(e => !e.closest('.visually-hidden, .default-submit:not(:focus), details:not([open]) > :not(summary)'))
    .filter(e => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
      return r.width > 2 && r.height > 2 && s.visibility !== 'hidden' && s.display !== 'none'; });
  const out = [];
  for (let i = 0; i < seen.length; i++) for (let j = i + 1; j < seen.length; j++) {
    const a = seen[i], b = seen[j];
    if (a.contains(b) || b.contains(a)) continue;
    const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
    const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
    const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
    if (w > 2 && h > 2) out.push(`${a.tagName}#${a.id}.${a.className} / ${b.tagName}#${b.id}.${b.className}`);
  }
  return out;
}"""


def settle(page):
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    page.wait_for_timeout(50)
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


@pytest.mark.parametrize("path", PAGES)
def test_at_phone_width_nothing_overlaps_or_scrolls_sideways(page, path):
    page.set_viewport_size(PHONE)
    page.goto(page.base + path)
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert page.evaluate(OVERLAPS) == []


@pytest.mark.parametrize("path", PAGES)
def test_at_desktop_width_nothing_overlaps(page, path):
    page.goto(page.base + path)
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert page.evaluate(OVERLAPS) == []


def test_the_chosen_gpus_chart_line_stands_at_its_own_capacity(page):
    page.goto(page.base + "/?preset=llama-3.1-8b&gpu=NVIDIA+RTX+4090+24+GB")
    chosen = page.locator(".chart g.cap.chosen")
    assert chosen.count() == 1
    assert chosen.locator("title").text_content().startswith("NVIDIA RTX 4090 24 GB:")
    others = page.locator(".chart g.cap:not(.chosen) title").all_text_contents()
    assert not any("RTX 4090" in title for title in others)
    l4 = page.locator(".chart g.cap:not(.chosen)").filter(has=page.locator("title", has_text="L4"))
    l4 = l4.get_attribute("data-x")
    assert float(chosen.get_attribute("data-x").rstrip("%")) > float(l4.rstrip("%"))  # 24,564 MiB > 23,034 MiB


def test_letters_in_a_number_field_are_an_error_not_the_default(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    page.fill("#batch_size", "four")
    page.wait_for_selector("#e-batch_size:not(:empty)")
    assert "whole number" in page.inner_text("#e-batch_size")
    assert "Some inputs need fixing" in page.inner_text("#results")


def test_a_failed_recompute_says_so_and_marks_the_results_stale(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    page.route(re.compile(r".*\?.*r=77.*"), lambda route: route.fulfill(status=500, body="boom"))
    page.fill("#r", "77")
    page.wait_for_selector("#recompute-status:not([hidden])")
    assert "previous inputs" in page.inner_text("#recompute-status")
    assert "stale" in page.get_attribute("#results", "class")
    page.unroute(re.compile(r".*\?.*r=77.*"))
    page.fill("#r", "16")
    page.wait_for_selector("#recompute-status[hidden]", state="attached")
    assert "stale" not in page.get_attribute("#results", "class")
    page.js_errors.clear()  # the browser logs the refused request itself


def test_the_header_learn_link_follows_the_current_state(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    page.fill("#r", "24")
    page.wait_for_url(re.compile(r"r=24"))
    settle(page)
    assert "r=24" in page.get_attribute("#nav-learn", "href")


def test_a_rank_above_the_layers_smaller_dimension_is_pointed_out(page):
    page.goto(page.base + "/?preset=gpt2&r=4096")
    warning = page.get_by_test_id("oversized-rank")
    assert "larger than the layer" in warning.inner_text()
    page.goto(page.base + "/?preset=gpt2&r=16")
    assert page.get_by_test_id("oversized-rank").count() == 0


def test_an_out_of_range_layer_is_an_error_on_layers_to_transform(page):
    page.goto(page.base + "/?preset=llama-3.1-8b&target_modules=q_proj&layers_to_transform=40-45")
    assert "has 32 layers" in page.inner_text("#e-layers_to_transform")
    assert page.inner_text("#e-target_modules") == ""


def test_the_qlora_switch_sets_a_4_bit_base(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    page.get_by_role("button", name="QLoRA · 4-bit NF4 base").click()
    page.wait_for_url(re.compile(r"base_dtype=nf4"))
    settle(page)
    assert page.input_value("#base_dtype") == "nf4"
    assert page.get_attribute('button[data-value="nf4"]', "aria-pressed") == "true"
    assert page.get_by_test_id("note-qlora").is_visible()


def test_the_comparison_columns_say_what_they_assume(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    header = page.inner_text("#h-cmp >> xpath=.. >> thead")
    assert "every weight trains" in header
    assert "4-bit NF4 base" in header


def test_the_quiz_shows_the_right_option_after_an_answer(page):
    page.goto(page.base + "/learn/")
    page.check("#quiz-q1 input[value=a]")
    page.get_by_role("button", name="Check my answers").click()
    page.wait_for_selector("#quiz-score")
    assert page.get_by_test_id("right-q1").is_visible()
    assert page.locator("#quiz-q1 .right-answer input").get_attribute("value") == "b"


def test_compare_the_current_configuration_with_a_preset_without_saving(page):
    page.goto(page.base + "/?preset=llama-3.1-8b&r=16")
    page.fill("#compare-other", "qwen2.5-7b")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_url(re.compile(r"/compare/"))
    headers = page.locator("table.comparison th.cfg").all_inner_texts()
    assert len(headers) == 2
    assert "Llama-3.1-8B (unsaved)" in headers[0]
    assert "Qwen2.5-7B (unsaved)" in headers[1]


def test_every_tab_stop_is_visible(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    invisible = []
    for _ in range(40):
        page.keyboard.press("Tab")
        box = page.evaluate("""() => { const e = document.activeElement; const r = e.getBoundingClientRect();
            return [e.tagName + '#' + e.id + '.' + e.className, r.width, r.height]; }""")
        if box[1] < 4 or box[2] < 4:
            invisible.append(box[0])
    assert invisible == []


def test_only_a_short_announcement_is_a_live_region(page):
    page.goto(page.base + "/?preset=llama-3.1-8b")
    assert page.get_attribute("#results", "aria-live") is None
    page.fill("#r", "32")
    page.wait_for_url(re.compile(r"r=32"))
    settle(page)
    assert "trainable parameters" in page.inner_text("#announce")
