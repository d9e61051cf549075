"""How sure each figure is for the model in hand, from what the test suite holds the core to.

Counts and static bytes are exact wherever the model type is described (checked against transformers, PEFT
and bitsandbytes); an unknown type read as Llama-style is approximate. Saved activations are a replay of the
forward: ``MEASURED_ACTIVATIONS`` says, per model type, over how many measured cases the replay was compared
and the largest error left (`tests/core/test_memory_golden*.py`; `test_confidence.py` recomputes this table
from the golden files, so it cannot drift from them). Two paths cannot be judged on the CPU the measurements
ran on, and are named instead of counted as measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from .architecture import Architecture
from .families.spec import GatedDeltaNet, Mla
from .training import TrainingSettings

# model_type -> (measured cases compared, worst |estimate / measurement - 1|)
MEASURED_ACTIVATIONS: dict[str, tuple[int, float]] = {
    "cohere2": (10, 0.0006),
    "deepseek_v2": (10, 0.0025),
    "deepseek_v3": (5, 0.0043),
    "falcon": (30, 0.0001),
    "gemma": (18, 0.0),
    "gemma2": (20, 0.0),
    "gemma3": (11, 0.0),
    "gemma3_text": (10, 0.0),
    "gemma4": (21, 0.0),
    "gemma4_text": (10, 0.0),
    "glm4": (10, 0.0),
    "glm4_moe": (12, 0.0033),
    "gpt2": (30, 0.0),
    "gpt_oss": (12, 0.0),
    "granite": (10, 0.0),
    "lfm2": (10, 0.0009),
    "llama": (57, 0.0),
    "llama4": (9, 0.0),
    "mistral3": (10, 0.0),
    "mixtral": (19, 0.0),
    "mllama": (10, 0.0),
    "olmo2": (13, 0.0),
    "phi": (10, 0.0),
    "phi3": (28, 0.0),
    "qwen2": (38, 0.0),
    "qwen2_5_vl": (10, 0.0008),
    "qwen2_moe": (12, 0.0016),
    "qwen3": (18, 0.0),
    "qwen3_5": (11, 0.0121),
    "qwen3_5_moe": (12, 0.0227),
    "qwen3_moe": (16, 0.0003),
    "qwen3_next": (12, 0.0246),
    "smollm3": (10, 0.0),
    "starcoder2": (10, 0.0),
}
# types whose layers are another measured type's blocks (same modeling code path)
SAME_BLOCKS: dict[str, str] = {
    "mistral": "llama",
    "qwen3_5_text": "qwen3_5",
    "qwen3_5_moe_text": "qwen3_5_moe",
    "llama4_text": "llama4",
}


@dataclass(frozen=True, slots=True)
class Confidence:
    counts_exact: bool  # parameters and static bytes: exact (False: an approximate reading of an unknown type)
    measured_as: str  # the model type whose measurements apply ("" when none do)
    activations_cases: int  # measured cases compared (0: this type's blocks were not measured)
    activations_worst: float  # the largest relative error left on them
    upper_bound: bool  # Gated DeltaNet: the replay follows the torch fallback, which keeps more than fla's kernels
    cuda_only_kernel: bool  # MLA on sdpa: modelled on CUDA's memory-efficient kernel, which the CPU cannot run


def confidence(arch: Architecture, training: TrainingSettings) -> Confidence:
    measured_as = SAME_BLOCKS.get(arch.model_type, arch.model_type) if arch.exact else ""
    cases, worst = MEASURED_ACTIVATIONS.get(measured_as, (0, 0.0))
    mixers = [kind.block.mixer for kind in arch.text.kinds]
    return Confidence(
        counts_exact=arch.exact,
        measured_as=measured_as if cases else "",
        activations_cases=cases,
        activations_worst=worst,
        upper_bound=any(isinstance(m, GatedDeltaNet) for m in mixers),
        cuda_only_kernel=training.attn_implementation == "sdpa" and any(isinstance(m, Mla) for m in mixers),
    )
