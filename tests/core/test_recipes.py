"""Training recipes: the new settings, framework defaults, sharding/offload, MoE experts, torchao and exports."""

import math

import pytest
import yaml

from calculator.core import InputError, LoraSettings, TrainingSettings, count_lora, estimate
from calculator.core.errors import ErrorCollector
from calculator.core.frameworks import FRAMEWORK_DEFAULTS, apply_framework
from calculator.core.memory import static_memory
from calculator.core.recipes import axolotl_yaml, torchtune_command, trl_python
from calculator.core.training import FRAMEWORKS, LOSSES, validate_training
from tests.core.conftest import PRESETS, preset_arch

GIB = 2**30
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def memory(slug, lora=None, **training):
    return estimate(preset_arch(slug), lora or LoraSettings(), TrainingSettings(**training)).memory


def errors_of(**training):
    errors = ErrorCollector()
    validate_training(TrainingSettings(**training), errors)
    return errors.errors


def test_defaults_leave_every_v1_answer_unchanged(llama8b):
    plain = estimate(llama8b, LoraSettings(), TrainingSettings())
    explicit = estimate(
        llama8b,
        LoraSettings(),
        TrainingSettings(loss="hf", framework="transformers", activation_offloading=False, parallelism="ddp"),
    )
    assert plain.memory == explicit.memory
    assert plain.memory.host_bytes == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("loss", "fast"),
        ("framework", "nemo"),
        ("loss_chunks", 0),
        ("loss_token_fraction", 0.0),
        ("parallelism", "zero4"),
    ],
)
def test_bad_recipe_fields_are_named(field, value):
    assert f"training.{field}" in errors_of(**{field: value})


def test_offload_combinations_the_libraries_refuse():
    assert "training.param_offload" in errors_of(param_offload=True)  # ddp has no parameter offload
    assert "training.param_offload" in errors_of(parallelism="zero2", param_offload=True)
    assert "training.param_offload" in errors_of(parallelism="zero3", param_offload=True)  # needs the optimizer's
    assert "training.optimizer_offload" in errors_of(parallelism="fsdp", optimizer_offload=True)
    assert "training.optimizer_offload" in errors_of(optimizer_offload=True, optimizer="adamw_8bit")
    assert not errors_of(parallelism="zero3", optimizer_offload=True, param_offload=True)


def test_trl_refuses_liger_and_a_lora_adapter_on_the_head(llama8b):
    assert "training.loss" in errors_of(framework="trl", loss="fused_linear")
    with pytest.raises(InputError) as raised:
        estimate(llama8b, LoraSettings(target_modules=("q_proj", "lm_head")), TrainingSettings(loss="trl_chunked_nll"))
    assert "training.loss" in raised.value.errors
    estimate(llama8b, LoraSettings(target_modules=("q_proj", "lm_head")), TrainingSettings(loss="chunked"))


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_loss_keeps_less_than_full_logits_or_equal(llama8b, loss):
    full = memory("llama-3.1-8b")
    m = memory("llama-3.1-8b", loss=loss)
    assert m.logits_bytes + m.transient_bytes <= full.logits_bytes + full.transient_bytes


def test_trl_default_sft_run_on_llama_8b_shows_the_chunked_loss_saving():
    """TRL's SFTConfig defaults (bf16, checkpointing, max_length 1024, batch 8) with and without its loss."""
    fill = apply_framework({"framework": "trl"})
    assert fill.training.loss == "trl_chunked_nll"
    assert fill.training.gradient_checkpointing
    arch = preset_arch("llama-3.1-8b")
    chunked = estimate(arch, LoraSettings(), fill.training).memory
    hf = estimate(arch, LoraSettings(), apply_framework({"framework": "trl", "loss": "hf"}).training).memory
    vocab, tokens = 128_256, 8 * 1024
    assert hf.logits_bytes >= 4 * tokens * vocab  # 4.2 GB of fp32 log-probabilities
    assert chunked.logits_bytes < tokens * 4096 * 2 + 64 * tokens  # the scored rows and per-token numbers
    assert hf.total_bytes - chunked.total_bytes > 10 * GIB


def test_loss_fraction_shrinks_only_the_losses_that_drop_ignored_positions(llama8b):
    for loss, shrinks in (("trl_chunked_nll", True), ("cut", True), ("hf", False), ("fused_linear", False)):
        whole = memory("llama-3.1-8b", loss=loss).logits_bytes
        half = memory("llama-3.1-8b", loss=loss, loss_token_fraction=0.5).logits_bytes
        assert (half < whole) is shrinks, loss


def test_liger_chunk_rule():
    from calculator.core.head import liger_chunk_size

    # BT = 4096·4, V = 32000, H = 4096 => inc_factor 8, chunk 2048 (the example in Liger's source)
    assert liger_chunk_size(4096 * 4, 32000, 4096) == 2048
    assert liger_chunk_size(100, 32000, 4096) == 16  # next power of two of ceil(100 / 8)


