"""Every word the pages put next to a field, a choice or a memory part, in one table.

Field names are the API's (`calculator.schemas`); a name missing here is shown as it is spelled in the
API, which is what a PEFT user expects anyway.
"""

from __future__ import annotations

from calculator.services import FRAMEWORKS, OPTIMIZER_NAMES

# field -> (label, short hint shown after it)
FIELDS: dict[str, tuple[str, str]] = {
    "preset": ("Preset", ""),
    "hf_config": ("config.json", ""),
    "hidden_size": ("hidden_size", ""),
    "intermediate_size": ("intermediate_size", ""),
    "num_hidden_layers": ("num_hidden_layers", ""),
    "num_attention_heads": ("num_attention_heads", ""),
    "num_key_value_heads": ("num_key_value_heads", ""),
    "head_dim": ("head_dim", ""),
    "vocab_size": ("vocab_size", ""),
    "tie_word_embeddings": ("tie_word_embeddings", ""),
    "num_local_experts": ("num_local_experts", "MoE"),
    "num_experts_per_tok": ("num_experts_per_tok", "MoE"),
    "r": ("r", "rank"),
    "lora_alpha": ("lora_alpha", ""),
    "target_modules": ("target_modules", ""),
    "lora_dropout": ("lora_dropout", ""),
    "bias": ("bias", ""),
    "use_rslora": ("use_rslora", "scale by lora_alpha/√r"),
    "use_dora": ("use_dora", ""),
    "modules_to_save": ("modules_to_save", "comma-separated, e.g. lm_head"),
    "layers_to_transform": ("layers_to_transform", "e.g. 0-15 or 0,2,4; empty: all"),
    "trainable_token_indices": (
        "trainable_token_indices",
        "token ids whose embedding rows train, e.g. new special tokens 151665-151668",
    ),
    "ensure_weight_tying": ("ensure_weight_tying", "keep a tied embedding and output head tied in the adapter"),
    "base_dtype": ("Base precision", ""),
    "double_quant": ("Double quantization", "4-bit only"),
    "prepare_model_for_kbit_training": (
        "prepare_model_for_kbit_training",
        "8/4-bit: norms, embeddings, head and activations in fp32, as TRL does",
    ),
    "adapter_dtype": ("Adapter dtype", ""),
    "optimizer": ("Optimizer", ""),
    "batch_size": ("Micro-batch size", ""),
    "seq_len": ("Sequence length", "tokens"),
    "gradient_checkpointing": ("Gradient checkpointing", ""),
    "attn_implementation": ("Attention kernel", ""),
    "framework": ("Framework", "fills the fields it sets by default; every field stays editable"),
    "loss": ("Loss", "output head and cross-entropy"),
    "loss_chunks": ("loss_chunks", "chunked loss only"),
    "compile_loss": ("compile_loss", "torch.compile on the chunked loss (torchtune)"),
    "loss_token_fraction": ("Loss token fraction", "share of tokens in the loss, e.g. 0.5 completion-only"),
    "activation_offloading": ("Activation offloading", "saved activations live in CPU memory"),
    "parallelism": ("Parallelism", "across the GPUs"),
    "num_gpus": ("GPUs", "data parallel"),
    "optimizer_offload": ("Optimizer offload", "optimizer states and master weights in CPU memory"),
    "param_offload": ("Parameter offload", "ZeRO-3 / FSDP: weights in CPU memory"),
    "quantize_moe_experts": ("Quantize MoE experts", "8/4-bit expert tensors too, as Axolotl does"),
    "quantize_scope": ("Quantized layers", "8/4-bit bases"),
    "host_ram_gib": ("Host RAM (GiB)", "the machine's CPU memory, for offloading"),
    "gpu": ("GPU", "the card the verdict, time, cost and advice are for"),
    "custom_gpu_memory_gib": ("Custom GPU memory (GiB)", "as nvidia-smi reports it"),
    "custom_gpu_tflops": ("Custom GPU peak TFLOPS", "dense BF16"),
    "custom_gpu_price": ("Custom GPU $ per hour", "optional"),
    "safety_margin": ("Safety margin", "share of the card kept free: real peaks run 8-15% above the estimate"),
    "gradient_accumulation_steps": ("Gradient accumulation", "micro-batches per optimizer step"),
    "dataset_tokens": ("Dataset tokens", "per epoch; or examples x mean length below"),
    "dataset_examples": ("Dataset examples", ""),
    "mean_example_tokens": ("Mean tokens per example", ""),
    "epochs": ("Epochs", ""),
    "mfu": ("MFU", "share of peak FLOPS reached; empty: the stated default"),
    "sweep": ("Sweep over", "the table and chart at the end"),
    "adapters": ("Adapters loaded when serving", ""),
    "form": ("Input", ""),
}

