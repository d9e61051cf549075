"""Response schemas for the OpenAPI document (the request schemas are `calculator.schemas`).

A test validates real responses against these models, so the documentation cannot drift.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, RootModel, create_model

from calculator.api.representation import MEMORY_FIELDS
from calculator.schemas import LoraInput, ModelChoice, TrainingInput


class LayerGroupOut(BaseModel):
    stack: str
    kind: str
    layers: int


class ModelOut(BaseModel):
    name: str
    model_type: str
    family: str
    base_params: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    num_local_experts: int
    num_experts_per_tok: int
    target_module_names: list[str]
    exact: bool
    assumptions: list[str]
    components: dict[str, int]
    layers: list[LayerGroupOut]


class ModuleOut(BaseModel):
    name: str
    in_features: int
    out_features: int
    layers: int
    r: int
    lora_alpha: float
    num_experts: int
    params_per_layer: int
    params: int


class LoraOut(BaseModel):
    trainable_params: int
    all_params: int
    trainable_percent: float
    scaling: float
    lora_params: int
    bias_params: int
    modules_to_save_params: int
    modules: list[ModuleOut]


if TYPE_CHECKING:
    MemoryOut = BaseModel
else:  # one integer (bytes) per memory field, named as the response names them
    MemoryOut = create_model("MemoryOut", **dict.fromkeys(MEMORY_FIELDS, (int, ...)))


class FitOut(BaseModel):
    gpu: str
    memory_bytes: int
    fits: bool
    verdict: Literal["fits", "tight", "does_not_fit"]
    margin_bytes: int


class ChosenGpuOut(BaseModel):
    name: str
    verdict: str
    margin_bytes: int
    safety_margin: float


class TimeOut(BaseModel):
    gpu: str
    num_gpus: int
    flops_per_token: int
    tokens_per_step: int
    tokens_per_second: float | None
    step_seconds: float | None
    steps: int | None
    total_seconds: float | None
    mfu: float
    mfu_is_default: bool
    peak_flops: float | None


class CostOut(BaseModel):
    gpu: str
    gpus_needed: int | None
    verdict: str
    total_bytes: int | None
    hours: float | None
    price_per_hour: float | None
    total: float | None
    cheapest: bool


class AdviceOut(BaseModel):
    label: str
    changes: dict[str, object]
    total_bytes: int
    verdict: str
    total_seconds: float | None
    cost: float | None


class FrameworkDefaultOut(BaseModel):
    field: str
    value: bool | int | float | str
    source: str


class ScenarioOut(BaseModel):
    label: str
    base_dtype: str
    trainable_params: int
    memory: MemoryOut


class EstimateResponse(BaseModel):
    engine_version: str
    model: ModelOut
    lora: LoraOut
    memory: MemoryOut
    adapter_file_bytes: int
    fits: list[FitOut]
    peft_config: str
    training: TrainingInput  # every setting the numbers are for (the framework's defaults filled in)
    set_by_framework: list[FrameworkDefaultOut]
    gpu: ChosenGpuOut
    time: TimeOut
    cost: list[CostOut]
    advice: list[AdviceOut]
    comparison: list[ScenarioOut]


class PlanResponse(BaseModel):
    goal: str
    gpu: str
    value: int | None  # None: not even the smallest value fits
    verdict: str
    total_bytes: int | None
    limit_bytes: int
    estimate: EstimateResponse | None


class PresetOut(BaseModel):
    slug: str
    name: str
    family: str
    model_type: str
    base_params: int
    published_params: int
    published_params_exact: bool
    params_note: str
    components: dict[str, int]
    layers: list[LayerGroupOut]
    config: dict[str, object]
    source_url: str
    hf_repo: str
    notes: str


class ConfigurationSummary(BaseModel):
    """A saved configuration as the list shows it: its inputs, without the estimate."""

    slug: str
    url: str
    name: str
    note: str
    created: datetime
    owner: str | None  # the owner's username, shown to the owner only
    model: ModelChoice
    lora: LoraInput
    training: TrainingInput


class ConfigurationResponse(ConfigurationSummary):
    estimate: EstimateResponse | None  # None: the saved inputs no longer compute (``error`` says why)
    error: dict[str, object] | None = None


class ErrorOut(BaseModel):
    """DRF's error shape for everything but field errors (404, 401, 403, 405, 413, 429, 503...)."""

    detail: str


class FieldErrors(RootModel[dict[str, "list[str] | FieldErrors"]]):
    """``{"field": ["message"]}``, nested like the request for nested fields."""


class BadRequestOut(RootModel[ErrorOut | FieldErrors]):
    """A 400: the fields that are wrong, or (for a body that is not JSON) a ``detail``."""
