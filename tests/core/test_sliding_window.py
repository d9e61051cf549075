"""Sliding-window layers under sdpa: no mask while the keys fit the window, a mask and repeated k/v past it
(transformers' masking_utils and integrations/sdpa_attention.py), and the closed form follows the step."""

import pytest

from calculator.core import LoraSettings, TrainingSettings, count_lora
from calculator.core.activations import estimate_activations
from calculator.core.estimate import memory_estimate
from calculator.core.form import memory_form
from tests.core.conftest import preset_arch

QV = LoraSettings(target_modules=("q_proj", "v_proj"))


def activations(arch, seq_len, attn="sdpa"):
    count = count_lora(arch, QV)
    a = estimate_activations(arch, count, TrainingSettings(seq_len=seq_len, attn_implementation=attn))
    return a.layers_bytes + a.outside_bytes


def test_past_the_window_sdpa_keeps_the_mask_and_repeated_keys_and_values():
    arch = preset_arch("gemma-2-2b")  # window 4096, 8 query heads over 4 kv heads of 256, 13 sliding layers
    window = arch.forward.sliding_window
    per_token = activations(arch, window - 1) - activations(arch, window - 2)
    jump = activations(arch, window) - activations(arch, window - 1) - per_token
    d = arch.dims
    repeated = 13 * 2 * (d.num_attention_heads - d.num_key_value_heads) * d.head_dim * 2 * window
    mask = 13 * window**2 * 2  # each sliding layer keeps its own bf16 additive mask
    assert jump == pytest.approx(repeated + mask, rel=0.01)


def second_difference(arch, s, attn):
    a, b, c = (activations(arch, x, attn) for x in (s - 1, s, s + 1))
    return (c - b) - (b - a)


def test_eager_attention_has_no_such_step():
    """Eager attention adds its full and sliding masks to the scores (nothing kept): quadratic throughout."""
    arch = preset_arch("gemma-2-2b")
    window = arch.forward.sliding_window
    assert second_difference(arch, window, "eager") == second_difference(arch, 1000, "eager")


@pytest.mark.parametrize("seq_len", [4095, 4096, 4097, 8192])
def test_the_closed_form_is_exact_on_both_sides_of_the_window(seq_len):
    arch = preset_arch("gemma-2-2b")
    training = TrainingSettings(seq_len=seq_len, batch_size=2)
    form = memory_form(arch, QV, training)
    assert form.exact
    expected = memory_estimate(arch, count_lora(arch, QV), training).total_bytes
    assert form.total(2, seq_len, QV.r) == expected


def test_the_longest_sequence_that_fits_is_found_across_the_step():
    arch = preset_arch("gemma-2-2b")
    form = memory_form(arch, QV, TrainingSettings())
    below = form.total(1, 4095, 8)
    at_window = form.total(1, 4096, 8)
    past = form.total(1, 4097, 8)
    assert at_window - below > past - at_window  # the step
    assert form.max_seq_len(at_window, 1, 8) == 4096
    assert form.max_seq_len(at_window - 1, 1, 8) == 4095  # the step at the window does not fit that limit
    assert form.max_seq_len(past, 1, 8) >= 4097
