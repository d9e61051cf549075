"""Static memory in exact bytes: weights by storage format, adapter, gradients, optimizer states."""

import pytest

from calculator.core import LoraSettings, TrainingSettings, count_lora
from calculator.core.memory import static_memory
from tests.core.conftest import preset_arch

# Llama-3.1-8B linear weights per layer (out x in): q, o 4096x4096; k, v 1024x4096; gate, up 14336x4096;
# down 4096x14336
LINEAR_SHAPES = [(4096, 4096)] * 2 + [(1024, 4096)] * 2 + [(14336, 4096)] * 2 + [(4096, 14336)]
LAYERS = 32
BASE = 8_030_261_248
LINEAR = LAYERS * sum(o * i for o, i in LINEAR_SHAPES)
OTHER = BASE - LINEAR  # embeddings, head, norms: kept in bf16 under quantization
TRAINABLE = 3_407_872  # PEFT defaults (q_proj, v_proj, r=8)


def static(arch, training, **lora):
    return static_memory(arch, count_lora(arch, LoraSettings(**lora)), training)


@pytest.mark.parametrize(("dtype", "size"), [("fp32", 4), ("bf16", 2), ("fp16", 2)])
def test_float_base_weights_are_params_times_element_size(llama8b, dtype, size):
    assert static(llama8b, TrainingSettings(base_dtype=dtype)).base_weights_bytes == BASE * size


def test_int8_keeps_int8_weights_and_a_float32_scale_per_output_row(llama8b):
    per_layer = sum(o * i + 4 * o for o, i in LINEAR_SHAPES)
    expected = LAYERS * per_layer + OTHER * 2
    assert static(llama8b, TrainingSettings(base_dtype="int8")).base_weights_bytes == expected


def test_nf4_packs_two_weights_per_byte_with_a_float32_absmax_per_64(llama8b):
    per_layer = sum(o * i // 2 + 4 * (o * i // 64) + 64 for o, i in LINEAR_SHAPES)  # + 16-entry fp32 code
    expected = LAYERS * per_layer + OTHER * 2
    training = TrainingSettings(base_dtype="nf4", double_quant=False)
    assert static(llama8b, training).base_weights_bytes == expected


def test_double_quantization_stores_absmax_in_8_bit_with_second_level_constants(llama8b):
    def matrix(n):
        blocks = n // 64  # + offset, 256-entry nested code, 16-entry code
        return n // 2 + blocks + 4 * -(-blocks // 256) + 4 + 1024 + 64

    expected = LAYERS * sum(matrix(o * i) for o, i in LINEAR_SHAPES) + OTHER * 2
    assert static(llama8b, TrainingSettings(base_dtype="nf4", double_quant=True)).base_weights_bytes == expected
    fp4 = static(llama8b, TrainingSettings(base_dtype="fp4", double_quant=True)).base_weights_bytes
    assert fp4 == expected  # same layout, different code book


def test_torchtune_scope_quantizes_only_the_adapted_layers(llama8b):
    training = TrainingSettings(base_dtype="nf4", double_quant=False, quantize_scope="lora_targets")
    q_v = [(4096, 4096), (1024, 4096)]
    others = [(4096, 4096), (1024, 4096), (14336, 4096), (14336, 4096), (4096, 14336)]
    per_layer = sum(o * i // 2 + o * i // 16 + 64 for o, i in q_v) + sum(o * i * 2 for o, i in others)
    assert static(llama8b, training).base_weights_bytes == LAYERS * per_layer + OTHER * 2


@pytest.mark.parametrize(("dtype", "size"), [("fp32", 4), ("bf16", 2)])
def test_adapter_and_gradients_are_trainable_params_in_the_adapter_dtype(llama8b, dtype, size):
    memory = static(llama8b, TrainingSettings(adapter_dtype=dtype))
    assert memory.adapter_weights_bytes == TRAINABLE * size
    assert memory.gradients_bytes == TRAINABLE * size


def test_modules_to_save_copies_keep_the_base_dtype(llama8b):
    memory = static(llama8b, TrainingSettings(), modules_to_save=("lm_head",))
    assert memory.adapter_weights_bytes == TRAINABLE * 4 + 128256 * 4096 * 2


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        # exp_avg + exp_avg_sq in fp32 (the step scalars stay on the host)
        ("adamw", 2 * 4 * TRAINABLE),
        ("sgd", 0),
        ("sgd_momentum", 4 * TRAINABLE),
        ("lion", 4 * TRAINABLE),
        # factored second moments: rows + columns of every (r x in) and (out x r) matrix, an RMS scalar each
        ("adafactor", 4 * LAYERS * ((8 + 4096) * 3 + (1024 + 8)) + 4 * 4 * LAYERS),
        # uint8 states + a float32 absmax per 256 elements, twice; two shared 256-entry maps
        ("adamw_8bit", 2 * (TRAINABLE + 4 * TRAINABLE // 256) + 2 * 1024),
        ("paged_adamw_8bit", 2 * (TRAINABLE + 4 * TRAINABLE // 256) + 2 * 1024),
    ],
)
def test_optimizer_states_after_one_step(llama8b, optimizer, expected):
    assert static(llama8b, TrainingSettings(optimizer=optimizer)).optimizer_states_bytes == expected


def test_eight_bit_optimizers_keep_small_tensors_in_32_bit():
    gpt2 = preset_arch("gpt2")  # bias="all": 768-element biases are below bitsandbytes' 4096 minimum
    lora_only = static(gpt2, TrainingSettings(optimizer="adamw_8bit"))
    with_biases = static(gpt2, TrainingSettings(optimizer="adamw_8bit"), bias="all")
    # per layer: c_attn 3h, attn c_proj h, ln_1 h, ln_2 h, c_fc 4h, mlp c_proj h; then ln_f h
    bias_elements = 12 * (3 * 768 + 768 + 768 + 768 + 4 * 768 + 768) + 768
    assert with_biases.optimizer_states_bytes - lora_only.optimizer_states_bytes == 8 * bias_elements


def test_fsdp_shards_static_memory_across_gpus(llama8b):
    single = static(llama8b, TrainingSettings())
    sharded = static(llama8b, TrainingSettings(num_gpus=4, parallelism="fsdp"))
    assert sharded.base_weights_bytes == single.base_weights_bytes // 4
    replicated = static(llama8b, TrainingSettings(num_gpus=4, parallelism="ddp"))
    assert replicated == single


def test_kbit_preparation_keeps_unquantized_parameters_in_fp32(llama8b):
    plain = static(llama8b, TrainingSettings(base_dtype="nf4"))
    prepared = static(llama8b, TrainingSettings(base_dtype="nf4", prepare_model_for_kbit_training=True))
    assert prepared.base_weights_bytes - plain.base_weights_bytes == OTHER * 2  # bf16 -> fp32
    float_base = TrainingSettings(base_dtype="bf16", prepare_model_for_kbit_training=True)
    assert static(llama8b, float_base).base_weights_bytes == BASE * 2  # only k-bit models are prepared


def test_a_part_s_share_of_the_peak(llama8b):
    from calculator.core import estimate

    memory = estimate(llama8b, LoraSettings(), TrainingSettings()).memory
    assert memory.percent_of_total(memory.total_bytes) == 100.0
    assert memory.percent_of_total(memory.base_weights_bytes) == 100 * memory.base_weights_bytes / memory.total_bytes
