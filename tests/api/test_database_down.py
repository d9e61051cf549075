"""When the database cannot be reached, computing still works and saving fails clearly."""

from unittest import mock

import pytest
from django.db import DatabaseError

from calculator import services

BODY = {"model": {"preset": "llama-3.1-8b"}, "lora": {"r": 32}}


@pytest.fixture
def database_down():
    services.invalidate_catalog()
    services.catalog._catalog.presets = {}  # a fresh worker that never reached the database
    with mock.patch("calculator.models.ModelPreset.objects.published", side_effect=DatabaseError("down")):
        yield
    services.invalidate_catalog()


@pytest.mark.django_db
def test_estimate_with_a_preset_works_from_the_seed_catalog(client, database_down):
    response = client.post("/api/v1/estimate/", BODY, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["lora"]["trainable_params"] == 4 * 3_407_872


@pytest.mark.django_db
def test_saving_fails_with_a_clear_503(client, database_down):
    with mock.patch("calculator.services.save_configuration", side_effect=DatabaseError("down")):
        response = client.post("/api/v1/configurations/", {**BODY, "name": "x"}, content_type="application/json")
    assert response.status_code == 503
    assert "database" in response.json()["detail"]


@pytest.mark.django_db
def test_the_preset_catalog_answers_from_the_seed_too(client, database_down):
    """So the schema documents no 503 for presets, estimate and plan: they never need the database."""
    assert client.get("/api/v1/presets/").status_code == 200
    assert client.get("/api/v1/presets/llama-3.1-8b/").status_code == 200
    plan = {**BODY, "goal": "max_batch_size"}
    assert client.post("/api/v1/plan/", plan, content_type="application/json").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["calculator.services.save_configuration", "accounts.authentication.needs_account"])
def test_every_503_says_when_to_try_again(client, database_down, target):
    """The schema promises Retry-After on every 503: DRF's own 503s (a failed save, a session the database
    could not look up) carry it like the middleware's."""
    side_effect = DatabaseError("down") if target.endswith("configuration") else None
    with mock.patch(target, side_effect=side_effect, return_value=True):
        response = client.post("/api/v1/configurations/", {**BODY, "name": "x"}, content_type="application/json")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["detail"]
