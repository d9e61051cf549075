"""The models of 2026, from their published config.json: the base count equals what transformers 5.23 builds
(validation/catalog_counts.py measured it into counts.json), per component too, and the structure is right."""

import json
from pathlib import Path

import pytest

from calculator.core import InputError, architecture_from_config, count_lora
from calculator.core.families import SUPPORTED_MODEL_TYPES
from calculator.core.insights import lora_hazards
from calculator.core.lora import LoraSettings
from calculator.core.serving import kv_cache_bytes

CATALOG = Path(__file__).resolve().parents[2] / "validation" / "configs" / "catalog"
SMALL = CATALOG.parent / "small"
COUNTS = json.loads((CATALOG / "counts.json").read_text())


def config(slug: str) -> dict:
    return json.loads((CATALOG / f"{slug}.json").read_text())


@pytest.mark.parametrize("slug", sorted(COUNTS))
def test_base_params_equal_what_transformers_builds(slug):
    assert architecture_from_config(config(slug)).base_params == COUNTS[slug]["transformers_params"]


@pytest.mark.parametrize("slug", sorted(s for s in COUNTS if len(COUNTS[s]["components"]) > 1))
def test_components_add_up_as_transformers_groups_them(slug):
    arch = architecture_from_config(config(slug))
    ours = dict(arch.components)
    theirs = COUNTS[slug]["components"]
    for name, params in theirs.items():
        assert ours.get(name, 0) == params, name
    assert sum(ours.values()) == arch.base_params


def test_every_family_issue_7_names_is_supported():
    named = {
        "gemma3_text", "olmo2", "granite", "smollm3", "cohere2", "glm4", "phi", "starcoder2", "falcon", "lfm2",
        "gemma3", "gemma4", "mistral3", "qwen2_5_vl", "mllama", "llama4", "qwen3_5", "qwen3_5_moe", "qwen3_next",
        "qwen3_moe", "qwen2_moe", "gpt_oss", "glm4_moe", "deepseek_v2", "deepseek_v3",
    }  # fmt: skip
    assert named <= set(SUPPORTED_MODEL_TYPES)


def test_hybrid_layers_decide_what_an_attention_name_list_adapts():
    """Qwen3.5-9B: 8 of its 32 layers are full attention; q/k/v/o exist only there."""
    arch = architecture_from_config(config("qwen3.5-9b"))
    assert [k.name for k in arch.text.kinds] == ["linear_attention", "full_attention"]
    counted = count_lora(arch, LoraSettings(target_modules=("q_proj", "k_proj", "v_proj", "o_proj")))
    assert {m.name: m.layers for m in counted.modules} == {"q_proj": 8, "k_proj": 8, "v_proj": 8, "o_proj": 8}
    q = next(m for m in counted.modules if m.name == "q_proj")
    assert q.out_features == 2 * 16 * 256  # the gated attention's q_proj also produces the output gate


def test_gemma4_vision_wrappers_are_refused_by_name_as_peft_refuses_them():
    arch = architecture_from_config(config("gemma-4-e2b"))
    with pytest.raises(InputError, match="not"):
        count_lora(arch, LoraSettings(target_modules=("q_proj", "v_proj")))
    default = count_lora(arch, LoraSettings())  # PEFT's default: a regex restricted to the language model
    assert {m.name for m in default.modules} == {"q_proj", "v_proj"}
    assert all(k.startswith("model.language_model.") for k, _, _ in default.adapted_keys)


def test_moe_expert_names_become_target_parameters_only_where_peft_converts_them():
    qwen3_moe = architecture_from_config(config("qwen3-30b-a3b"))
    converted = count_lora(qwen3_moe, LoraSettings(target_modules=("gate_proj", "up_proj", "down_proj")))
    assert {m.name for m in converted.modules} == {"experts.gate_up_proj", "experts.down_proj"}
    gpt_oss = architecture_from_config(config("gpt-oss-20b"))
    with pytest.raises(InputError, match="not found"):
        count_lora(gpt_oss, LoraSettings(target_modules=("gate_proj", "up_proj", "down_proj")))


def test_kv_cache_counts_only_layers_that_keep_their_own_keys_and_values():
    qwen35 = architecture_from_config(config("qwen3.5-9b"))
    dims = qwen35.dims
    per_token = 8 * 2 * dims.num_key_value_heads * dims.head_dim * 2  # 8 full-attention layers, bf16
    states = kv_cache_bytes(qwen35, 0, "bf16")  # the DeltaNet layers' fixed recurrent and conv state
    assert kv_cache_bytes(qwen35, 1000, "bf16") == 1000 * per_token + states
    assert states > 0
    gemma4 = architecture_from_config(config("gemma-4-e2b"))
    shared = sum(1 for k in gemma4.text.layout if not gemma4.text.kinds[k].block.mixer.has_kv)
    assert shared == config("gemma-4-e2b")["text_config"]["num_kv_shared_layers"]


def test_ensure_weight_tying_counts_a_tied_embedding_copy_once():
    arch = architecture_from_config(config("qwen3-0.6b"))  # tied embeddings
    qv = ("q_proj", "v_proj")
    copies = count_lora(arch, LoraSettings(target_modules=qv, modules_to_save=("lm_head", "embed_tokens")))
    tied = count_lora(
        arch, LoraSettings(target_modules=qv, modules_to_save=("lm_head", "embed_tokens"), ensure_weight_tying=True)
    )
    embedding = 151936 * 1024
    assert copies.trainable_params - tied.trainable_params == embedding


def test_trainable_token_indices_train_one_row_per_token_shared_by_a_tied_head():
    arch = architecture_from_config(config("qwen3-0.6b"))
    plain = count_lora(arch, LoraSettings(target_modules=("q_proj",)))
    tokens = count_lora(arch, LoraSettings(target_modules=("q_proj",), trainable_token_indices=(1, 2, 3)))
    assert tokens.trainable_params - plain.trainable_params == 3 * 1024
    assert tokens.all_params - plain.all_params == 3 * 1024


def test_llama4_router_under_all_linear_is_flagged_as_failing_in_training():
    """PEFT adapts Llama 4's router under "all-linear" and the forward then fails (measured); a plain target
    list is fine."""
    arch = architecture_from_config(json.loads((SMALL / "llama4.json").read_text()))
    everything = count_lora(arch, LoraSettings(r=8, target_modules="all-linear"))
    assert any("router" in why for why in lora_hazards(arch, everything))
    assert lora_hazards(arch, count_lora(arch, LoraSettings(r=8, target_modules=("q_proj", "v_proj")))) == ()
    excluded = count_lora(arch, LoraSettings(r=8, target_modules="all-linear", exclude_modules=("router",)))
    assert lora_hazards(arch, excluded) == ()