def test_activation_offloading_moves_saved_activations_to_the_host():
    base = {"gradient_checkpointing": True, "seq_len": 8192, "batch_size": 4}
    kept = memory("llama-3.1-8b", **base)
    offloaded = memory("llama-3.1-8b", activation_offloading=True, **base)
    assert offloaded.activations_bytes == 0
    assert offloaded.host_bytes == kept.activations_bytes
    assert offloaded.logits_bytes == kept.logits_bytes  # torchtune keeps head and loss on the GPU
    trl = memory("llama-3.1-8b", activation_offloading=True, framework="trl", **base)
    assert trl.logits_bytes == 0
    assert trl.host_bytes == kept.activations_bytes + kept.logits_bytes
    layer_input = 4 * 8192 * 4096 * 2
    assert offloaded.transient_bytes - kept.transient_bytes == layer_input  # one layer input brought back


def test_unsloth_offloads_only_checkpointed_layer_inputs():
    off = memory("llama-3.1-8b", activation_offloading=True, framework="unsloth", gradient_checkpointing=False)
    assert off.host_bytes == 0


def test_fsdp_keeps_quantization_constants_on_every_gpu(llama8b):
    count = count_lora(llama8b, LoraSettings())
    one = static_memory(llama8b, count, TrainingSettings(base_dtype="nf4"))
    four = static_memory(llama8b, count, TrainingSettings(base_dtype="nf4", parallelism="fsdp", num_gpus=4))
    assert one.base_weights_bytes / 4 < four.base_weights_bytes < one.base_weights_bytes / 3


def test_zero_stages_for_lora_partition_only_what_they_say(llama8b):
    count = count_lora(llama8b, LoraSettings())
    p = count.trainable_params

    def s(parallelism, **kw):
        return static_memory(llama8b, count, TrainingSettings(parallelism=parallelism, num_gpus=4, **kw))

    z1, z2, z3 = s("zero1"), s("zero2"), s("zero3")
    assert z1.base_weights_bytes == z2.base_weights_bytes == 8_030_261_248 * 2  # frozen: replicated
    assert z3.base_weights_bytes == math.ceil(8_030_261_248 * 2 / 4)
    assert z1.adapter_weights_bytes == z2.adapter_weights_bytes == 2 * p  # DeepSpeed's 16-bit working copy
    assert z1.gradients_bytes == 2 * p + p  # 16-bit whole + fp32 partition
    assert z2.gradients_bytes == (2 * p + 4 * p) // 4
    assert z2.optimizer_states_bytes == (4 * p + 8 * p) // 4  # fp32 master + Adam
    offloaded = s("zero3", optimizer_offload=True, param_offload=True)
    assert offloaded.host_bytes == 18 * p + 8_030_261_248 * 2
    assert offloaded.optimizer_states_bytes == offloaded.gradients_bytes == 0


