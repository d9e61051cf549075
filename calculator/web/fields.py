"""The calculator form's fields: their API names, kinds, defaults and choices (one table for parsing,
rendering and the canonical URL). Defaults are the API's (`calculator.schemas`)."""

from __future__ import annotations

from dataclasses import dataclass

from calculator.core.families import CUSTOM_FIELDS
from calculator.core.optimizers import OPTIMIZERS


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str  # int | float | bool | choice | names | layers
    default: object = None
    group: str = ""  # lora | training | page
    choices: tuple[tuple[str, str], ...] = ()


DIM_FIELDS: tuple[str, ...] = CUSTOM_FIELDS  # the architecture fields the form shows, as the core names them
DIM_LABELS = {
    "hidden_size": "hidden_size",
    "intermediate_size": "intermediate_size",
    "num_hidden_layers": "num_hidden_layers",
    "num_attention_heads": "num_attention_heads",
    "num_key_value_heads": "num_key_value_heads",
    "head_dim": "head_dim",
    "vocab_size": "vocab_size",
    "tie_word_embeddings": "tie_word_embeddings",
    "num_local_experts": "num_local_experts (MoE)",
    "num_experts_per_tok": "num_experts_per_tok (MoE)",
}
# Config keys per model type when they differ from the API's names (GPT-2 has its own).
CONFIG_KEYS: dict[str, dict[str, str]] = {
    "gpt2": {
        "hidden_size": "n_embd",
        "num_hidden_layers": "n_layer",
        "num_attention_heads": "n_head",
        "intermediate_size": "n_inner",
    }
}
# Which dimension fields a model type reads (the rest are shown disabled).
COMMON_DIMS = frozenset(
    {
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "vocab_size",
        "tie_word_embeddings",
    }
)
GQA_DIMS = COMMON_DIMS | {"num_key_value_heads", "head_dim"}
MOE_DIMS = GQA_DIMS | {"num_local_experts", "num_experts_per_tok"}


def applicable_dims(model_type: str | None) -> frozenset[str]:
    if model_type == "gpt2":
        return COMMON_DIMS
    if model_type in (None, "mixtral"):  # None: custom dimensions (Llama-style, Mixtral-style with experts)
        return MOE_DIMS
    return GQA_DIMS


BASE_DTYPES = (
    ("fp32", "fp32"),
    ("bf16", "bf16"),
    ("fp16", "fp16"),
    ("int8", "int8 (LLM.int8)"),
    ("nf4", "nf4 (4-bit, QLoRA)"),
    ("fp4", "fp4 (4-bit)"),
)
ADAPTER_DTYPES = (("fp32", "fp32 (PEFT default)"), ("bf16", "bf16"), ("fp16", "fp16"))
ATTN = (("eager", "eager"), ("sdpa", "sdpa"), ("flash_attention_2", "flash_attention_2"))
BIAS = (("none", "none"), ("all", "all"), ("lora_only", "lora_only"))

LORA_FIELDS: tuple[Field, ...] = (
    Field("r", "int", 8, "lora"),
    Field("lora_alpha", "float", 8.0, "lora"),
    Field("lora_dropout", "float", 0.0, "lora"),
    Field("bias", "choice", "none", "lora", BIAS),
    Field("use_rslora", "bool", False, "lora"),
    Field("use_dora", "bool", False, "lora"),
    Field("modules_to_save", "names", None, "lora"),
    Field("layers_to_transform", "layers", None, "lora"),
)
TRAINING_FIELDS: tuple[Field, ...] = (
    Field("base_dtype", "choice", "bf16", "training", BASE_DTYPES),
    Field("double_quant", "bool", True, "training"),
    Field("prepare_model_for_kbit_training", "bool", False, "training"),
    Field("adapter_dtype", "choice", "fp32", "training", ADAPTER_DTYPES),
    Field("optimizer", "choice", "adamw", "training", tuple(OPTIMIZERS.items())),
    Field("batch_size", "int", 1, "training"),
    Field("seq_len", "int", 2048, "training"),
    Field("gradient_checkpointing", "bool", False, "training"),
    Field("attn_implementation", "choice", "sdpa", "training", ATTN),
)
DEFAULT_ADAPTERS = 1
MAX_ADAPTERS = 1000
PAGE_FIELDS: tuple[Field, ...] = (Field("gpu", "text", "", "page"), Field("adapters", "int", DEFAULT_ADAPTERS, "page"))
SCALAR_FIELDS = LORA_FIELDS + TRAINING_FIELDS + PAGE_FIELDS
BY_NAME = {f.name: f for f in SCALAR_FIELDS}

RANK_PICKS = (4, 8, 16, 32, 64, 128)
SEQ_PICKS = (512, 1024, 2048, 4096, 8192, 16384, 32768)
DEFAULT_PRESET = "llama-3.1-8b"
DEFAULT_GPU_HINT = "4090"  # "does it fit on a 24 GB card?" is the first question people ask
