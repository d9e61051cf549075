"""Architectures from config.json: base parameter counts and field-named errors."""

import pytest

from calculator.core import InputError, architecture_from_config, architecture_from_dimensions
from tests.core.conftest import PRESETS, preset_arch


@pytest.mark.parametrize("slug", sorted(PRESETS))
def test_base_params_equal_the_published_count(slug):
    assert preset_arch(slug).base_params == PRESETS[slug]["published_params"]


def test_llama_3_1_8b_layer_shapes_are_gqa_aware():
    arch = preset_arch("llama-3.1-8b")
    shapes = {m.name: (m.in_features, m.out_features) for m in arch.layer_modules_of(arch.text) if m.in_features}
    assert shapes["q_proj"] == (4096, 4096)
    assert shapes["k_proj"] == (4096, 1024)  # 8 kv heads x 128
    assert shapes["v_proj"] == (4096, 1024)
    assert shapes["down_proj"] == (14336, 4096)


def test_explicit_head_dim_wins_over_hidden_over_heads():
    arch = preset_arch("gemma-2-2b")  # hidden 2304, 8 heads, head_dim 256 (not 288)
    q = next(m for m in arch.layer_modules_of(arch.text) if m.name == "q_proj")
    assert (q.in_features, q.out_features) == (2304, 8 * 256)


def test_tied_embeddings_are_counted_once():
    untied = dict(PRESETS["gpt2"]["config"], tie_word_embeddings=False)
    tied_count = preset_arch("gpt2").base_params
    assert architecture_from_config(untied).base_params == tied_count + 50257 * 768


def test_phi3_uses_fused_projections():
    names = preset_arch("phi-3-mini").lora_module_names
    assert set(names) == {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}


def test_gpt2_uses_conv1d_names():
    assert set(preset_arch("gpt2").lora_module_names) == {"c_attn", "c_proj", "c_fc"}


def test_qwen2_has_qkv_biases_but_no_o_bias():
    arch = preset_arch("qwen2.5-7b")
    biases = {m.name for m in arch.layer_modules_of(arch.text) if m.has_bias}
    assert biases == {"q_proj", "k_proj", "v_proj"}


def test_mixtral_experts_are_three_dimensional_parameters():
    arch = preset_arch("mixtral-8x7b")
    experts = next(m for m in arch.layer_modules_of(arch.text) if m.path == "mlp.experts")
    assert [p.shape for p in experts.params] == [(8, 2 * 14336, 4096), (8, 4096, 14336)]


def test_missing_keys_take_the_model_type_defaults():
    # transformers' LlamaConfig() is Llama-2-7B's shape with 32000 tokens.
    assert architecture_from_config({"model_type": "llama"}).base_params == 6_738_415_616


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"model_type": "bert"}, "model.hf_config.model_type"),
        ({"hidden_size": 10}, "model.hf_config.model_type"),
        (
            {"model_type": "llama", "num_attention_heads": 32, "num_key_value_heads": 5},
            "model.hf_config.num_key_value_heads",
        ),
        ({"model_type": "llama", "hidden_size": 100, "num_attention_heads": 3}, "model.hf_config.num_attention_heads"),
        ({"model_type": "llama", "hidden_size": "big"}, "model.hf_config.hidden_size"),
        ({"model_type": "llama", "num_hidden_layers": 0}, "model.hf_config.num_hidden_layers"),
        ({"model_type": "llama", "vocab_size": 10**12}, "model.hf_config.vocab_size"),
        ({"model_type": "llama", "tie_word_embeddings": "yes"}, "model.hf_config.tie_word_embeddings"),
        ({"model_type": "llama", "hidden_size": True}, "model.hf_config.hidden_size"),
    ],
)
def test_bad_configs_name_the_field(config, field):
    with pytest.raises(InputError) as caught:
        architecture_from_config(config)
    assert field in caught.value.errors


def test_unsupported_model_type_without_the_usual_keys_lists_the_supported_ones():
    with pytest.raises(InputError) as caught:
        architecture_from_config({"model_type": "xlnet", "d_inner": 4096})
    (message,) = caught.value.errors["model.hf_config.model_type"]
    assert "llama" in message
    assert "gemma4" in message
    assert "hidden_size" in message  # says what an approximate reading would need


def test_unknown_model_type_with_the_usual_keys_gets_an_approximate_reading_marked_so():
    config = {
        "model_type": "exaone4",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "sliding_window_pattern": 4,
    }
    arch = architecture_from_config(config)
    llama = architecture_from_config({**config, "model_type": "llama"})
    assert arch.base_params == llama.base_params
    assert arch.exact is False
    assert arch.model_type == "exaone4"
    assert any("sliding_window_pattern" in a for a in arch.assumptions)  # keys it could not read are named
    assert architecture_from_config({**config, "model_type": "llama"}).exact is True


def test_custom_dimensions_build_a_llama_and_report_their_own_field():
    custom = {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
    }
    assert architecture_from_dimensions(custom).base_params == 8_030_261_248
    with pytest.raises(InputError) as caught:
        architecture_from_dimensions({**custom, "num_key_value_heads": 7})
    assert "model.custom.num_key_value_heads" in caught.value.errors


def test_custom_dimensions_with_experts_build_a_mixtral():
    custom = {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
    }
    assert architecture_from_dimensions(custom).base_params == PRESETS["mixtral-8x7b"]["published_params"]


@pytest.mark.parametrize(
    ("model_type", "kv_heads"),
    [
        ("llama", 64),
        ("phi3", 64),
        ("mistral", 8),
        ("mixtral", 8),
        ("qwen2", 32),
        ("qwen3", 32),
        ("gemma", 16),
        ("gemma2", 4),
    ],
)
def test_omitted_kv_heads_take_transformers_default_for_the_model_type(model_type, kv_heads):
    config = {"model_type": model_type, "hidden_size": 4096, "num_attention_heads": 64, "head_dim": 64}
    assert architecture_from_config(config).dims.num_key_value_heads == kv_heads
