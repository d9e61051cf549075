"""What each training framework sets by default, so a request can say ``framework: trl`` and leave the rest.

`apply_framework` fills the training fields a request left out with that framework's defaults in its
current release and reports which ones it set (the page shows them); every field the request sets wins.
Each default cites the file it was read from. ``transformers`` sets nothing: the engine's own defaults
(v1) are transformers + PEFT as the calculator has always modelled them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from .errors import InputError
from .training import FRAMEWORKS, TrainingSettings


@dataclass(frozen=True, slots=True)
class FrameworkDefault:
    field: str
    value: object
    source: str  # "<package> <version> <file>: <setting>"


TRL = "trl 1.16.0"
TT = "torchtune 0.6.1 recipes/configs/llama3_2/3B_lora_single_device.yaml"
UNSLOTH = "unsloth 2026.10.9"
AXOLOTL = "axolotl 0.19.0"
LLAMAFACTORY = "llamafactory 0.9.5"
HF_ARGS = "transformers 5.23.0 training_args.py: per_device_train_batch_size=8"

FRAMEWORK_DEFAULTS: dict[str, tuple[FrameworkDefault, ...]] = {
    "transformers": (),
    "trl": (
        FrameworkDefault("base_dtype", "bf16", f"{TRL} trainer/sft_config.py: bf16 defaults to True"),
        FrameworkDefault("gradient_checkpointing", True, f"{TRL} trainer/sft_config.py: gradient_checkpointing=True"),
        FrameworkDefault(
            "loss",
            "trl_chunked_nll",
            f"{TRL} trainer/sft_config.py loss_type='nll' + sft_trainer.py add_fused_lm_head (chunked log-probs)",
        ),
        FrameworkDefault("seq_len", 1024, f"{TRL} trainer/sft_config.py: max_length=1024"),
        FrameworkDefault("batch_size", 8, HF_ARGS),
        FrameworkDefault("activation_offloading", False, f"{TRL} trainer/sft_config.py: activation_offloading"),
    ),
    "unsloth": (
        FrameworkDefault(
            "base_dtype", "nf4", f"{UNSLOTH} models/loader.py FastLanguageModel.from_pretrained: load_in_4bit=True"
        ),
        FrameworkDefault("seq_len", 2048, f"{UNSLOTH} models/loader.py: max_seq_length=2048"),
        FrameworkDefault(
            "gradient_checkpointing",
            True,
            f'{UNSLOTH} models/llama.py get_peft_model: use_gradient_checkpointing="unsloth"',
        ),
        FrameworkDefault(
            "activation_offloading",
            True,
            f'{UNSLOTH} models/llama.py get_peft_model: use_gradient_checkpointing="unsloth" offloads the '
            "checkpointed hidden states to the CPU",
        ),
    ),
    "torchtune": (
        FrameworkDefault("adapter_dtype", "bf16", f"{TT}: dtype: bf16 (LoRA weights and AdamW states in bf16)"),
        FrameworkDefault("loss", "chunked", f"{TT}: loss: torchtune.modules.loss.CEWithChunkedOutputLoss"),
        FrameworkDefault("gradient_checkpointing", True, f"{TT}: enable_activation_checkpointing: True"),
        FrameworkDefault("activation_offloading", False, f"{TT}: enable_activation_offloading: False"),
        FrameworkDefault("compile_loss", False, f"{TT}: compile: False"),
        FrameworkDefault("batch_size", 4, f"{TT}: batch_size: 4"),
        FrameworkDefault(
            "quantize_scope",
            "lora_targets",
            "torchtune 0.6.1 modules/peft/lora.py: LoRALinear(quantize_base=True) quantizes only adapted layers",
        ),
    ),
    "axolotl": (
        FrameworkDefault("seq_len", 512, f"{AXOLOTL} utils/schemas/config.py: sequence_len=512"),
        FrameworkDefault("batch_size", 1, f"{AXOLOTL} utils/schemas/training.py: micro_batch_size=1"),
        FrameworkDefault(
            "gradient_checkpointing", False, f"{AXOLOTL} utils/schemas/config.py: gradient_checkpointing=False"
        ),
    ),
    "llamafactory": (
        FrameworkDefault("seq_len", 2048, f"{LLAMAFACTORY} hparams/data_args.py: cutoff_len=2048"),
        FrameworkDefault(
            "gradient_checkpointing",
            True,
            f"{LLAMAFACTORY} hparams/model_args.py: disable_gradient_checkpointing=False",
        ),
        FrameworkDefault("batch_size", 8, HF_ARGS),
    ),
}

TRAINING_FIELDS = frozenset(f.name for f in fields(TrainingSettings))


@dataclass(frozen=True, slots=True)
class FrameworkFill:
    training: TrainingSettings
    set_by_framework: tuple[FrameworkDefault, ...]  # the defaults that filled a field the request left out


def apply_framework(given: Mapping[str, object]) -> FrameworkFill:
    """``given``: the training fields a request set, by name (``framework`` among them, or
    ``transformers``). Values are not checked here; ``validate_training`` does that on the result."""
    framework = str(given.get("framework", "transformers"))
    if framework not in FRAMEWORKS:
        raise InputError.single("training.framework", f"Must be one of {', '.join(FRAMEWORKS)}; got {framework!r}.")
    unknown = sorted(set(given) - TRAINING_FIELDS)
    if unknown:
        raise InputError({f"training.{name}": ["Unknown training field."] for name in unknown})
    filled = tuple(d for d in FRAMEWORK_DEFAULTS[framework] if d.field not in given)
    values = {**{d.field: d.value for d in filled}, **given, "framework": framework}
    return FrameworkFill(TrainingSettings(**values), filled)  # type: ignore[arg-type]
