"""Issue 9 in the API: the planning fields of api.md v1.1, `time`, `cost`, `advice`, verdicts with a safety
margin, ``POST /api/v1/plan/``, the GPU catalog with TFLOPS and dated prices (admin-editable), and 400s that
name the field. The numbers are the core's (tests/core/test_plan_*); these check the wiring."""

import pytest

from calculator.api.openapi import EstimateResponse, PlanResponse
from calculator.core.gpus import DEFAULT_SAFETY_MARGIN
from calculator.models import GpuModel
from calculator.services import invalidate_catalog

pytestmark = pytest.mark.django_db
RTX_4090 = "NVIDIA RTX 4090 24 GB"
# Issue 9's new user: Llama-3.1-8B, QLoRA, r=16, all-linear, 4,096 tokens x 4, a 24 GB card
ISSUE = {
    "model": {"preset": "llama-3.1-8b"},
    "lora": {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"},
    "training": {"base_dtype": "nf4", "seq_len": 4096, "batch_size": 4, "gpu": RTX_4090, "dataset_tokens": 10**7},
}


def post(client, body, url="/api/v1/estimate/"):
    return client.post(url, body, content_type="application/json")


def with_training(**training):
    return {**ISSUE, "training": {**ISSUE["training"], **training}}


def test_the_estimate_has_time_cost_advice_and_verdicts(client):
    data = post(client, ISSUE).json()
    EstimateResponse.model_validate(data)
    assert {"gpu", "flops_per_token", "tokens_per_second", "step_seconds", "total_seconds"} <= set(data["time"])
    assert data["time"]["gpu"] == RTX_4090
    assert data["time"]["total_seconds"] > 0
    names = {f["gpu"] for f in data["fits"]}
    assert {c["gpu"] for c in data["cost"]} == names  # one entry per catalog card
    assert {"gpu", "gpus_needed", "hours", "price_per_hour", "total"} <= set(data["cost"][0])
    assert all(f["verdict"] in ("fits", "tight", "does_not_fit") for f in data["fits"])
    for f in data["fits"]:
        assert f["margin_bytes"] == int(f["memory_bytes"] * DEFAULT_SAFETY_MARGIN)
        assert f["fits"] == (f["verdict"] != "does_not_fit")  # v1's meaning is unchanged
    assert data["gpu"] == {
        "name": RTX_4090,
        "verdict": "does_not_fit",
        "margin_bytes": next(f["margin_bytes"] for f in data["fits"] if f["gpu"] == RTX_4090),
        "safety_margin": DEFAULT_SAFETY_MARGIN,
    }


def test_the_issue_example_first_advice_is_a_combination_that_fits_with_time_and_cost(client):
    advice = post(client, ISSUE).json()["advice"]
    first = advice[0]
    assert first["changes"] == {
        "training.gradient_checkpointing": True,
        "training.batch_size": 1,
        "training.gradient_accumulation_steps": 4,
    }
    assert first["verdict"] == "fits"
    assert first["total_seconds"] > 0
    assert first["cost"] > 0


def test_without_a_dataset_there_is_no_total_time(client):
    training = {k: v for k, v in ISSUE["training"].items() if k != "dataset_tokens"}
    data = post(client, {**ISSUE, "training": training}).json()
    assert data["time"]["total_seconds"] is None
    assert data["time"]["tokens_per_second"] > 0
    assert all(c["total"] is None for c in data["cost"])


def test_examples_times_mean_length_is_a_dataset_too(client):
    training = {k: v for k, v in ISSUE["training"].items() if k != "dataset_tokens"}
    training |= {"dataset_examples": 10_000, "mean_example_tokens": 1_000}
    tokens = post(client, ISSUE).json()["time"]
    examples = post(client, {**ISSUE, "training": training}).json()["time"]
    assert examples["total_seconds"] == pytest.approx(tokens["total_seconds"])


def test_the_safety_margin_moves_a_card_between_bands(client):
    body = with_training(gradient_checkpointing=True, batch_size=2)
    margin = post(client, body).json()["gpu"]
    none = post(client, with_training(gradient_checkpointing=True, batch_size=2, safety_margin=0)).json()["gpu"]
    assert margin["verdict"] == "tight"
    assert none["verdict"] == "fits"
    assert none["margin_bytes"] == 0


def test_accumulation_epochs_and_mfu_change_the_time(client):
    base = post(client, with_training(gradient_checkpointing=True)).json()["time"]
    two = post(client, with_training(gradient_checkpointing=True, epochs=2)).json()["time"]
    assert two["total_seconds"] == pytest.approx(2 * base["total_seconds"], rel=0.01)
    slow = post(client, with_training(gradient_checkpointing=True, mfu=base["mfu"] / 2)).json()["time"]
    assert slow["total_seconds"] == pytest.approx(2 * base["total_seconds"], rel=0.01)
    assert slow["mfu_is_default"] is False
    assert base["mfu_is_default"] is True
    acc = post(client, with_training(gradient_checkpointing=True, gradient_accumulation_steps=8)).json()["time"]
    assert acc["tokens_per_step"] == 8 * base["tokens_per_step"]


def test_without_a_gpu_the_default_card_is_used(client):
    training = {k: v for k, v in ISSUE["training"].items() if k != "gpu"}
    assert post(client, {**ISSUE, "training": training}).json()["time"]["gpu"] == RTX_4090


@pytest.mark.parametrize(
    ("training", "field"),
    [
        ({"gpu": "Voodoo 3"}, "gpu"),
        ({"safety_margin": 2}, "safety_margin"),
        ({"safety_margin": -0.1}, "safety_margin"),
        ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps"),
        ({"dataset_examples": 5}, "mean_example_tokens"),
        ({"dataset_examples": 5, "mean_example_tokens": 9}, "dataset_examples"),  # besides dataset_tokens
        ({"epochs": 0}, "epochs"),
        ({"mfu": 1.5}, "mfu"),
        ({"dataset_tokens": 10**20}, "dataset_tokens"),
    ],
)
def test_bad_planning_input_is_a_400_naming_the_field(client, training, field):
    response = post(client, with_training(**training))
    assert response.status_code == 400
    assert field in response.json()["training"], response.json()


@pytest.mark.parametrize("goal", ["max_batch_size", "max_seq_len", "max_r", "min_gpus"])
def test_plan_answers_each_goal_with_the_estimate_at_that_value(client, goal):
    training = with_training(gradient_checkpointing=True, batch_size=1, parallelism="fsdp")
    body = {**training, "goal": goal, "gpu": RTX_4090}
    response = post(client, body, "/api/v1/plan/")
    assert response.status_code == 200, response.content[:300]
    data = response.json()
    PlanResponse.model_validate(data)
    assert data["gpu"] == RTX_4090
    assert data["value"] >= 1
    assert data["total_bytes"] <= data["limit_bytes"]
    estimate = data["estimate"]
    assert estimate["memory"]["total_bytes"] == data["total_bytes"]
    assert estimate["gpu"]["verdict"] == data["verdict"] == "fits"
    field = {"max_batch_size": "batch_size", "max_seq_len": "seq_len", "min_gpus": "num_gpus"}.get(goal)
    assert (estimate["training"][field] if field else estimate["lora"]["modules"][0]["r"]) == data["value"]


def test_plan_says_when_nothing_fits(client):
    body = {"model": {"preset": "llama-3.1-405b"}, "goal": "max_batch_size", "gpu": "NVIDIA T4 16 GB"}
    data = post(client, body, "/api/v1/plan/").json()
    assert data["value"] is None
    assert data["estimate"] is None
    assert data["verdict"] == "does_not_fit"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"goal": "max_speed"}, "goal"), ({"goal": "max_r", "gpu": "Voodoo"}, "gpu"), ({}, "goal")],
)
def test_plan_names_the_bad_field(client, body, field):
    response = post(client, {"model": {"preset": "gpt2"}, **body}, "/api/v1/plan/")
    assert response.status_code == 400
    assert field in response.json()


def test_the_gpu_catalog_has_throughput_and_dated_prices_that_the_admin_edits(client, admin_client):
    b200 = GpuModel.objects.get(name="NVIDIA B200 180 GB")  # added from calculator/data/gpus.json
    assert b200.peak_bf16_tflops == 2250.0
    assert b200.price_date is not None
    assert b200.price_source
    gpu = GpuModel.objects.get(name=RTX_4090)
    change = f"/admin/calculator/gpumodel/{gpu.pk}/change/"
    page = admin_client.get(change)
    assert page.status_code == 200
    assert "price_per_hour" in page.content.decode()
    body = with_training(gradient_checkpointing=True, batch_size=1)
    before = next(c for c in post(client, body).json()["cost"] if c["gpu"] == "NVIDIA H100 80 GB")
    h100 = GpuModel.objects.get(name="NVIDIA H100 80 GB")
    h100.price_per_hour = 2 * h100.price_per_hour
    h100.save()
    invalidate_catalog()  # what the admin's save does
    after = next(c for c in post(client, body).json()["cost"] if c["gpu"] == "NVIDIA H100 80 GB")
    assert after["price_per_hour"] == pytest.approx(2 * before["price_per_hour"])
    assert after["total"] == pytest.approx(2 * before["total"])
