"""The recipe to copy back into a framework, generated from the current inputs (pure strings).

- ``trl_python``: ``BitsAndBytesConfig`` + ``LoraConfig`` + TRL ``SFTConfig`` (trl 1.16.0 field names).
- ``torchtune_command``: ``tune run`` with config overrides (torchtune 0.6.1 names).
- ``axolotl_yaml``: an Axolotl 0.19.0 config.

``validation/recipes/check_exports.py`` builds the Python one with the real libraries and checks the objects'
fields; the tests parse the YAML.
"""

from __future__ import annotations

import json

from .lora import LoraSettings
from .snippet import lora_config_snippet
from .training import ZERO_STAGES, TrainingSettings

# transformers 5.23.0 OptimizerNames for our optimizer choices
HF_OPTIM: dict[str, str] = {
    "adamw": "adamw_torch",
    "adamw_8bit": "adamw_bnb_8bit",
    "paged_adamw_8bit": "paged_adamw_8bit",
    "sgd": "sgd",
    "sgd_momentum": "sgd",
    "adafactor": "adafactor",
    "lion": "lion_32bit",
    "adamw_torchao_8bit": "adamw_torch_8bit",
    "adamw_torchao_4bit": "adamw_torch_4bit",
}
TORCH_DTYPE = {"bf16": "torch.bfloat16", "fp16": "torch.float16", "fp32": "torch.float32"}
MLP_NAMES = ("gate_proj", "up_proj", "down_proj")
TORCHTUNE_ATTN = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "o_proj": "output_proj"}
TORCHTUNE_OPTIM: dict[str, str] = {
    "adamw": "torch.optim.AdamW",
    "adamw_8bit": "bitsandbytes.optim.AdamW8bit",
    "paged_adamw_8bit": "bitsandbytes.optim.PagedAdamW8bit",
    "sgd": "torch.optim.SGD",
    "sgd_momentum": "torch.optim.SGD",
    "lion": "bitsandbytes.optim.Lion",
    "adamw_torchao_8bit": "torchao.optim.AdamW8bit",
    "adamw_torchao_4bit": "torchao.optim.AdamW4bit",
}


def _compute(training: TrainingSettings) -> str:
    return "fp32" if training.base_dtype == "fp32" else "fp16" if training.base_dtype == "fp16" else "bf16"


def _bnb_config(training: TrainingSettings) -> str:
    if training.base_dtype == "int8":
        return "BitsAndBytesConfig(load_in_8bit=True)"
    if training.base_dtype in ("nf4", "fp4"):
        storage = ",\n    bnb_4bit_quant_storage=torch.bfloat16" if training.parallelism in ("fsdp", "zero3") else ""
        return (
            "BitsAndBytesConfig(\n    load_in_4bit=True,\n"
            f'    bnb_4bit_quant_type="{training.base_dtype}",\n'
            f"    bnb_4bit_use_double_quant={training.double_quant},\n"
            f"    bnb_4bit_compute_dtype={TORCH_DTYPE[_compute(training)]}{storage},\n)"
        )
    return "None"


def _deepspeed(training: TrainingSettings) -> dict[str, object]:
    zero: dict[str, object] = {"stage": ZERO_STAGES[training.parallelism]}
    if training.optimizer_offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if training.param_offload:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "zero_optimization": zero,
        "bf16": {"enabled": "auto"},
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
    }


def trl_python(
    lora: LoraSettings, training: TrainingSettings, model_id: str, resolved_targets: tuple[str, ...] | None = None
) -> str:
    """The TRL SFTTrainer setup for these inputs."""
    compute = _compute(training)
    args = [
        'output_dir="out"',
        f"per_device_train_batch_size={training.batch_size}",
        f"max_length={training.seq_len}",
        f"gradient_checkpointing={training.gradient_checkpointing}",
        f"bf16={compute == 'bf16'}",
        f"fp16={compute == 'fp16'}",
        f'optim="{HF_OPTIM[training.optimizer]}"',
        f"activation_offloading={training.activation_offloading}",
    ]
    if training.optimizer == "sgd_momentum":
        args.append('optim_args="momentum=0.9"')
    if training.parallelism in ZERO_STAGES:
        args.append(f"deepspeed={json.dumps(_deepspeed(training))}".replace("true", "True"))
    elif training.parallelism == "fsdp" and training.num_gpus > 1:
        args.append(f'fsdp="full_shard auto_wrap{" offload" if training.param_offload else ""}"')
    init = [f'"dtype": "{ {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[compute] }"']
    init.append(f'"attn_implementation": "{training.attn_implementation}"')
    if training.base_dtype not in ("bf16", "fp16", "fp32"):
        init.append('"quantization_config": bnb_config')
    args.append("model_init_kwargs={" + ", ".join(init) + "}")
    lines = [
        "import torch",
        "from peft import LoraConfig",
        "from transformers import BitsAndBytesConfig",
        "from trl import SFTConfig",
        "",
        f"bnb_config = {_bnb_config(training)}",
        f"peft_config = {lora_config_snippet(lora, resolved_targets)}",
        "training_args = SFTConfig(\n    " + ",\n    ".join(args) + ",\n)",
        f'# trainer = SFTTrainer(model="{model_id}", args=training_args, train_dataset=..., peft_config=peft_config)',
    ]
    return "\n".join(lines) + "\n"


