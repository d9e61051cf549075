"""LoRA parameter counting: each rule of PEFT checked with numbers worked out by hand.

Per adapted module PEFT adds lora_A (r x in) and lora_B (out x r): r * (in + out).
Llama-3.1-8B: hidden 4096, 32 layers, 8 kv heads of 128 (k/v out 1024), MLP 14336, vocab 128256.
"""

import math

import pytest

from calculator.core import InputError, LoraSettings, count_lora, scaling
from tests.core.conftest import preset_arch

H, KV, MLP, L, V = 4096, 1024, 14336, 32, 128256
Q_V = (H + H) + (H + KV)  # r=1 params of q_proj + v_proj per layer
ALL_LINEAR = 2 * (H + H) + 2 * (H + KV) + 3 * (H + MLP)


def count(arch, **kwargs):
    return count_lora(arch, LoraSettings(**kwargs))


def test_peft_defaults_on_llama_3_1_8b(llama8b):
    result = count(llama8b)
    assert result.trainable_params == L * 8 * Q_V == 3_407_872
    assert result.all_params == 8_030_261_248 + 3_407_872


def test_rank_scales_linearly(llama8b):
    assert count(llama8b, r=64).trainable_params == 8 * count(llama8b, r=8).trainable_params


def test_all_linear_adapts_every_linear_layer_but_the_head(llama8b):
    result = count(llama8b, r=16, target_modules="all-linear")
    assert result.trainable_params == L * 16 * ALL_LINEAR == 41_943_040
    assert {m.name for m in result.modules} == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }


def test_per_module_rows_carry_shape_layers_and_share(llama8b):
    rows = {m.name: m for m in count(llama8b, target_modules=("k_proj",)).modules}
    k = rows["k_proj"]
    assert (k.in_features, k.out_features, k.layers, k.r) == (H, KV, L, 8)
    assert k.params_per_layer == 8 * (H + KV)
    assert k.params == L * k.params_per_layer


def test_dora_adds_one_magnitude_per_output_feature(llama8b):
    plain = count(llama8b).trainable_params
    assert count(llama8b, use_dora=True).trainable_params == plain + L * (H + KV)


def test_lora_bias_adds_a_bias_to_lora_b(llama8b):
    plain = count(llama8b).trainable_params
    assert count(llama8b, lora_bias=True).trainable_params == plain + L * (H + KV)


def test_bias_all_trains_every_base_bias_without_adding_parameters():
    qwen = preset_arch("qwen2.5-7b")  # hidden 3584, 28 layers, q/k/v biases (k, v: 4 kv heads x 128)
    plain = count(qwen)
    result = count(qwen, bias="all")
    assert result.trainable_params == plain.trainable_params + 28 * (3584 + 512 + 512)
    assert result.all_params == plain.all_params


def test_bias_lora_only_trains_the_biases_of_adapted_modules():
    qwen = preset_arch("qwen2.5-7b")
    result = count(qwen, bias="lora_only", target_modules=("q_proj", "o_proj"))  # o_proj has no bias
    assert result.bias_params == 28 * 3584


def test_modules_to_save_adds_a_trainable_copy(llama8b):
    plain = count(llama8b)
    result = count(llama8b, modules_to_save=("lm_head",))
    assert result.trainable_params == plain.trainable_params + V * H
    assert result.all_params == plain.all_params + V * H


def test_layers_to_transform_restricts_to_those_layers(llama8b):
    assert count(llama8b, target_modules=("q_proj", "v_proj"), layers_to_transform=(0, 1, 5)).trainable_params == (
        3 * 8 * Q_V
    )
    assert count(llama8b, target_modules=("q_proj",), layers_to_transform=7).trainable_params == 8 * 2 * H


def test_rank_pattern_overrides_the_rank_by_key_suffix_and_layer_path(llama8b):
    result = count(llama8b, rank_pattern=(("q_proj", 4), ("model.layers.0.self_attn.v_proj", 2)))
    expected = L * 4 * (H + H) + (L - 1) * 8 * (H + KV) + 2 * (H + KV)
    assert result.trainable_params == expected


def test_regex_target_matches_the_full_module_name(llama8b):
    assert count(llama8b, target_modules=r".*\.(q|v)_proj").trainable_params == 3_407_872
    assert count(llama8b, target_modules=r".*layers\.1\.self_attn\.q_proj").trainable_params == 8 * 2 * H


