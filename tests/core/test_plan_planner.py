"""Which GPU to rent, goal seeking, the sweep, and advice people can follow (issue 9)."""

from dataclasses import replace

import pytest

from calculator.core import InputError, LoraSettings, TrainingSettings, count_lora
from calculator.core.advice import advise
from calculator.core.estimate import memory_estimate
from calculator.core.gpus import DEFAULT_GPUS, DOES_NOT_FIT, FITS, TIGHT, Gpu, safety_margin_bytes, verdict
from calculator.core.planner import GOALS, cost_table, find_gpu, plan, solve_goal, sweep
from calculator.core.runtime import PlanSettings
from tests.core.conftest import preset_arch

GIB = 2**30
BY_NAME = {g.name: g for g in DEFAULT_GPUS}
RTX_4090 = BY_NAME["NVIDIA RTX 4090 24 GB"]
# Issue 9's new user: Llama-3.1-8B, QLoRA, r=16, all-linear, 4,096 tokens x 4, a 24 GB card
ISSUE_LORA = LoraSettings(r=16, lora_alpha=32, target_modules="all-linear")
ISSUE_TRAINING = TrainingSettings(base_dtype="nf4", seq_len=4096, batch_size=4)
DATASET = PlanSettings(dataset_tokens=10_000_000)  # one epoch of 10M tokens


def peak(arch, lora, training):
    return memory_estimate(arch, count_lora(arch, lora), training).total_bytes


def test_the_issue_example_first_advice_is_checkpointing_with_accumulation_that_fits_with_the_margin(llama8b):
    advice = advise(llama8b, ISSUE_LORA, ISSUE_TRAINING, RTX_4090, DATASET)
    assert advice.verdict == DOES_NOT_FIT
    first = advice.changes[0]
    assert first.changes == {
        "training.gradient_checkpointing": True,
        "training.batch_size": 1,
        "training.gradient_accumulation_steps": 4,  # the same effective batch of 4 sequences
    }
    assert first.verdict == FITS
    applied = replace(ISSUE_TRAINING, gradient_checkpointing=True, batch_size=1)
    assert first.total_bytes == peak(llama8b, ISSUE_LORA, applied)
    assert first.total_bytes <= RTX_4090.memory_bytes - safety_margin_bytes(RTX_4090.memory_bytes)
    # its time and cost per epoch of 10M tokens on this card
    assert 2 * 3600 < first.total_seconds < 8 * 3600
    assert first.cost == pytest.approx(first.total_seconds / 3600 * RTX_4090.price_per_hour)


def test_advice_never_repeats_a_change_already_in_effect(llama8b):
    training = replace(ISSUE_TRAINING, gradient_checkpointing=True, optimizer="paged_adamw_8bit", seq_len=16384)
    advice = advise(llama8b, ISSUE_LORA, training, RTX_4090, DATASET)
    assert advice.changes
    for change in advice.changes:
        settings = change.changes
        assert "training.gradient_checkpointing" not in settings
        assert "training.optimizer" not in settings
        assert "training.base_dtype" not in settings  # QLoRA is already on


def test_advice_is_ordered_by_verdict_then_by_what_it_costs_the_user(llama8b):
    advice = advise(llama8b, ISSUE_LORA, ISSUE_TRAINING, RTX_4090, DATASET)
    order = {FITS: 0, TIGHT: 1, DOES_NOT_FIT: 2}
    keys = [(order[c.verdict], c.tier) for c in advice.changes]
    assert keys == sorted(keys)
    fitting = [c for c in advice.changes if c.verdict == FITS]
    assert fitting
    assert all(c.verdict == verdict(c.total_bytes, RTX_4090.memory_bytes) for c in advice.changes)
    # truncating the data is the last resort among the rows that fit
    assert fitting[-1].key.endswith("seq_len") or all(c.tier < 4 for c in fitting)
    tier_zero = [c.cost for c in fitting if c.tier == 0]
    assert tier_zero == sorted(tier_zero)


def test_a_configuration_that_fits_with_the_margin_gets_no_remedies(llama8b):
    training = replace(ISSUE_TRAINING, gradient_checkpointing=True, batch_size=1)
    advice = advise(llama8b, ISSUE_LORA, training, RTX_4090, DATASET)
    assert advice.verdict == FITS
    assert advice.changes == ()


