"""The core against PEFT 0.21 on the families of 2026 (golden file `peft_params_2026.json`).

`validation/peft_golden_2026.py` builds every small config and every catalog config with transformers 5.23
(on the meta device), applies `peft.get_peft_model` for a grid of LoraConfigs (targets by name, regex and
"all-linear", MoE `target_parameters`, ranks and alphas by pattern, layer selection, DoRA, biases,
`modules_to_save`, trainable tokens, weight tying) and records `get_nb_trainable_parameters()` or the error
PEFT raised. Every case is replayed here through `count_lora`.
"""

import json
from pathlib import Path

import pytest

from calculator.core import InputError, LoraSettings, architecture_from_config, count_lora

GOLDEN = json.loads((Path(__file__).parent / "golden" / "peft_params_2026.json").read_text())
# The vision-tower variants of types whose causal-LM class drops the tower (mllama, llama4, qwen3_5) are
# recorded too; the product counts what AutoModelForCausalLM builds (api.md), so they are not replayed.
WITH_VISION_CLASS = {slug for slug in GOLDEN["architectures"] if slug.endswith("@image_text_to_text")}
ARCHS = {
    slug: architecture_from_config(a["config"])
    for slug, a in GOLDEN["architectures"].items()
    if slug not in WITH_VISION_CLASS
}
CASES = [c for c in GOLDEN["cases"] if c["arch"] not in WITH_VISION_CLASS]
TUPLES = ("target_modules", "modules_to_save", "target_parameters", "exclude_modules", "layers_pattern")


def settings(lora: dict) -> LoraSettings:
    """The LoraConfig keyword arguments as the core's settings (lists as tuples, patterns as pairs)."""
    kwargs = {k: v for k, v in lora.items() if k in LoraSettings.__dataclass_fields__}
    for key in (*TUPLES, "layers_to_transform"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    for key in ("rank_pattern", "alpha_pattern"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key].items())
    tokens = kwargs.get("trainable_token_indices")
    if isinstance(tokens, dict):
        kwargs["trainable_token_indices"] = tuple((name, tuple(ids)) for name, ids in tokens.items())
    elif isinstance(tokens, list):
        kwargs["trainable_token_indices"] = tuple(tokens)
    return LoraSettings(**kwargs)


def case_id(case: dict) -> str:
    return f"{case['arch']}-{case['id']}"


def test_the_golden_file_covers_the_2026_grid():
    types = {GOLDEN["architectures"][slug]["config"]["model_type"] for slug in ARCHS}
    assert {"gemma4", "llama4", "qwen3_5_moe", "qwen3_next", "gpt_oss", "deepseek_v3", "glm4_moe", "lfm2"} <= types
    assert len(CASES) >= 4000
    assert sum("error" in c for c in CASES) >= 500  # the refusals are part of parity too


@pytest.mark.parametrize("slug", sorted(ARCHS))
def test_base_params_match_transformers(slug):
    assert ARCHS[slug].base_params == GOLDEN["architectures"][slug]["base_params"]


@pytest.mark.parametrize("case", [c for c in CASES if "error" not in c], ids=case_id)
def test_trainable_and_all_params_match_peft(case):
    result = count_lora(ARCHS[case["arch"]], settings(case["lora"]))
    assert (result.trainable_params, result.all_params) == (case["trainable"], case["all"])


@pytest.mark.parametrize("case", [c for c in CASES if "error" in c], ids=case_id)
def test_configurations_peft_rejects_are_rejected(case):
    with pytest.raises(InputError):
        count_lora(ARCHS[case["arch"]], settings(case["lora"]))