def torchtune_command(
    lora: LoraSettings, training: TrainingSettings, config: str, targets: tuple[str, ...] | None = None
) -> str:
    """``tune run`` with the overrides that reproduce these inputs on top of ``config`` (e.g.
    ``llama3_2/3B_lora_single_device``); ``targets`` are the adapted module names (PEFT's names)."""
    names = tuple(targets or ())
    attn = [TORCHTUNE_ATTN[n] for n in names if n in TORCHTUNE_ATTN]
    recipe = "lora_finetune_single_device" if training.num_gpus == 1 else "lora_finetune_distributed"
    launch = "tune run" if training.num_gpus == 1 else f"tune run --nproc_per_node {training.num_gpus}"
    overrides = [
        f"model.lora_attn_modules=[{','.join(attn)}]",
        f"model.apply_lora_to_mlp={any(n in MLP_NAMES for n in names)}",
        f"model.apply_lora_to_output={'lm_head' in names}",
        f"model.lora_rank={lora.r}",
        f"model.lora_alpha={_num(lora.lora_alpha)}",
        f"model.lora_dropout={_num(lora.lora_dropout)}",
        f"batch_size={training.batch_size}",
        f"tokenizer.max_seq_len={training.seq_len}",
        f"dtype={_compute(training)}",
        f"enable_activation_checkpointing={training.gradient_checkpointing}",
        f"enable_activation_offloading={training.activation_offloading}",
        f"compile={training.compile_loss}",
    ]
    if training.loss == "chunked":
        overrides.append("loss=torchtune.modules.loss.CEWithChunkedOutputLoss")
    if training.optimizer in TORCHTUNE_OPTIM:
        overrides.append(f"optimizer._component_={TORCHTUNE_OPTIM[training.optimizer]}")
    if training.base_dtype in ("nf4", "fp4"):
        overrides.append("model.quantize_base=True")
    return " \\\n  ".join([f"{launch} {recipe} --config {config}", *overrides]) + "\n"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _yaml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _num(value) if isinstance(value, float) else str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    return json.dumps(str(value))


def axolotl_yaml(
    lora: LoraSettings, training: TrainingSettings, model_id: str, targets: tuple[str, ...] | None = None
) -> str:
    """An Axolotl config with these inputs (0.19.0 option names)."""
    quantized = training.base_dtype in ("nf4", "fp4", "int8")
    entries: list[tuple[str, object]] = [
        ("base_model", model_id),
        ("load_in_8bit", training.base_dtype == "int8"),
        ("load_in_4bit", training.base_dtype in ("nf4", "fp4")),
        ("adapter", "qlora" if training.base_dtype in ("nf4", "fp4") else "lora"),
        ("lora_r", lora.r),
        ("lora_alpha", lora.lora_alpha),
        ("lora_dropout", lora.lora_dropout),
    ]
    if lora.target_modules == "all-linear":
        entries.append(("lora_target_linear", True))
    elif targets:
        entries.append(("lora_target_modules", list(targets)))
    if lora.use_dora:
        entries.append(("peft_use_dora", True))
    if lora.use_rslora:
        entries.append(("peft_use_rslora", True))
    gc: object = (
        "offload"
        if training.activation_offloading and training.gradient_checkpointing
        else (training.gradient_checkpointing)
    )
    entries += [
        ("sequence_len", training.seq_len),
        ("micro_batch_size", training.batch_size),
        ("gradient_checkpointing", gc),
        ("optimizer", HF_OPTIM[training.optimizer]),
        ("bf16", _compute(training) == "bf16"),
        ("fp16", _compute(training) == "fp16"),
        ("flash_attention", training.attn_implementation == "flash_attention_2"),
        ("sdp_attention", training.attn_implementation == "sdpa"),
    ]
    if training.loss == "fused_linear":
        entries += [("plugins", ["axolotl.integrations.liger.LigerPlugin"]), ("liger_fused_linear_cross_entropy", True)]
    elif training.loss == "cut":
        entries += [
            ("plugins", ["axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin"]),
            ("cut_cross_entropy", True),
        ]
    if quantized and training.quantize_moe_experts:
        entries.append(("quantize_moe_experts", True))
    if training.parallelism in ZERO_STAGES:
        offload = "_cpuoffload_all" if training.param_offload else "_cpuoffload" if training.optimizer_offload else ""
        entries.append(("deepspeed", f"deepspeed_configs/zero{ZERO_STAGES[training.parallelism]}{offload}.json"))
    elif training.parallelism == "fsdp" and training.num_gpus > 1:
        entries += [("fsdp_version", 2), ("fsdp_config", {"offload_params": training.param_offload})]
    lines = []
    for key, value in entries:
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {_yaml(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {_yaml(value)}")
    return "\n".join(lines) + "\n"