def test_more_gpus_with_fsdp_is_offered_when_sharding_is_what_fits():
    arch = preset_arch("llama-3.1-70b")
    lora = LoraSettings(r=16, target_modules="all-linear")
    training = TrainingSettings(gradient_checkpointing=True, optimizer="paged_adamw_8bit", base_dtype="nf4")
    gpu = BY_NAME["NVIDIA RTX 4090 24 GB"]
    advice = advise(arch, lora, training, gpu, DATASET)
    sharded = [c for c in advice.changes if "gpus" in c.key.split("+")]
    assert sharded
    n = sharded[0].changes["training.num_gpus"]
    assert sharded[0].changes["training.parallelism"] == "fsdp"
    fsdp = replace(training, parallelism="fsdp")
    assert peak(arch, lora, replace(fsdp, num_gpus=n)) <= gpu.memory_bytes - safety_margin_bytes(gpu.memory_bytes)
    assert peak(arch, lora, replace(fsdp, num_gpus=n - 1)) > gpu.memory_bytes - safety_margin_bytes(gpu.memory_bytes)


def test_which_gpu_to_rent_lists_every_card_sorted_by_cost_with_the_cheapest_marked(llama8b):
    training = replace(ISSUE_TRAINING, gradient_checkpointing=True, batch_size=1)
    plan_settings = replace(DATASET, gradient_accumulation_steps=4)
    rows = cost_table(llama8b, ISSUE_LORA, training, plan_settings, DEFAULT_GPUS)
    assert {r.gpu for r in rows} == {g.name for g in DEFAULT_GPUS}
    priced = [r for r in rows if r.total is not None]
    assert [r.total for r in priced] == sorted(r.total for r in priced)
    assert rows[: len(priced)] == tuple(priced)  # priced rows first
    (cheapest,) = [r for r in rows if r.cheapest]
    assert cheapest.verdict == FITS
    assert cheapest.total == min(r.total for r in priced if r.verdict == FITS)
    for r in priced:
        assert r.total == pytest.approx(r.hours * r.gpus_needed * r.price_per_hour)
    t4 = next(r for r in rows if r.gpu == "NVIDIA T4 16 GB")
    assert t4.gpus_needed is None
    assert t4.verdict == DOES_NOT_FIT


def test_with_fsdp_a_card_too_small_for_one_copy_gets_the_fewest_gpus_that_fit():
    arch = preset_arch("llama-3.1-70b")
    lora = LoraSettings(r=16, target_modules="all-linear")
    training = TrainingSettings(gradient_checkpointing=True, parallelism="fsdp")
    rows = {r.gpu: r for r in cost_table(arch, lora, training, DATASET, DEFAULT_GPUS)}
    row = rows["NVIDIA A100 80 GB"]
    gpu = BY_NAME["NVIDIA A100 80 GB"]
    limit = gpu.memory_bytes - safety_margin_bytes(gpu.memory_bytes)
    n = row.gpus_needed
    assert n is not None
    assert n > 1
    assert (
        peak(arch, lora, replace(training, num_gpus=n)) <= limit < peak(arch, lora, replace(training, num_gpus=n - 1))
    )
    assert row.hours < rows["NVIDIA H100 80 GB"].hours * 4  # more GPUs share the work


@pytest.mark.parametrize("goal", GOALS)
def test_each_goal_is_the_exact_boundary_with_the_margin(llama8b, goal):
    training = replace(ISSUE_TRAINING, gradient_checkpointing=True, batch_size=1, parallelism="fsdp")
    gpu = Gpu("card", 24 * GIB)
    answer = solve_goal(llama8b, ISSUE_LORA, training, DATASET, gpu, goal)
    limit = gpu.memory_bytes - safety_margin_bytes(gpu.memory_bytes)
    assert answer.limit_bytes == limit
    assert answer.value is not None
    assert answer.total_bytes == peak(llama8b, answer.lora, answer.training) <= limit
    assert answer.verdict == FITS
    if goal == "min_gpus":
        worse = replace(answer.training, num_gpus=answer.value - 1)
        assert answer.value == 1 or peak(llama8b, answer.lora, worse) > limit
        return
    bigger = {
        "max_batch_size": (answer.lora, replace(answer.training, batch_size=answer.value + 1)),
        "max_seq_len": (answer.lora, replace(answer.training, seq_len=answer.value + 1)),
        "max_r": (replace(answer.lora, r=answer.value + 1), answer.training),
    }[goal]
    assert peak(llama8b, *bigger) > limit


