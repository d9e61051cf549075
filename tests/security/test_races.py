"""A DELETE racing a PATCH never brings the configuration back: updates never insert.

Django's ``save()`` inserts when its UPDATE finds no row; `SavedConfiguration.save` forces an update for
a row it read, so a rename that loses the race is a 404. The concurrent tests run real requests in
threads against PostgreSQL (each thread its own connection), the way two app workers would race.
"""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from calculator.api.views import ConfigurationViewSet
from calculator.models import SavedConfiguration
from calculator.schemas import SaveRequest
from calculator.services import save_configuration

CONFIGS = "/api/v1/configurations/"
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL (SQLite serialises them)"
)


def saved(owner, name="config"):
    request = SaveRequest.model_validate({"name": name, "model": {"preset": "gpt2"}})
    return save_configuration(request=request, owner=owner)


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw")


@pytest.fixture
def seeded(transactional_db):
    """A transactional test starts from an empty database: the catalog again, from its data migration."""
    import importlib

    from django.apps import apps

    from calculator.models import ModelPreset
    from calculator.services import invalidate_catalog

    if not ModelPreset.objects.exists():
        importlib.import_module("calculator.migrations.0002_seed_catalogs").seed(apps, None)
    invalidate_catalog()


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def in_thread(work):
    """Run ``work`` as another app worker would: its own connection, closed when done."""

    def run() -> None:
        try:
            work()
        finally:
            connections.close_all()

    return threading.Thread(target=run)


@pytest.mark.django_db
def test_saving_a_configuration_deleted_meanwhile_raises_instead_of_inserting(alice):
    configuration = saved(alice)
    SavedConfiguration.objects.filter(pk=configuration.pk).delete()
    configuration.name = "renamed"
    with pytest.raises(SavedConfiguration.NotUpdated), transaction.atomic():
        configuration.save()
    assert not SavedConfiguration.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_rename_on_the_page_after_a_delete_is_a_404(seeded, client, alice):
    configuration = saved(alice)
    client.force_login(alice)
    with mock.patch("calculator.views._own", return_value=configuration):
        SavedConfiguration.objects.filter(pk=configuration.pk).delete()
        response = client.post(f"/mine/{configuration.slug}/edit/", {"name": "renamed", "note": ""})
    assert response.status_code == 404
    assert not SavedConfiguration.objects.exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_patch_that_read_the_row_before_a_delete_committed_gets_404_and_the_row_stays_deleted(seeded, alice):
    slug = saved(alice).slug
    loaded, deleted = threading.Event(), threading.Event()
    original = ConfigurationViewSet.get_object
    results: dict[str, int] = {}

    def get_object_then_wait(view):
        instance = original(view)
        if view.request.method == "PATCH":
            loaded.set()
            deleted.wait(10)
        return instance

    def patch() -> None:
        response = signed_in(alice).patch(f"{CONFIGS}{slug}/", {"name": "renamed"}, content_type="application/json")
        results["patch"] = response.status_code

    def delete() -> None:
        loaded.wait(10)
        results["delete"] = signed_in(alice).delete(f"{CONFIGS}{slug}/").status_code
        deleted.set()

    with mock.patch.object(ConfigurationViewSet, "get_object", get_object_then_wait):
        threads = [in_thread(patch), in_thread(delete)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    connection.close()
    assert results == {"delete": 204, "patch": 404}
    assert not SavedConfiguration.objects.filter(slug=slug).exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_sixty_racing_pairs_never_resurrect_a_configuration(seeded, alice):
    slugs = [saved(alice, f"c{i}").slug for i in range(60)]
    outcomes: list[tuple[int, int]] = []

    def race(slug: str) -> None:
        start, codes = threading.Barrier(2), {}

        def patch() -> None:
            start.wait()
            codes["patch"] = (
                signed_in(alice).patch(f"{CONFIGS}{slug}/", {"note": "x"}, content_type="application/json").status_code
            )

        def delete() -> None:
            start.wait()
            codes["delete"] = signed_in(alice).delete(f"{CONFIGS}{slug}/").status_code

        pair = [in_thread(patch), in_thread(delete)]
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join(30)
        outcomes.append((codes["patch"], codes["delete"]))

    for slug in slugs:
        race(slug)
    connection.close()
    assert all(patch in (200, 404) and delete == 204 for patch, delete in outcomes), outcomes
    assert not SavedConfiguration.objects.filter(slug__in=slugs).exists()
