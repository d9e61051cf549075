"""The model as the calculator sees it: an inventory of named modules and their parameters.

PEFT decides what to adapt by matching *module names* (``model.layers.3.self_attn.q_proj``), so the
inventory keeps transformers' names: the modules of one decoder layer (relative to the layer) plus the
modules outside the layers (full paths). Parameter shapes are the shapes transformers allocates.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from math import prod


class Kind(StrEnum):
    """What a module is, as far as LoRA (and memory) is concerned."""

    LINEAR = "linear"  # nn.Linear: LoRA-able, quantized by bitsandbytes
    CONV1D = "conv1d"  # transformers' GPT-2 Conv1D: a linear layer with a transposed weight
    EMBEDDING = "embedding"  # nn.Embedding: LoRA-able (lora_embedding_A/B), never quantized
    NORM = "norm"
    ROUTER = "router"  # MoE router holding a bare weight Parameter
    EXPERTS = "experts"  # MoE experts as 3-D Parameters (reachable with target_parameters)
    CONTAINER = "container"  # a module without own parameters (attention block, MLP, activation...)


LORA_MODULE_KINDS = frozenset({Kind.LINEAR, Kind.CONV1D, Kind.EMBEDDING})
LINEAR_KINDS = frozenset({Kind.LINEAR, Kind.CONV1D})


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return prod(self.shape)


@dataclass(frozen=True, slots=True)
class Module:
    """One module. ``in_features``/``out_features`` are set for linear and embedding modules
    (for an embedding: num_embeddings / embedding_dim, the order PEFT's lora_embedding_A/B use)."""

    path: str
    kind: Kind
    params: tuple[Param, ...] = ()
    in_features: int = 0
    out_features: int = 0

    @property
    def numel(self) -> int:
        return sum(p.numel for p in self.params)

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def has_bias(self) -> bool:
        return any(p.name == "bias" for p in self.params)


@dataclass(frozen=True, slots=True)
class Dimensions:
    """The numbers a person reads off a config.json, normalised across families."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    num_local_experts: int = 0
    num_experts_per_tok: int = 0
    max_position_embeddings: int = 0
    # The model's own dropout probabilities (active in training): they add masks to what is saved.
    attention_dropout: float = 0.0
    residual_dropout: float = 0.0
    embedding_dropout: float = 0.0


@dataclass(frozen=True, slots=True)
class Architecture:
    model_type: str
    dims: Dimensions
    layer_prefix: str  # e.g. "model.layers": layer i's modules live under f"{layer_prefix}.{i}."
    layer_modules: tuple[Module, ...]  # paths relative to the layer
    global_modules: tuple[Module, ...]  # full paths (embeddings, final norm, output head, containers)
    input_embedding: str  # path of the token embedding
    output_head: str  # path of the output projection (excluded by "all-linear")
    default_target_modules: tuple[str, ...] | None  # PEFT's defaults for this model_type
    family: str = ""

    @property
    def num_layers(self) -> int:
        return self.dims.num_hidden_layers

    @property
    def params_per_layer(self) -> int:
        return sum(m.numel for m in self.layer_modules)

    @property
    def global_params(self) -> int:
        """Parameters outside the layers; a tied output head shares the embedding's weight."""
        tied = self.dims.tie_word_embeddings
        return sum(m.numel for m in self.global_modules if not (tied and m.path == self.output_head))

    @property
    def base_params(self) -> int:
        """What ``sum(p.numel() for p in model.parameters())`` gives (tied weights once)."""
        return self.num_layers * self.params_per_layer + self.global_params

    def layer_key(self, index: int, relative_path: str) -> str:
        return f"{self.layer_prefix}.{index}.{relative_path}"

    @property
    def linear_params_per_layer(self) -> int:
        return sum(m.numel for m in self.layer_modules if m.kind in LINEAR_KINDS)

    @property
    def lora_module_names(self) -> tuple[str, ...]:
        """Distinct names of the LoRA-able linear modules inside a layer, in model order."""
        seen: dict[str, None] = {}
        for module in self.layer_modules:
            if module.kind in LINEAR_KINDS:
                seen.setdefault(module.name, None)
        return tuple(seen)
