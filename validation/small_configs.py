"""Small random configs of the 2026 model families (issue 7), written to validation/configs/small/<name>.json.

Run:  validation/.venv/bin/python validation/small_configs.py [--check]

Each entry below is what a config.json would say (model_type + the keys that matter); the file written is what
transformers makes of it (`AutoConfig.for_model(**entry).to_dict()`, without transformers_version / dtype), so
every default is spelled out and the file round-trips: `AutoConfig.for_model(**json)` builds the same model
(`--check` rebuilds both on the meta device and compares every parameter name and shape).

Dimensions are tiny (hidden 64-256, 2-6 layers, vocab 512-2048) but every structural feature of the family is
switched on as the released models use it: layer_types mixes, MoE with dense first layers, shared experts,
attention sinks and biases, MLA with and without q_lora_rank, cross-attention layers, tiny vision towers, tied
and untied heads, Falcon's three decoder architectures. Special token ids sit at the top of the vocabulary
(measurements draw input ids below them, so no image token appears in a text batch).

The 2024 families' small configs (llama, qwen2, gemma2, gpt2, phi3, mixtral, qwen3, gemma) are written by
measure_memory.py and are not touched here.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL_DIR = ROOT / "validation" / "configs" / "small"


def _tok(vocab: int) -> dict:
    """bos/eos/pad near the top of the vocabulary (inside it, as transformers' config checks want)."""
    return {"bos_token_id": vocab - 3, "eos_token_id": vocab - 2, "pad_token_id": vocab - 1}


# ----------------------------------------------------------------------------------------------------------------
# Dense text
# ----------------------------------------------------------------------------------------------------------------
GEMMA3_TEXT = {
    "model_type": "gemma3_text",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 48,  # != hidden / heads, as every Gemma 3
    "query_pre_attn_scalar": 48,
    "sliding_window": 32,
    # 5 sliding : 1 full, as Gemma 3 (the pattern transformers derives from _sliding_window_pattern 6)
    "layer_types": ["sliding_attention"] * 5 + ["full_attention"],
    "max_position_embeddings": 1024,
    "rope_parameters": {
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
    },
    "tie_word_embeddings": True,
    **_tok(1024),
}

OLMO2 = {
    "model_type": "olmo2",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 320,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,  # OLMo 2 7B/13B: MHA; q_norm/k_norm over the whole projection
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
    **_tok(1024),
}
OLMO2_GQA = OLMO2 | {"num_key_value_heads": 2}  # OLMo 2 32B is GQA

GRANITE = {
    "model_type": "granite",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 320,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": True,  # Granite 3.x ties
    "attention_bias": False,
    "mlp_bias": False,
    "embedding_multiplier": 12.0,
    "logits_scaling": 8.0,
    "residual_multiplier": 0.22,
    "attention_multiplier": 0.0078125,
    **_tok(1024),
}
GRANITE_BIAS = GRANITE | {"attention_bias": True, "mlp_bias": True, "tie_word_embeddings": False}

SMOLLM3 = {
    "model_type": "smollm3",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 320,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 1024,
    "no_rope_layer_interval": 4,  # every 4th layer without rotary (NoPE), as SmolLM3
    "tie_word_embeddings": True,
    **_tok(1024),
}

COHERE2 = {
    "model_type": "cohere2",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 320,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "sliding_window": 32,
    "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"],
    "max_position_embeddings": 1024,
    "logit_scale": 0.25,
    "tie_word_embeddings": True,
    **_tok(1024),
}

GLM4 = {
    "model_type": "glm4",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 320,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "attention_bias": True,  # q/k/v biases (GLM-4-9B-0414)
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
    **_tok(1024) | {"eos_token_id": [1021, 1022]},
}

PHI = {
    "model_type": "phi",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 512,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.4},
    "qk_layernorm": False,
    "hidden_act": "gelu_new",
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
    "resid_pdrop": 0.0,
    "embd_pdrop": 0.0,
    **_tok(1024),
}
PHI_QK_LAYERNORM = PHI | {"qk_layernorm": True, "num_key_value_heads": 2}

