"""Cases a differential fuzz against PEFT 0.21 found (random small configs x random LoraConfigs, transformers
5.23 on the meta device; the expected numbers are what PEFT printed for these exact inputs)."""

import copy
import json
from pathlib import Path

import pytest

from calculator.core import InputError, LoraSettings, architecture_from_config, count_lora
from calculator.core.errors import ErrorCollector
from calculator.core.targeting import EXCLUDED, Matcher

GOLDEN = json.loads((Path(__file__).parent / "golden" / "peft_params_2026.json").read_text())


def config(slug: str, **overrides: object) -> dict:
    found = copy.deepcopy(GOLDEN["architectures"][slug]["config"])
    for key, value in overrides.items():
        target = found["text_config"] if key.startswith("text_") and "text_config" in found else found
        target[key.removeprefix("text_") if target is not found else key] = value
    return found


@pytest.mark.parametrize(
    ("bias", "trainable"),
    [("none", 1920), ("all", 6912)],  # bias="all" trains the tied head's own bias too (1,024)
)
def test_a_tied_output_head_keeps_its_own_bias(bias, trainable):
    arch = architecture_from_config(config("phi", tie_word_embeddings=True))
    assert arch.base_params == 726_400  # transformers: lm_head.weight is the embedding's, lm_head.bias is not
    result = count_lora(arch, LoraSettings(r=1, lora_alpha=7, target_modules=("fc1",), bias=bias))
    assert (result.trainable_params, result.all_params) == (trainable, 728_320)


def test_mllama_never_ties_its_head_because_its_embedding_table_has_extra_rows():
    arch = architecture_from_config(config("mllama", text_tie_word_embeddings=True))
    assert arch.base_params == 1_124_868  # the same as untied
    result = count_lora(arch, LoraSettings(r=2, lora_alpha=16, target_modules=("q_proj",)))
    assert (result.trainable_params, result.all_params) == (2560, 1_127_428)


@pytest.mark.parametrize(
    ("slug", "targets", "layer"),
    [
        ("qwen2_5_vl", ("q_proj", "2"), "model.visual.blocks.2"),  # a layer index names the whole block
        ("qwen2_5_vl", ("q_proj", "layers.0"), "model.language_model.layers.0"),
        ("phi", r".*\.1", "model.layers.1"),  # a regex that matches a layer's own name
    ],
)
def test_a_name_that_matches_a_whole_layer_is_refused_as_peft_refuses_it(slug, targets, layer):
    with pytest.raises(InputError) as raised:
        count_lora(architecture_from_config(config(slug)), LoraSettings(r=2, target_modules=targets))
    message = " ".join(raised.value.errors["lora.target_modules"])
    assert f"{layer} (a whole layer)" in message
    assert "not found" not in message


@pytest.mark.parametrize(("slug", "name"), [("qwen2_moe", "layers"), ("qwen2_5_vl", "blocks")])
def test_modules_to_save_on_a_list_of_layers_is_refused_as_peft_refuses_a_module_list(slug, name):
    lora = LoraSettings(r=2, target_modules=("v_proj", "down_proj"), modules_to_save=(name,))
    with pytest.raises(InputError) as raised:
        count_lora(architecture_from_config(config(slug)), lora)
    assert "ModuleList" in raised.value.errors["lora.modules_to_save"][0]


def test_modules_to_save_inside_a_saved_container_is_not_a_module_list():
    """``model`` is wrapped first (outermost), so its layer list is never wrapped on its own."""
    assert not any(
        "ModuleList" in m
        for m in _errors(
            config("qwen2_moe"), LoraSettings(r=2, target_modules=("v_proj",), modules_to_save=("model", "layers"))
        )
    )


def _errors(cfg: dict, lora: LoraSettings) -> list[str]:
    try:
        count_lora(architecture_from_config(cfg), lora)
    except InputError as error:
        return [m for messages in error.errors.values() for m in messages]
    return []


