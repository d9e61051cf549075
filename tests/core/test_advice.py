"""Advice: the largest micro-batch / sequence that fit, and what each remedy does to the peak."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from calculator.core import Gpu, LoraSettings, TrainingSettings, architecture_from_config
from calculator.core.advice import advise, largest_fitting
from calculator.core.estimate import memory_estimate
from calculator.core.lora import count_lora

PRESETS = {p["slug"]: p for p in json.loads(Path("calculator/data/presets.json").read_text())}
GIB = 2**30


def arch(slug):
    return architecture_from_config(PRESETS[slug]["config"])


def peak(a, lora, training):
    return memory_estimate(a, count_lora(a, lora), training).total_bytes


@pytest.mark.parametrize(
    ("f", "limit", "hi", "expected"),
    [
        (lambda x: 10 * x, 55, 100, 5),
        (lambda x: 10 * x, 5, 100, None),
        (lambda x: 10 * x, 10_000, 100, 100),
        (lambda x: x * x + 3 * x + 7, 10_000, 1_000, 98),
        (lambda x: 2**x, 1_000, 60, 9),
        (lambda x: (x // 7) * 7, 50, 1_000, 55),
    ],
)
def test_largest_fitting_finds_the_boundary_of_any_monotone_peak(f, limit, hi, expected):
    assert largest_fitting(f, limit, hi) == expected


def test_largest_fitting_needs_few_evaluations_for_an_affine_peak():
    calls = []

    def f(x):
        calls.append(x)
        return 1_000 + 37 * x

    assert largest_fitting(f, 1_000_000, 65_536) == (1_000_000 - 1_000) // 37
    assert len(calls) <= 6


LLAMA_QLORA = (
    LoraSettings(r=16, lora_alpha=32, target_modules="all-linear"),
    TrainingSettings(base_dtype="nf4", seq_len=4096),
)
RTX_4090 = Gpu("NVIDIA RTX 4090 24 GB", 24_564 * 2**20)


def test_a_configuration_that_does_not_fit_lists_remedies_with_their_peaks():
    a = arch("llama-3.1-8b")
    lora, training = LLAMA_QLORA
    advice = advise(a, lora, training, RTX_4090)
    assert not advice.fits
    assert advice.total_bytes == peak(a, lora, training)
    by_key = {c.key: c for c in advice.changes}
    gc = by_key["gradient_checkpointing"]
    assert gc.settings == (("training.gradient_checkpointing", True),)
    assert gc.total_bytes == peak(a, lora, replace(training, gradient_checkpointing=True))
    assert gc.fits
    assert "qlora" not in by_key  # already a 4-bit base
    for change in advice.changes:
        assert change.fits == (change.total_bytes <= RTX_4090.memory_bytes)


def test_max_batch_and_sequence_are_the_exact_boundaries():
    a = arch("llama-3.1-8b")
    lora, training = LLAMA_QLORA
    training = replace(training, gradient_checkpointing=True)
    advice = advise(a, lora, training, RTX_4090)
    assert advice.fits
    limit = RTX_4090.memory_bytes
    b = advice.max_batch_size
    assert peak(a, lora, replace(training, batch_size=b)) <= limit < peak(a, lora, replace(training, batch_size=b + 1))
    s = advice.max_seq_len
    assert s >= training.seq_len
    if s < advice.seq_len_limit:
        assert peak(a, lora, replace(training, seq_len=s)) <= limit < peak(a, lora, replace(training, seq_len=s + 1))
    assert advice.changes == ()


def test_the_sequence_search_stops_at_the_models_context():
    a = arch("smollm2-135m")
    advice = advise(a, LoraSettings(), TrainingSettings(seq_len=512), Gpu("big", 192 * GIB))
    assert advice.max_seq_len == advice.seq_len_limit == a.dims.max_position_embeddings


def test_a_smaller_rank_is_offered_only_when_it_brings_the_peak_under_the_limit():
    a = arch("qwen2.5-0.5b")
    lora = LoraSettings(r=4096, lora_alpha=8, target_modules="all-linear")
    training = TrainingSettings(gradient_checkpointing=True, seq_len=256)
    limit = peak(a, replace(lora, r=1024), training) + 1
    advice = advise(a, lora, training, Gpu("card", limit))
    rank = next(c for c in advice.changes if c.key == "rank")
    r = dict(rank.settings)["lora.r"]
    assert r >= 1024
    assert peak(a, replace(lora, r=r), training) <= limit < peak(a, replace(lora, r=r + 1), training)
    assert rank.fits


def test_nothing_fits_when_even_one_token_is_too_much():
    advice = advise(arch("llama-3.1-8b"), LoraSettings(), TrainingSettings(), Gpu("tiny", GIB))
    assert advice.max_batch_size is None
    assert advice.max_seq_len is None
    assert not any(c.key in ("batch_size", "seq_len") for c in advice.changes)
