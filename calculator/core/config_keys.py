"""Which keys of a pasted config.json change the numbers (the rest can be dropped from a shareable URL),
and how the form's dimension fields map to a model type's config keys.

Both are read off the family descriptions (`families.spec.Key`): a family declares the keys it reads,
under which name (GPT-2's ``n_embd`` is our ``hidden_size``) and where (a multimodal model's
``text_config``), so no second table has to follow the builders.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .architecture import Architecture
from .families import CUSTOM_FIELDS, FAMILIES, relevant_config
from .families.approximate import ALIASES

__all__ = [
    "config_key",
    "dimension_of",
    "dimension_values",
    "dimensions_from_config",
    "dimensions_read",
    "relevant_config",
]

# Dimension fields whose family key is named otherwise (the families call the expert count num_experts).
FAMILY_KEY = {"num_local_experts": "num_experts"}


@lru_cache(maxsize=256)
def config_key(model_type: str, dimension: str) -> tuple[str, ...]:
    """Where a dimension field lives in this model type's config.json: ``("n_embd",)`` for GPT-2's
    hidden_size, ``("text_config", "hidden_size")`` for a multimodal wrapper's."""
    family = FAMILIES.get(model_type)
    for key in family.keys if family else ():
        if key.key == FAMILY_KEY.get(dimension, dimension) and key.at.count(".") == 0:
            return (key.at, key.config_name) if key.at else (key.config_name,)
    return (dimension,)


def dimension_of(model_type: str, path: tuple[str, ...]) -> str | None:
    """The dimension field a config.json key (as a path) sets, or None when it is not one of them."""
    return next((d for d in CUSTOM_FIELDS if config_key(model_type, d) == path), None)


@lru_cache(maxsize=256)
def dimensions_read(model_type: str | None) -> frozenset[str]:
    """The dimension fields a model type reads (None: custom dimensions, which may have experts)."""
    if model_type is None:
        return frozenset(CUSTOM_FIELDS)
    family = FAMILIES.get(model_type)
    if family is None:
        return frozenset()
    declared = {key.key for key in family.keys if key.at.count(".") == 0}
    return frozenset(d for d in CUSTOM_FIELDS if FAMILY_KEY.get(d, d) in declared)


def dimension_values(arch: Architecture) -> dict[str, int | bool | None]:
    """An architecture's dimension fields, as the ``custom`` group names them (experts None when dense)."""
    d = arch.dims
    return {
        "hidden_size": d.hidden_size,
        "intermediate_size": d.intermediate_size,
        "num_hidden_layers": d.num_hidden_layers,
        "num_attention_heads": d.num_attention_heads,
        "num_key_value_heads": d.num_key_value_heads,
        "head_dim": d.head_dim,
        "vocab_size": d.vocab_size,
        "tie_word_embeddings": d.tie_word_embeddings,
        "num_local_experts": d.num_local_experts or None,
        "num_experts_per_tok": d.num_experts_per_tok or None,
    }


def dimensions_from_config(config: Mapping[str, Any]) -> dict[str, int | bool]:
    """The dimension fields a config.json's keys give under their usual names (``n_embd``, ``d_model``...;
    a multimodal config's ``text_config``), whatever its model_type: what custom dimensions start from when
    the config itself cannot be read."""
    section = config.get("text_config")
    source: Mapping[str, Any] = section if isinstance(section, Mapping) else config
    found: dict[str, int | bool] = {}
    for field in CUSTOM_FIELDS:
        for name in ALIASES.get(field, (field,)):
            value = source.get(name, config.get(name))
            wanted_bool = field == "tie_word_embeddings"
            if isinstance(value, bool) == wanted_bool and isinstance(value, int) and (wanted_bool or value > 0):
                found[field] = value
                break
    return found