@pytest.mark.parametrize(
    ("slug", "lora", "trainable", "all_params"),
    [
        # the saved self_attn copies carry k_proj's LoRA; the frozen originals keep theirs ("attn" ends
        # "self_attn" for modules_to_save's endswith, not for the exclusion regex, so k_proj is adapted)
        ("qwen2_5_vl-tied", {"r": 2, "lora_alpha": 32, "target_modules": ("k_proj",), "modules_to_save": ("attn",)},
         215_936, 1_180_736),
        # conv.conv also ends in "conv": PEFT wraps it again inside the original container (a frozen copy)
        ("lfm2", {"r": 1, "lora_alpha": 1, "target_modules": r".*\.(v_proj|out_proj|w2)", "bias": "all",
                  "modules_to_save": ("conv",)}, 267_648, 1_648_768),
        ("lfm2", {"r": 2, "target_modules": ("q_proj",), "modules_to_save": ("conv", "in_proj")}, 264_704, 1_842_432),
    ],
)  # fmt: skip
def test_saved_containers_count_the_frozen_originals_of_what_they_hold(slug, lora, trainable, all_params):
    result = count_lora(architecture_from_config(config(slug)), LoraSettings(**lora))
    assert (result.trainable_params, result.all_params) == (trainable, all_params)


@pytest.mark.parametrize(
    ("slug", "lora", "trainable", "all_params"),
    [
        # ["model"] copies the whole text model, its layers included (PEFT wraps the outermost match)
        ("olmo2", {"r": 16, "target_modules": ("down_proj", "o_proj", "lm_head", "gate_proj"),
                   "modules_to_save": ("model",)}, 716_416, 1_545_472),
        ("falcon-old", {"r": 1, "lora_alpha": 32, "target_modules": ("dense_4h_to_h", "query_key_value", "lm_head"),
                        "modules_to_save": ("transformer",)}, 649_344, 1_297_536),
        ("qwen2_5_vl-tied", {"r": 1, "lora_alpha": 8, "target_modules": ("gate_proj", "v_proj"),
                             "modules_to_save": ("language_model",)}, 649_728, 1_613_376),
        # mlp nested in model: a frozen copy of each mlp inside the copied model
        ("olmo2", {"r": 16, "target_modules": ("lm_head",), "modules_to_save": ("model", "mlp")},
         716_416, 1_914_112),
        # the saved mlp's experts carry target-parameter LoRA (down_proj rewritten): the original keeps its own
        ("deepseek_v2", {"r": 1, "lora_alpha": 32, "target_modules": ("down_proj", "kv_a_proj_with_mqa"),
                         "modules_to_save": ("mlp",)}, 420_856, 1_188_968),
    ],
)  # fmt: skip
def test_saved_containers_holding_layers_or_parameter_adapters(slug, lora, trainable, all_params):
    result = count_lora(architecture_from_config(config(slug)), LoraSettings(**lora))
    assert (result.trainable_params, result.all_params) == (trainable, all_params)


@pytest.mark.parametrize(
    ("slug", "lora"),
    [
        ("qwen3_next", {"target_modules": (), "target_parameters": ("experts.down_proj",),
                        "modules_to_save": ("experts",)}),
        ("glm4_moe", {"target_modules": ("lm_head",), "target_parameters": ("experts.down_proj",),
                      "modules_to_save": ("act_fn",)}),
    ],
)  # fmt: skip
def test_modules_to_save_on_or_inside_a_parameter_wrapper_is_refused(slug, lora):
    with pytest.raises(InputError) as raised:
        count_lora(architecture_from_config(config(slug)), LoraSettings(r=8, **lora))
    assert "ParamWrapper" in raised.value.errors["lora.modules_to_save"][0]


def test_lora_bias_passes_when_the_rewritten_expert_targets_find_no_experts():
    """all-linear on glm4_moe adds the expert names as target_parameters; with every layer dense nothing is
    wrapped as a parameter, and PEFT accepts lora_bias (it refuses it only on a ParamWrapper)."""
    dense = config("glm4_moe-qk-norm", num_hidden_layers=1)
    result = count_lora(architecture_from_config(dense), LoraSettings(r=8, target_modules="all-linear", lora_bias=True))
    assert (result.trainable_params, result.all_params) == (9216, 468_832)
    with pytest.raises(InputError):
        count_lora(
            architecture_from_config(config("glm4_moe-qk-norm")),
            LoraSettings(r=8, target_modules="all-linear", lora_bias=True),
        )