def test_a_goal_that_nothing_meets_says_none(llama8b):
    answer = solve_goal(llama8b, ISSUE_LORA, ISSUE_TRAINING, DATASET, Gpu("tiny", GIB), "max_batch_size")
    assert answer.value is None
    assert answer.verdict == DOES_NOT_FIT
    with pytest.raises(InputError):
        solve_goal(llama8b, ISSUE_LORA, ISSUE_TRAINING, DATASET, RTX_4090, "max_epochs")


@pytest.mark.parametrize("variable", ["r", "seq_len", "batch_size"])
def test_the_sweep_rows_are_the_estimates_at_each_value(llama8b, variable):
    training = replace(ISSUE_TRAINING, gradient_checkpointing=True, batch_size=1)
    rows = sweep(llama8b, ISSUE_LORA, training, DATASET, RTX_4090, variable, (1, 2, 64, 512))
    for row in rows:
        lora = replace(ISSUE_LORA, r=row.value) if variable == "r" else ISSUE_LORA
        t = replace(training, **{variable: row.value}) if variable != "r" else training
        assert row.total_bytes == peak(llama8b, lora, t)
        assert row.verdict == verdict(row.total_bytes, RTX_4090.memory_bytes)
    assert [r.total_bytes for r in rows] == sorted(r.total_bytes for r in rows)
    assert [r.total_seconds for r in rows] == sorted(r.total_seconds for r in rows)


def test_plan_puts_verdicts_time_costs_and_advice_together(llama8b):
    p = plan(llama8b, ISSUE_LORA, ISSUE_TRAINING, DATASET, RTX_4090, DEFAULT_GPUS)
    assert p.memory.total_bytes == peak(llama8b, ISSUE_LORA, ISSUE_TRAINING)
    assert p.verdict == DOES_NOT_FIT
    assert len(p.fits) == len(DEFAULT_GPUS)
    assert {f.verdict for f in p.fits} >= {FITS, DOES_NOT_FIT}
    assert p.time.gpu == RTX_4090.name
    assert p.time.total_seconds is not None
    assert p.advice.changes
    assert len(p.costs) == len(DEFAULT_GPUS)
    with pytest.raises(InputError) as raised:
        plan(llama8b, ISSUE_LORA, ISSUE_TRAINING, PlanSettings(epochs=-1), RTX_4090, DEFAULT_GPUS)
    assert "training.epochs" in raised.value.errors


def test_find_gpu_names_the_field_for_an_unknown_card():
    assert find_gpu("NVIDIA RTX 4090 24 GB", DEFAULT_GPUS) == RTX_4090
    assert find_gpu(None, DEFAULT_GPUS, RTX_4090) == RTX_4090
    with pytest.raises(InputError) as raised:
        find_gpu("Voodoo 2", DEFAULT_GPUS)
    assert "training.gpu" in raised.value.errors


@pytest.mark.parametrize(
    ("written", "card"),
    [
        ("NVIDIA RTX 4090", "NVIDIA RTX 4090 24 GB"),
        ("rtx 4090", "NVIDIA RTX 4090 24 GB"),
        ("RTX 4090 24GB", "NVIDIA RTX 4090 24 GB"),
        ("H100", "NVIDIA H100 80 GB"),
        ("NVIDIA H100 NVL", "NVIDIA H100 NVL 94 GB"),
        ("h200 nvl", "NVIDIA H200 NVL 141 GB"),
        ("MI300X", "AMD MI300X 192 GB"),
        ("A100 80 GB", "NVIDIA A100 80 GB"),
        ("RTX PRO 6000", "NVIDIA RTX PRO 6000 Blackwell 96 GB"),
    ],
)
def test_a_gpu_written_as_people_write_it_finds_its_one_card(written, card):
    assert find_gpu(written, DEFAULT_GPUS).name == card


@pytest.mark.parametrize("written", ["A100", "RTX", "6000"])
def test_a_gpu_name_that_fits_several_cards_is_refused_with_the_candidates(written):
    with pytest.raises(InputError) as raised:
        find_gpu(written, DEFAULT_GPUS)
    message = raised.value.errors["training.gpu"][0]
    assert "fits several cards" in message
    assert written.casefold() in message.casefold()
