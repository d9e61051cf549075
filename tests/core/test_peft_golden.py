"""The core against PEFT itself: `get_nb_trainable_parameters()` of real models (golden file).

`validation/peft_golden.py` instantiates each architecture with transformers on the meta device,
applies `peft.get_peft_model` for a grid of LoraConfigs and records PEFT's two numbers (or the error
PEFT raised). Here we replay every case through the same path the API uses, without torch.
"""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from calculator.core import InputError, architecture_from_config, count_lora
from calculator.schemas import LoraInput

GOLDEN = json.loads((Path(__file__).parent / "golden" / "peft_params.json").read_text())
ARCHS = {slug: architecture_from_config(a["config"]) for slug, a in GOLDEN["architectures"].items()}
CASES = GOLDEN["cases"]


def case_id(case):
    return f"{case['arch']}-{case['id']}"


def test_golden_file_covers_the_required_grid():
    archs = {c["arch"] for c in CASES}
    configs_per_arch = {a: len({c["id"] for c in CASES if c["arch"] == a}) for a in archs}
    assert len(archs) >= 15
    assert min(configs_per_arch.values()) >= 8
    families = {a["config"]["model_type"] for a in GOLDEN["architectures"].values()}
    assert {"llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "gpt2"} <= families


@pytest.mark.parametrize("slug", sorted(GOLDEN["architectures"]))
def test_base_params_match_transformers(slug):
    assert ARCHS[slug].base_params == GOLDEN["architectures"][slug]["base_params"]


@pytest.mark.parametrize("case", [c for c in CASES if "error" not in c], ids=case_id)
def test_trainable_and_all_params_match_peft(case):
    result = count_lora(ARCHS[case["arch"]], LoraInput.model_validate(case["lora"]).to_core())
    assert (result.trainable_params, result.all_params) == (case["trainable"], case["all"])


@pytest.mark.parametrize("case", [c for c in CASES if "error" in c], ids=case_id)
def test_configurations_peft_rejects_are_rejected(case):
    with pytest.raises((InputError, ValidationError)):
        count_lora(ARCHS[case["arch"]], LoraInput.model_validate(case["lora"]).to_core())


@pytest.mark.parametrize("case", [c for c in CASES if c.get("targeted_parameters")], ids=case_id)
def test_expert_lora_tensor_shapes_match_peft(case):
    """Shapes matter beyond the count: optimizer states (Adafactor, 8-bit) and the file header use them."""
    count = count_lora(ARCHS[case["arch"]], LoraInput.model_validate(case["lora"]).to_core())
    ours = {tuple(t.shape) for t in count.tensors}
    theirs = {
        tuple(s) for key, shapes in case["shapes"].items() if "experts" in key or "gate.weight" in key for s in shapes
    }
    assert theirs <= ours