# field -> choice value -> label (values without an entry are shown as they are)
CHOICES: dict[str, dict[str, str]] = {
    "base_dtype": {"int8": "int8 (LLM.int8)", "nf4": "nf4 (4-bit, QLoRA)", "fp4": "fp4 (4-bit)"},
    "adapter_dtype": {"fp32": "fp32 (PEFT default)"},
    "optimizer": dict(OPTIMIZER_NAMES),  # the core names each implementation (and its library)
    "framework": dict(FRAMEWORKS),
    "loss": {
        "hf": "transformers (full fp32 logits)",
        "chunked": "torchtune chunked cross-entropy",
        "trl_chunked_nll": "TRL chunked NLL",
        "fused_linear": "Liger fused linear cross-entropy",
        "cut": "Cut Cross-Entropy (Apple)",
    },
    "parallelism": {
        "ddp": "DDP (each GPU holds everything)",
        "fsdp": "FSDP2 (shards weights, gradients, states)",
        "zero1": "DeepSpeed ZeRO-1 (optimizer states)",
        "zero2": "DeepSpeed ZeRO-2 (+ gradients)",
        "zero3": "DeepSpeed ZeRO-3 (+ parameters)",
    },
    "quantize_scope": {"all_linear": "every linear layer (bitsandbytes)", "lora_targets": "adapted layers (torchtune)"},
    "sweep": {"r": "r (rank)", "seq_len": "sequence length", "batch_size": "micro-batch size"},
}

FRAMEWORK_SHORT: dict[str, str] = {
    "transformers": "transformers",
    "trl": "TRL",
    "unsloth": "Unsloth",
    "torchtune": "torchtune",
    "axolotl": "Axolotl",
    "llamafactory": "LLaMA-Factory",
}

# Quick picks shown as chips under a field: field -> ((value, chip label), ...)
PICKS: dict[str, tuple[tuple[str, str], ...]] = {
    "r": tuple((str(n), str(n)) for n in (4, 8, 16, 32, 64, 128)),
    "base_dtype": (("bf16", "LoRA · bf16 base"), ("nf4", "QLoRA · 4-bit NF4 base")),
}
SUGGESTIONS: dict[str, tuple[int, ...]] = {"seq_len": (512, 1024, 2048, 4096, 8192, 16384, 32768)}

# Memory parts in stacking order: (css key, MemoryEstimate field, label, what it is)
MEMORY_PARTS: tuple[tuple[str, str, str, str], ...] = (
    ("base", "base_weights_bytes", "Base weights", "the frozen model as loaded"),
    ("adapter", "adapter_weights_bytes", "LoRA weights", "A and B matrices (and copies) in the adapter dtype"),
    ("grads", "gradients_bytes", "Gradients", "one per trainable parameter"),
    ("optim", "optimizer_states_bytes", "Optimizer states", "after the first step"),
    ("acts", "activations_bytes", "Activations", "saved for backward, one micro-batch"),
    ("logits", "logits_bytes", "Logits & loss", "output head and cross-entropy"),
    ("transient", "transient_bytes", "Transient at peak", "recomputed layer, dequantized weight, loss buffers"),
    ("overhead", "overhead_bytes", "CUDA context & allocator", "a stated allowance"),
)


def label(field: str) -> str:
    return FIELDS.get(field, (field, ""))[0]


def hint(field: str) -> str:
    return FIELDS.get(field, (field, ""))[1]


def choice(field: str, value: str) -> str:
    return CHOICES.get(field, {}).get(value, value)


def value(field: str, value: object) -> str:
    """A setting's value in words: a choice's label, on/off, a number as people write it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        return choice(field, value)
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    return f"{value:,}" if isinstance(value, int) else str(value)


# Layer kinds as the families name them (a hybrid kind is "<mixer>+<feed-forward>"), and the stacks they are in.
LAYER_PARTS: dict[str, str] = {
    "full_attention": "full attention",
    "sliding_attention": "sliding-window attention",
    "full_attention_shared": "full attention (KV shared)",
    "sliding_attention_shared": "sliding-window attention (KV shared)",
    "linear_attention": "linear attention (Gated DeltaNet)",
    "attention": "attention",
    "self_attention": "self-attention",
    "cross_attention": "cross-attention (image)",
    "rope": "RoPE attention",
    "nope": "attention without positions (NoPE)",
    "conv": "short convolution",
    "moe": "mixture of experts",
    "mlp": "dense MLP",
    "wide": "wide MLP",
}
STACKS: dict[str, str] = {"text": "Text layers", "vision_tower": "Vision tower", "audio_tower": "Audio tower"}
COMPONENTS: dict[str, str] = {
    "language_model": "language model",
    "vision_tower": "vision tower",
    "audio_tower": "audio tower",
    "projector": "projector",
    "audio_projector": "audio projector",
    "lm_head": "output head",
}


def layer_kind(name: str) -> str:
    """``linear_attention+moe`` -> "linear attention (Gated DeltaNet) + mixture of experts"."""
    return " + ".join(LAYER_PARTS.get(part, part.replace("_", " ")) for part in name.split("+"))
