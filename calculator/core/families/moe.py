"""Mixture-of-experts families: experts as transformers 5 stores them (3-D parameters), routers, shared
experts, and dense layers where the config says so.

PEFT 0.21 rewrites the transformers-4 expert names a user writes (``w1``/``w3``/``w2``, or
``gate_proj``/``up_proj``/``down_proj``) into ``target_parameters`` for the model types transformers maps
to the ``mixtral`` or ``qwen2_moe`` conversion pattern (``transformers.conversion_mapping``), and only those.
"""

from __future__ import annotations

from .common import GQA_CHECKS, decoder_keys
from .dense import QV
from .spec import Attention, Family, Key, Layers, Moe, Text

TOP_K_CHECK = (("num_experts_per_tok <= num_experts", "num_experts_per_tok", "Cannot exceed the number of experts."),)

MIXTRAL = Family(
    model_type="mixtral",
    name="Mixtral",
    keys=decoder_keys(
        vocab=32000,
        hidden=4096,
        intermediate=14336,
        layers=32,
        heads=32,
        kv_heads=8,
        positions=131072,
        extra=(
            Key("num_experts", 8, name="num_local_experts"),
            Key("num_experts_per_tok", 2),
        ),
    ),
    text=Text(
        Layers(
            mixers=(("full_attention", Attention()),),
            ffns=(("moe", Moe(intermediate="intermediate_size")),),
        )
    ),
    peft_targets=QV,
    moe_conversion="mixtral",
    checks=GQA_CHECKS + TOP_K_CHECK,
)
