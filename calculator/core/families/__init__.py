"""Model families: config.json -> `Architecture`, exactly as transformers builds it.

Each supported ``model_type`` is a declarative `spec.Family` (its config keys with transformers'
defaults, its layers' building blocks with sizes as expressions of those keys); `build.build` lays out
the modules. A config of an unknown type that carries the usual keys gets an approximate Llama-style
reading (`approximate.py`), marked ``exact=False`` with the assumptions it made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from ..architecture import Architecture
from ..errors import ErrorCollector, InputError
from .approximate import approximate_architecture
from .build import _Stop, build
from .gemma import GEMMAS
from .hybrid import HYBRID
from .legacy import LEGACY
from .llama_like import LLAMA_LIKE
from .moe import MOE_FAMILIES
from .multimodal import MULTIMODAL
from .spec import Family
from .values import Values

FAMILIES: dict[str, Family] = {
    f.model_type: f for f in (*LLAMA_LIKE, *GEMMAS, *LEGACY, *MOE_FAMILIES, *HYBRID, *MULTIMODAL)
}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(FAMILIES)

CUSTOM_FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "tie_word_embeddings",
    "num_local_experts",
    "num_experts_per_tok",
)


def architecture_from_config(config: Mapping[str, Any], field: str = "model.hf_config") -> Architecture:
    """Build the architecture a Hugging Face config.json describes, or raise `InputError`."""
    if not isinstance(config, Mapping):
        raise InputError.single(field, "Expected a JSON object (the contents of config.json).")
    model_type = config.get("model_type")
    supported = ", ".join(SUPPORTED_MODEL_TYPES)
    if not isinstance(model_type, str) or not model_type:
        raise InputError.single(f"{field}.model_type", f"Missing model_type; supported: {supported}.")
    family = FAMILIES.get(model_type)
    if family is None:
        return approximate_architecture(config, field, SUPPORTED_MODEL_TYPES)
    text_config = config.get("text_config")
    if family.text_model_types and isinstance(text_config, Mapping):
        text_type = text_config.get("model_type")
        if text_type is not None and text_type not in family.text_model_types:
            raise InputError.single(
                f"{field}.text_config.model_type",
                f"{model_type} with a {text_type!r} text model is not supported "
                f"(supported: {', '.join(family.text_model_types)}).",
            )
    errors = ErrorCollector()
    try:
        architecture = build(family, config, field, errors)
    except _Stop:
        errors.raise_if_any()
        raise
    errors.raise_if_any()
    return architecture


def architecture_from_dimensions(custom: Mapping[str, Any], field: str = "model.custom") -> Architecture:
    """A Llama-style model from its dimensions alone (Mixtral-style when it has several experts)."""
    if not isinstance(custom, Mapping):
        raise InputError.single(field, "Expected an object of model dimensions.")
    experts = custom.get("num_local_experts")
    model_type = "mixtral" if isinstance(experts, int) and experts > 1 else "llama"
    config = {key: custom.get(key) for key in CUSTOM_FIELDS if key in custom}
    config["model_type"] = model_type
    for required in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        if config.get(required) is None:
            raise InputError.single(f"{field}.{required}", "This field is required.")
    config.setdefault("tie_word_embeddings", False)
    try:
        return architecture_from_config(config, field)
    except InputError as error:
        # A custom model never has a model_type field of its own to blame.
        raise InputError({k.replace(f"{field}.model_type", field): v for k, v in error.errors.items()}) from None


def relevant_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a pasted config.json that changes the numbers: the keys its family reads (nested
    sections filtered likewise), plus ``model_type`` and ``_name_or_path``. What a URL needs to carry."""
    model_type = config.get("model_type")
    family = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        return dict(config)
    errors = ErrorCollector()
    values = Values(config, family.keys, "", errors)
    with contextlib.suppress(_Stop):
        build(family, config, "", errors, values)
    if errors.errors:
        return dict(config)  # keep everything: the errors are reported against the full config
    kept: dict[str, Any] = {k: config[k] for k in ("model_type", "_name_or_path") if k in config}
    for at, name in sorted(values.read):
        section: Any = config
        target = kept
        for part in at.split(".") if at else ():
            section = section.get(part) if isinstance(section, Mapping) else None
            if not isinstance(section, Mapping):
                break
            target = target.setdefault(part, {k: section[k] for k in ("model_type",) if k in section})
        else:
            if isinstance(section, Mapping) and name in section:
                target[name] = section[name]
    return kept
