"""Comparing two saved configurations from "My configurations" in a real browser."""

import re

import pytest

from calculator.schemas import SaveRequest
from calculator.services import save_configuration

pytestmark = pytest.mark.django_db(transaction=True)


def test_sign_in_pick_two_on_my_configurations_and_compare_them(page, django_user_model):
    alice = django_user_model.objects.create_user("alice", password="a-long-test-password")  # not staff
    for name, lora in (("Baseline r=8", {"r": 8}), ("Wide r=64", {"r": 64, "target_modules": "all-linear"})):
        data = {"model": {"preset": "llama-3.1-8b"}, "name": name, "lora": lora}
        save_configuration(request=SaveRequest.model_validate(data), owner=alice)
    save_configuration(
        request=SaveRequest.model_validate({"model": {"preset": "gpt2"}, "name": "Not picked"}), owner=alice
    )

    # Anonymous: /mine/ sends to the login page and back.
    page.goto(page.base + "/mine/")
    page.wait_for_url(re.compile(r"/accounts/login/\?next=/mine/$"))
    page.fill("#id_username", "alice")
    page.fill("#id_password", "a-long-test-password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/mine/$"))
    assert page.get_by_role("link", name="My configurations").get_attribute("aria-current") == "page"

    page.get_by_role("checkbox", name="Compare Baseline r=8").check()
    page.get_by_role("checkbox", name="Compare Wide r=64").check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(re.compile(r"/compare/\?c=[a-z0-9]+&c=[a-z0-9]+$"))

    headers = page.locator("table.comparison thead th").all_inner_texts()
    assert len(headers) == 2
    assert "Wide r=64" in headers[0]  # newest first, as listed
    assert "Baseline r=8" in headers[1]
    r_row = page.locator("tr", has=page.locator("th[scope=row]", has_text=re.compile(r"^r$")))
    assert r_row.locator("td.diff").count() == 2
    assert "≠" in r_row.inner_text()
    alpha_row = page.locator("tr", has=page.locator("th[scope=row]", has_text=re.compile(r"^lora_alpha$")))
    assert alpha_row.locator("td.diff").count() == 0

    # Each name opens its permalink; the page fits a phone without sideways scrolling of the page.
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.get_by_role("link", name="Baseline r=8").click()
    page.wait_for_url(re.compile(r"/c/[a-z0-9]+/$"))
    assert page.inner_text("h1") == "Baseline r=8"
