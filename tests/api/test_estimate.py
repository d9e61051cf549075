"""POST /api/v1/estimate/: wiring, the api.md shape, and 400s that name fields (numbers live in tests/core)."""

import pytest

from calculator.api.openapi import EstimateResponse

URL = "/api/v1/estimate/"
pytestmark = pytest.mark.django_db


def post(client, body):
    return client.post(URL, body, content_type="application/json")


def test_llama_3_1_8b_with_peft_defaults(client):
    response = post(client, {"model": {"preset": "llama-3.1-8b"}})
    assert response.status_code == 200
    data = response.json()
    assert data["lora"]["trainable_params"] == 3_407_872
    assert data["lora"]["all_params"] == 8_033_669_120
    assert data["model"]["base_params"] == 8_030_261_248
    assert data["lora"]["scaling"] == 1.0
    EstimateResponse.model_validate(data)  # the documented schema is the real one


def test_response_has_every_field_of_the_contract(client):
    data = post(client, {"model": {"preset": "qwen2.5-7b"}, "lora": {"r": 16, "target_modules": "all-linear"}}).json()
    assert set(data) >= {"engine_version", "model", "lora", "memory", "adapter_file_bytes", "fits", "peft_config"}
    assert set(data["memory"]) >= {
        "base_weights_bytes",
        "adapter_weights_bytes",
        "gradients_bytes",
        "optimizer_states_bytes",
        "activations_bytes",
        "logits_bytes",
        "overhead_bytes",
        "total_bytes",
    }
    module = data["lora"]["modules"][0]
    assert set(module) >= {"name", "in_features", "out_features", "layers", "r", "params_per_layer", "params"}
    assert {"gpu", "memory_bytes", "fits"} <= set(data["fits"][0])
    assert data["peft_config"].startswith("LoraConfig(")


def test_hf_config_and_custom_dimensions(client):
    config = {
        "model_type": "llama",
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "tie_word_embeddings": True,
        "head_dim": 64,
        "architectures": ["LlamaForCausalLM"],
        "rope_scaling": {"factor": 32.0},
    }
    data = post(client, {"model": {"hf_config": config}}).json()
    assert data["model"]["base_params"] == 1_235_814_400
    custom = {
        key: config[key]
        for key in (
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "vocab_size",
            "tie_word_embeddings",
        )
    }
    assert post(client, {"model": {"custom": custom}}).json()["model"]["base_params"] == 1_235_814_400


def test_peft_keys_that_do_not_change_numbers_are_accepted(client):
    body = {
        "model": {"preset": "gpt2"},
        "lora": {"task_type": "CAUSAL_LM", "fan_in_fan_out": True, "init_lora_weights": "gaussian"},
    }
    assert post(client, body).status_code == 200


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"model": {"preset": "no-such-model"}}, ["model", "preset"]),
        ({"model": {"hf_config": {"model_type": "bert"}}}, ["model", "hf_config", "model_type"]),
        (
            {"model": {"hf_config": {"model_type": "llama", "num_key_value_heads": 7}}},
            ["model", "hf_config", "num_key_value_heads"],
        ),
        ({"model": {}}, ["model"]),
        ({"model": {"preset": "gpt2"}, "lora": {"r": 0}}, ["lora", "r"]),
        ({"model": {"preset": "gpt2"}, "lora": {"r": "eight"}}, ["lora", "r"]),
        ({"model": {"preset": "gpt2"}, "lora": {"target_modules": ["q_proj"]}}, ["lora", "target_modules"]),
        ({"model": {"preset": "gpt2"}, "training": {"base_dtype": "int2"}}, ["training", "base_dtype"]),
        ({"model": {"preset": "gpt2"}, "training": {"seq_len": 10**9}}, ["training", "seq_len"]),
        ({"model": {"preset": "gpt2"}, "training": {"batchsize": 2}}, ["training", "batchsize"]),
        ({"lora": {}}, ["model"]),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, body, path):
    response = post(client, body)
    assert response.status_code == 400
    node = response.json()
    for key in path:
        node = node[key]
    assert node
    assert all(isinstance(m, str) for m in node)


def test_every_wrong_field_is_reported_at_once(client):
    body = {"model": {"preset": "gpt2"}, "lora": {"r": 0, "bias": "x"}, "training": {"optimizer": "adam"}}
    errors = post(client, body).json()
    assert set(errors["lora"]) == {"r", "bias"}
    assert set(errors["training"]) == {"optimizer"}


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", "null", '"text"', '{"model": 5}'])
def test_malformed_bodies_are_400_not_500(client, raw):
    assert client.post(URL, raw, content_type="application/json").status_code == 400


def test_no_csrf_token_needed(client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert post(strict, {"model": {"preset": "gpt2"}}).status_code == 200


def test_kbit_preparation_is_an_option_of_training(client):
    body = {"model": {"preset": "llama-3.1-8b"}, "training": {"base_dtype": "nf4"}}
    plain = post(client, body).json()["memory"]
    body["training"]["prepare_model_for_kbit_training"] = True
    prepared = post(client, body).json()["memory"]
    assert prepared["base_weights_bytes"] > plain["base_weights_bytes"]
    assert prepared["activations_bytes"] > plain["activations_bytes"]  # fp32 activations
