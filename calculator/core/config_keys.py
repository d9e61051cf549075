"""Which keys of a ``config.json`` change the numbers, and how the form's dimension fields map to them.

A pasted ``config.json`` carries dozens of keys the calculator never reads (``torch_dtype``,
``architectures``, tokenizer ids...). The builder of each ``model_type`` reads exactly the keys that
matter, so replaying it on a mapping that records what was read tells them apart without a second
list to keep in step with the builders.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .architecture import Architecture
from .errors import InputError
from .families import CUSTOM_FIELDS, architecture_from_config

KEPT_ALWAYS = frozenset({"model_type", "_name_or_path"})  # which builder, and what the model is called

# Dimension fields (the API's ``custom`` names) that a model type spells differently in its config.json.
# The builders accept these aliases first (GPT-2's config names its sizes after the original code).
DIMENSION_ALIASES: dict[str, dict[str, str]] = {
    "gpt2": {
        "hidden_size": "n_embd",
        "num_hidden_layers": "n_layer",
        "num_attention_heads": "n_head",
        "intermediate_size": "n_inner",
    }
}


class _Recorder(dict[str, Any]):
    """A config mapping that remembers which keys the architecture builder read."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def keys_read(config: Mapping[str, Any]) -> frozenset[str] | None:
    """The keys the builder of ``config``'s model type reads; None when the config is invalid."""
    recorder = _Recorder(config)
    try:
        architecture_from_config(recorder)
    except InputError:
        return None
    return frozenset(recorder.read)


def relevant_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a pasted config.json that change the numbers (plus its model type and name).

    An invalid config is returned whole, so its errors are reported against what the user pasted.
    """
    read = keys_read(config)
    if read is None:
        return dict(config)
    keep = read | KEPT_ALWAYS
    return {key: value for key, value in config.items() if key in keep}


def config_key(model_type: str, dimension: str) -> str:
    """The config.json key that sets a dimension field for this model type (``n_embd`` for GPT-2)."""
    return DIMENSION_ALIASES.get(model_type, {}).get(dimension, dimension)


def dimension_of(model_type: str, key: str) -> str | None:
    """The dimension field a config.json key sets, or None when it is not one of them."""
    for dimension in CUSTOM_FIELDS:
        if config_key(model_type, dimension) == key:
            return dimension
    return None


@lru_cache(maxsize=64)
def dimensions_read(model_type: str | None) -> frozenset[str]:
    """The dimension fields a model type reads (None: custom dimensions, which may have experts)."""
    if model_type is None:
        return frozenset(CUSTOM_FIELDS)
    read = keys_read({"model_type": model_type}) or frozenset()
    return frozenset(d for d in CUSTOM_FIELDS if config_key(model_type, d) in read)


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
