"""The training recipe: what a framework sets by default, and the recipe to copy back into that framework
(TRL Python, a torchtune command, an Axolotl YAML), from the core's `frameworks` and `recipes`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from types import MappingProxyType

from calculator.core import Estimate, TrainingSettings
from calculator.core.frameworks import FRAMEWORK_DEFAULTS, FrameworkDefault, FrameworkFill, apply_framework
from calculator.core.recipes import axolotl_yaml, torchtune_command, trl_python
from calculator.core.training import FRAMEWORKS, LOSSES

__all__ = [
    "FRAMEWORKS",
    "LOSSES",
    "PLACEHOLDER_MODEL",
    "FrameworkDefault",
    "FrameworkFill",
    "RecipeExports",
    "framework_fill",
    "framework_sets",
    "recipe_exports",
    "training_defaults",
]

TRAINING_FIELDS = tuple(f.name for f in fields(TrainingSettings))
HUB = "https://huggingface.co/"
PLACEHOLDER_MODEL = "your-org/your-model"
# torchtune's recipe configs by model family (torchtune 0.6.1 recipes/configs/<dir>/<size>_[q]lora[_single_device]).
TORCHTUNE_DIRS = {
    "llama": "llama3_1",
    "mistral": "mistral",
    "qwen2": "qwen2_5",
    "qwen3": "qwen3",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "phi3": "phi3",
}


def training_defaults(*, framework: str) -> Mapping[str, object]:
    """Every training field's value (but the framework itself) when a request sets nothing but ``framework``
    (its defaults over the engine's). Read-only, computed once per framework."""
    return _defaults(framework)


@cache
def _defaults(framework: str) -> Mapping[str, object]:
    training = apply_framework({"framework": framework}).training
    return MappingProxyType({name: getattr(training, name) for name in TRAINING_FIELDS if name != "framework"})


def framework_sets(*, framework: str) -> tuple[FrameworkDefault, ...]:
    """Every field ``framework`` sets by default, with its source."""
    return FRAMEWORK_DEFAULTS.get(framework, ())


def framework_fill(*, given: Mapping[str, object]) -> FrameworkFill:
    """The training settings with the framework's defaults where ``given`` leaves fields out, and which."""
    return apply_framework(given)


@dataclass(frozen=True, slots=True)
class RecipeExports:
    model_id: str  # the Hugging Face repository the recipes load
    trl_python: str  # BitsAndBytesConfig + LoraConfig + TRL SFTConfig
    torchtune_config: str
    torchtune_exact: bool  # False: torchtune has no recipe for this family; the closest is named
    torchtune_command: str
    axolotl_yaml: str


def recipe_exports(*, result: Estimate, model_id: str) -> RecipeExports:
    """The three recipes for these inputs. ``model_id``: the repository to load (a preset's Hub page, a
    pasted config's ``_name_or_path``), or "" for a placeholder."""
    arch, lora, training = result.architecture, result.lora_settings, result.training
    model = model_id or PLACEHOLDER_MODEL
    adapted = tuple(dict.fromkeys(m.name for m in result.count.modules))
    defaults = arch.default_target_modules
    resolved = defaults if lora.target_modules is None and isinstance(defaults, tuple) else None
    config, exact = _torchtune_config(arch.model_type, model, training)
    return RecipeExports(
        model_id=model,
        trl_python=trl_python(lora, training, model, resolved),
        torchtune_config=config,
        torchtune_exact=exact,
        torchtune_command=torchtune_command(lora, training, config, adapted),
        axolotl_yaml=axolotl_yaml(lora, training, model, adapted),
    )


def hub_id(source_url: str) -> str:
    """``https://huggingface.co/Qwen/Qwen3-8B`` -> ``Qwen/Qwen3-8B`` ("" for other pages)."""
    if not source_url.startswith(HUB):
        return ""
    parts = source_url.removeprefix(HUB).strip("/").split("/")
    return "/".join(parts[:2]) if len(parts) >= 2 else ""


def _torchtune_config(model_type: str, model_id: str, training: TrainingSettings) -> tuple[str, bool]:
    """The torchtune recipe config for this model family and size, single-device or distributed, LoRA or
    QLoRA; the Llama 3.1 8B one (and False) when torchtune has none for the family."""
    directory = TORCHTUNE_DIRS.get(model_type)
    size = re.search(r"(\d+(?:\.\d+)?)[Bb]\b", model_id.rsplit("/", 1)[-1])
    method = "qlora" if training.base_dtype in ("nf4", "fp4") else "lora"
    suffix = "_single_device" if training.num_gpus == 1 else ""
    if directory is None or size is None:
        return f"llama3_1/8B_{method}{suffix}", False
    return f"{directory}/{size[1]}B_{method}{suffix}", True
