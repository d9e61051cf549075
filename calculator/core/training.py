"""The training setup: how the base is stored, what the optimizer is, how big a micro-batch is."""

from __future__ import annotations

from dataclasses import dataclass

from .bounds import MAX_BATCH_SIZE, MAX_GPUS, MAX_SEQ_LEN
from .dtypes import BASE_DTYPES, FLOAT_DTYPES, QUANTIZED_DTYPES, compute_dtype
from .errors import ErrorCollector
from .optimizers import OPTIMIZERS

ATTN_IMPLEMENTATIONS: tuple[str, ...] = ("eager", "sdpa", "flash_attention_2")
PARALLELISMS: tuple[str, ...] = ("ddp", "fsdp")
QUANTIZE_SCOPES: tuple[str, ...] = ("all_linear", "lora_targets")

GIB = 1024**3
MIB = 1024**2
# CUDA context (~300-500 MiB with cuBLAS/cuDNN handles) plus allocator fragmentation and
# workspaces; a "does it fit" answer should err on the safe side.
DEFAULT_OVERHEAD_BYTES = 1 * GIB


@dataclass(frozen=True, slots=True)
class TrainingSettings:
    base_dtype: str = "bf16"
    double_quant: bool = True
    adapter_dtype: str = "fp32"
    optimizer: str = "adamw"
    batch_size: int = 1
    seq_len: int = 2048
    gradient_checkpointing: bool = False
    attn_implementation: str = "sdpa"
    num_gpus: int = 1
    parallelism: str = "ddp"  # ddp: every GPU holds everything; fsdp: weights/grads/states sharded
    quantize_scope: str = "all_linear"  # transformers+bitsandbytes; "lora_targets" is torchtune's QLoRA
    overhead_bytes: int = DEFAULT_OVERHEAD_BYTES
    # peft.prepare_model_for_kbit_training (TRL applies it to quantized models): every parameter that is
    # not quantized (embeddings, norms, output head, biases) is cast to fp32, so activations become fp32.
    prepare_model_for_kbit_training: bool = False

    @property
    def tokens(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def float_dtype(self) -> str:
        """The dtype of unquantized parameters and of activations."""
        if self.prepare_model_for_kbit_training and self.base_dtype in QUANTIZED_DTYPES:
            return "fp32"
        return compute_dtype(self.base_dtype)


def validate_training(t: TrainingSettings, errors: ErrorCollector) -> None:
    def one_of(field: str, value: str, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            errors.add(f"training.{field}", f"Must be one of {', '.join(allowed)}; got {value!r}.")

    one_of("base_dtype", t.base_dtype, BASE_DTYPES)
    one_of("adapter_dtype", t.adapter_dtype, FLOAT_DTYPES)
    one_of("optimizer", t.optimizer, tuple(OPTIMIZERS))
    one_of("attn_implementation", t.attn_implementation, ATTN_IMPLEMENTATIONS)
    one_of("parallelism", t.parallelism, PARALLELISMS)
    one_of("quantize_scope", t.quantize_scope, QUANTIZE_SCOPES)
    for field, value, maximum in (
        ("batch_size", t.batch_size, MAX_BATCH_SIZE),
        ("seq_len", t.seq_len, MAX_SEQ_LEN),
        ("num_gpus", t.num_gpus, MAX_GPUS),
    ):
        if not 1 <= value <= maximum:
            errors.add(f"training.{field}", f"Must be between 1 and {maximum:,}; got {value:,}.")
    if t.overhead_bytes < 0:
        errors.add("training.overhead_bytes", "Must not be negative.")
