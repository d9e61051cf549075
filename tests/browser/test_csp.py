"""Every page runs under the Content-Security-Policy with no violation (the fixtures fail a test on any
CSP message in the console): our pages, the API docs, the sign-in, tokens and admin pages."""

import re

import pytest

from calculator.schemas import SaveRequest
from calculator.services import save_configuration

pytestmark = pytest.mark.django_db(transaction=True)

PUBLIC = ["/", "/?preset=gpt2&r=16", "/presets/", "/learn/", "/learn/accuracy/", "/accounts/login/", "/api/docs/"]


def policy(response) -> str:
    return response.headers["content-security-policy"]


@pytest.mark.parametrize("path", PUBLIC)
def test_public_pages_load_under_the_policy_without_a_violation(page, path):
    response = page.goto(page.base + path)
    assert response.ok
    assert "'unsafe-inline'" not in policy(response)
    assert "script-src 'self'" in policy(response)
    page.wait_for_load_state("networkidle")


def test_the_api_docs_render_their_operations_under_the_policy(page):
    page.goto(page.base + "/api/docs/")
    page.get_by_text("/api/v1/estimate/").first.wait_for()


def test_the_live_calculator_recomputes_under_the_policy(page):
    page.goto(page.base + "/?preset=gpt2")
    page.fill("#r", "32")
    page.wait_for_function("() => location.search.includes('r=32')")
    page.wait_for_load_state("networkidle")


def test_signed_in_pages_and_the_admin_load_under_the_policy(page, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="a-long-test-password")
    one, two = (
        save_configuration(request=SaveRequest.model_validate({"model": {"preset": "gpt2"}, "name": n}), owner=admin)
        for n in ("one", "two")
    )
    page.goto(page.base + "/accounts/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "a-long-test-password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/mine/$"))
    for path in ("/accounts/tokens/", f"/c/{one.slug}/", f"/compare/?c={one.slug}&c={two.slug}", "/admin/",
                 "/admin/calculator/modelpreset/", "/admin/calculator/modelpreset/1/change/"):  # fmt: skip
        assert page.goto(page.base + path).ok, path
    page.goto(page.base + "/accounts/tokens/")
    page.fill("#id_name", "CI launcher")
    page.get_by_role("button", name="Create token").click()
    page.get_by_role("button", name="Copy").click()  # the copy button is the site's script, not inline
    assert page.locator("#new-token").inner_text().startswith("lorasite_")


def test_without_javascript_the_noscript_styles_apply_under_the_policy(nojs_page):
    nojs_page.goto(nojs_page.base + "/?preset=gpt2")
    assert nojs_page.locator(".default-submit").first.is_visible()
