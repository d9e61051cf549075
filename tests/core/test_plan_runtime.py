"""The GPU catalog, verdicts with a safety margin, and the time model."""

import json
import math
from dataclasses import replace

import pytest

from calculator.core import InputError, LoraSettings, TrainingSettings, count_lora
from calculator.core.errors import ErrorCollector
from calculator.core.flops import flops_form, training_flops
from calculator.core.gpus import (
    CATALOG_FILE,
    DEFAULT_GPUS,
    DEFAULT_SAFETY_MARGIN,
    DOES_NOT_FIT,
    FITS,
    GPU_SOURCES,
    TIGHT,
    Gpu,
    fits,
    safety_margin_bytes,
    verdict,
    with_catalog_specs,
)
from calculator.core.runtime import (
    DEFAULT_MFU,
    MFU_BY_FRAMEWORK,
    PlanSettings,
    default_mfu,
    time_estimate,
    validate_plan,
)

GIB = 2**30
MIB = 2**20
BY_NAME = {g.name: g for g in DEFAULT_GPUS}
# The seed catalog of lorasite 1.0 (migration 0002): names and nvidia-smi totals must not change meaning.
V1 = {
    "NVIDIA T4 16 GB": 15_360,
    "NVIDIA L4 24 GB": 23_034,
    "NVIDIA A10G 24 GB": 23_028,
    "NVIDIA RTX 3090 24 GB": 24_576,
    "NVIDIA RTX 4090 24 GB": 24_564,
    "NVIDIA RTX 5090 32 GB": 32_607,
    "NVIDIA V100 32 GB": 32_768,
    "NVIDIA A100 40 GB": 40_960,
    "NVIDIA L40S 48 GB": 46_068,
    "NVIDIA RTX 6000 Ada 48 GB": 49_140,
    "NVIDIA A100 80 GB": 81_920,
    "NVIDIA H100 80 GB": 81_559,
    "NVIDIA H200 141 GB": 143_771,
    "AMD MI300X 192 GB": 196_608,
}
NEW_CARDS = ("B200", "GB200", "GH200", "H200 NVL", "H100 NVL", "H100 PCIe", "RTX PRO 6000", "MI325X", "MI355X")


def test_the_catalog_keeps_every_v1_card_and_adds_the_cards_teams_rent_now():
    for name, mib in V1.items():
        assert BY_NAME[name].memory_bytes == mib * MIB
    for card in NEW_CARDS:
        assert any(card in g.name for g in DEFAULT_GPUS), card
    assert len({g.name for g in DEFAULT_GPUS}) == len(DEFAULT_GPUS)


def test_every_catalog_number_has_a_source_and_unknowns_say_so():
    rows = json.loads(CATALOG_FILE.read_text())["gpus"]
    for row in rows:
        source = GPU_SOURCES[row["name"]]
        assert source.memory
        assert source.tflops
        assert source.price
        if row["peak_bf16_tflops"] is None and row["peak_fp16_tflops"] is None:
            assert source.tflops.startswith("unknown")
        else:
            assert "http" in source.tflops
        if row["price_per_hour"] is None:
            assert source.price.startswith("unknown")
            assert row["price_date"] is None
        else:
            assert "http" in source.price
            assert row["price_date"] >= "2026-01-01"
            assert 0.05 < row["price_per_hour"] < 20
        for tflops in (row["peak_bf16_tflops"], row["peak_fp16_tflops"]):
            assert tflops is None or 10 < tflops < 10_000  # dense, not sparse, not FLOP/s


def test_cards_without_bf16_have_an_fp16_peak_only():
    for name in ("NVIDIA T4 16 GB", "NVIDIA V100 32 GB"):
        gpu = BY_NAME[name]
        assert gpu.peak_flops("bf16") is None
        assert gpu.peak_flops("fp16") == gpu.peak_fp16_tflops * 1e12
    assert BY_NAME["NVIDIA H100 80 GB"].peak_flops("fp32") is None


def test_an_admin_catalog_of_names_and_memory_gets_the_seed_specs():
    (filled,) = with_catalog_specs((Gpu("NVIDIA H100 80 GB", 80 * GIB),))
    assert filled.memory_bytes == 80 * GIB
    assert filled.peak_bf16_tflops == BY_NAME["NVIDIA H100 80 GB"].peak_bf16_tflops
    assert filled.price_per_hour == BY_NAME["NVIDIA H100 80 GB"].price_per_hour
    assert with_catalog_specs((Gpu("My card", GIB, 1.0, 2.0),)) == (Gpu("My card", GIB, 1.0, 2.0),)


@pytest.mark.parametrize(
    ("total", "expected"),
    [(0, FITS), (85 * GIB, FITS), (85 * GIB + 1, TIGHT), (100 * GIB, TIGHT), (100 * GIB + 1, DOES_NOT_FIT)],
)
def test_three_bands_fits_only_with_the_margin_to_spare(total, expected):
    memory = 100 * GIB
    assert safety_margin_bytes(memory) == 15 * GIB == int(memory * DEFAULT_SAFETY_MARGIN)
    assert verdict(total, memory) == expected
    (fit,) = fits(total, (Gpu("card", memory),))
    assert (fit.verdict, fit.margin_bytes, fit.fits) == (expected, 15 * GIB, total <= memory)


