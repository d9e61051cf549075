"""The one door from a face (the pages, the API, the admin) into the core.

Plain keyword-only functions that take and return domain values (validated requests, core dataclasses,
model instances), never HTTP requests, responses or JSON: each face owns its own output shape. Nothing here
is a formula; it resolves the model, reads the catalogs and calls the core. The modules:

- `catalog`: the preset and GPU catalogs (a per-process snapshot, no query per recompute);
- `estimates`: a request's estimate, saving and recomputing configurations, the Learn page's numbers;
- `page`: everything the calculator's results panel shows for one configuration and one chosen GPU;
- `recipes`: what a framework sets by default, and the recipe exports (TRL, torchtune, Axolotl);
- `planning`: the chosen card, verdicts with the safety margin, time and cost, which GPU to rent, advice,
  goals (``POST /api/v1/plan/``) and sweeps.

Faces import this package only (``from calculator import services``); the core's result types come along
for annotations.
"""

from __future__ import annotations

from calculator.core import Architecture, Estimate, Gpu, GpuFit, InputError, MemoryEstimate
from calculator.core.advice import Advice
from calculator.core.config_keys import (
    config_key,
    dimension_of,
    dimension_values,
    dimensions_from_config,
    dimensions_read,
    relevant_config,
)
from calculator.core.explain import LearnNumbers
from calculator.core.families import CUSTOM_FIELDS as DIMENSION_FIELDS
from calculator.core.gpus import smallest_fitting
from calculator.core.insights import QUANTIZED_4BIT as FOUR_BIT
from calculator.core.insights import (
    AdapterFileSizes,
    ComparisonNotes,
    LayerGroup,
    expert_params,
    has_default_targets,
    layer_groups,
)
from calculator.core.lora import AdaptedModule
from calculator.core.optimizers import OPTIMIZERS as OPTIMIZER_NAMES
from calculator.core.serving import ServingEstimate
from calculator.services.catalog import (
    CATALOG_TTL_SECONDS,
    PresetEntry,
    catalog_version,
    default_gpu,
    find_preset,
    gpus,
    invalidate_catalog,
    presets,
)
from calculator.services.estimates import (
    LearnResults,
    compute_estimate,
    configuration_estimate,
    learn,
    resolve_model,
    save_configuration,
    saved_model_name,
)
from calculator.services.page import CalculatorResults, calculator_results, model_id
from calculator.services.planning import (
    CUSTOM_GPU,
    EXAMPLE_DATASET_TOKENS,
    GOALS,
    SWEEP_VARIABLES,
    CostRow,
    GoalResult,
    PlannedEstimate,
    SweepRow,
    TimeEstimate,
    choose_gpu,
    configuration_plan,
    plan_estimate,
    solve,
)
from calculator.services.recipes import (
    FRAMEWORKS,
    LOSSES,
    PLACEHOLDER_MODEL,
    FrameworkDefault,
    RecipeExports,
    framework_fill,
    framework_sets,
    recipe_exports,
    training_defaults,
)

__all__ = [
    "CATALOG_TTL_SECONDS",
    "CUSTOM_GPU",
    "DIMENSION_FIELDS",
    "EXAMPLE_DATASET_TOKENS",
    "FOUR_BIT",
    "FRAMEWORKS",
    "GOALS",
    "LOSSES",
    "OPTIMIZER_NAMES",
    "PLACEHOLDER_MODEL",
    "SWEEP_VARIABLES",
    "AdaptedModule",
    "AdapterFileSizes",
    "Advice",
    "Architecture",
    "CalculatorResults",
    "ComparisonNotes",
    "CostRow",
    "Estimate",
    "FrameworkDefault",
    "GoalResult",
    "Gpu",
    "GpuFit",
    "InputError",
    "LayerGroup",
    "LearnNumbers",
    "LearnResults",
    "MemoryEstimate",
    "PlannedEstimate",
    "PresetEntry",
    "RecipeExports",
    "ServingEstimate",
    "SweepRow",
    "TimeEstimate",
    "calculator_results",
    "catalog_version",
    "choose_gpu",
    "compute_estimate",
    "config_key",
    "configuration_estimate",
    "configuration_plan",
    "default_gpu",
    "dimension_of",
    "dimension_values",
    "dimensions_from_config",
    "dimensions_read",
    "expert_params",
    "find_preset",
    "framework_fill",
    "framework_sets",
    "gpus",
    "has_default_targets",
    "invalidate_catalog",
    "layer_groups",
    "learn",
    "model_id",
    "plan_estimate",
    "presets",
    "recipe_exports",
    "relevant_config",
    "resolve_model",
    "save_configuration",
    "saved_model_name",
    "smallest_fitting",
    "solve",
    "training_defaults",
]
