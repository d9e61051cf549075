"""The training setup: how the base is stored, what the optimizer is, how big a micro-batch is, and the
recipe's memory savers (loss kernel, activation offloading, ZeRO / FSDP and CPU offload, MoE expert
quantization) with the framework that sets their defaults (`frameworks.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from .bounds import MAX_BATCH_SIZE, MAX_GPUS, MAX_SEQ_LEN
from .dtypes import BASE_DTYPES, FLOAT_DTYPES, QUANTIZED_DTYPES, compute_dtype
from .errors import ErrorCollector
from .optimizers import OPTIMIZERS

ATTN_IMPLEMENTATIONS: tuple[str, ...] = ("eager", "sdpa", "flash_attention_2")
QUANTIZE_SCOPES: tuple[str, ...] = ("all_linear", "lora_targets")

# ddp: every GPU holds everything; fsdp: FSDP2 shards weights, gradients and optimizer states;
# zero1/zero2/zero3: DeepSpeed ZeRO stages (optimizer states / + gradients / + parameters partitioned).
PARALLELISMS: tuple[str, ...] = ("ddp", "fsdp", "zero1", "zero2", "zero3")
ZERO_STAGES: dict[str, int] = {"zero1": 1, "zero2": 2, "zero3": 3}
SHARDED_PARAMETERS: tuple[str, ...] = ("fsdp", "zero3")  # the ones that partition the (frozen) weights too

# The loss path (`head.py` models each; docs/accuracy.md cites the source of each).
LOSSES: dict[str, str] = {
    "hf": "transformers ForCausalLMLoss (full logits, fp32 upcast)",
    "chunked": "torchtune CEWithChunkedOutputLoss (chunked output, one fp32 chunk at a time)",
    "trl_chunked_nll": "TRL SFTTrainer chunked NLL (ignored positions dropped, token x vocab tiles)",
    "fused_linear": "Liger LigerFusedLinearCrossEntropyLoss (gradient computed in the forward, chunked)",
    "cut": "Apple cut-cross-entropy (logits never materialised)",
}
DEFAULT_LOSS_CHUNKS = 8  # torchtune's CEWithChunkedOutputLoss(num_output_chunks=8)
MAX_LOSS_CHUNKS = 4096

FRAMEWORKS: dict[str, str] = {
    "transformers": "transformers + PEFT (Trainer)",
    "trl": "TRL SFTTrainer",
    "unsloth": "Unsloth",
    "torchtune": "torchtune LoRA / QLoRA recipes",
    "axolotl": "Axolotl",
    "llamafactory": "LLaMA-Factory",
}

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
    parallelism: str = "ddp"
    quantize_scope: str = "all_linear"  # transformers+bitsandbytes; "lora_targets" is torchtune's QLoRA
    overhead_bytes: int = DEFAULT_OVERHEAD_BYTES
    # peft.prepare_model_for_kbit_training (TRL applies it to quantized models): every parameter that is
    # not quantized (embeddings, norms, output head, biases) is cast to fp32, so activations become fp32.
    prepare_model_for_kbit_training: bool = False
    # --- v1.1: the recipe's memory savers (defaults keep every v1 answer unchanged) ---
    loss: str = "hf"
    loss_chunks: int = DEFAULT_LOSS_CHUNKS  # torchtune's num_output_chunks ("chunked" only)
    compile_loss: bool = False  # torchtune's compile=True: torch.compile on the chunked cross-entropy
    loss_token_fraction: float = 1.0  # share of the tokens counted in the loss (completion-only training)
    activation_offloading: bool = False
    optimizer_offload: bool = False  # ZeRO offload_optimizer / FSDP CPUOffload / torchao CPUOffloadOptimizer
    param_offload: bool = False  # ZeRO-3 offload_param / FSDP CPUOffloadPolicy
    quantize_moe_experts: bool = False  # quantize 3-D expert tensors too (Axolotl's expert quantization)
    framework: str = "transformers"

    @property
    def tokens(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def float_dtype(self) -> str:
        """The dtype of unquantized parameters and of activations."""
        if self.prepare_model_for_kbit_training and self.base_dtype in QUANTIZED_DTYPES:
            return "fp32"
        return compute_dtype(self.base_dtype)

    @property
    def loss_tokens(self) -> int:
        """Positions scored by a loss that drops ignored labels before the head: the ``b·(s-1)`` shifted
        positions times the loss fraction (at least one)."""
        positions = self.batch_size * (self.seq_len - 1)
        return max(1, min(positions, round(positions * self.loss_token_fraction))) if positions else 0


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
    one_of("loss", t.loss, tuple(LOSSES))
    one_of("framework", t.framework, tuple(FRAMEWORKS))
    for field, value, maximum in (
        ("batch_size", t.batch_size, MAX_BATCH_SIZE),
        ("seq_len", t.seq_len, MAX_SEQ_LEN),
        ("num_gpus", t.num_gpus, MAX_GPUS),
        ("loss_chunks", t.loss_chunks, MAX_LOSS_CHUNKS),
    ):
        if not 1 <= value <= maximum:
            errors.add(f"training.{field}", f"Must be between 1 and {maximum:,}; got {value:,}.")
    if t.overhead_bytes < 0:
        errors.add("training.overhead_bytes", "Must not be negative.")
    if not 0.0 < t.loss_token_fraction <= 1.0:
        errors.add("training.loss_token_fraction", f"Must be above 0 and at most 1; got {t.loss_token_fraction}.")
    _validate_offload(t, errors)
    if t.framework == "trl" and t.loss == "fused_linear":
        errors.add(
            "training.loss",
            "TRL's SFTTrainer refuses Liger's fused linear cross-entropy (it patches the output head with its "
            "own chunked loss; trl 1.16.0 sft_trainer.py); use trl_chunked_nll.",
        )


def _validate_offload(t: TrainingSettings, errors: ErrorCollector) -> None:
    """Which CPU offloads each parallelism offers (DeepSpeed 0.19.8 ZeRO config, torch FSDP2
    CPUOffloadPolicy, torchao CPUOffloadOptimizer for a single process)."""
    if t.param_offload and t.parallelism not in SHARDED_PARAMETERS:
        errors.add(
            "training.param_offload",
            "Only ZeRO-3 and FSDP offload parameters to the CPU; choose parallelism zero3 or fsdp.",
        )
    if t.param_offload and t.parallelism == "zero3" and not t.optimizer_offload:
        errors.add(
            "training.param_offload",
            "DeepSpeed offloads ZeRO-3 parameters only together with the optimizer; set optimizer_offload.",
        )
    if t.optimizer_offload and t.parallelism == "fsdp" and not t.param_offload:
        errors.add(
            "training.optimizer_offload",
            "FSDP's CPUOffloadPolicy moves parameters, gradients and the optimizer step together; "
            "set param_offload too.",
        )
    if t.optimizer_offload and t.parallelism == "ddp" and t.optimizer not in OFFLOADABLE_ON_DDP:
        errors.add(
            "training.optimizer_offload",
            "Without ZeRO or FSDP the offload is torchao's CPUOffloadOptimizer, which wraps a torch or torchao "
            f"optimizer: choose one of {', '.join(OFFLOADABLE_ON_DDP)}.",
        )


# torchao's CPUOffloadOptimizer(optimizer_class=...) runs a CPU optimizer: torch's AdamW/SGD or torchao's own.
OFFLOADABLE_ON_DDP: tuple[str, ...] = ("adamw", "sgd", "sgd_momentum", "adamw_torchao_8bit", "adamw_torchao_4bit")
