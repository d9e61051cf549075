"""lorasite's calculation core: plain Python, standard library only, no Django.

Dataclasses in, dataclasses out: `architecture_from_config` (or `architecture_from_dimensions`) builds
the module inventory, `estimate` turns it plus `LoraSettings` and `TrainingSettings` into every number.
"""

from .architecture import Architecture, Dimensions
from .errors import InputError
from .estimate import ENGINE_VERSION, Estimate, MemoryEstimate, Scenario, compare_scenarios, estimate
from .families import SUPPORTED_MODEL_TYPES, architecture_from_config, architecture_from_dimensions
from .gpus import DEFAULT_GPUS, Gpu, GpuFit
from .lora import LoraCount, LoraSettings, count_lora, scaling
from .training import TrainingSettings

__all__ = [
    "DEFAULT_GPUS",
    "ENGINE_VERSION",
    "SUPPORTED_MODEL_TYPES",
    "Architecture",
    "Dimensions",
    "Estimate",
    "Gpu",
    "GpuFit",
    "InputError",
    "LoraCount",
    "LoraSettings",
    "MemoryEstimate",
    "Scenario",
    "TrainingSettings",
    "architecture_from_config",
    "architecture_from_dimensions",
    "compare_scenarios",
    "count_lora",
    "estimate",
    "scaling",
]
