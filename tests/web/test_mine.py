"""/mine/: a signed-in user's saved configurations; owner-only rename, annotate and delete (POST + CSRF)."""

import re
from unittest import mock

import pytest
from django.db import DatabaseError
from django.test import Client

from calculator.models import SavedConfiguration
from calculator.schemas import SaveRequest
from calculator.services import save_configuration

NAV_LINK = '<a href="/mine/"'


def save(owner=None, name="config", model=None, **groups):
    data = {"model": model or {"preset": "llama-3.1-8b"}, "name": name, **groups}
    return save_configuration(request=SaveRequest.model_validate(data), owner=owner)


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw")


@pytest.fixture
def alices(alice):
    return (
        save(alice, "Alice baseline", note="for the design doc", lora={"r": 8}),
        save(alice, "Alice QLoRA", model={"preset": "gpt2"}, training={"base_dtype": "nf4"}),
    )


@pytest.fixture
def bobs(bob):
    return save(bob, "Bob's secret", lora={"r": 32})


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def body(response):
    return response.content.decode()


def test_anonymous_users_are_sent_to_the_login_page_with_next(client):
    response = client.get("/mine/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/mine/"


@pytest.mark.parametrize("action", ["edit", "delete"])
def test_anonymous_writes_are_sent_to_log_in_and_change_nothing(client, alices, action):
    c = alices[0]
    response = client.post(f"/mine/{c.slug}/{action}/", {"name": "hijacked"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    c.refresh_from_db()
    assert c.name == "Alice baseline"


def test_the_list_shows_only_my_configurations(signed_in, alices, bobs):
    response = signed_in.get("/mine/")
    assert response.status_code == 200
    page = body(response)
    for c in alices:
        assert f'<a href="/c/{c.slug}/">{c.name}</a>' in page
        assert f'name="c" value="{c.slug}" form="compare-form"' in page
        assert f'action="/mine/{c.slug}/edit/"' in page
        assert f'href="/mine/{c.slug}/delete/"' in page
    assert "for the design doc" in page
    assert "Llama-3.1-8B" in page
    assert "GPT-2" in page
    assert page.index("Alice QLoRA") < page.index("Alice baseline")  # newest first
    assert "Bob&#x27;s secret" not in page
    assert bobs.slug not in page
    assert '<form id="compare-form" class="compare-bar" method="get" action="/compare/">' in page


def test_an_empty_list_says_how_to_fill_it(signed_in):
    page = body(signed_in.get("/mine/"))
    assert "no saved configurations yet" in page


def test_the_list_is_paginated(signed_in, alices, monkeypatch):
    monkeypatch.setattr("calculator.views.MINE_PAGE_SIZE", 1)
    first = body(signed_in.get("/mine/"))
    assert "Alice QLoRA" in first
    assert "Alice baseline" not in first
    assert 'href="?page=2" rel="next"' in first
    assert "Alice baseline" in body(signed_in.get("/mine/?page=2"))
    assert signed_in.get("/mine/?page=nonsense").status_code == 200


def test_the_header_links_my_configurations_only_when_signed_in(client, alice):
    for path in ("/", "/presets/", "/learn/"):
        assert NAV_LINK not in body(client.get(path)), path
    client.force_login(alice)
    for path in ("/", "/presets/", "/learn/"):
        assert NAV_LINK in body(client.get(path)), path
    assert '<a href="/mine/" aria-current="page">My configurations</a>' in body(client.get("/mine/"))
    # The calculator page is rendered once per state and cached: the link must not leak to others.
    assert NAV_LINK not in body(Client().get("/"))
    assert "0placeholder" not in body(client.get("/"))


def test_rename_and_annotate(signed_in, alices):
    c = alices[0]
    inputs = dict(c.inputs)
    response = signed_in.post(f"/mine/{c.slug}/edit/", {"name": "  Renamed  ", "note": "new note"})
    assert response.status_code == 302
    assert response["Location"] == "/mine/"
    c.refresh_from_db()
    assert (c.name, c.note) == ("Renamed", "new note")
    assert c.inputs == inputs  # a permalink never changes meaning
    page = body(signed_in.get("/mine/"))
    assert "Saved “Renamed”." in page
    assert "new note" in page


def test_the_edit_page_works_on_its_own(signed_in, alices):
    c = alices[0]
    page = body(signed_in.get(f"/mine/{c.slug}/edit/"))
    assert 'value="Alice baseline"' in page
    assert "for the design doc</textarea>" in page
    assert 'name="csrfmiddlewaretoken"' in page


@pytest.mark.parametrize(
    ("data", "field"),
    [({"name": "", "note": "x"}, "name"), ({"name": "x" * 201}, "name"), ({"name": "ok", "note": "n" * 5001}, "note")],
)
def test_an_invalid_edit_is_a_400_naming_the_field_and_changes_nothing(signed_in, alices, data, field):
    c = alices[0]
    response = signed_in.post(f"/mine/{c.slug}/edit/", data)
    assert response.status_code == 400
    assert re.search(rf'<p class="err" id="e-{field}">[^<]+</p>', body(response))
    assert 'role="alert"' in body(response)
    assert "<h1>Edit “Alice baseline”</h1>" in body(response)
    c.refresh_from_db()
    assert (c.name, c.note) == ("Alice baseline", "for the design doc")


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("action", ["edit", "delete"])
def test_someone_elses_configuration_is_a_404(signed_in, bobs, method, action):
    response = getattr(signed_in, method)(f"/mine/{bobs.slug}/{action}/", {"name": "mine now"})
    assert response.status_code == 404
    assert "No such configuration" in body(response)
    bobs.refresh_from_db()
    assert bobs.name == "Bob's secret"


def test_an_anonymous_configuration_belongs_to_no_one(signed_in):
    orphan = save(None, "anonymous")
    assert signed_in.post(f"/mine/{orphan.slug}/edit/", {"name": "mine"}).status_code == 404
    assert signed_in.post(f"/mine/{orphan.slug}/delete/").status_code == 404
    assert SavedConfiguration.objects.filter(slug=orphan.slug, name="anonymous").exists()


def test_an_unknown_slug_is_a_404(signed_in):
    assert signed_in.get("/mine/nosuchslug/edit/").status_code == 404


def test_delete_asks_for_confirmation_then_deletes(signed_in, alices):
    c = alices[0]
    confirm = signed_in.get(f"/mine/{c.slug}/delete/")
    assert confirm.status_code == 200
    page = body(confirm)
    assert "<h1>Delete “Alice baseline”?</h1>" in page
    assert f'<form method="post" action="/mine/{c.slug}/delete/">' in page
    assert SavedConfiguration.objects.filter(slug=c.slug).exists()  # showing the question deletes nothing
    response = signed_in.post(f"/mine/{c.slug}/delete/")
    assert response.status_code == 302
    assert response["Location"] == "/mine/"
    assert not SavedConfiguration.objects.filter(slug=c.slug).exists()
    assert "Deleted “Alice baseline”." in body(signed_in.get("/mine/"))
    assert signed_in.get(f"/c/{c.slug}/").status_code == 404
    assert SavedConfiguration.objects.filter(slug=alices[1].slug).exists()


def test_the_list_takes_only_get(signed_in):
    assert signed_in.post("/mine/").status_code == 405


@pytest.mark.parametrize(("action", "data"), [("edit", {"name": "csrf"}), ("delete", {})])
def test_csrf_is_enforced_on_edits_and_deletes(alice, alices, action, data):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    c = alices[0]
    assert strict.post(f"/mine/{c.slug}/{action}/", data).status_code == 403
    assert SavedConfiguration.objects.filter(slug=c.slug, name="Alice baseline").exists()
    page = body(strict.get("/mine/"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    assert strict.post(f"/mine/{c.slug}/{action}/", {**data, "csrfmiddlewaretoken": token}).status_code == 302


def test_save_and_share_attaches_the_signed_in_owner(client, alice):
    client.post("/save/", {"state": "preset=gpt2&r=4", "name": "anonymous save"})
    assert SavedConfiguration.objects.get(name="anonymous save").owner is None
    client.force_login(alice)
    response = client.post("/save/", {"state": "preset=gpt2&r=4", "name": "mine"})
    assert response.status_code == 302
    assert SavedConfiguration.objects.get(name="mine").owner == alice
    assert "mine" in body(client.get("/mine/"))


def test_the_owner_sees_an_edit_link_on_the_permalink(client, alices, bob):
    c = alices[0]
    assert f'href="/mine/{c.slug}/edit/"' not in body(client.get(f"/c/{c.slug}/"))
    client.force_login(bob)
    assert f'href="/mine/{c.slug}/edit/"' not in body(client.get(f"/c/{c.slug}/"))
    client.force_login(c.owner)
    assert f'href="/mine/{c.slug}/edit/"' in body(client.get(f"/c/{c.slug}/"))


def test_compare_selected_submits_the_ticked_slugs(signed_in, alices):
    # The checkboxes are named "c" and belong to the GET form to /compare/: what a browser submits.
    response = signed_in.get("/compare/", {"c": [c.slug for c in alices]})
    assert response.status_code == 200
    one = signed_in.get("/compare/", {"c": [alices[0].slug]})
    assert one.status_code == 400


def test_the_database_being_down_is_a_503_not_a_500(signed_in, alices):
    with mock.patch("calculator.views.Paginator", side_effect=DatabaseError("down")):
        response = signed_in.get("/mine/")
    assert response.status_code == 503
    with mock.patch("calculator.views.get_object_or_404", side_effect=DatabaseError("down")):
        response = signed_in.post(f"/mine/{alices[0].slug}/delete/")
    assert response.status_code == 503


def test_team_members_sign_in_without_admin_access(client, django_user_model):
    django_user_model.objects.create_user("bob", password="a-long-test-password")  # not staff
    response = client.post(
        "/accounts/login/", {"username": "bob", "password": "a-long-test-password", "next": "/mine/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/mine/"
    assert client.get("/mine/").status_code == 200
    assert client.get("/admin/").status_code == 302  # the admin stays staff-only


def test_header_offers_sign_in_then_sign_out(client, django_user_model):
    assert "Sign in" in client.get("/presets/").content.decode()
    client.force_login(django_user_model.objects.create_user("carol", password="a-long-test-password"))
    html = client.get("/presets/").content.decode()
    assert "Sign out" in html
    assert "My configurations" in html
    client.post("/accounts/logout/")
    assert "Sign in" in client.get("/presets/").content.decode()