def test_torchao_cpu_offload_optimizer_keeps_small_tensors_on_the_gpu():
    gpt2 = preset_arch("gpt2")
    count = count_lora(gpt2, LoraSettings(bias="all"))
    s = static_memory(gpt2, count, TrainingSettings(optimizer_offload=True))
    small = sum(t.params for t in count.tensors if t.params // max(t.count, 1) < 4096)
    assert s.optimizer_states_bytes == 2 * 2 * small  # AdamW states of the bf16 biases stay on the GPU
    assert s.host_bytes == 16 * (count.trainable_params - small)  # pinned param + grad + 2 states, fp32


@pytest.mark.parametrize(
    ("optimizer", "block", "codes"), [("adamw_torchao_8bit", 256, 1.0), ("adamw_torchao_4bit", 128, 0.5)]
)
def test_torchao_low_bit_adamw_states(llama8b, optimizer, block, codes):
    count = count_lora(llama8b, LoraSettings())  # q, v: A 8x4096, B 4096x8 / 1024x8 (8192 elements: quantized)
    states = static_memory(llama8b, count, TrainingSettings(optimizer=optimizer)).optimizer_states_bytes
    qmap = 4 * (256 if block == 256 else 16)
    expected = sum(
        t.count * 2 * (int(t.params // t.count * codes) + 4 * (t.params // t.count // block) + qmap)
        for t in count.tensors
    )
    assert states == expected


def test_moe_experts_stay_16_bit_under_bitsandbytes_and_quantizing_them_shrinks_the_base():
    arch = preset_arch("mixtral-8x7b")
    qv = LoraSettings(target_modules=("q_proj", "v_proj"))
    count = count_lora(arch, qv)
    nf4 = static_memory(arch, count, TrainingSettings(base_dtype="nf4"))
    experts = static_memory(arch, count, TrainingSettings(base_dtype="nf4", quantize_moe_experts=True))
    expert_params = 32 * 8 * 3 * 4096 * 14336
    assert nf4.base_weights_bytes > expert_params * 2  # the experts alone, in bf16: 90 GB
    saved = nf4.base_weights_bytes - experts.base_weights_bytes
    assert saved == pytest.approx(expert_params * (2 - 0.5 - 1 / 64), rel=0.001)
    qlora = estimate(arch, qv, TrainingSettings(base_dtype="nf4", quantize_moe_experts=True)).memory
    assert qlora.transient_bytes >= 8 * 3 * 4096 * 14336 * 2  # one layer's experts dequantized


def test_qwen3_30b_a3b_experts():
    """Nearly all of Qwen3-30B-A3B is experts: 4-bit leaves them bf16 unless they are quantized too."""
    from calculator.core import architecture_from_config

    config = {
        "model_type": "qwen3_moe",
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "moe_intermediate_size": 768,
        "num_hidden_layers": 48,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "head_dim": 128,
        "vocab_size": 151936,
        "num_experts": 128,
        "num_experts_per_tok": 8,
        "tie_word_embeddings": False,
    }
    arch = architecture_from_config(config)
    nf4 = memory_for(arch, quantize_moe_experts=False)
    quantized = memory_for(arch, quantize_moe_experts=True)
    assert nf4.base_weights_bytes > 50 * GIB  # 30B, nearly all of it experts, left in bf16
    assert quantized.base_weights_bytes < 20 * GIB


def memory_for(arch, **training):
    return estimate(
        arch,
        LoraSettings(target_modules=("q_proj", "v_proj")),
        TrainingSettings(base_dtype="nf4", gradient_checkpointing=True, **training),
    ).memory


def torchtune_3b(**training):
    lora = LoraSettings(
        r=64, lora_alpha=128, target_modules=("q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    )
    fill = apply_framework(
        {
            "framework": "torchtune",
            "batch_size": 2,
            "seq_len": 4096,
            "activation_offloading": True,
            "compile_loss": True,
            **training,
        }
    )
    return estimate(preset_arch("llama-3.2-3b"), lora, fill.training).memory


@pytest.mark.parametrize(("training", "published_gib"), [({}, 8.5), ({"base_dtype": "nf4"}, 4.6)])
def test_torchtunes_published_llama_3_2_3b_recipe_lands_near_its_peak(training, published_gib):
    """Published peaks (torchtune's memory optimization table, A100); ours without the 1 GiB allowance is
    higher by the logits the compiled chunked loss keeps (docs/accuracy.md)."""
    m = torchtune_3b(**training)
    ours = (m.total_bytes - m.overhead_bytes) / GIB
    assert published_gib < ours < published_gib + 2.0
    assert ours < 0.5 * (23 if not training else 19)  # the "lorasite says 23 / 19 GiB"


def test_framework_defaults_fill_only_what_the_request_left_out():
    fill = apply_framework({"framework": "torchtune", "batch_size": 16})
    assert fill.training.batch_size == 16
    assert fill.training.loss == "chunked"
    assert fill.training.adapter_dtype == "bf16"
    assert "batch_size" not in {d.field for d in fill.set_by_framework}
    assert {d.field for d in fill.set_by_framework} >= {"loss", "adapter_dtype", "gradient_checkpointing"}
    assert apply_framework({}).training == TrainingSettings()
    with pytest.raises(InputError):
        apply_framework({"framework": "megatron"})


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_every_framework_default_is_a_valid_setting_and_cites_its_source(framework):
    fill = apply_framework({"framework": framework})
    errors = ErrorCollector()
    validate_training(fill.training, errors)
    assert not errors.errors
    for default in FRAMEWORK_DEFAULTS[framework]:
        assert (any(char.isdigit() for char in default.source) and ".py" in default.source) or ".yaml" in default.source


def test_exports_carry_the_inputs():
    lora = LoraSettings(r=64, lora_alpha=128, target_modules=ALL_LINEAR, lora_dropout=0.05)
    training = TrainingSettings(
        base_dtype="nf4",
        batch_size=2,
        seq_len=4096,
        gradient_checkpointing=True,
        activation_offloading=True,
        loss="cut",
        parallelism="zero3",
        num_gpus=4,
        optimizer_offload=True,
    )
    code = trl_python(lora, training, "meta-llama/Llama-3.2-3B")
    compile(code, "recipe.py", "exec")
    assert "bnb_4bit_quant_storage=torch.bfloat16" in code
    assert '"stage": 3' in code
    assert "r=64" in code
    config = yaml.safe_load(axolotl_yaml(lora, training, "meta-llama/Llama-3.2-3B", ALL_LINEAR))
    assert config["lora_r"] == 64
    assert config["sequence_len"] == 4096
    assert config["micro_batch_size"] == 2
    assert config["adapter"] == "qlora"
    assert config["gradient_checkpointing"] == "offload"
    assert config["cut_cross_entropy"] is True
    assert config["lora_target_modules"] == list(ALL_LINEAR)
    command = torchtune_command(lora, training, "llama3_2/3B_qlora_single_device", ALL_LINEAR)
    assert "--nproc_per_node 4 lora_finetune_distributed" in command
    assert "model.lora_attn_modules=[q_proj,k_proj,v_proj,output_proj]" in command
    assert "model.apply_lora_to_mlp=True" in command
    assert "tokenizer.max_seq_len=4096" in command


def test_presets_used_here_exist():
    assert {"llama-3.2-3b", "mixtral-8x7b", "gpt2"} <= set(PRESETS)
