"""/compare/: two to four saved configurations side by side, differences marked, clear errors."""

import html
import re
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import DatabaseError

from calculator.core import InputError
from calculator.schemas import SaveRequest
from calculator.services import configuration_estimate, configuration_plan, save_configuration
from calculator.web import formatting as fmt


def save(owner=None, name="config", **groups):
    return save_configuration(
        request=SaveRequest.model_validate({"model": {"preset": "llama-3.1-8b"}, "name": name, **groups}), owner=owner
    )


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw")


@pytest.fixture
def pair(alice):
    a = save(alice, "r=8 on q,v", note="the baseline", lora={"r": 8, "target_modules": ["q_proj", "v_proj"]})
    b = save(
        alice,
        "QLoRA r=64 all linear",
        lora={"r": 64, "target_modules": "all-linear"},
        training={"base_dtype": "nf4", "gradient_checkpointing": True},
    )
    return a, b


def body(response):
    return response.content.decode()


def rows(response):
    """``{row label: [(is marked, cell html), ...]}`` from the comparison table."""
    out = {}
    for label, cells in re.findall(r'<tr class="[^"]*"><th scope="row">(.*?)</th>(.*?)</tr>', body(response)):
        out[html.unescape(label)] = [
            ("diff" in cls, cell) for cls, cell in re.findall(r'<td class="([^"]*)">(.*?)</td>', cells)
        ]
    return out


def url(*slugs):
    return "/compare/?" + "&".join(f"c={s}" for s in slugs)


def test_two_configurations_side_by_side_with_their_inputs_and_results(client, pair):
    a, b = pair
    response = client.get(url(a.slug, b.slug))
    assert response.status_code == 200
    page = body(response)
    assert f'<a href="/c/{a.slug}/">r=8 on q,v</a>' in page
    assert f'<a href="/c/{b.slug}/">QLoRA r=64 all linear</a>' in page
    assert "the baseline" in page
    table = rows(response)
    for label in (
        "Model",
        "r",
        "lora_alpha",
        "target_modules",
        "use_dora",
        "use_rslora",
        "bias",
        "Base precision",
        "Optimizer",
        "Micro-batch size",
        "Sequence length",
        "Gradient checkpointing",
        "Attention kernel",
        "Trainable parameters",
        "% of base model",
        "Adapter file",
        "Base weights",
        "Optimizer states",
        "Activations",
        "Peak",
        "Fits",
    ):
        assert len(table[label]) == 2, label
    # Every number is the core's, formatted.
    for configuration in pair:
        result = configuration_estimate(configuration=configuration)
        assert f"{result.count.trainable_params:,}" in page
        assert fmt.size(result.adapter_file_bytes) in page
        assert fmt.gib(result.memory.total_bytes) in page
        for fit in result.fits:
            assert html.escape(fit.gpu) in page


def test_cells_that_differ_are_marked_with_a_class_and_a_visible_marker(client, pair):
    a, b = pair
    response = client.get(url(a.slug, b.slug))
    table = rows(response)
    for label in ("r", "target_modules", "Base precision", "Gradient checkpointing", "Trainable parameters", "Peak"):
        assert all(marked for marked, _ in table[label]), label
        assert all("≠" in cell and "(differs)" in cell for _, cell in table[label]), label
    for label in ("Model", "lora_alpha", "use_dora", "bias", "Optimizer", "Sequence length", "Logits & loss"):
        assert not any(marked for marked, _ in table[label]), label
        assert not any("≠" in cell for _, cell in table[label]), label
    assert '<tr class="differs"><th scope="row">r</th>' in body(response)
    assert re.search(r"\d+ of \d+ rows differ", body(response))


def test_identical_inputs_mark_nothing(client, alice):
    a = save(alice, "one", lora={"r": 16})
    b = save(alice, "two", lora={"r": 16})
    table = rows(client.get(url(a.slug, b.slug)))
    assert table
    assert not any(marked for cells in table.values() for marked, _ in cells)


def test_a_difference_in_only_one_of_three_is_marked_in_every_column(client, alice):
    cs = [save(alice, f"c{i}", lora={"r": r}) for i, r in enumerate((8, 8, 32))]
    table = rows(client.get(url(*(c.slug for c in cs))))
    assert [marked for marked, _ in table["r"]] == [True, True, True]
    assert [marked for marked, _ in table["lora_alpha"]] == [False, False, False]


def test_four_configurations_and_remove_links(client, alice):
    cs = [save(alice, f"c{i}", lora={"r": 4 * (i + 1)}) for i in range(4)]
    response = client.get(url(*(c.slug for c in cs)))
    assert response.status_code == 200
    page = body(response)
    assert page.count('scope="col" class="cfg"') == 4
    assert "Add another configuration" not in page  # four is the most
    remove = re.findall(r'href="(/compare/\?[^"]+)" aria-label="Remove c0', page)[0]
    assert parse_qs(urlsplit(html.unescape(remove)).query)["c"] == [c.slug for c in cs[1:]]


def test_with_two_there_is_no_remove_link_but_an_add_form(client, pair):
    page = body(client.get(url(*(c.slug for c in pair))))
    assert "Remove" not in page
    assert 'id="compare-add" name="c"' in page
    for c in pair:
        assert f'<input type="hidden" name="c" value="{c.slug}">' in page


@pytest.mark.parametrize("count", [0, 1])
def test_fewer_than_two_is_a_clear_400(client, pair, count):
    response = client.get(url(*(c.slug for c in pair[:count])))
    assert response.status_code == 400
    page = body(response)
    assert 'role="alert"' in page
    assert "Compare needs 2 to 4 different saved configurations" in page
    assert 'name="c"' in page  # a form to fix it


