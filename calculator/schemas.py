"""The estimate request: validated once (pydantic v2, fast) for the API and the page alike.

Field names, meanings and defaults are those of ``api.md`` (the ``lora`` group mirrors
``peft.LoraConfig``). Every choice set, default and bound is the core's: the enums are the core's
tuples, the defaults those of `LoraSettings` and `TrainingSettings`, the bounds `core.bounds`. The web
form and the fuzz tests read their fields, choices and defaults from these models in turn.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from calculator.core import LoraSettings, TrainingSettings, bounds
from calculator.core.dtypes import BASE_DTYPES, FLOAT_DTYPES
from calculator.core.frameworks import FrameworkFill, apply_framework
from calculator.core.gpus import DEFAULT_SAFETY_MARGIN, MAX_SAFETY_MARGIN
from calculator.core.lora_settings import BIAS_MODES
from calculator.core.optimizers import OPTIMIZERS
from calculator.core.planner import GOALS, SWEEP_VARIABLES
from calculator.core.runtime import MAX_ACCUMULATION, MAX_DATASET_TOKENS, MAX_EPOCHS, PlanSettings
from calculator.core.serving import MAX_ADAPTERS
from calculator.core.training import (
    ATTN_IMPLEMENTATIONS,
    DEFAULT_LOSS_CHUNKS,
    FRAMEWORKS,
    LOSSES,
    MAX_LOSS_CHUNKS,
    PARALLELISMS,
    QUANTIZE_SCOPES,
)

Name = str
GIB = 1024**3
DEFAULT_HOST_RAM_GIB = 64
MAX_HOST_RAM_GIB = 65_536
CUSTOM_GPU = "custom"  # training.gpu on the page: the card described by the custom_gpu_* fields
MAX_CUSTOM_GPU_GIB = 100_000.0
MAX_CUSTOM_TFLOPS = 100_000.0
MAX_CUSTOM_PRICE = 10_000.0
# Model FLOPs utilisation: real runs reach 0.05 to 0.6; below 0.1 % the time and cost would overflow a float.
MIN_MFU = 0.001
# Preset slugs: lower-case words joined by dots, dashes or underscores ("llama-3.1-8b", "qwen3.5-9b"). The model
# field, the API's lookup and the OpenAPI path pattern all use this one.
PRESET_SLUG = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
LORA_DEFAULTS = LoraSettings()
TRAINING_DEFAULTS = TrainingSettings()
PLAN_DEFAULTS = PlanSettings()
PLAN_FIELDS = frozenset(f.name for f in fields(PlanSettings))

if TYPE_CHECKING:  # the enums are built from the core's tuples at run time; to a type checker they are str
    BaseDtype: TypeAlias = str
    AdapterDtype: TypeAlias = str
    Optimizer: TypeAlias = str
    AttnImplementation: TypeAlias = str
    Parallelism: TypeAlias = str
    QuantizeScope: TypeAlias = str
    BiasMode: TypeAlias = str
    Loss: TypeAlias = str
    Framework: TypeAlias = str
    Goal: TypeAlias = str
    SweepVariable: TypeAlias = str
else:  # Literal[("a", "b")] is Literal["a", "b"]: pydantic validates and documents the core's choices
    BaseDtype = Literal[BASE_DTYPES]
    AdapterDtype = Literal[FLOAT_DTYPES]
    Optimizer = Literal[tuple(OPTIMIZERS)]
    AttnImplementation = Literal[ATTN_IMPLEMENTATIONS]
    Parallelism = Literal[PARALLELISMS]
    QuantizeScope = Literal[QUANTIZE_SCOPES]
    BiasMode = Literal[BIAS_MODES]
    Loss = Literal[tuple(LOSSES)]
    Framework = Literal[tuple(FRAMEWORKS)]
    Goal = Literal[GOALS]
    SweepVariable = Literal[SWEEP_VARIABLES]


class CustomDimensions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hidden_size: int = Field(ge=1, le=bounds.MAX_HIDDEN_SIZE)
    intermediate_size: int = Field(ge=1, le=bounds.MAX_INTERMEDIATE_SIZE)
    num_hidden_layers: int = Field(ge=1, le=bounds.MAX_LAYERS)
    num_attention_heads: int = Field(ge=1, le=bounds.MAX_HEADS)
    num_key_value_heads: int | None = Field(default=None, ge=1, le=bounds.MAX_HEADS)
    head_dim: int | None = Field(default=None, ge=1, le=bounds.MAX_HEAD_DIM)
    vocab_size: int = Field(ge=1, le=bounds.MAX_VOCAB_SIZE)
    tie_word_embeddings: bool = False
    num_local_experts: int | None = Field(default=None, ge=1, le=bounds.MAX_EXPERTS)
    num_experts_per_tok: int | None = Field(default=None, ge=1, le=bounds.MAX_EXPERTS)


class ModelChoice(BaseModel):
    """Exactly one of a catalog preset, a pasted config.json, or custom dimensions."""

    # The schema says "exactly one" as the validator below does: one key given and not null.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": [key], "properties": {key: {"not": {"type": "null"}}}}
                for key in ("preset", "hf_config", "custom")
            ]
        },
    )

    preset: str | None = Field(default=None, max_length=80, pattern=f"^{PRESET_SLUG}$")
    # Free-form, as published; the schema names the one key every config needs (a null passes `required`).
    hf_config: dict[str, Any] | None = Field(
        default=None,
        json_schema_extra={
            "required": ["model_type"],
            "properties": {"model_type": {"type": "string", "minLength": 1}},
        },
    )
    custom: CustomDimensions | None = None

    @field_validator("hf_config")
    @classmethod
    def finite_numbers(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """JSON's NaN and Infinity are not sizes (and would overflow every integer conversion)."""
        for key, item in (value or {}).items():
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{key}: {item} is not a number a config.json can hold.")
        return value

    @model_validator(mode="after")
    def exactly_one(self) -> ModelChoice:
        given = [k for k in ("preset", "hf_config", "custom") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("Give exactly one of preset, hf_config or custom.")
        return self


class LoraInput(BaseModel):
    """``peft.LoraConfig`` keyword arguments; keys that do not change the numbers are ignored."""

    model_config = ConfigDict(extra="ignore")

    r: int = Field(default=LORA_DEFAULTS.r, ge=1, le=bounds.MAX_RANK)
    lora_alpha: float = Field(default=LORA_DEFAULTS.lora_alpha, gt=0, le=bounds.MAX_ALPHA)
    target_modules: list[Name] | Name | None = Field(default=None)
    lora_dropout: float = Field(default=LORA_DEFAULTS.lora_dropout, ge=0.0, lt=1.0)
    bias: BiasMode = LORA_DEFAULTS.bias
    use_dora: bool = LORA_DEFAULTS.use_dora
    use_rslora: bool = LORA_DEFAULTS.use_rslora
    lora_bias: bool = LORA_DEFAULTS.lora_bias
    modules_to_save: list[Name] | None = None
    layers_to_transform: int | list[int] | None = None
    layers_pattern: list[Name] | Name | None = None
    rank_pattern: dict[str, int] = Field(default_factory=dict)
    alpha_pattern: dict[str, float] = Field(default_factory=dict)
    target_parameters: list[Name] | None = None
    exclude_modules: list[Name] | Name | None = None
    # Token ids whose embedding rows train: a list for the input embedding, or {layer name: ids}.
    trainable_token_indices: list[int] | dict[Name, list[int]] | None = None
    ensure_weight_tying: bool = LORA_DEFAULTS.ensure_weight_tying

    @field_validator("target_modules", "modules_to_save", "target_parameters", "exclude_modules", "layers_pattern")
    @classmethod
    def bounded_names(cls, value: list[str] | str | None) -> list[str] | str | None:
        items = [value] if isinstance(value, str) else value or []
        if len(items) > bounds.MAX_LIST_ENTRIES:
            raise ValueError(f"At most {bounds.MAX_LIST_ENTRIES} entries.")
        for item in items:
            if not item or len(item) > bounds.MAX_NAME_LENGTH:
                raise ValueError(f"Names must be 1 to {bounds.MAX_NAME_LENGTH} characters.")
        return value

    @field_validator("layers_to_transform")
    @classmethod
    def layer_indexes(cls, value: int | list[int] | None) -> int | list[int] | None:
        items = [value] if isinstance(value, int) else value or []
        if len(items) > bounds.MAX_LIST_ENTRIES or any(not 0 <= i < bounds.MAX_LAYERS for i in items):
            raise ValueError(f"Layer indexes must be between 0 and {bounds.MAX_LAYERS - 1}.")
        return value

    @field_validator("trainable_token_indices")
    @classmethod
    def token_ids(cls, value: list[int] | dict[str, list[int]] | None) -> list[int] | dict[str, list[int]] | None:
        lists = list(value.values()) if isinstance(value, dict) else [value or []]
        if isinstance(value, dict) and len(value) > bounds.MAX_PATTERN_ENTRIES:
            raise ValueError(f"At most {bounds.MAX_PATTERN_ENTRIES} layers.")
        if isinstance(value, dict) and any(not k or len(k) > bounds.MAX_NAME_LENGTH for k in value):
            raise ValueError(f"Layer names must be 1 to {bounds.MAX_NAME_LENGTH} characters.")
        for ids in lists:
            if len(ids) > bounds.MAX_LIST_ENTRIES:
                raise ValueError(f"At most {bounds.MAX_LIST_ENTRIES} token ids per layer.")
            if any(not 0 <= i < bounds.MAX_VOCAB_SIZE for i in ids):
                raise ValueError(f"Token ids must be between 0 and {bounds.MAX_VOCAB_SIZE - 1:,}.")
        return value

    @field_validator("rank_pattern")
    @classmethod
    def ranks(cls, value: dict[str, int]) -> dict[str, int]:
        if len(value) > bounds.MAX_PATTERN_ENTRIES:
            raise ValueError(f"At most {bounds.MAX_PATTERN_ENTRIES} entries.")
        if any(not 1 <= r <= bounds.MAX_RANK for r in value.values()):
            raise ValueError(f"Ranks must be between 1 and {bounds.MAX_RANK}.")
        return value

    @field_validator("alpha_pattern")
    @classmethod
    def alphas(cls, value: dict[str, float]) -> dict[str, float]:
        if len(value) > bounds.MAX_PATTERN_ENTRIES:
            raise ValueError(f"At most {bounds.MAX_PATTERN_ENTRIES} entries.")
        if any(not 0 < a <= bounds.MAX_ALPHA for a in value.values()):
            raise ValueError(f"Alphas must be above 0 and at most {bounds.MAX_ALPHA:g}.")
        return value

    def to_core(self) -> LoraSettings:
        def names(value: list[str] | str | None) -> tuple[str, ...] | str | None:
            return tuple(value) if isinstance(value, list) else value

        layers = self.layers_to_transform
        return LoraSettings(
            r=self.r,
            lora_alpha=self.lora_alpha,
            target_modules=names(self.target_modules),
            lora_dropout=self.lora_dropout,
            bias=self.bias,
            use_dora=self.use_dora,
            use_rslora=self.use_rslora,
            lora_bias=self.lora_bias,
            modules_to_save=tuple(self.modules_to_save) if self.modules_to_save is not None else None,
            layers_to_transform=tuple(layers) if isinstance(layers, list) else layers,
            layers_pattern=names(self.layers_pattern),
            rank_pattern=tuple(self.rank_pattern.items()),
            alpha_pattern=tuple(self.alpha_pattern.items()),
            target_parameters=tuple(self.target_parameters) if self.target_parameters is not None else None,
            exclude_modules=names(self.exclude_modules),
            trainable_token_indices=self._token_ids(),
            ensure_weight_tying=self.ensure_weight_tying,
        )

    def _token_ids(self) -> tuple[int, ...] | tuple[tuple[str, tuple[int, ...]], ...] | None:
        given = self.trainable_token_indices
        if isinstance(given, dict):
            return tuple((name, tuple(ids)) for name, ids in given.items())
        return tuple(given) if given is not None else None


class TrainingInput(BaseModel):
    """``framework`` fills the fields a request leaves out with that framework's defaults (the core's
    `apply_framework`); the fields a request sets always win."""

    model_config = ConfigDict(extra="forbid")

    base_dtype: BaseDtype = TRAINING_DEFAULTS.base_dtype
    double_quant: bool = TRAINING_DEFAULTS.double_quant
    adapter_dtype: AdapterDtype = TRAINING_DEFAULTS.adapter_dtype
    optimizer: Optimizer = TRAINING_DEFAULTS.optimizer
    batch_size: int = Field(default=TRAINING_DEFAULTS.batch_size, ge=1, le=bounds.MAX_BATCH_SIZE)
    seq_len: int = Field(default=TRAINING_DEFAULTS.seq_len, ge=1, le=bounds.MAX_SEQ_LEN)
    gradient_checkpointing: bool = TRAINING_DEFAULTS.gradient_checkpointing
    attn_implementation: AttnImplementation = TRAINING_DEFAULTS.attn_implementation
    num_gpus: int = Field(default=TRAINING_DEFAULTS.num_gpus, ge=1, le=bounds.MAX_GPUS)
    parallelism: Parallelism = TRAINING_DEFAULTS.parallelism
    quantize_scope: QuantizeScope = TRAINING_DEFAULTS.quantize_scope
    overhead_bytes: int = Field(default=TRAINING_DEFAULTS.overhead_bytes, ge=0, le=1 << 40)
    prepare_model_for_kbit_training: bool = TRAINING_DEFAULTS.prepare_model_for_kbit_training
    # v1.1: the recipe (issue 8)
    framework: Framework = TRAINING_DEFAULTS.framework
    loss: Loss = TRAINING_DEFAULTS.loss
    loss_chunks: int = Field(default=DEFAULT_LOSS_CHUNKS, ge=1, le=MAX_LOSS_CHUNKS)
    compile_loss: bool = TRAINING_DEFAULTS.compile_loss
    loss_token_fraction: float = Field(default=TRAINING_DEFAULTS.loss_token_fraction, gt=0.0, le=1.0)
    activation_offloading: bool = TRAINING_DEFAULTS.activation_offloading
    optimizer_offload: bool = TRAINING_DEFAULTS.optimizer_offload
    param_offload: bool = TRAINING_DEFAULTS.param_offload
    quantize_moe_experts: bool = TRAINING_DEFAULTS.quantize_moe_experts
    # v1.1: planning (issue 9): the card time, advice and goals are for, and the run's shape
    gpu: str | None = Field(default=PLAN_DEFAULTS.gpu, max_length=120)
    gradient_accumulation_steps: int = Field(
        default=PLAN_DEFAULTS.gradient_accumulation_steps, ge=1, le=MAX_ACCUMULATION
    )
    safety_margin: float = Field(default=DEFAULT_SAFETY_MARGIN, ge=0.0, le=MAX_SAFETY_MARGIN)
    dataset_tokens: int | None = Field(default=None, ge=1, le=MAX_DATASET_TOKENS)
    dataset_examples: int | None = Field(default=None, ge=1, le=MAX_DATASET_TOKENS)
    mean_example_tokens: int | None = Field(default=None, ge=1, le=MAX_DATASET_TOKENS)
    epochs: float = Field(default=PLAN_DEFAULTS.epochs, gt=0.0, le=MAX_EPOCHS)
    mfu: float | None = Field(default=None, ge=MIN_MFU, le=1.0)

    def fill(self) -> FrameworkFill:
        """The training settings with the framework's defaults in the fields this request left out, and
        which ones those are."""
        return apply_framework({name: getattr(self, name) for name in self.model_fields_set - PLAN_FIELDS})

    def to_core(self) -> TrainingSettings:
        return self.fill().training

    def plan(self) -> PlanSettings:
        """The planning inputs (the core's `PlanSettings`)."""
        return PlanSettings(**{name: getattr(self, name) for name in PLAN_FIELDS})

    def resolved(self) -> TrainingInput:
        """The same settings with every field explicit (what a saved configuration stores, so its meaning
        does not depend on a framework's defaults changing later)."""
        training = self.to_core()
        values = {name: getattr(training, name) for name in TrainingInput.model_fields if name not in PLAN_FIELDS}
        return TrainingInput.model_validate({**values, **{name: getattr(self, name) for name in PLAN_FIELDS}})


class EstimateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelChoice
    lora: LoraInput = Field(default_factory=LoraInput)
    training: TrainingInput = Field(default_factory=TrainingInput)


class PlanRequest(EstimateRequest):
    """``POST /api/v1/plan/``: an estimate request, the card (a catalog name; else ``training.gpu`` or the
    default card) and the goal to solve for with the safety margin."""

    gpu: str | None = Field(default=None, max_length=120)
    goal: Goal


class SaveRequest(EstimateRequest):
    name: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=5000)


