"""Build the exported TRL recipe with the real libraries and check the objects' fields.

    /work/venvs/recipes/bin/python validation/recipes/check_exports.py

Executes ``calculator.core.recipes.trl_python`` for a few input sets (transformers 5.23.0, peft 0.21.2,
trl 1.16.0) and asserts that ``BitsAndBytesConfig``, ``LoraConfig`` and ``SFTConfig`` carry the inputs.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from calculator.core import LoraSettings, TrainingSettings  # noqa: E402
from calculator.core.recipes import trl_python  # noqa: E402

CASES = [
    (LoraSettings(r=16, lora_alpha=32, target_modules="all-linear"), TrainingSettings(base_dtype="nf4", batch_size=4)),
    (
        LoraSettings(r=64, lora_alpha=128, target_modules=("q_proj", "v_proj")),
        TrainingSettings(gradient_checkpointing=True, seq_len=4096, optimizer="adamw_8bit", activation_offloading=True),
    ),
    (LoraSettings(r=8, lora_alpha=8), TrainingSettings(parallelism="zero2", num_gpus=2, optimizer_offload=True)),
]


def main() -> None:
    for lora, training in CASES:
        code = trl_python(lora, training, "meta-llama/Llama-3.1-8B", ("q_proj", "v_proj"))
        namespace: dict[str, object] = {}
        with tempfile.TemporaryDirectory() as tmp:
            exec(
                compile(code.replace('output_dir="out"', f'output_dir="{tmp}", use_cpu=True'), "recipe", "exec"),
                namespace,
            )
        peft_config, args, bnb = namespace["peft_config"], namespace["training_args"], namespace["bnb_config"]
        assert peft_config.r == lora.r
        assert peft_config.lora_alpha == lora.lora_alpha
        assert args.per_device_train_batch_size == training.batch_size
        assert args.max_length == training.seq_len
        assert args.gradient_checkpointing == training.gradient_checkpointing
        assert args.activation_offloading == training.activation_offloading
        if training.base_dtype == "nf4":
            assert bnb.load_in_4bit
            assert bnb.bnb_4bit_quant_type == "nf4"
        else:
            assert bnb is None
        print("ok", lora.r, training.base_dtype, args.optim, training.parallelism)


if __name__ == "__main__":
    main()