def test_more_than_four_is_a_clear_400(client, alice):
    cs = [save(alice, f"c{i}") for i in range(5)]
    response = client.get(url(*(c.slug for c in cs)))
    assert response.status_code == 400
    assert "at most 4 configurations side by side; 5 given" in body(response)


def test_repeats_and_blanks_are_dropped_then_counted(client, pair):
    a, _ = pair
    response = client.get(url(a.slug, a.slug, ""))
    assert response.status_code == 302
    assert response["Location"] == url(a.slug)
    assert client.get(response["Location"]).status_code == 400


def test_an_unknown_slug_is_a_clear_404_naming_it(client, pair):
    a, _ = pair
    response = client.get(url(a.slug, "nosuchslug"))
    assert response.status_code == 404
    page = body(response)
    assert "No saved configuration at “nosuchslug”" in page
    assert 'value="nosuchslug" spellcheck="false" autocapitalize="off" aria-invalid="true"' in page
    assert f'value="{a.slug}"' in page


def test_pasted_permalinks_land_on_the_clean_url(client, pair):
    a, b = pair
    response = client.get("/compare/", {"c": [f"https://lorasite.example/c/{a.slug}/", f"  /c/{b.slug.upper()}?x=1  "]})
    assert response.status_code == 302
    assert response["Location"] == url(a.slug, b.slug)


@pytest.mark.parametrize(
    "values",
    [
        ["<script>alert(1)</script>", "x"],
        ["/c/", "/c//"],
        ["a" * 500, "b"],
        ["%00", "\u202e"],
        ["../../etc/passwd", "c/../c"],
    ],
)
def test_garbage_is_never_a_500(client, pair, values):
    response = client.get("/compare/", {"c": values}, follow=True)
    assert response.status_code in (400, 404)
    assert "<script>alert" not in body(response)


def test_the_database_being_down_is_a_503_not_a_500(client, pair):
    with mock.patch("calculator.views.SavedConfiguration.objects.filter", side_effect=DatabaseError("down")):
        response = client.get(url(*(c.slug for c in pair)))
    assert response.status_code == 503
    assert "database cannot be reached" in body(response)


def test_a_configuration_that_no_longer_computes_is_shown_as_such(client, pair):
    a, b = pair
    real = configuration_plan

    def flaky(*, configuration, **options):
        if configuration.slug == b.slug:
            raise InputError.single("model", "no longer supported")
        return real(configuration=configuration, **options)

    with mock.patch("calculator.services.configuration_plan", side_effect=flaky):
        response = client.get(url(a.slug, b.slug))
    assert response.status_code == 200
    assert "These inputs no longer compute." in body(response)
    cells = rows(response)["Trainable parameters"]
    assert "—" in cells[1][1]


def test_anyones_permalinks_can_be_compared_without_signing_in(client, pair):
    anonymous = save(None, "anonymous one", lora={"r": 4})
    assert client.get(url(pair[0].slug, anonymous.slug)).status_code == 200


def test_the_permalink_page_offers_to_compare_with_another(client, pair):
    a, b = pair
    page = body(client.get(f"/c/{a.slug}/"))
    assert '<form class="compare-with" method="get" action="/compare/">' in page
    assert f'<input type="hidden" name="c" value="{a.slug}">' in page
    assert 'id="compare-with" name="c"' in page
    assert "compare-choices" not in page  # anonymous: no suggestions
    client.force_login(a.owner)
    page = body(client.get(f"/c/{a.slug}/"))
    assert f'<option value="{b.slug}">QLoRA r=64 all linear</option>' in page
    assert f'<option value="{a.slug}">' not in page
    # Submitting it (with a pasted permalink) lands on the comparison.
    response = client.get("/compare/", {"c": [a.slug, f"http://testserver/c/{b.slug}/"]}, follow=True)
    assert response.redirect_chain == [(url(a.slug, b.slug), 302)]
    assert response.status_code == 200


def test_rarely_set_inputs_get_a_row_only_when_one_of_them_sets_them(client, alice):
    plain = save(alice, "plain")
    fancy = save(
        alice,
        "fancy",
        lora={
            "target_modules": ["q_proj", "v_proj"],
            "modules_to_save": ["lm_head"],
            "layers_to_transform": [0, 1, 2, 3, 8],
            "rank_pattern": {"q_proj": 16},
        },
        training={"num_gpus": 2, "parallelism": "fsdp"},
    )
    assert not {"modules_to_save", "layers_to_transform", "rank_pattern", "GPUs (data parallel)"} & set(
        rows(client.get(url(plain.slug, save(alice, "plain too").slug)))
    )
    table = rows(client.get(url(plain.slug, fancy.slug)))
    assert "lm_head" in table["modules_to_save"][1][1]
    assert "0-3,8" in table["layers_to_transform"][1][1]
    assert "all" in table["layers_to_transform"][0][1]
    assert "q_proj: 16" in table["rank_pattern"][1][1]
    assert "2 \u00d7 fsdp" in table["GPUs (data parallel)"][1][1]
    for label in ("modules_to_save", "layers_to_transform", "rank_pattern", "GPUs (data parallel)"):
        assert all(marked for marked, _ in table[label]), label


def test_kbit_preparation_is_a_compared_input_when_one_sets_it(client, alice):
    a = save(alice, "plain", training={"base_dtype": "nf4"})
    b = save(alice, "prepared", training={"base_dtype": "nf4", "prepare_model_for_kbit_training": True})
    table = rows(client.get(url(a.slug, b.slug)))
    assert all(marked for marked, _ in table["prepare_model_for_kbit_training"])
    c = save(alice, "also plain", training={"base_dtype": "nf4"})
    assert "prepare_model_for_kbit_training" not in rows(client.get(url(a.slug, c.slug)))
