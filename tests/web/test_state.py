"""The URL-state codec, the form's reading of a query, error mapping, and the layout helpers."""

import json

import pytest
from django.http import QueryDict
from hypothesis import given, settings
from hypothesis import strategies as st

from calculator import services
from calculator.core.gpus import Gpu, fits
from calculator.schemas import EstimateRequest
from calculator.services import compute_estimate, invalidate_catalog
from calculator.web import formatting as fmt
from calculator.web.calculator import compute
from calculator.web.chart import memory_chart
from calculator.web.errors import form_field
from calculator.web.form import read
from calculator.web.form import read as parse
from calculator.web.state import query_of_request, read_config, read_layers, write_layers
from calculator.web.targets import carry_over, quick_picks

LLAMA = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PHI3 = ("o_proj", "qkv_proj", "gate_up_proj", "down_proj")
GPT2 = ("c_attn", "c_proj", "c_fc")


def q(text):
    return QueryDict(text)


@pytest.mark.parametrize(
    "query",
    [
        "preset=llama-3.1-8b",
        "preset=llama-3.1-8b&target_modules=q_proj&target_modules=v_proj&r=16",
        "preset=llama-3.1-8b&num_hidden_layers=16&target_modules=all-linear&r=64&lora_alpha=128&use_rslora=true",
        "preset=gemma-2-2b&tie_word_embeddings=false&bias=all&modules_to_save=lm_head&layers_to_transform=0-3,8",
        "preset=qwen2.5-7b&base_dtype=nf4&double_quant=false&optimizer=paged_adamw_8bit&batch_size=4&seq_len=4096"
        "&gradient_checkpointing=true&attn_implementation=eager&adapters=5",
        "hidden_size=1024&intermediate_size=4096&num_hidden_layers=8&num_attention_heads=16&vocab_size=32000",
    ],
)
def test_the_canonical_query_is_a_fixed_point(db, query):
    parsed = parse(q(query))
    assert parsed.ok, parsed.errors
    assert parsed.canonical == query
    assert parse(q(parsed.canonical)).canonical == query


def test_defaults_are_left_out_of_the_canonical_query(db):
    parsed = parse(q("preset=llama-3.1-8b&r=8&lora_alpha=8.0&bias=none&seq_len=2048&hidden_size=4096"))
    assert parsed.canonical == "preset=llama-3.1-8b"


@settings(max_examples=25, deadline=None)
@given(
    r=st.integers(1, 512),
    alpha=st.sampled_from([1, 8, 16.5, 32]),
    targets=st.sets(st.sampled_from(LLAMA), min_size=1),
    base=st.sampled_from(["bf16", "fp16", "nf4", "int8"]),
    seq=st.integers(1, 16384),
    checkpointing=st.booleans(),
)
def test_a_flat_query_means_the_same_as_the_nested_api_request(
    django_db_setup, django_db_blocker, r, alpha, targets, base, seq, checkpointing
):
    request = {
        "model": {"preset": "llama-3.2-1b"},
        "lora": {"r": r, "lora_alpha": alpha, "target_modules": sorted(targets)},
        "training": {"base_dtype": base, "seq_len": seq, "gradient_checkpointing": checkpointing},
    }
    with django_db_blocker.unblock():
        invalidate_catalog()
        reading, results = compute(q(query_of_request(request)))
        assert reading.ok, reading.errors
        assert results is not None
        assert results.estimate == compute_estimate(request=EstimateRequest.model_validate(request))


def test_a_pasted_config_keeps_only_the_keys_that_change_the_numbers():
    config = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "torch_dtype": "float32", "architectures": ["x"]}
    reduced, error = read_config(json.dumps(config))
    assert error == ""
    assert reduced == {"model_type": "gpt2", "n_embd": 768, "n_layer": 12}


@pytest.mark.parametrize("text", ["{oops", "[]", '"x"', "{" + " " * 300_000 + "}"])
def test_a_bad_pasted_config_says_what_is_wrong(text):
    reduced, error = read_config(text)
    assert reduced is None
    assert error


@pytest.mark.parametrize(
    ("path", "overrides", "expected"),
    [
        ("page.gpu", (), ("gpu", "")),
        ("lora.r", (), ("r", "")),
        ("training.seq_len", (), ("seq_len", "")),
        ("model.preset", (), ("preset", "")),
        ("model", (), ("preset", "")),
        ("model.custom.hidden_size", (), ("hidden_size", "")),
        ("model.hf_config.hidden_size", (), ("hf_config", "hidden_size: ")),
        ("model.hf_config.hidden_size", ("hidden_size",), ("hidden_size", "")),
        ("model.hf_config.n_embd", ("hidden_size",), ("hidden_size", "")),
        ("model.hf_config.model_type", (), ("hf_config", "model_type: ")),
        ("something", (), ("form", "")),
    ],
)
def test_error_paths_map_to_form_fields(path, overrides, expected):
    assert form_field(path, overrides, "gpt2" if "n_embd" in path else "llama") == expected


def test_layer_ranges_read_and_write():
    assert read_layers("0-3, 8,10-11") == [0, 1, 2, 3, 8, 10, 11]
    assert write_layers([0, 1, 2, 3, 8, 10, 11]) == "0-3,8,10-11"
    assert write_layers([5]) == "5"
    assert read_layers("3-1") is None
    assert read_layers("x") is None


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (LLAMA, {"qv": ("q_proj", "v_proj"), "attention": LLAMA[:4], "all": LLAMA}),
        (PHI3, {"qv": ("qkv_proj",), "attention": ("o_proj", "qkv_proj"), "all": PHI3}),
        (GPT2, {"qv": ("c_attn",), "attention": ("c_attn", "c_proj"), "all": GPT2}),
    ],
)
def test_quick_picks_use_each_families_names(names, expected):
    assert quick_picks(names) == expected