STARCODER2 = {
    "model_type": "starcoder2",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 512,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "use_bias": True,
    "sliding_window": 64,
    "hidden_act": "gelu_pytorch_tanh",
    "max_position_embeddings": 1024,
    "tie_word_embeddings": True,
    "residual_dropout": 0.0,
    "embedding_dropout": 0.0,
    **_tok(1024),
}

FALCON_NEW = {
    # Falcon-40B / 180B: new_decoder_architecture (grouped kv heads, two layer norms ln_attn / ln_mlp)
    "model_type": "falcon",
    "vocab_size": 1024,
    "hidden_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 8,
    "num_kv_heads": 2,
    "new_decoder_architecture": True,
    "parallel_attn": True,
    "multi_query": False,
    "bias": False,
    "alibi": False,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
    **_tok(1024),
}
FALCON_OLD = {
    # Falcon-7B: multi-query attention, parallel attention + MLP, one input_layernorm, tied head
    "model_type": "falcon",
    "vocab_size": 1024,
    "hidden_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "new_decoder_architecture": False,
    "multi_query": True,
    "parallel_attn": True,
    "bias": False,
    "alibi": False,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": True,
    **_tok(1024),
}
FALCON_RW = {
    # Falcon-RW-1B: ALiBi, sequential attention then MLP (two norms), biases, no multi-query
    "model_type": "falcon",
    "vocab_size": 1024,
    "hidden_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "new_decoder_architecture": False,
    "multi_query": False,
    "parallel_attn": False,
    "bias": True,
    "alibi": True,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": True,
    **_tok(1024),
}
FALCON_NEW_LN1 = FALCON_NEW | {"num_ln_in_parallel_attn": 1, "ffn_hidden_size": 384}  # Falcon2-11B style

LFM2 = {
    "model_type": "lfm2",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 512,  # block_auto_adjust_ff_dim: int(2*512/3) * 1.0 rounded up to block_multiple_of
    "block_multiple_of": 64,
    "block_ffn_dim_multiplier": 1.0,
    "block_auto_adjust_ff_dim": True,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "conv_L_cache": 3,
    "conv_bias": False,
    # LFM2: short-convolution blocks with attention blocks between them
    "layer_types": ["conv", "conv", "full_attention", "conv", "full_attention", "conv"],
    "max_position_embeddings": 1024,
    "tie_word_embeddings": True,
    **_tok(1024),
}

# ----------------------------------------------------------------------------------------------------------------
# Multimodal wrappers (tiny vision towers)
# ----------------------------------------------------------------------------------------------------------------
GEMMA3 = {
    "model_type": "gemma3",
    "text_config": {k: v for k, v in GEMMA3_TEXT.items() if k != "model_type"} | {"model_type": "gemma3_text"},
    "vision_config": {
        "model_type": "siglip_vision_model",
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 64,
        "patch_size": 16,
        "vision_use_head": False,  # Gemma 3's SigLIP has no pooling head
    },
    "mm_tokens_per_image": 4,
    "boi_token_index": 1017,
    "eoi_token_index": 1018,
    "image_token_index": 1019,
    "tie_word_embeddings": True,
}
GEMMA3_UNTIED = copy.deepcopy(GEMMA3) | {"tie_word_embeddings": False}
GEMMA3_UNTIED["text_config"]["tie_word_embeddings"] = False

