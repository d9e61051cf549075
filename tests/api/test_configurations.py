"""Saved configurations: immutable inputs, owner-only edits, distinct slugs."""

import pytest
from django.contrib.auth import get_user_model

from calculator.models import ModelPreset, SavedConfiguration

pytestmark = pytest.mark.django_db
URL = "/api/v1/configurations/"
BODY = {"name": "8B q,v", "note": "baseline", "model": {"preset": "llama-3.1-8b"}, "lora": {"r": 16}}


def save(client, body=BODY):
    return client.post(URL, body, content_type="application/json")


@pytest.fixture
def alice(client):
    user = get_user_model().objects.create_user("alice", password="pw-alice-123")
    client.force_login(user)
    return user


def test_anonymous_save_returns_permalink_and_estimate(client):
    response = save(client)
    assert response.status_code == 201
    data = response.json()
    assert data["url"].endswith(f"/c/{data['slug']}/")
    assert len(data["slug"]) >= 10
    assert data["estimate"]["lora"]["trainable_params"] == 2 * 3_407_872
    assert data["lora"]["r"] == 16


def test_saved_inputs_do_not_change_when_the_catalog_does(client):
    slug = save(client).json()["slug"]
    preset = ModelPreset.objects.get(slug="llama-3.1-8b")
    preset.config = {**preset.config, "num_hidden_layers": 2}
    preset.save()
    data = client.get(f"{URL}{slug}/").json()
    assert data["estimate"]["model"]["base_params"] == 8_030_261_248


def test_invalid_save_is_a_400_and_stores_nothing(client):
    response = save(client, {**BODY, "lora": {"r": -1}})
    assert response.status_code == 400
    assert "r" in response.json()["lora"]
    assert not SavedConfiguration.objects.exists()


def test_owner_renames_but_cannot_change_inputs(client, alice):
    slug = save(client).json()["slug"]
    response = client.patch(f"{URL}{slug}/", {"name": "renamed", "lora": {"r": 64}}, content_type="application/json")
    assert response.status_code == 200
    stored = SavedConfiguration.objects.get(slug=slug)
    assert stored.name == "renamed"
    assert stored.inputs["lora"]["r"] == 16


def test_others_cannot_edit_or_delete(client, alice):
    slug = save(client).json()["slug"]
    client.logout()
    assert client.patch(f"{URL}{slug}/", {"name": "x"}, content_type="application/json").status_code in (401, 403)
    assert client.delete(f"{URL}{slug}/").status_code in (401, 403)
    bob = get_user_model().objects.create_user("bob", password="pw-bob-12345")
    client.force_login(bob)
    assert client.delete(f"{URL}{slug}/").status_code == 403
    assert SavedConfiguration.objects.filter(slug=slug).exists()


def test_anonymous_configurations_cannot_be_edited_by_anyone(client, alice):
    client.logout()
    slug = save(client).json()["slug"]
    client.force_login(alice)
    assert client.delete(f"{URL}{slug}/").status_code == 403


def test_list_shows_only_my_own(client, alice):
    save(client)
    client.logout()
    save(client)
    assert client.get(URL).status_code in (401, 403)
    client.force_login(alice)
    mine = client.get(URL).json()
    assert len(mine) == 1
    assert mine[0]["owner"] == "alice"


def test_owner_deletes(client, alice):
    slug = save(client).json()["slug"]
    assert client.delete(f"{URL}{slug}/").status_code == 204
    assert client.get(f"{URL}{slug}/").status_code == 404


def test_many_saves_get_distinct_slugs(client):
    slugs = {save(client).json()["slug"] for _ in range(20)}
    assert len(slugs) == 20


def test_anonymous_saves_are_rate_limited(client, settings):
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon_save": "3/hour"}}
    from rest_framework.settings import api_settings

    api_settings.reload()
    try:
        from calculator.api.views import AnonSaveThrottle

        AnonSaveThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        codes = [save(client).status_code for _ in range(5)]
    finally:
        cache.clear()
    assert codes[:3] == [201, 201, 201]
    assert codes[3:] == [429, 429]
