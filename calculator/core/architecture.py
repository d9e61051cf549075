"""The model as the calculator sees it: an inventory of named modules and their parameters.

PEFT decides what to adapt by matching *module names* (``model.layers.3.self_attn.q_proj``), so the
inventory keeps transformers' names. A model is a few *stacks* of numbered layers (the decoder layers; a
vision tower's encoder layers) plus modules outside them (embeddings, final norm, projector, output head,
with full paths). Layers of one stack need not be alike: hybrid models interleave linear-attention and
full-attention layers, MoE models start with dense layers, Mllama inserts cross-attention layers. Each stack
therefore holds its distinct *layer kinds* (modules relative to the layer) and a layout (the kind of each
layer). Parameter shapes are the shapes transformers allocates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from math import prod
from typing import Any


class Kind(StrEnum):
    """What a module is, as far as LoRA (and memory) is concerned."""

    LINEAR = "linear"  # nn.Linear (and subclasses): LoRA-able, quantized by bitsandbytes
    CONV1D = "conv1d"  # transformers' GPT-2 Conv1D: a linear layer with a transposed weight
    EMBEDDING = "embedding"  # nn.Embedding: LoRA-able (lora_embedding_A/B), never quantized
    CONV = "conv"  # nn.Conv1d/2d/3d (patch embeddings, short convolutions): not "all-linear", never quantized
    NORM = "norm"
    ROUTER = "router"  # MoE router holding a bare weight Parameter (not an nn.Linear)
    EXPERTS = "experts"  # MoE experts as 3-D Parameters (reachable with target_parameters)
    PARAMS = "params"  # a module with other own parameters (attention sinks, gates, A_log...)
    CONTAINER = "container"  # a module without own parameters (attention block, MLP, activation...)


LORA_MODULE_KINDS = frozenset({Kind.LINEAR, Kind.CONV1D, Kind.EMBEDDING, Kind.CONV})
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
    groups: int = 1  # convolutions: channel groups (depthwise: one per channel)

    @property
    def numel(self) -> int:
        return sum(p.numel for p in self.params)

    @property
    def kernel(self) -> tuple[int, ...]:
        """A convolution's kernel size (its weight's trailing dimensions)."""
        weight = next((p for p in self.params if p.name == "weight"), None)
        return weight.shape[2:] if weight is not None and self.kind is Kind.CONV else ()

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def has_bias(self) -> bool:
        return any(p.name == "bias" for p in self.params)


@dataclass(frozen=True, slots=True)
class Dimensions:
    """The numbers a person reads off a config.json, normalised across families (the text model's)."""

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
class LayerKind:
    """One kind of layer in a stack: its modules (paths relative to the layer; ``""`` is the layer itself)
    and, for layers a text batch runs through, the description of its forward pass the activation replay
    follows (``None``: the layer does not run on text batches, e.g. a vision encoder layer)."""

    name: str
    modules: tuple[Module, ...]
    block: Any = field(default=None, compare=True)

    @property
    def params(self) -> int:
        return sum(m.numel for m in self.modules)


@dataclass(frozen=True, slots=True)
class Stack:
    """Numbered layers under ``prefix`` (layer i's modules live under ``f"{prefix}.{i}."``)."""

    prefix: str
    kinds: tuple[LayerKind, ...]
    layout: tuple[int, ...]  # the kind (index into ``kinds``) of each layer
    role: str = "text"  # text | vision | audio: which component the stack belongs to

    @property
    def num_layers(self) -> int:
        return len(self.layout)

    @property
    def params(self) -> int:
        return sum(self.kinds[k].params for k in self.layout)

    def key(self, index: int, relative_path: str) -> str:
        return f"{self.prefix}.{index}.{relative_path}" if relative_path else f"{self.prefix}.{index}"

    def layers_of(self, kind_index: int) -> tuple[int, ...]:
        return tuple(i for i, k in enumerate(self.layout) if k == kind_index)

    def runs(self) -> Iterator[tuple[int, int, int]]:
        """(kind index, first layer, number of layers) for each run of consecutive layers of one kind."""
        start = 0
        for i in range(1, len(self.layout) + 1):
            if i == len(self.layout) or self.layout[i] != self.layout[start]:
                yield self.layout[start], start, i - start
                start = i


@dataclass(frozen=True, slots=True)
class Architecture:
    model_type: str
    dims: Dimensions
    stacks: tuple[Stack, ...]  # the text decoder first
    global_modules: tuple[Module, ...]  # full paths (embeddings, final norm, output head, projector, containers)
    input_embedding: str  # path of the token embedding
    output_head: str  # path of the output projection (excluded by "all-linear")
    default_target_modules: tuple[str, ...] | str | None  # PEFT's defaults for this model_type
    family: str = ""
    # Parameters per component as transformers groups them (language_model, vision_tower, ...).
    components: tuple[tuple[str, int], ...] = ()
    exact: bool = True  # False: an approximate (Llama-style) reading of an unknown model_type
    assumptions: tuple[str, ...] = ()
    # Global modules whose weight is another's (tied): counted once, like ``model.parameters()``.
    tied: tuple[tuple[str, str], ...] = ()  # (path, path of the module it shares its weight with)
    # PEFT's transformers-5 rewrite of MoE expert names into target_parameters: "" | "mixtral" | "qwen2_moe"
    moe_conversion: str = ""
    # (module name suffix, why): modules PEFT adapts although training then fails (Llama 4's router)
    lora_hazards: tuple[tuple[str, str], ...] = ()
    # How the text model runs outside its layers (final norm, positions, head), for the activation replay.
    forward: Any = None
    # Computed once: the inventory is large, and every cache of the engine is keyed by the architecture.
    _base_params: int = field(init=False, repr=False, compare=False, default=0)
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        tied = frozenset(path for path, _ in self.tied)
        total = sum(s.params for s in self.stacks) + sum(
            p.numel for m in self.global_modules for p in _own_params(m, tied)
        )
        object.__setattr__(self, "_base_params", total)
        key = (self.model_type, self.stacks, self.global_modules, self.tied, self.default_target_modules, self.dims)
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self) -> int:
        return self._hash

    @property
    def text(self) -> Stack:
        return self.stacks[0]

    @property
    def num_layers(self) -> int:
        return self.text.num_layers

    @property
    def layer_prefix(self) -> str:
        return self.text.prefix

    @property
    def tied_paths(self) -> frozenset[str]:
        return frozenset(path for path, _ in self.tied)

    @property
    def global_params(self) -> int:
        """Parameters outside the layers; a tied module shares the other's weight (counted once)."""
        return sum(p.numel for m in self.global_modules for p in self.own_params(m))

    def own_params(self, module: Module) -> tuple[Param, ...]:
        """The parameters ``model.parameters()`` lists for ``module``: a tied module's weight is the other
        module's, but its own bias is its own (Phi's output head keeps its bias when tied)."""
        return _own_params(module, self.tied_paths)

    @property
    def base_params(self) -> int:
        """What ``sum(p.numel() for p in model.parameters())`` gives (tied weights once)."""
        return self._base_params

    def has_default_targets(self) -> bool:
        """Whether PEFT knows default ``target_modules`` for this model type (else the user must name them)."""
        return self.default_target_modules is not None

    def modules(self) -> Iterator[tuple[str, Module]]:
        """Every module with its full name, in model order (layers expanded)."""
        for module in self.global_modules:
            yield module.path, module
        for stack in self.stacks:
            for index, kind in enumerate(stack.layout):
                for module in stack.kinds[kind].modules:
                    yield stack.key(index, module.path), module

    def layer_modules_of(self, stack: Stack) -> Iterator[Module]:
        """The distinct modules of a stack's layer kinds (a module present in several kinds once per kind)."""
        for kind in stack.kinds:
            yield from kind.modules

    @property
    def lora_module_names(self) -> tuple[str, ...]:
        """Distinct names of the LoRA-able linear modules inside the text layers, in model order."""
        seen: dict[str, None] = {}
        for module in self.layer_modules_of(self.text):
            if module.kind in LINEAR_KINDS:
                seen.setdefault(module.name, None)
        return tuple(seen)

    def linear_weights(self) -> Iterator[tuple[Module, int]]:
        """Every linear module with the number of copies (layers) it has: what bitsandbytes quantizes."""
        for stack in self.stacks:
            for kind_index, kind in enumerate(stack.kinds):
                copies = stack.layout.count(kind_index)
                for module in kind.modules:
                    if module.kind in LINEAR_KINDS:
                        yield module, copies
        for module in self.global_modules:
            if module.kind in LINEAR_KINDS and module.path not in self.tied_paths:
                yield module, 1


def _own_params(module: Module, tied: frozenset[str]) -> tuple[Param, ...]:
    if module.path not in tied:
        return module.params
    return tuple(p for p in module.params if p.name != "weight")