@pytest.mark.parametrize(
    ("selected", "names", "expected"),
    [
        (["q_proj", "v_proj"], LLAMA, ["q_proj", "v_proj"]),
        (["q_proj", "v_proj"], PHI3, ["qkv_proj"]),
        (["q_proj", "v_proj"], GPT2, ["c_attn"]),
        (list(LLAMA), PHI3, list(PHI3)),
        (["qkv_proj", "o_proj"], LLAMA, ["q_proj", "k_proj", "v_proj", "o_proj"]),
        (["c_fc"], LLAMA, ["gate_proj", "up_proj", "down_proj"]),
        (["all-linear"], GPT2, ["all-linear"]),
        (["unknown"], LLAMA, ["q_proj", "v_proj"]),
    ],
)
def test_a_module_choice_carries_over_to_another_family(selected, names, expected):
    assert carry_over(selected, names) == expected


def fit(name, gib, total_gib=16, margin=0.15):
    (card,) = fits(total_gib * 2**30, (Gpu(name, gib * 2**30),), margin)
    return card


def x_of(line):
    return float(line["x"].rstrip("%"))


def test_each_gpu_line_stands_at_its_own_capacity_coloured_by_its_verdict():
    gib = 2**30
    cards = (fit("A 24 GB", 17), fit("B 24 GB", 24), fit("C 80 GB", 80))
    chart = memory_chart([("a", "A", 10 * gib), ("b", "B", 6 * gib), ("c", "C", 0)], 16 * gib, cards, cards[1])
    assert [s["key"] for s in chart["segments"]] == ["a", "b"]
    lines = chart["lines"]
    assert [line["label"] for line in lines] == ["24 GB", "24 GB"]  # 80 GB lies beyond the axis
    assert x_of(lines[0]) < x_of(lines[1])  # 17 GiB and 24 GiB: two lines, each at its own capacity
    assert [line["band"] for line in lines] == ["tight", "ok"]  # 16 of 17 GiB is inside the margin
    assert lines[1]["chosen"]


def test_the_chosen_gpus_safety_margin_is_a_band_below_its_line():
    cards = (fit("A 24 GB", 24, margin=0.25),)
    chart = memory_chart([("a", "A", 16 * 2**30)], 16 * 2**30, cards, cards[0])
    band = chart["margin"]
    (line,) = chart["lines"]
    assert float(band["x"].rstrip("%")) + float(band["w"].rstrip("%")) == pytest.approx(x_of(line), abs=0.02)
    assert float(band["w"].rstrip("%")) == pytest.approx(x_of(line) * 0.25, abs=0.5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.50 KiB"), (160 * 2**20, "160 MiB"), (int(48.99 * 2**30), "49.0 GiB")],
)
def test_sizes_are_short_binary_units(value, expected):
    assert fmt.size(value) == expected


def test_counts_and_percentages():
    assert fmt.count(41943040) == "41,943,040"
    assert fmt.short_count(8_030_261_248) == "8.03 B"
    assert fmt.short_count(124_439_808) == "124 M"
    assert fmt.percent(0.0424) == "0.0424%"
    assert fmt.percent(0.522) == "0.522%"


@pytest.mark.parametrize(
    "query",
    [
        "preset=llama-3.1-8b&r=16&target_modules=q_proj&target_modules=v_proj&base_dtype=nf4&seq_len=4096",
        "preset=llama-3.1-8b&framework=trl&gradient_checkpointing=true&batch_size=4&gpu=NVIDIA+H100+80GB",
        "hidden_size=2048&intermediate_size=8192&num_hidden_layers=16&num_attention_heads=16&vocab_size=32000",
    ],
)
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"batch_size": 1},  # the default: the field leaves the query
        {"batch_size": 8, "gradient_accumulation_steps": 4},
        {"seq_len": 1234, "r": 2},
        {"gpu": "NVIDIA H100 80GB"},
        {"optimizer": "paged_adamw_8bit", "base_dtype": "nf4", "double_quant": True},
        {"framework": "torchtune"},  # moves the training fields' defaults
        {"target_modules": ("q_proj", "k_proj")},
    ],
)
def test_a_results_panels_links_are_the_canonical_query_of_the_changed_state(db, query, changes):
    """`Links` re-encodes only the changed fields; its bytes are those of the whole changed state, encoded anew
    (and, read back, the state has the changes)."""
    from calculator.web import state

    reading = read(QueryDict(query))
    targets = changes.get("target_modules", reading.values.get("target_modules"))
    whole = state.Links(
        source=reading.source.pair,
        dims=reading.dims,
        targets=list(targets) if isinstance(targets, tuple) else targets,
        values={**reading.values, **changes},
        default_gpu=services.default_gpu().name,
        defaults=reading.framework.defaults if reading.framework else None,
    )
    link = reading.links()(changes)
    assert link == whole({})
    changed = read(QueryDict(link))
    for name, value in changes.items():
        expected = list(value) if name == "target_modules" else value
        assert changed.values[name] == expected, name