def test_exclude_modules_removes_matches(llama8b):
    result = count(llama8b, r=16, target_modules="all-linear", exclude_modules=("down_proj", "up_proj", "gate_proj"))
    assert result.trainable_params == L * 16 * (2 * (H + H) + 2 * (H + KV))


def test_embedding_target_uses_lora_embedding_a_and_b(llama8b):
    assert count(llama8b, target_modules=("embed_tokens",)).trainable_params == 8 * (V + H)


def test_fused_phi3_projections():
    phi3 = preset_arch("phi-3-mini")  # hidden 3072, 32 layers, 32 heads x 96, MLP 8192
    result = count(phi3, target_modules=("qkv_proj",))
    assert result.trainable_params == 32 * 8 * (3072 + 3 * 3072)


def test_gpt2_conv1d_c_attn_default():
    gpt2 = preset_arch("gpt2")
    assert count(gpt2).trainable_params == 12 * 8 * (768 + 3 * 768) == 294_912


def test_mixtral_experts_through_target_parameters():
    mixtral = preset_arch("mixtral-8x7b")
    result = count(mixtral, target_modules=None, target_parameters=("mlp.experts.down_proj",))
    assert result.trainable_params == 32 * 8 * 8 * (4096 + 14336)


def test_rslora_changes_scaling_not_parameters(llama8b):
    assert count(llama8b, use_rslora=True).trainable_params == count(llama8b).trainable_params
    assert scaling(16, 64, use_rslora=False) == 0.25
    assert scaling(16, 64, use_rslora=True) == 16 / math.sqrt(64) == 2.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target_modules": ("nope",)}, "lora.target_modules"),
        ({"target_modules": ("mlp",)}, "lora.target_modules"),  # a container, not a linear layer
        ({"target_modules": "all-linear", "layers_to_transform": (0,)}, "lora.layers_to_transform"),
        ({"layers_pattern": "layers"}, "lora.layers_pattern"),
        ({"target_modules": ("q_proj",), "layers_to_transform": (99,)}, "lora.target_modules"),
        ({"use_dora": True, "lora_bias": True}, "lora.lora_bias"),
        ({"r": 0}, "lora.r"),
        ({"bias": "some"}, "lora.bias"),
        ({"target_modules": "([unclosed"}, "lora.target_modules"),
        ({"target_modules": "(.*)*x"}, "lora.target_modules"),  # computed in linear time: matches nothing
        ({"target_modules": r"(q)\1_proj"}, "lora.target_modules"),  # a backreference needs backtracking
        ({"rank_pattern": ((r"(?=q)q_proj", 4),)}, "lora.rank_pattern"),  # look-ahead likewise
        ({"exclude_modules": r"\bq_proj"}, "lora.exclude_modules"),
        ({"target_modules": ("q_proj",), "modules_to_save": ("(lm_head",)}, "lora.modules_to_save"),
    ],
)
def test_invalid_lora_settings_name_the_field(llama8b, kwargs, field):
    with pytest.raises(InputError) as caught:
        count(llama8b, **kwargs)
    assert field in caught.value.errors


@pytest.mark.parametrize(
    "pattern",
    [r".*\.(q|v)_proj", r"model\.layers\.\d+\.self_attn\.[qv]_proj", r"(.*\.)?(q_proj|v_proj)"],
)
def test_regex_targets_count_what_pythons_re_selects(llama8b, pattern):
    """The linear-time matcher selects the same modules as ``re.fullmatch`` (PEFT's matcher)."""
    result = count(llama8b, target_modules=pattern)
    expected = count(llama8b, target_modules=("q_proj", "v_proj"))
    assert result.trainable_params == expected.trainable_params


def test_layers_pattern_reads_the_index_after_the_named_component(llama8b):
    result = count(llama8b, target_modules=("q_proj",), layers_to_transform=(0, 1), layers_pattern="layers")
    assert result.trainable_params == 2 * 8 * (H + H)


def test_phi3_has_no_peft_default_targets():
    with pytest.raises(InputError) as caught:
        count(preset_arch("phi-3-mini"))
    assert "lora.target_modules" in caught.value.errors


def test_shares_of_base_and_of_trainable(llama8b):
    result = count(llama8b)
    assert result.percent_of_base == 100 * 3_407_872 / 8_030_261_248
    q = next(m for m in result.modules if m.name == "q_proj")
    assert result.percent_of_trainable(q.params) == 100 * L * 8 * (H + H) / 3_407_872
