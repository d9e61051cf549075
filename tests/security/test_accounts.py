"""Signing in, API tokens and who sees what: no HTTP Basic, a lockout after repeated failures, personal
tokens that are shown once and stored hashed, password reset gone, the owner's name private."""

from __future__ import annotations

import base64
import re

import pytest
from django.contrib.auth import get_user_model

from accounts.models import ApiToken

CONFIGS = "/api/v1/configurations/"
BODY = {"name": "mine", "model": {"preset": "gpt2"}}
PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password=PASSWORD)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_http_basic_auth_is_not_accepted_even_with_the_right_password(client, alice):
    response = client.get(CONFIGS, HTTP_AUTHORIZATION=basic("alice", PASSWORD))
    assert response.status_code in (401, 403)
    assert "Basic" not in response.get("WWW-Authenticate", "")


def login(client, password: str, address: str = "203.0.113.7", **extra):
    return client.post("/accounts/login/", {"username": "alice", "password": password}, REMOTE_ADDR=address, **extra)


def test_sign_in_attempts_are_limited_with_a_clear_lockout_message(client, alice, settings):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert login(client, "wrong").status_code == 200  # the form again, "please enter a correct..."
    locked = login(client, "wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert int(locked["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert login(client, PASSWORD).status_code == 429  # even the right password waits out the lock
    assert login(client, "wrong", X_FORWARDED_FOR="198.51.100.1").status_code == 429  # no way round it
    assert login(client, PASSWORD, address="203.0.113.8").status_code == 302  # another address is not locked


def test_the_admin_login_is_limited_too(client, alice, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="203.0.113.9")
    response = client.post("/admin/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 429


def test_a_successful_sign_in_resets_the_count(client, alice, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, "wrong")
    assert login(client, PASSWORD).status_code == 302
    client.logout()
    assert login(client, "wrong").status_code == 200


@pytest.mark.parametrize(
    "path", ["/accounts/password_reset/", "/accounts/reset/done/", "/accounts/password_reset/done/"]
)
def test_password_reset_pages_are_gone_no_mail_is_configured(client, path):
    assert client.get(path).status_code == 404


def test_a_signed_in_user_can_change_their_password(client, alice):
    client.force_login(alice)
    assert client.get("/accounts/password_change/").status_code == 200


def create_token(client, name="CI launcher", expires="90"):
    return client.post("/accounts/tokens/", {"name": name, "expires": expires})


def test_a_token_is_created_on_a_page_shown_once_and_stored_hashed(client, alice):
    client.force_login(alice)
    response = create_token(client)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = re.search(r'<code id="new-token">(lorasite_[0-9a-f]+)</code>', response.content.decode()).group(1)
    stored = ApiToken.objects.get(user=alice)
    assert stored.name == "CI launcher"
    assert token not in (stored.digest, stored.token_key)  # only its digest and first characters
    assert len(stored.digest) == 128
    assert token not in client.get("/accounts/tokens/").content.decode()  # never shown again


def test_a_script_uses_its_token_and_a_revoked_token_stops_working(client, alice):
    client.force_login(alice)
    token = re.search(r"(lorasite_[0-9a-f]{64})", create_token(client).content.decode()).group(1)
    script = type(client)()  # no session: only the token
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    saved = script.post(CONFIGS, BODY, content_type="application/json", **auth)
    assert saved.status_code == 201
    assert saved.json()["owner"] == "alice"
    slug = saved.json()["slug"]
    assert (
        script.patch(f"{CONFIGS}{slug}/", {"name": "renamed"}, content_type="application/json", **auth).status_code
        == 200
    )
    assert [c["slug"] for c in script.get(CONFIGS, **auth).json()] == [slug]
    digest = ApiToken.objects.get(user=alice).digest
    assert client.post("/accounts/tokens/revoke/", {"token": digest}).status_code == 302
    assert script.get(CONFIGS, **auth).status_code == 401
    assert script.get(CONFIGS, HTTP_AUTHORIZATION="Token lorasite_" + "0" * 64).status_code == 401


def test_one_user_cannot_revoke_anothers_token(client, alice, django_user_model):
    client.force_login(alice)
    create_token(client)
    digest = ApiToken.objects.get(user=alice).digest
    client.force_login(django_user_model.objects.create_user("mallory", password="pw"))
    client.post("/accounts/tokens/revoke/", {"token": digest})
    assert ApiToken.objects.filter(digest=digest).exists()


def test_the_tokens_page_needs_an_account_and_validates_its_form(client, alice):
    assert client.get("/accounts/tokens/").status_code == 302
    client.force_login(alice)
    response = create_token(client, name="")
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_the_owners_username_is_shown_to_the_owner_only(client, alice):
    client.force_login(alice)
    slug = client.post(CONFIGS, BODY, content_type="application/json").json()["slug"]
    assert client.get(f"{CONFIGS}{slug}/").json()["owner"] == "alice"
    client.logout()
    assert client.get(f"{CONFIGS}{slug}/").json()["owner"] is None
    bob = get_user_model().objects.create_user("bob", password="pw")
    client.force_login(bob)
    assert client.get(f"{CONFIGS}{slug}/").json()["owner"] is None


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("post", "/api/v1/estimate", 200),
        ("post", "/api/v1/configurations", 201),
        ("post", "/save", 302),
    ],
)
def test_a_post_without_the_trailing_slash_is_served_not_a_405(client, method, path, status):
    if path == "/save":
        response = client.post(path, {"state": "preset=gpt2", "name": "x"})
    else:
        body = BODY if "configurations" in path else {"model": BODY["model"]}
        response = client.post(path, body, content_type="application/json")
    assert response.status_code == status, response.content[:200]


def test_patch_and_delete_without_the_trailing_slash_reach_the_configuration(client, alice):
    client.force_login(alice)
    slug = client.post(CONFIGS, BODY, content_type="application/json").json()["slug"]
    patched = client.patch(f"{CONFIGS}{slug}", {"name": "new"}, content_type="application/json")
    assert patched.status_code == 200
    assert patched.json()["name"] == "new"
    assert client.delete(f"{CONFIGS}{slug}").status_code == 204


def test_a_get_without_the_slash_still_redirects_to_the_canonical_url(client):
    response = client.get("/presets")
    assert response.status_code == 301
    assert response["Location"] == "/presets/"
