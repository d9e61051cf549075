"""Build a model from a config dict the way issue 7 defines "the model": what `AutoModelForCausalLM.from_config`
builds, or `AutoModelForImageTextToText` where transformers refuses the first for that config class.

Shared by inventory.py, peft_golden_2026.py and measure_memory_2026.py (validation venv only).
"""

from __future__ import annotations

import copy
import os
import sys
import warnings

CAUSAL_LM = "AutoModelForCausalLM"
IMAGE_TEXT_TO_TEXT = "AutoModelForImageTextToText"


def make_config(config: dict):
    from transformers import AutoConfig

    kw = copy.deepcopy(config)
    return AutoConfig.for_model(kw.pop("model_type"), **kw)


def auto_class_for(config: dict) -> str:
    """CausalLM if transformers maps the config class to a causal-LM class, else ImageTextToText."""
    from transformers import AutoModelForCausalLM

    cfg = make_config(config)
    return CAUSAL_LM if type(cfg) in AutoModelForCausalLM._model_mapping else IMAGE_TEXT_TO_TEXT


def build(config: dict, auto_class: str | None = None, device: str = "meta", **kwargs):
    """(model, auto class name). `auto_class` forces one of the two classes (e.g. the vision variant of a
    multimodal type that CausalLM builds text-only). kwargs go to from_config (dtype, attn_implementation, ...)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    name = auto_class or auto_class_for(config)
    cls = {CAUSAL_LM: AutoModelForCausalLM, IMAGE_TEXT_TO_TEXT: AutoModelForImageTextToText}[name]
    cfg = make_config(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if device == "meta":
            with torch.device("meta"):
                return cls.from_config(cfg, **kwargs), name
        return cls.from_config(cfg, **kwargs), name


def build_meta(config: dict, auto_class: str | None = None):
    return build(config, auto_class, "meta")


def fixed_hash_seed(script: str, argv: list[str]) -> None:
    """Re-run `script` with PYTHONHASHSEED=0 unless it is set: PEFT's messages print sets ({'q_proj', 'v_proj'}) and
    set order follows the hash seed, so without it two runs of a golden script differ."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, script, *argv])