_GEMMA4_TEXT = {
    "model_type": "gemma4_text",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "global_head_dim": 64,  # full-attention layers use a wider head (per_layer_config)
    "sliding_window": 32,
    "layer_types": ["sliding_attention", "sliding_attention", "full_attention"] * 2,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": True,
    # per-layer embeddings (PLE) and kv sharing, as Gemma 4 E2B / E4B
    "vocab_size_per_layer_input": 1024,
    "hidden_size_per_layer_input": 16,
    "num_kv_shared_layers": 3,
    "use_double_wide_mlp": True,
    "final_logit_softcapping": 30.0,
    **_tok(1024),
}
_GEMMA4_VISION = {
    "model_type": "gemma4_vision",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "patch_size": 8,
    "position_embedding_size": 64,
    "pooling_kernel_size": 2,
    "use_clipped_linears": True,
}
_GEMMA4_AUDIO = {
    "model_type": "gemma4_audio",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "subsampling_conv_channels": [16, 8],
    "conv_kernel_size": 3,
    "output_proj_dims": 96,
    "use_clipped_linears": True,
}
GEMMA4 = {
    "model_type": "gemma4",
    "text_config": _GEMMA4_TEXT,
    "vision_config": _GEMMA4_VISION,
    "audio_config": _GEMMA4_AUDIO,
    "boi_token_id": 1012,
    "eoi_token_id": 1013,
    "image_token_id": 1014,
    "video_token_id": 1015,
    "boa_token_id": 1016,
    "eoa_token_index": 1017,
    "audio_token_id": 1018,
    "tie_word_embeddings": True,
}
GEMMA4_MOE = {
    # Gemma 4 26B-A4B style: MoE block beside the dense MLP, keys = values on full-attention layers with their own
    # kv head count, no PLE, vision only
    "model_type": "gemma4",
    "text_config": {k: v for k, v in _GEMMA4_TEXT.items() if k not in ("num_kv_shared_layers", "use_double_wide_mlp")}
    | {
        "hidden_size_per_layer_input": 0,
        "enable_moe_block": True,
        "num_experts": 4,
        "top_k_experts": 2,
        "moe_intermediate_size": 64,
        "attention_k_eq_v": True,
        "num_global_key_value_heads": 1,
    },
    "vision_config": _GEMMA4_VISION | {"use_clipped_linears": False},
    "boi_token_id": 1012,
    "eoi_token_id": 1013,
    "image_token_id": 1014,
    "video_token_id": 1015,
    "tie_word_embeddings": True,
}

MISTRAL3 = {
    "model_type": "mistral3",
    "text_config": {
        "model_type": "mistral",
        "vocab_size": 1024,
        "hidden_size": 128,
        "intermediate_size": 320,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 48,  # != 128 / 4, as Mistral Small 3.1 (5120 / 32 != 128)
        "max_position_embeddings": 1024,
        "sliding_window": None,
        "tie_word_embeddings": False,
        **_tok(1024),
    },
    "vision_config": {
        "model_type": "pixtral",
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "head_dim": 32,
        "image_size": 64,
        "patch_size": 8,
    },
    "image_token_index": 1019,
    "spatial_merge_size": 2,
    "multimodal_projector_bias": False,
    "tie_word_embeddings": False,
}

QWEN2_5_VL = {
    "model_type": "qwen2_5_vl",
    "text_config": {
        "model_type": "qwen2_5_vl_text",
        "vocab_size": 1024,
        "hidden_size": 128,
        "intermediate_size": 320,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 6, 6]},
        **_tok(1024),
    },
    "vision_config": {
        "model_type": "qwen2_5_vl_vision",
        "depth": 4,
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_heads": 2,
        "patch_size": 8,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 32,
        "out_hidden_size": 128,
        "fullatt_block_indexes": [1, 3],
    },
    "image_token_id": 1015,
    "video_token_id": 1016,
    "vision_start_token_id": 1017,
    "vision_end_token_id": 1018,
    "tie_word_embeddings": False,
}
QWEN2_5_VL_TIED = copy.deepcopy(QWEN2_5_VL) | {"tie_word_embeddings": True}  # Qwen2.5-VL-3B ties

MLLAMA = {
    "model_type": "mllama",
    "text_config": {
        "model_type": "mllama_text_model",
        "vocab_size": 1024,
        "hidden_size": 128,
        "intermediate_size": 320,
        "num_hidden_layers": 5,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "cross_attention_layers": [1, 3],
        "max_position_embeddings": 1024,
        "tie_word_embeddings": False,
        **_tok(1024),
    },
    "vision_config": {
        "model_type": "mllama_vision_model",
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 3,
        "num_global_layers": 2,
        "attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
        "max_num_tiles": 2,
        "intermediate_layers_indices": [0, 2],
        "vision_output_dim": 192,  # hidden * (len(intermediate_layers_indices) + 1)
        "supported_aspect_ratios": [[1, 1], [1, 2], [2, 1]],
    },
    "image_token_index": 1020,
}