class PageOptions(BaseModel):
    """The calculator page's own inputs beyond the estimate request: the adapters served at once, the host
    RAM offloaded memory is checked against, a custom GPU, and what the sweep varies."""

    model_config = ConfigDict(extra="forbid")

    adapters: int = Field(default=1, ge=1, le=MAX_ADAPTERS)
    # A card that is not in the catalog (training.gpu = "custom"): its memory, peak BF16 TFLOPS and price.
    custom_gpu_memory_gib: float | None = Field(default=None, gt=0.0, le=MAX_CUSTOM_GPU_GIB)
    custom_gpu_tflops: float | None = Field(default=None, gt=0.0, le=MAX_CUSTOM_TFLOPS)
    custom_gpu_price: float | None = Field(default=None, ge=0.0, le=MAX_CUSTOM_PRICE)
    sweep: SweepVariable = "seq_len"  # what the sweep varies: r, seq_len or batch_size (context is the usual question)
    # The CPU RAM of the machine, for offloading (activations, optimizer states, parameters): a workstation's.
    host_ram_gib: int = Field(default=DEFAULT_HOST_RAM_GIB, ge=1, le=MAX_HOST_RAM_GIB)

    @property
    def host_ram_bytes(self) -> int:
        return self.host_ram_gib * GIB


def pydantic_errors(error: ValidationError) -> dict[str, list[str]]:
    """Flatten pydantic's errors to dotted field paths (the core's convention)."""
    flat: dict[str, list[str]] = {}
    for item in error.errors(include_url=False):
        loc = [str(part) for part in item["loc"] if not _is_union_tag(part)]
        message = item["msg"].removeprefix("Value error, ")
        flat.setdefault(".".join(loc) or "non_field_errors", []).append(message)
    return flat


def _is_union_tag(part: object) -> bool:
    """pydantic names the union member it tried (``list[str]``, ``int``...); users don't need that."""
    return isinstance(part, str) and (part.startswith(("list[", "dict[")) or part in {"str", "int", "float"})


def nest(flat: dict[str, list[str]]) -> dict[str, Any]:
    """``{"lora.r": [...]}`` -> ``{"lora": {"r": [...]}}``: DRF's nested error shape."""
    nested: dict[str, Any] = {}
    for path, messages in flat.items():
        node = nested
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                child = node[part] = {"non_field_errors": child}
            node = child
        leaf = node.setdefault(parts[-1], [])
        if isinstance(leaf, dict):
            leaf.setdefault("non_field_errors", []).extend(messages)
        else:
            leaf.extend(messages)
    return nested