def test_target_parameters_reach_parameters_outside_the_layers():
    """Gemma 4's vision patch embedder holds a 3-D position table directly; PEFT wraps it like an expert."""
    lora = LoraSettings(
        r=1,
        lora_alpha=16,
        target_modules=("embedding_projection",),
        target_parameters=("patch_embedder.position_embedding_table",),
    )
    result = count_lora(architecture_from_config(config("gemma4-moe")), lora)
    assert (result.trainable_params, result.all_params) == (448, 1_776_344)


def test_a_token_list_and_a_saved_embedding_both_apply():
    """A plain index list names the embedding by its full path, which PEFT compares with modules_to_save's
    short names: no conflict, so the full copy and the token rows both train."""
    lora = LoraSettings(r=3, lora_alpha=1, target_modules=("o_proj",), trainable_token_indices=(5,),
                        modules_to_save=("embed_tokens",))  # fmt: skip
    result = count_lora(architecture_from_config(config("gemma3_text")), lora)
    assert (result.trainable_params, result.all_params) == (136_960, 1_598_912)


@pytest.mark.parametrize(
    ("lora", "field"),
    [
        ({"target_modules": ("k_proj", "lm_head"), "trainable_token_indices": (0, 1), "ensure_weight_tying": True},
         "lora.trainable_token_indices"),  # the head's LoRA is tied onto the embedding
        ({"target_modules": ("k_proj", "embed_tokens"), "trainable_token_indices": (0, 1)},
         "lora.trainable_token_indices"),
        ({"target_modules": ("k_proj", "lm_head"), "modules_to_save": ("lm_head",), "ensure_weight_tying": True},
         "lora.modules_to_save"),  # the head leaves modules_to_save for the tie, then carries LoRA
    ],
)  # fmt: skip
def test_tied_embedding_combinations_peft_refuses(lora, field):
    with pytest.raises(InputError) as raised:
        count_lora(architecture_from_config(config("cohere2")), LoraSettings(r=8, **lora))
    assert field in raised.value.errors


def test_modules_to_save_ending_an_adapted_name_is_refused():
    """PEFT matches modules_to_save by the end of the name ("proj" ends "q_proj") but excludes from LoRA only
    whole components: all-linear adapts q_proj, then copying it fails."""
    lora = LoraSettings(r=1, lora_alpha=32, target_modules="all-linear", modules_to_save=("proj",))
    with pytest.raises(InputError) as raised:
        count_lora(architecture_from_config(config("qwen2_5_vl-tied")), lora)
    assert "also carry LoRA" in raised.value.errors["lora.modules_to_save"][0]


@pytest.mark.parametrize("slug", ["olmo2", "lfm2", "qwen2_5_vl-tied", "deepseek_v2", "mllama"])
@pytest.mark.parametrize(
    "names",
    [("mlp",), ("norm", "lm_head"), ("conv", "in_proj"), ("self_attn", "3"), ("embed_tokens", "experts", "gate")],
)
def test_plain_modules_to_save_names_exclude_what_their_regex_excludes(slug, names):
    r"""Names without regex syntax are looked up as dotted components (the fast path); wrapped in a group they
    run on the automaton as PEFT's ``re.match(rf"(^|.*\.){m}($|\..*)", key)``: both keep the same modules out
    of LoRA."""
    arch = architecture_from_config(config(slug))

    def excluded(saved: tuple[str, ...]) -> list[str]:
        matcher = Matcher(arch, LoraSettings(target_modules="all-linear", modules_to_save=saved), ErrorCollector())
        assert not matcher.save_regexes if saved == names else matcher.save_regexes
        return [key for key, module in arch.modules() if matcher.matches(key, module) is EXCLUDED]

    found = excluded(names)
    if slug == "olmo2" and "mlp" in names:  # the comparison is not between two empty lists
        # each layer's mlp with its three linears and its activation
        assert len(found) == 5 * config(slug)["num_hidden_layers"]
    assert found == excluded(tuple(f"(?:{n})" for n in names))