_LLAMA4_TEXT = {
    "model_type": "llama4_text",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 96,  # expert width
    "intermediate_size_mlp": 256,  # dense MLP width (layers without experts)
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "num_local_experts": 4,
    "num_experts_per_tok": 1,
    "interleave_moe_layer_step": 1,  # Scout: every layer MoE
    "no_rope_layer_interval": 4,
    "attention_chunk_size": 32,
    "use_qk_norm": True,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
    **_tok(1024),
}
_LLAMA4_VISION = {
    "model_type": "llama4_vision_model",
    "hidden_size": 64,
    "intermediate_size": 160,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
    "pixel_shuffle_ratio": 0.5,
    "projector_input_dim": 128,
    "projector_output_dim": 128,
    "vision_output_dim": 128,
}
LLAMA4 = {
    "model_type": "llama4",
    "text_config": _LLAMA4_TEXT,
    "vision_config": _LLAMA4_VISION,
    "boi_token_index": 1017,
    "eoi_token_index": 1018,
    "image_token_index": 1019,
    "tie_word_embeddings": False,
}
LLAMA4_INTERLEAVED = {
    # Maverick style: MoE every 2nd layer, dense MLP (intermediate_size_mlp) between
    **LLAMA4,
    "text_config": _LLAMA4_TEXT | {"interleave_moe_layer_step": 2, "num_hidden_layers": 4},
}

# ----------------------------------------------------------------------------------------------------------------
# Hybrid linear attention (Gated DeltaNet + gated full attention)
# ----------------------------------------------------------------------------------------------------------------
_HYBRID_TEXT = {
    "vocab_size": 1024,
    "hidden_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "linear_conv_kernel_dim": 4,
    "linear_key_head_dim": 16,
    "linear_value_head_dim": 24,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "layer_types": ["linear_attention", "linear_attention", "linear_attention", "full_attention"],
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25},
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
    **_tok(1024),
}
_QWEN3_5_VISION = {
    "depth": 2,
    "hidden_size": 64,
    "intermediate_size": 160,
    "num_heads": 2,
    "patch_size": 8,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "out_hidden_size": 128,
    "num_position_embeddings": 64,
}
_QWEN3_5_TOKENS = {
    "image_token_id": 1015,
    "video_token_id": 1016,
    "vision_start_token_id": 1017,
    "vision_end_token_id": 1018,
}
QWEN3_5 = {
    "model_type": "qwen3_5",
    "text_config": {"model_type": "qwen3_5_text", **_HYBRID_TEXT, "intermediate_size": 320},
    "vision_config": {"model_type": "qwen3_5_vision", **_QWEN3_5_VISION},
    **_QWEN3_5_TOKENS,
    "tie_word_embeddings": False,
}
QWEN3_5_TIED = copy.deepcopy(QWEN3_5) | {"tie_word_embeddings": True}  # the small Qwen3.5 sizes tie
QWEN3_5_TIED["text_config"]["tie_word_embeddings"] = True
QWEN3_5_MOE = {
    "model_type": "qwen3_5_moe",
    "text_config": {
        "model_type": "qwen3_5_moe_text",
        **_HYBRID_TEXT,
        "moe_intermediate_size": 64,
        "shared_expert_intermediate_size": 96,
        "num_experts": 4,
        "num_experts_per_tok": 2,
    },
    "vision_config": {"model_type": "qwen3_5_moe_vision", **_QWEN3_5_VISION},
    **_QWEN3_5_TOKENS,
    "tie_word_embeddings": False,
}
QWEN3_NEXT = {
    "model_type": "qwen3_next",
    **_HYBRID_TEXT,
    "intermediate_size": 320,  # dense MLP on mlp_only_layers
    "moe_intermediate_size": 64,
    "shared_expert_intermediate_size": 96,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [1],
    "norm_topk_prob": True,
}