def test_the_issue_micro_batch_of_two_is_tight_not_green(llama8b):
    """Issue 9: checkpointing and micro-batch 2 left 0.82 GiB on a 24 GB card, shown as a plain fit."""
    from calculator.core.estimate import memory_estimate

    lora = LoraSettings(r=16, lora_alpha=32, target_modules="all-linear")
    training = TrainingSettings(base_dtype="nf4", seq_len=4096, batch_size=2, gradient_checkpointing=True)
    total = memory_estimate(llama8b, count_lora(llama8b, lora), training).total_bytes
    card = BY_NAME["NVIDIA RTX 4090 24 GB"]
    assert 0.5 * GIB < card.memory_bytes - total < GIB
    assert verdict(total, card.memory_bytes) == TIGHT


def _time(arch, lora, training, plan, gpu):
    count = count_lora(arch, lora)
    return time_estimate(flops_form(arch, count, training), training, plan, gpu)


def test_time_is_flops_over_peak_times_mfu(llama8b):
    lora = LoraSettings(r=16, target_modules="all-linear")
    training = TrainingSettings(base_dtype="nf4", batch_size=2, seq_len=4096, gradient_checkpointing=True, num_gpus=2)
    plan = PlanSettings(gradient_accumulation_steps=8, dataset_tokens=50_000_000, epochs=3)
    gpu = BY_NAME["NVIDIA H100 80 GB"]
    t = _time(llama8b, lora, training, plan, gpu)
    micro_batch = training_flops(llama8b, count_lora(llama8b, lora), training).total
    assert t.mfu == DEFAULT_MFU["qlora"]
    assert t.peak_flops == 989e12
    assert t.step_seconds == pytest.approx(8 * micro_batch / (989e12 * t.mfu))
    assert t.tokens_per_step == 2 * 4096 * 8 * 2
    assert t.tokens_per_second == pytest.approx(t.tokens_per_step / t.step_seconds)
    assert t.flops_per_token == round(micro_batch / (2 * 4096))
    sequences = math.ceil(3 * math.ceil(50_000_000 / 4096))
    assert t.steps == math.ceil(sequences / (2 * 8 * 2))
    assert t.total_seconds == pytest.approx(t.steps * t.step_seconds)
    assert t.hours == pytest.approx(t.total_seconds / 3600)


def test_unknown_peaks_and_datasets_leave_those_numbers_out(llama8b):
    lora = LoraSettings()
    no_peak = _time(llama8b, lora, TrainingSettings(), PlanSettings(dataset_tokens=10**6), BY_NAME["NVIDIA L4 24 GB"])
    assert no_peak.flops_per_token > 0
    assert no_peak.steps is not None
    assert no_peak.tokens_per_second is None
    assert no_peak.total_seconds is None
    no_data = _time(llama8b, lora, TrainingSettings(), PlanSettings(), BY_NAME["NVIDIA H100 80 GB"])
    assert no_data.tokens_per_second is not None
    assert no_data.total_seconds is None
    assert no_data.steps is None
    fp16 = _time(llama8b, lora, TrainingSettings(base_dtype="fp16"), PlanSettings(), BY_NAME["NVIDIA T4 16 GB"])
    assert fp16.peak_flops == 65e12


def test_examples_times_mean_length_is_the_dataset(llama8b):
    gpu = BY_NAME["NVIDIA H100 80 GB"]
    by_tokens = _time(llama8b, LoraSettings(), TrainingSettings(), PlanSettings(dataset_tokens=6_000_000), gpu)
    by_examples = PlanSettings(dataset_examples=20_000, mean_example_tokens=300)
    assert _time(llama8b, LoraSettings(), TrainingSettings(), by_examples, gpu) == by_tokens


def test_mfu_defaults_by_method_and_framework_and_the_override(llama8b):
    assert default_mfu(TrainingSettings()) == MFU_BY_FRAMEWORK["transformers"]["lora"]
    assert default_mfu(TrainingSettings(base_dtype="nf4")) == MFU_BY_FRAMEWORK["transformers"]["qlora"]
    assert default_mfu(TrainingSettings(), full=True) == MFU_BY_FRAMEWORK["transformers"]["full"]
    assert MFU_BY_FRAMEWORK["torchtune"]["lora"] > MFU_BY_FRAMEWORK["transformers"]["lora"]
    gpu = BY_NAME["NVIDIA H100 80 GB"]
    slow = _time(llama8b, LoraSettings(), TrainingSettings(), PlanSettings(mfu=0.1), gpu)
    fast = _time(llama8b, LoraSettings(), TrainingSettings(), PlanSettings(mfu=0.5), gpu)
    assert fast.tokens_per_second == pytest.approx(5 * slow.tokens_per_second)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"gradient_accumulation_steps": 0}, "training.gradient_accumulation_steps"),
        ({"safety_margin": 0.95}, "training.safety_margin"),
        ({"epochs": 0}, "training.epochs"),
        ({"mfu": 1.5}, "training.mfu"),
        ({"dataset_tokens": 0}, "training.dataset_tokens"),
        ({"dataset_tokens": 10, "dataset_examples": 10, "mean_example_tokens": 5}, "training.dataset_examples"),
        ({"dataset_examples": 10}, "training.mean_example_tokens"),
    ],
)
def test_bad_planning_inputs_name_the_field(changes, field):
    errors = ErrorCollector()
    validate_plan(replace(PlanSettings(), **changes), errors)
    with pytest.raises(InputError) as raised:
        errors.raise_if_any()
    assert field in raised.value.errors
