"""The numbers the Learn page substitutes into its formulas, for the current configuration.

Every value is computed here, from the same functions as the results, so the explanations can never
disagree with the calculator; the page only formats them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .dtypes import BNB_4BIT_BLOCKSIZE, BNB_NESTED_BLOCKSIZE, FLOAT_BYTES, compute_dtype
from .estimate import Estimate
from .gpus import Gpu
from .memory import base_weights_bytes
from .serving import ServingEstimate, kv_cache_bytes, serving_estimate

ZOO_SIZE = 10  # adapters in the "adapter zoo" example


@dataclass(frozen=True, slots=True)
class ModuleExample:
    """The first adapted module, worked through: r·(in + out) against the full in·out matrix."""

    name: str
    in_features: int
    out_features: int
    in_plus_out: int
    r: int
    params_per_layer: int
    layers: int
    params: int
    full_matrix_params: int
    percent_of_matrix: float


@dataclass(frozen=True, slots=True)
class LearnNumbers:
    scaling: float
    rslora_scaling: float
    example: ModuleExample | None
    q_out_features: int
    kv_out_features: int
    q_lora_params: int  # r·(hidden + heads·head_dim)
    k_lora_params: int  # r·(hidden + kv_heads·head_dim)
    compute_dtype: str
    float_base_bytes: int  # the base in the compute dtype
    nf4_base_bytes: int
    nf4_double_quant_base_bytes: int
    block_size: int  # 4-bit weights per float32 absmax (bitsandbytes' blocksize)
    nested_block_size: int  # absmax values per second-level constant (double quantization)
    nf4_bits_per_weight: float  # 4 bits + a float32 absmax per block
    double_quant_bits_per_weight: float  # 4 bits + an 8-bit absmax + a float32 per 256 absmax
    zoo_size: int
    zoo: ServingEstimate
    zoo_as_full_copies_bytes: int  # the same number of fine-tuned full models
    kv_cache_bytes: int
    kv_element_bytes: int


def learn_numbers(result: Estimate, gpus: tuple[Gpu, ...]) -> LearnNumbers:
    arch, lora, training, count = result.architecture, result.lora_settings, result.training, result.count
    d = arch.dims
    example = None
    if count.modules:
        m = count.modules[0]
        full = m.in_features * m.out_features
        example = ModuleExample(
            name=m.name,
            in_features=m.in_features,
            out_features=m.out_features,
            in_plus_out=m.in_features + m.out_features,
            r=m.r,
            params_per_layer=m.params_per_layer,
            layers=m.layers,
            params=m.params,
            full_matrix_params=full,
            percent_of_matrix=100 * m.params_per_layer / full if full else 0.0,
        )
    dtype = compute_dtype(training.base_dtype)
    float_base = base_weights_bytes(arch, count, replace(training, base_dtype=dtype))
    return LearnNumbers(
        scaling=lora.lora_alpha / lora.r,
        rslora_scaling=lora.lora_alpha / math.sqrt(lora.r),
        example=example,
        q_out_features=d.num_attention_heads * d.head_dim,
        kv_out_features=d.num_key_value_heads * d.head_dim,
        q_lora_params=lora.r * (d.hidden_size + d.num_attention_heads * d.head_dim),
        k_lora_params=lora.r * (d.hidden_size + d.num_key_value_heads * d.head_dim),
        compute_dtype=dtype,
        float_base_bytes=float_base,
        nf4_base_bytes=base_weights_bytes(arch, count, replace(training, base_dtype="nf4", double_quant=False)),
        nf4_double_quant_base_bytes=base_weights_bytes(
            arch, count, replace(training, base_dtype="nf4", double_quant=True)
        ),
        block_size=BNB_4BIT_BLOCKSIZE,
        nested_block_size=BNB_NESTED_BLOCKSIZE,
        nf4_bits_per_weight=4 + 32 / BNB_4BIT_BLOCKSIZE,
        double_quant_bits_per_weight=4 + 8 / BNB_4BIT_BLOCKSIZE + 32 / (BNB_4BIT_BLOCKSIZE * BNB_NESTED_BLOCKSIZE),
        zoo_size=ZOO_SIZE,
        zoo=serving_estimate(arch, lora, training, ZOO_SIZE, gpus),
        zoo_as_full_copies_bytes=ZOO_SIZE * float_base,
        kv_cache_bytes=kv_cache_bytes(arch, training.seq_len, training.base_dtype),
        kv_element_bytes=FLOAT_BYTES[dtype],
    )
