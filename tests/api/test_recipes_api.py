"""Issue 8 in the API: the v1.1 training fields (derived from the core's constants), the framework filling
what a request leaves out and saying so, host memory, and a 400 naming the field for every bad value."""

import pytest

from calculator.api.openapi import EstimateResponse
from calculator.core.frameworks import FRAMEWORK_DEFAULTS
from calculator.core.optimizers import OPTIMIZERS
from calculator.core.training import FRAMEWORKS, LOSSES, PARALLELISMS
from calculator.schemas import TrainingInput

pytestmark = pytest.mark.django_db
URL = "/api/v1/estimate/"
LLAMA = {"model": {"preset": "llama-3.1-8b"}}


def post(client, body):
    return client.post(URL, body, content_type="application/json")


def test_the_schema_takes_every_choice_the_core_has():
    schema = TrainingInput.model_json_schema()["properties"]
    assert set(schema["loss"]["enum"]) == set(LOSSES)
    assert set(schema["framework"]["enum"]) == set(FRAMEWORKS)
    assert set(schema["parallelism"]["enum"]) == set(PARALLELISMS) >= {"zero1", "zero2", "zero3"}
    assert set(schema["optimizer"]["enum"]) == set(OPTIMIZERS) >= {"adamw_torchao_8bit", "adamw_torchao_4bit"}


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_a_framework_fills_what_the_request_leaves_out_and_says_so(client, framework):
    data = post(client, {**LLAMA, "training": {"framework": framework, "seq_len": 777}}).json()
    EstimateResponse.model_validate(data)
    assert data["training"]["framework"] == framework
    assert data["training"]["seq_len"] == 777  # what the request sets wins
    expected = {d.field: d.value for d in FRAMEWORK_DEFAULTS[framework] if d.field != "seq_len"}
    assert {d["field"]: d["value"] for d in data["set_by_framework"]} == expected
    for field, value in expected.items():
        assert data["training"][field] == value
    assert all(d["source"] for d in data["set_by_framework"])


def test_trl_defaults_show_the_chunked_losss_saving(client):
    trl = post(client, {**LLAMA, "training": {"framework": "trl"}}).json()
    hf = post(client, {**LLAMA, "training": {"framework": "trl", "loss": "hf"}}).json()
    assert trl["training"]["loss"] == "trl_chunked_nll"
    assert trl["memory"]["logits_bytes"] < hf["memory"]["logits_bytes"] / 10
    assert trl["memory"]["total_bytes"] < hf["memory"]["total_bytes"]


def test_without_a_framework_the_v1_answer_is_unchanged(client):
    data = post(client, LLAMA).json()
    assert data["set_by_framework"] == []
    assert data["training"]["framework"] == "transformers"
    assert data["training"]["loss"] == "hf"
    assert data["memory"]["host_bytes"] == 0


@pytest.mark.parametrize(
    ("training", "host"),
    [
        ({"gradient_checkpointing": True, "activation_offloading": True}, True),
        ({"parallelism": "zero3", "num_gpus": 4, "optimizer_offload": True, "param_offload": True}, True),
        ({"parallelism": "zero2", "num_gpus": 2}, False),
        ({"optimizer": "adamw_torchao_4bit"}, False),
        ({"loss": "chunked", "loss_chunks": 16, "compile_loss": True}, False),
        ({"loss": "cut", "loss_token_fraction": 0.5}, False),
    ],
)
def test_every_recipe_field_is_taken_and_host_memory_reported(client, training, host):
    response = post(client, {**LLAMA, "training": training})
    assert response.status_code == 200, response.content[:300]
    data = response.json()
    assert (data["memory"]["host_bytes"] > 0) is host
    for field, value in training.items():
        assert data["training"][field] == value


def test_quantize_moe_experts_lowers_a_4bit_moe_base(client):
    body = {"model": {"preset": "qwen3-30b-a3b"}, "lora": {"target_modules": ["q_proj", "v_proj"]}}
    plain = post(client, {**body, "training": {"base_dtype": "nf4"}}).json()
    experts = post(client, {**body, "training": {"base_dtype": "nf4", "quantize_moe_experts": True}}).json()
    assert experts["memory"]["base_weights_bytes"] < plain["memory"]["base_weights_bytes"] / 2


@pytest.mark.parametrize(
    ("training", "field"),
    [
        ({"loss": "xent"}, "loss"),
        ({"loss_chunks": 0}, "loss_chunks"),
        ({"loss_chunks": 10**6}, "loss_chunks"),
        ({"loss_token_fraction": 0}, "loss_token_fraction"),
        ({"loss_token_fraction": 1.5}, "loss_token_fraction"),
        ({"framework": "megatron"}, "framework"),
        ({"parallelism": "zero4"}, "parallelism"),
        ({"param_offload": True}, "param_offload"),  # only ZeRO-3 / FSDP offload parameters
        ({"parallelism": "fsdp", "optimizer_offload": True}, "optimizer_offload"),
        ({"framework": "trl", "loss": "fused_linear"}, "loss"),  # TRL refuses Liger's loss
        ({"activation_offloading": "sometimes"}, "activation_offloading"),
    ],
)
def test_a_bad_recipe_is_a_400_naming_the_field(client, training, field):
    response = post(client, {**LLAMA, "training": training})
    assert response.status_code == 400
    assert field in response.json()["training"], response.json()


def test_a_fused_loss_with_lora_on_the_head_is_a_400_on_loss(client):
    body = {**LLAMA, "lora": {"target_modules": ["q_proj", "lm_head"]}, "training": {"loss": "cut"}}
    response = post(client, body)
    assert response.status_code == 400
    assert "loss" in response.json()["training"]


def test_a_saved_configuration_keeps_what_its_framework_set(client):
    body = {**LLAMA, "name": "trl run", "training": {"framework": "trl", "seq_len": 4096}}
    saved = client.post("/api/v1/configurations/", body, content_type="application/json").json()
    assert saved["training"]["loss"] == "trl_chunked_nll"
    assert saved["training"]["seq_len"] == 4096
    assert saved["training"]["gradient_checkpointing"] is True  # stored explicitly: the meaning is pinned
    fresh = post(client, {**LLAMA, "training": {"framework": "trl", "seq_len": 4096}}).json()
    assert saved["estimate"]["memory"] == fresh["memory"]
