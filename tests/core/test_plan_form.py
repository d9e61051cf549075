"""The closed form of the peak: equal to `memory_estimate` everywhere, and its goal seeking exact."""

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from calculator.core import LoraSettings, TrainingSettings, architecture_from_config, count_lora
from calculator.core.errors import ErrorCollector, InputError
from calculator.core.estimate import memory_estimate
from calculator.core.form import memory_form
from calculator.core.optimizers import OPTIMIZERS
from calculator.core.training import FRAMEWORKS, PARALLELISMS, validate_training
from tests.core.conftest import PRESETS, preset_arch

NAMES = {"phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], "gpt2": ["c_attn", "c_proj", "c_fc"]}
DEFAULT_NAMES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MODEL_TYPES = ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "gpt2", "mixtral"]


def direct(arch, lora, training, b, s, r, n=1):
    t = replace(training, batch_size=b, seq_len=s, num_gpus=n)
    return memory_estimate(arch, count_lora(arch, replace(lora, r=r)), t)


@st.composite
def structures(draw):
    model_type = draw(st.sampled_from(MODEL_TYPES))
    kv = draw(st.integers(1, 4))
    heads = kv * draw(st.integers(1, 3))
    head_dim = draw(st.sampled_from([8, 16, 32]))
    layers = draw(st.integers(1, 4))
    config = {
        "model_type": model_type,
        "hidden_size": heads * head_dim,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "intermediate_size": draw(st.integers(8, 256)),
        "num_hidden_layers": layers,
        "vocab_size": draw(st.integers(16, 3000)),
        "tie_word_embeddings": draw(st.booleans()),
    }
    if model_type == "gpt2":
        config = {
            "model_type": "gpt2",
            "n_embd": heads * head_dim,
            "n_head": heads,
            "n_layer": layers,
            "vocab_size": config["vocab_size"],
            "n_positions": 8192,
        }
    elif model_type not in ("phi3", "gemma2"):
        config["head_dim"] = head_dim
    if model_type == "mixtral":
        config["num_local_experts"] = draw(st.integers(2, 4))
        config["num_experts_per_tok"] = draw(st.integers(1, 2))
    arch = architecture_from_config(config)
    names = NAMES.get(model_type, DEFAULT_NAMES)
    if model_type == "mixtral":
        names = ["q_proj", "k_proj", "v_proj", "o_proj"]
    targets = draw(
        st.one_of(st.just("all-linear"), st.lists(st.sampled_from(names), min_size=1, unique=True).map(tuple))
    )
    lora = LoraSettings(
        target_modules=targets,
        use_dora=draw(st.booleans()) and model_type != "mixtral",
        lora_dropout=draw(st.sampled_from([0.0, 0.1])) if model_type != "mixtral" else 0.0,
        layers_to_transform=(0,) if isinstance(targets, tuple) and layers > 1 and draw(st.booleans()) else None,
    )
    if model_type == "mixtral" and targets == "all-linear":
        lora = replace(lora, use_dora=False, lora_dropout=0.0)
    training = TrainingSettings(
        base_dtype=draw(st.sampled_from(["bf16", "fp32", "nf4", "int8"])),
        optimizer=draw(st.sampled_from(sorted(OPTIMIZERS))),
        gradient_checkpointing=draw(st.booleans()),
        attn_implementation=draw(st.sampled_from(["eager", "sdpa", "flash_attention_2"])),
        parallelism=draw(st.sampled_from(PARALLELISMS)),
        loss=draw(st.sampled_from(["hf", "hf", "chunked", "trl_chunked_nll", "fused_linear", "cut"])),
        activation_offloading=draw(st.booleans()),
        optimizer_offload=draw(st.booleans()),
        param_offload=draw(st.booleans()),
        framework=draw(st.sampled_from(sorted(FRAMEWORKS))),
    )
    errors = ErrorCollector()
    validate_training(training, errors)
    assume(not errors.errors)
    return arch, lora, training


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(structures(), st.integers(1, 12), st.integers(1, 5000), st.integers(1, 300), st.integers(1, 64))
def test_the_form_equals_the_estimate_exactly(structure, b, s, r, n):
    arch, lora, training = structure
    try:
        expected = direct(arch, lora, training, b, s, r, n)
    except InputError:
        assume(False)  # a combination the libraries refuse (e.g. a fused loss with an adapter on the head)
    form = memory_form(arch, lora, training)
    assert form.estimate(b, s, r, n) == expected
    assert form.total(b, s, r, n) == expected.total_bytes


