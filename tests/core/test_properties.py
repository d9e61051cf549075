"""Invariants of the core over generated architectures and settings (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from calculator.core import LoraSettings, TrainingSettings, architecture_from_config, count_lora, estimate

MODEL_TYPES = ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"]
NAMES = {
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
}
DEFAULT_NAMES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@st.composite
def configs(draw):
    model_type = draw(st.sampled_from(MODEL_TYPES))
    kv_heads = draw(st.integers(1, 8))
    heads = kv_heads * draw(st.integers(1, 4))
    head_dim = draw(st.sampled_from([8, 16, 32, 64]))
    return {
        "model_type": model_type,
        "hidden_size": heads * head_dim,
        "head_dim": head_dim,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "intermediate_size": draw(st.integers(8, 512)),
        "num_hidden_layers": draw(st.integers(1, 6)),
        "vocab_size": draw(st.integers(16, 5000)),
        "tie_word_embeddings": draw(st.booleans()),
    }


@st.composite
def arch_and_targets(draw):
    config = draw(configs())
    names = NAMES.get(config["model_type"], DEFAULT_NAMES)
    targets = tuple(draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True)))
    return architecture_from_config(config), targets, names


@given(arch_and_targets(), st.integers(1, 256))
def test_trainable_params_are_linear_in_r(case, r):
    arch, targets, _ = case
    one = count_lora(arch, LoraSettings(r=1, target_modules=targets)).trainable_params
    assert count_lora(arch, LoraSettings(r=r, target_modules=targets)).trainable_params == r * one


@given(arch_and_targets(), st.integers(1, 64))
def test_trainable_params_are_r_times_in_plus_out_summed_over_adapted_modules(case, r):
    arch, targets, _ = case
    stack = arch.text
    expected = r * sum(
        m.in_features + m.out_features for k in stack.layout for m in stack.kinds[k].modules if m.name in targets
    )
    assert count_lora(arch, LoraSettings(r=r, target_modules=targets)).trainable_params == expected


@given(arch_and_targets(), st.integers(1, 64))
def test_more_targets_never_train_fewer_params_and_all_linear_is_the_most(case, r):
    arch, targets, names = case
    subset = count_lora(arch, LoraSettings(r=r, target_modules=targets[:1])).trainable_params
    full = count_lora(arch, LoraSettings(r=r, target_modules=targets)).trainable_params
    every = count_lora(arch, LoraSettings(r=r, target_modules="all-linear")).trainable_params
    assert 0 < subset <= full <= every
    assert every == count_lora(arch, LoraSettings(r=r, target_modules=tuple(names))).trainable_params


@given(arch_and_targets(), st.sampled_from(["none", "all", "lora_only"]), st.booleans(), st.booleans())
def test_all_params_is_base_plus_new_parameters(case, bias, dora, save_head):
    arch, targets, _ = case
    result = count_lora(
        arch,
        LoraSettings(
            target_modules=targets, bias=bias, use_dora=dora, modules_to_save=("lm_head",) if save_head else None
        ),
    )
    assert result.all_params == arch.base_params + result.lora_params + result.modules_to_save_params
    assert result.trainable_params == result.lora_params + result.bias_params + result.modules_to_save_params
    assert result.trainable_params <= result.all_params


@settings(max_examples=40, deadline=None)
@given(
    arch_and_targets(),
    st.sampled_from(["fp32", "bf16", "nf4", "int8"]),
    st.sampled_from(["adamw", "adamw_8bit", "sgd", "adafactor", "lion"]),
    st.integers(1, 8),
    st.integers(1, 1024),
    st.sampled_from(["eager", "sdpa"]),
)
def test_peak_grows_with_batch_and_sequence_and_checkpointing_keeps_less(case, dtype, optimizer, batch, seq, attn):
    arch, targets, _ = case
    lora = LoraSettings(target_modules=targets)

    def run(**changes):
        base = {
            "base_dtype": dtype,
            "optimizer": optimizer,
            "batch_size": batch,
            "seq_len": seq,
            "attn_implementation": attn,
        }
        return estimate(arch, lora, TrainingSettings(**(base | changes))).memory

    memory = run()
    parts = (
        memory.base_weights_bytes
        + memory.adapter_weights_bytes
        + memory.gradients_bytes
        + memory.optimizer_states_bytes
        + memory.activations_bytes
        + memory.logits_bytes
        + memory.overhead_bytes
        + memory.transient_bytes
    )
    assert memory.total_bytes == parts
    assert min(parts, memory.activations_bytes, memory.logits_bytes) >= 0
    assert run(batch_size=batch + 1).total_bytes > memory.total_bytes
    assert run(seq_len=seq + 1).total_bytes > memory.total_bytes
    checkpointed = run(gradient_checkpointing=True)
    assert checkpointed.activations_bytes <= memory.activations_bytes or arch.num_layers == 1
