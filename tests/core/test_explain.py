"""The Learn page's worked numbers come from the core and agree with the results."""

from calculator.core import DEFAULT_GPUS, LoraSettings, TrainingSettings, estimate
from calculator.core.explain import learn_numbers


def test_worked_example_and_quantization_bits(llama8b):
    result = estimate(llama8b, LoraSettings(r=16, lora_alpha=32), TrainingSettings())
    x = learn_numbers(result, DEFAULT_GPUS)
    assert x.scaling == 2.0
    assert x.rslora_scaling == 8.0
    assert x.example is not None
    assert (x.example.name, x.example.in_plus_out, x.example.params_per_layer) == ("q_proj", 8192, 16 * 8192)
    assert x.k_lora_params == 16 * (4096 + 1024)
    assert x.nf4_bits_per_weight == 4.5
    assert round(x.double_quant_bits_per_weight, 3) == 4.127
    assert x.nf4_double_quant_base_bytes < x.nf4_base_bytes < x.float_base_bytes == result.memory.base_weights_bytes
    assert x.zoo.adapters == 10
