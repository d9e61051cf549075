"""Every module and parameter the core describes against what transformers 5.23 builds (golden file).

`validation/inventory.py` builds each config of issue 7 (43 small configs of every 2026 family and the 37
real catalog configs) with the auto class the product counts (AutoModelForCausalLM, or
AutoModelForImageTextToText where transformers refuses it) on the meta device and records every layer kind,
the layer layout, every module's kind and every parameter's shape. Here each must equal the core's
`Architecture`: a renamed, missing or mis-shaped parameter fails, not only a wrong total.
"""

import json
from pathlib import Path

import pytest

from calculator.core import architecture_from_config
from calculator.core.architecture import LORA_MODULE_KINDS, Kind

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = json.loads((Path(__file__).parent / "golden" / "inventories.json").read_text())["configs"]
# Also recorded: the vision-tower variants of the types whose causal-LM class drops the tower (mllama,
# llama4, qwen3_5); the product counts the class AutoModelForCausalLM builds (api.md), so they are not ours.
WITH_VISION_CLASS = sorted(name for name in GOLDEN if name.endswith("@image_text_to_text"))
COUNTED = sorted(name for name in GOLDEN if name not in WITH_VISION_CLASS)
# the golden file's classes: nn.Linear (subclasses included), nn.Embedding, nn.Conv1d/2d/3d
KINDS = {
    "linear": Kind.LINEAR,
    "embedding": Kind.EMBEDDING,
    "conv1d": Kind.CONV,
    "conv2d": Kind.CONV,
    "conv3d": Kind.CONV,
}


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def golden_params(entry: dict) -> dict[str, tuple[int, ...]]:
    found: dict[str, tuple[int, ...]] = {}
    for prefix, stack in entry["layer_stacks"].items():
        for index, kind in enumerate(stack["layout"]):
            for module in stack["kinds"][kind]["modules"]:
                for name, shape in module.get("params", {}).items():
                    found[_join(prefix, str(index), module["path"], name)] = tuple(shape)
    for module in entry["non_layer_modules"]:
        for name, shape in module.get("params", {}).items():
            found[_join(module["path"], name)] = tuple(shape)
    return found


def golden_kinds(entry: dict) -> dict[str, str]:
    kinds = {}
    for prefix, stack in entry["layer_stacks"].items():
        for index, kind in enumerate(stack["layout"]):
            for module in stack["kinds"][kind]["modules"]:
                if module["kind"] in KINDS:
                    kinds[_join(prefix, str(index), module["path"])] = module["kind"]
    for module in entry["non_layer_modules"]:
        if module["kind"] in KINDS:
            kinds[module["path"]] = module["kind"]
    return kinds


def architecture(name: str):
    entry = GOLDEN[name]
    return architecture_from_config(json.loads((ROOT / entry["config_file"]).read_text()))


def test_the_golden_file_covers_every_family_of_issue_7():
    types = {GOLDEN[name]["model_type"] for name in COUNTED}
    required = {"gemma3", "gemma3_text", "gemma4", "gemma4_text", "llama4", "mistral3", "mllama", "qwen2_5_vl"}
    required |= {"qwen3_5", "qwen3_5_moe", "qwen3_next", "gpt_oss", "deepseek_v2", "deepseek_v3", "glm4_moe"}
    required |= {"lfm2", "olmo2", "granite", "smollm3", "cohere2", "falcon", "starcoder2", "phi"}
    assert required <= types
    assert len(COUNTED) >= 80


@pytest.mark.parametrize("name", COUNTED)
def test_base_params_and_components_match_transformers(name):
    entry, arch = GOLDEN[name], architecture(name)
    assert arch.base_params == entry["base_params"]


@pytest.mark.parametrize("name", COUNTED)
def test_every_parameter_has_the_shape_transformers_gives_it(name):
    entry, arch = GOLDEN[name], architecture(name)
    ours = {_join(path, p.name): tuple(p.shape) for path, module in arch.modules() for p in module.params}
    theirs = golden_params(entry)
    assert sorted(set(theirs) - set(ours)) == [], "parameters the core does not describe"
    assert sorted(set(ours) - set(theirs)) == [], "parameters transformers does not build"
    assert {k: v for k, v in ours.items() if v != theirs[k]} == {}


@pytest.mark.parametrize("name", COUNTED)
def test_modules_peft_can_adapt_are_the_ones_transformers_builds(name):
    """PEFT decides by module class (nn.Linear, Conv1D, nn.Embedding): the core must classify alike."""
    entry, arch = GOLDEN[name], architecture(name)
    ours = {path: module.kind for path, module in arch.modules() if module.kind in LORA_MODULE_KINDS}
    theirs = golden_kinds(entry)
    assert {path: KINDS[kind] for path, kind in theirs.items()} == ours


@pytest.mark.parametrize("name", COUNTED)
def test_tied_parameters_match(name):
    entry, arch = GOLDEN[name], architecture(name)
    theirs = {frozenset(group) for group in entry["tied"]}
    ours = {frozenset((f"{a}.weight", f"{b}.weight")) for a, b in arch.tied}
    assert ours == theirs