# ----------------------------------------------------------------------------------------------------------------
# Mixture of experts
# ----------------------------------------------------------------------------------------------------------------
QWEN3_MOE = {
    "model_type": "qwen3_moe",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 320,  # dense MLP on mlp_only_layers / non-sparse steps
    "moe_intermediate_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 48,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "decoder_sparse_step": 2,  # MoE on layers 1, 3 ...
    "mlp_only_layers": [3],  # ... minus layer 3
    "norm_topk_prob": True,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
    **_tok(1024),
}
QWEN3_MOE_ALL = QWEN3_MOE | {"decoder_sparse_step": 1, "mlp_only_layers": []}  # Qwen3-30B-A3B: every layer MoE

QWEN2_MOE = {
    "model_type": "qwen2_moe",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 320,
    "moe_intermediate_size": 64,
    "shared_expert_intermediate_size": 256,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [0],
    "qkv_bias": True,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
    **_tok(1024),
}

GPT_OSS = {
    "model_type": "gpt_oss",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 96,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "sliding_window": 32,
    "layer_types": ["sliding_attention", "full_attention"] * 2,
    "attention_bias": True,
    "max_position_embeddings": 1024,
    "rope_parameters": {
        "rope_type": "yarn",
        "rope_theta": 150000.0,
        "factor": 32.0,
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "original_max_position_embeddings": 4096,
        "truncate": False,
    },
    "tie_word_embeddings": False,
    **_tok(1024),
}

GLM4_MOE = {
    "model_type": "glm4_moe",
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 320,
    "moe_intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 48,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "first_k_dense_replace": 1,
    "n_group": 1,
    "topk_group": 1,
    "routed_scaling_factor": 2.5,
    "norm_topk_prob": True,
    "attention_bias": True,  # GLM-4.5 / 4.6: q/k/v biases
    "use_qk_norm": False,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "partial_rotary_factor": 0.5},
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
    **_tok(1024),
}
GLM4_MOE_QK_NORM = GLM4_MOE | {"use_qk_norm": True, "first_k_dense_replace": 2}

_DEEPSEEK_COMMON = {
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 320,
    "moe_intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "kv_lora_rank": 32,
    "qk_nope_head_dim": 16,
    "qk_rope_head_dim": 8,
    "v_head_dim": 16,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "first_k_dense_replace": 1,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
    **_tok(1024),
}
DEEPSEEK_V2_LITE = {
    # DeepSeek-V2-Lite: no q compression (q_proj), 2 shared experts, greedy top-k
    "model_type": "deepseek_v2",
    **_DEEPSEEK_COMMON,
    "q_lora_rank": None,
    "n_shared_experts": 2,
    "topk_method": "greedy",
}
DEEPSEEK_V2 = {
    # DeepSeek-V2: q compressed (q_a_proj / q_a_layernorm / q_b_proj), group-limited routing
    "model_type": "deepseek_v2",
    **_DEEPSEEK_COMMON,
    "q_lora_rank": 48,
    "n_shared_experts": 2,
    "topk_method": "group_limited_greedy",
    "n_group": 2,
    "topk_group": 1,
}
DEEPSEEK_V3 = {
    "model_type": "deepseek_v3",
    **_DEEPSEEK_COMMON,
    "q_lora_rank": 48,
    "n_shared_experts": 1,
    "n_group": 2,
    "topk_group": 1,
    "routed_scaling_factor": 2.5,
    "norm_topk_prob": True,
    "rope_interleave": True,
}
DEEPSEEK_V3_NO_Q_LORA = DEEPSEEK_V3 | {"q_lora_rank": None}  # Moonlight / Kimi-style v3 configs without q_lora

