"""The fast paths give the answers of the slow ones: rank/alpha keys by dictionary lookup against Python's
``re`` (PEFT's own matching), and the advice's peaks from closed forms against direct estimates."""

import json
import random
import re
from pathlib import Path

import pytest

from calculator.core import Gpu, LoraSettings, TrainingSettings, advice, architecture_from_config, form
from calculator.core.key_patterns import KeyPatterns
from calculator.core.regex import compile_pattern
from calculator.core.runtime import PlanSettings

PRESETS = {p["slug"]: p for p in json.loads(Path("calculator/data/presets.json").read_text())}
PARTS = ["model", "layers", "0", "1", "12", "q_proj", "self_attn", "mlp", "a", "b-c", "q", "proj", "x_y"]


def _name(rng: random.Random) -> str:
    return ".".join(rng.choice(PARTS) for _ in range(rng.randint(1, 5)))


def _key(rng: random.Random) -> str:
    key = _name(rng)
    if rng.random() < 0.3:  # dots as wildcards where the name had letters
        key = "".join(c if rng.random() > 0.2 else "." for c in key)
    if rng.random() < 0.1:
        key += ".*"  # not plain: runs on the matcher
    if rng.random() < 0.05:
        key = "(q|k)_proj"
    return key


def test_key_lookup_agrees_with_peft_re_match_on_random_keys_and_names():
    rng = random.Random(7)
    matched = 0
    for _ in range(1500):
        keys = [(_key(rng), i) for i in range(rng.randint(1, 6))]
        lookup = KeyPatterns([(k, compile_pattern(rf"(.*\.)?({k})$"), v) for k, v in keys])
        for _ in range(20):
            name = _name(rng) if rng.random() < 0.5 else rng.choice(keys)[0].replace(".", rng.choice(".x"))
            if rng.random() < 0.3:
                name = f"{_name(rng)}.{name}"
            expected = next((v for k, v in keys if re.match(rf"(.*\.)?({k})$", name)), None)
            assert lookup.lookup(name) == expected, (keys, name)
            matched += expected is not None
    assert matched > 1000  # the cases exercise matches, not only misses


@pytest.mark.parametrize(
    ("slug", "lora", "training", "gpu_gib"),
    [
        (
            "llama-3.1-8b",
            LoraSettings(r=64, target_modules="all-linear"),
            TrainingSettings(batch_size=12, seq_len=4096),
            24,
        ),
        ("llama-3.1-8b", LoraSettings(r=16), TrainingSettings(batch_size=8, seq_len=8192, base_dtype="nf4"), 16),
        ("llama-3.1-8b", LoraSettings(r=8), TrainingSettings(batch_size=30, seq_len=2048), 40),
    ],
)
def test_advice_from_forms_equals_advice_from_direct_estimates(monkeypatch, slug, lora, training, gpu_gib):
    arch = architecture_from_config(PRESETS[slug]["config"])
    gpu = Gpu("test card", gpu_gib * 2**30, peak_bf16_tflops=100.0, price_per_hour=2.0)
    plan = PlanSettings(safety_margin=0.1)
    answers = []
    for after in (10**9, 0):  # never the form, then always
        monkeypatch.setattr(form, "FORM_AFTER", after)
        advice._advise.cache_clear()
        form._asked.clear()
        answers.append(advice.advise(arch, lora, training, gpu, plan))
    assert answers[0].changes  # the case exercises the remedies
    assert answers[0] == answers[1]


def _other(value):
    """A different value of the same kind, for a field of the settings dataclasses."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    return ("q_proj",) if value != ("q_proj",) else None


@pytest.mark.parametrize(
    ("settings", "getter", "varying"),
    [
        (LoraSettings(), "_LORA_STRUCTURE", {"r"}),
        (TrainingSettings(), "_TRAINING_STRUCTURE", {"batch_size", "seq_len", "num_gpus"}),
    ],
)
def test_the_warm_form_key_tells_structures_apart_as_structure_key_does(settings, getter, varying):
    """The advice finds a structure's form by attribute tuples (no dataclass copies); a field left out of them
    would hand one structure's form to another."""
    from dataclasses import fields, replace

    key = getattr(form, getter)
    base = form.structure_key(settings, TrainingSettings()) if getter == "_LORA_STRUCTURE" else None
    for f in fields(settings):
        changed = replace(settings, **{f.name: _other(getattr(settings, f.name))})
        same = key(changed) == key(settings)
        assert same == (f.name in varying), f.name
        if base is not None:  # the replace-based key agrees
            assert (form.structure_key(changed, TrainingSettings()) == base) == same, f.name


FLOPS_CASES = [
    ("llama-3.1-8b", {"target_modules": "all-linear"}),
    ("llama-3.1-8b", {"target_modules": ("q_proj", "v_proj", "embed_tokens", "lm_head"), "use_dora": True}),
    ("llama-3.1-8b", {"target_modules": "all-linear", "lora_bias": True, "lora_dropout": 0.1}),
    ("qwen3-30b-a3b", {"target_modules": "all-linear"}),
    ("qwen3-30b-a3b", {"target_modules": ("q_proj",), "target_parameters": ("mlp.experts.gate_up_proj",)}),
    ("gemma-3-4b", {"target_modules": "all-linear", "modules_to_save": ("lm_head",)}),
    ("qwen3.5-9b", {"target_modules": ("q_proj", "v_proj", "down_proj"), "layers_to_transform": (0, 3, 5)}),
]


@pytest.mark.parametrize(("slug", "settings"), FLOPS_CASES)
@pytest.mark.parametrize("checkpointing", [False, True])
def test_the_flops_of_a_new_rank_from_the_structures_line_equal_the_counted_ones(
    monkeypatch, slug, settings, checkpointing
):
    from calculator.core import flops
    from calculator.core.flops import flops_form, lora_flops_form
    from calculator.core.form import lora_count

    monkeypatch.setattr(flops, "LINE_AFTER", 0)  # the line from the first question on
    flops._lora_flops_form.cache_clear()
    arch = architecture_from_config(PRESETS.get(slug, {}).get("config") or _preset_2026(slug))
    training = TrainingSettings(gradient_checkpointing=checkpointing, attn_implementation="eager")
    for r in (1, 4, 7, 16, 100, 255):
        lora = LoraSettings(r=r, **settings)
        assert lora_flops_form(arch, lora, training) == flops_form(arch, lora_count(arch, lora, r), training)
    # the answers came from the line (a structure off the line would be counted, and this test would prove nothing)
    assert flops._rank_line(arch, LoraSettings(r=1, **settings), "eager", checkpointing) is not None


def _preset_2026(slug):
    presets = json.loads(Path("calculator/data/presets_2026.json").read_text())
    return next(p["config"] for p in presets if p["slug"] == slug)


def test_the_written_out_dot_product_is_the_sum_over_the_monomials():
    from calculator.core.form import dot, monomials

    rng = random.Random(3)
    for _ in range(3000):
        c = tuple(rng.randint(-(10**12), 10**12) for _ in range(10))
        b, s, r = rng.choice((1, 2, rng.randint(1, 64))), rng.randint(1, 32768), rng.randint(1, 4096)
        assert dot(c, b, s, r) == sum(x * m for x, m in zip(c, monomials(b, s, r), strict=True))
