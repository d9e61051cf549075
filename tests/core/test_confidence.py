"""The page's "how sure" line comes from `core.confidence`: its table of measured accuracy per model type is
recomputed here from the golden measurements, so it says exactly what the tests hold the core to."""

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest

from calculator.core import TrainingSettings, architecture_from_config
from calculator.core.activations import estimate_activations
from calculator.core.confidence import MEASURED_ACTIVATIONS, confidence

from . import test_memory_golden as before_2026
from . import test_memory_golden_2026 as of_2026

ROOT = Path(__file__).resolve().parents[2]


def _model_type(case: dict) -> str:
    return json.loads((ROOT / case["config_file"]).read_text())["model_type"]


def measured() -> dict[str, tuple[int, float]]:
    errors: dict[str, list[float]] = defaultdict(list)
    for module, cases in ((before_2026, before_2026.CASES), (of_2026, [c for c in of_2026.CASES if of_2026.judged(c)])):
        for case in cases:
            arch, lora_or_count, training = module.setup(case)
            count = lora_or_count if module is of_2026 else of_2026.count_lora(arch, lora_or_count)
            acts = estimate_activations(arch, count, training)
            total = acts.layers_bytes + acts.outside_bytes + acts.logits_bytes
            errors[_model_type(case)].append(abs(total / case["activations_gpu_adjusted"] - 1))
    return {t: (len(e), max(e)) for t, e in errors.items()}


@pytest.fixture(scope="module")
def table():
    return measured()


def test_every_measured_type_is_in_the_table_with_its_case_count(table):
    assert {t: cases for t, (cases, _) in table.items()} == {t: c for t, (c, _) in MEASURED_ACTIVATIONS.items()}


def test_the_worst_error_stated_is_the_measured_one_rounded_up(table):
    for model_type, (_, worst) in table.items():
        stated = MEASURED_ACTIVATIONS[model_type][1]
        assert stated == math.ceil(worst * 10_000) / 10_000, model_type


def test_an_unknown_type_is_approximate_and_unmeasured():
    config = {"model_type": "brand_new", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
    config |= {"num_attention_heads": 4, "vocab_size": 100}
    sure = confidence(architecture_from_config(config), TrainingSettings())
    assert (sure.counts_exact, sure.activations_cases, sure.measured_as) == (False, 0, "")


def test_paths_the_cpu_cannot_judge_are_named():
    small = ROOT / "validation" / "configs" / "small"
    deepseek = architecture_from_config(json.loads((small / "deepseek_v3.json").read_text()))
    assert confidence(deepseek, TrainingSettings(attn_implementation="sdpa")).cuda_only_kernel
    assert not confidence(deepseek, TrainingSettings(attn_implementation="eager")).cuda_only_kernel
    qwen = architecture_from_config(json.loads((small / "qwen3_next.json").read_text()))
    assert confidence(qwen, TrainingSettings()).upper_bound