def test_a_field_outside_the_basis_is_evaluated_and_the_peak_stays_closed():
    """Layers with different adapters keep different amounts: the largest layer's activations are a max of
    two lines in the token count that cross (here DoRA's per-layer constants against a plain layer)."""
    config = {
        "model_type": "llama",
        "hidden_size": 8,
        "intermediate_size": 8,
        "num_hidden_layers": 2,
        "num_attention_heads": 1,
        "num_key_value_heads": 1,
        "head_dim": 8,
        "vocab_size": 16,
    }
    arch = architecture_from_config(config)
    lora = LoraSettings(target_modules=("q_proj", "k_proj"), use_dora=True, layers_to_transform=(0,))
    training = TrainingSettings(attn_implementation="eager")
    form = memory_form(arch, lora, training)
    assert form.evaluated == {"per_layer_activation_bytes"}
    assert form.closed
    assert not form.exact
    for b, s in [(1, 1), (1, 5), (3, 200)]:
        assert form.estimate(b, s, 8) == direct(arch, lora, training, b, s, 8)


@pytest.mark.parametrize("slug", sorted(PRESETS))
def test_every_preset_has_an_exact_form(slug):
    arch = preset_arch(slug)
    lora = LoraSettings(r=16, target_modules="all-linear")
    training = TrainingSettings(base_dtype="nf4", optimizer="paged_adamw_8bit", gradient_checkpointing=True)
    form = memory_form(arch, lora, training)
    assert form.exact
    for b, s, r in [(1, 4096, 16), (3, 777, 64), (8, 128, 1)]:
        assert form.estimate(b, s, r) == direct(arch, lora, training, b, s, r)


def test_the_rank_crosses_the_8bit_optimizers_small_tensor_threshold_exactly(llama8b):
    lora = LoraSettings(target_modules=("q_proj", "v_proj"))
    training = TrainingSettings(optimizer="adamw_8bit")
    form = memory_form(llama8b, lora, training)
    for r in range(1, 5):  # r·4096 < 4096 only below r = 1: the k/v B factor (1024 x r) crosses at r = 4
        assert form.estimate(2, 512, r) == direct(llama8b, lora, training, 2, 512, r)


def _largest(peak, limit, hi):
    """Brute force: the largest x in [1, hi] with peak(x) <= limit."""
    best = None
    for x in range(1, hi + 1):
        if peak(x) <= limit:
            best = x
    return best


CASES = [
    (
        "llama-3.1-8b",
        LoraSettings(r=16, target_modules="all-linear"),
        TrainingSettings(base_dtype="nf4", gradient_checkpointing=True),
    ),
    ("qwen2.5-0.5b", LoraSettings(r=8), TrainingSettings(base_dtype="fp32", attn_implementation="sdpa")),
    ("gemma-2-2b", LoraSettings(r=8), TrainingSettings(attn_implementation="eager")),
    ("phi-3-mini", LoraSettings(r=8, target_modules=("qkv_proj",)), TrainingSettings(parallelism="fsdp")),
]


@pytest.mark.parametrize(("slug", "lora", "training"), CASES)
def test_the_largest_micro_batch_is_the_exact_boundary(slug, lora, training):
    arch = preset_arch(slug)
    form = memory_form(arch, lora, training)
    s = 1024
    for limit in (form.total(1, s, 8) - 1, form.total(1, s, 8), form.total(5, s, 8) + 3, form.total(17, s, 8) - 1):
        assert form.max_batch_size(limit, s, 8) == _largest(lambda b: form.total(b, s, 8), limit, 40)


@pytest.mark.parametrize(("slug", "lora", "training"), CASES)
def test_the_longest_sequence_is_the_exact_boundary(slug, lora, training):
    arch = preset_arch(slug)
    form = memory_form(arch, lora, training)
    for s_target in (1, 31, 33, 500, 1000):
        limit = form.total(2, s_target, 8) + 5
        expected = _largest(lambda s: form.total(2, s, 8), limit, 1100)
        assert form.max_seq_len(limit, 2, 8, hi=1100) == expected


def test_fewest_gpus_under_fsdp_is_the_exact_boundary():
    arch = preset_arch("llama-3.1-70b")
    lora = LoraSettings(r=16, target_modules="all-linear")
    form = memory_form(arch, lora, TrainingSettings(gradient_checkpointing=True, parallelism="fsdp"))
    assert form.sharded
    for limit in (24 * 2**30, 40 * 2**30, 80 * 2**30):
        n = form.min_gpus(limit, 1, 2048, 16)
        assert n is not None
        assert form.total(1, 2048, 16, n) <= limit
        assert n == 1 or form.total(1, 2048, 16, n - 1) > limit


def test_data_parallel_never_needs_fewer_bytes_per_gpu(llama8b):
    form = memory_form(llama8b, LoraSettings(), TrainingSettings())
    assert not form.sharded
    assert form.min_gpus(10 * 2**30, 1, 2048, 8) is None
    assert form.min_gpus(80 * 2**30, 1, 2048, 8) == 1


def test_the_largest_rank_is_the_exact_boundary(llama8b):
    lora = LoraSettings(target_modules="all-linear")
    form = memory_form(llama8b, lora, TrainingSettings(optimizer="adamw_8bit", gradient_checkpointing=True))
    limit = form.total(1, 2048, 300)
    r = form.max_rank(limit, 1, 2048)
    assert r == 300 or form.total(1, 2048, r + 1) > limit
    assert form.total(1, 2048, r) <= limit