SMALL: dict[str, dict] = {
    "gemma3_text": GEMMA3_TEXT,
    "gemma3_text-untied": GEMMA3_TEXT | {"tie_word_embeddings": False},
    "olmo2": OLMO2,
    "olmo2-gqa": OLMO2_GQA,
    "granite": GRANITE,
    "granite-bias": GRANITE_BIAS,
    "smollm3": SMOLLM3,
    "cohere2": COHERE2,
    "glm4": GLM4,
    "phi": PHI,
    "phi-qk-layernorm": PHI_QK_LAYERNORM,
    "starcoder2": STARCODER2,
    "falcon-new-arch": FALCON_NEW,
    "falcon-new-arch-ln1": FALCON_NEW_LN1,
    "falcon-old": FALCON_OLD,
    "falcon-rw": FALCON_RW,
    "lfm2": LFM2,
    "gemma3": GEMMA3,
    "gemma3-untied": GEMMA3_UNTIED,
    "gemma4": GEMMA4,
    "gemma4-moe": GEMMA4_MOE,
    # the text model alone (a gemma4_text config builds Gemma4ForCausalLM): the whole grid without vision names
    "gemma4_text": _GEMMA4_TEXT,
    "gemma4_text-moe": GEMMA4_MOE["text_config"] | {"model_type": "gemma4_text"},
    "mistral3": MISTRAL3,
    "qwen2_5_vl": QWEN2_5_VL,
    "qwen2_5_vl-tied": QWEN2_5_VL_TIED,
    "mllama": MLLAMA,
    "llama4": LLAMA4,
    "llama4-interleaved": LLAMA4_INTERLEAVED,
    "qwen3_5": QWEN3_5,
    "qwen3_5-tied": QWEN3_5_TIED,
    "qwen3_5_moe": QWEN3_5_MOE,
    "qwen3_next": QWEN3_NEXT,
    "qwen3_moe": QWEN3_MOE,
    "qwen3_moe-all-sparse": QWEN3_MOE_ALL,
    "qwen2_moe": QWEN2_MOE,
    "gpt_oss": GPT_OSS,
    "glm4_moe": GLM4_MOE,
    "glm4_moe-qk-norm": GLM4_MOE_QK_NORM,
    "deepseek_v2": DEEPSEEK_V2,
    "deepseek_v2-lite": DEEPSEEK_V2_LITE,
    "deepseek_v3": DEEPSEEK_V3,
    "deepseek_v3-no-q-lora": DEEPSEEK_V3_NO_Q_LORA,
}


def config_dict(entry: dict) -> dict:
    """What transformers makes of an entry: to_dict() without the version stamp and dtype."""
    from transformers import AutoConfig

    kw = copy.deepcopy(entry)
    cfg = AutoConfig.for_model(kw.pop("model_type"), **kw)
    d = cfg.to_dict()
    for key in ("transformers_version", "dtype", "torch_dtype"):
        d.pop(key, None)
    for sub in ("text_config", "vision_config", "audio_config"):
        if isinstance(d.get(sub), dict):
            for key in ("transformers_version", "dtype", "torch_dtype"):
                d[sub].pop(key, None)
    return d


def write_all(names: list[str] | None = None) -> list[Path]:
    SMALL_DIR.mkdir(parents=True, exist_ok=True)
    out = []
    for name, entry in SMALL.items():
        if names and name not in names:
            continue
        path = SMALL_DIR / f"{name}.json"
        path.write_text(json.dumps(config_dict(entry), indent=2, sort_keys=True) + "\n")
        out.append(path)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--check", action="store_true", help="rebuild from each written file and compare with the entry")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    for path in write_all(args.names):
        print(f"wrote {path.relative_to(ROOT)}")
    if args.check:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from model_build import build_meta

        bad = 0
        for name, entry in SMALL.items():
            if args.names and name not in args.names:
                continue
            a, _ = build_meta(copy.deepcopy(entry))
            b, _ = build_meta(json.loads((SMALL_DIR / f"{name}.json").read_text()))
            sa = {n: tuple(p.shape) for n, p in a.named_parameters(remove_duplicate=False)}
            sb = {n: tuple(p.shape) for n, p in b.named_parameters(remove_duplicate=False)}
            ok = sa == sb
            bad += not ok
            print(f"{'ok  ' if ok else 'DIFF'} {name}: {sum(p.numel() for p in a.parameters()):,d} params")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
