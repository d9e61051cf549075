"""Generate tests/core/golden/peft_params_2026.json: what PEFT counts for the 2026 families (issue 7).

Run with the validation venv (see validation/README.md):

    validation/.venv/bin/python validation/peft_golden_2026.py                       # everything
    validation/.venv/bin/python validation/peft_golden_2026.py --arch gpt_oss --stdout   # one config, print cases
    validation/.venv/bin/python validation/peft_golden_2026.py --arch 'qwen3.*'          # names are regexes

Same case format as peft_params.json (peft_golden.py, whose run_case / breakdown_of / dump it reuses), over the
small configs of validation/configs/small/ (2026 families, small_configs.py) and the real-size configs of
validation/configs/catalog/. The model is the one issue 7 names (model_build.py: AutoModelForCausalLM, or
AutoModelForImageTextToText where transformers refuses it); for the multimodal types CausalLM builds text-only
(mllama, llama4, qwen3_5, qwen3_5_moe) the small configs are also run with their ImageTextToText model
("<name>@image_text_to_text", vision tower included).

The grid is peft_golden.py's, with each family's real module names, plus what 2026 adds: trainable_token_indices,
ensure_weight_tying on modules_to_save / trainable tokens, and per family the MoE (v4 expert names PEFT rewrites,
router names, target_parameters on 3-D experts and their biases), hybrid (linear-attention names, convolutions),
MLA and multimodal (vision-tower names, text-only and vision-only regexes, projector in modules_to_save) cases.

Additions to the case format (peft_params.json's fields are unchanged): architectures carry "auto_class",
"config_file" and "model_class"; a case carries "by_component" (trainable parameters per top-level component,
inventory.component_of: e.g. model.vision_tower vs model.language_model.layers), and "effective" also records
"trainable_token_indices" when PEFT resolved them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peft_golden
from inventory import VISION_SUFFIX, all_sources, component_of
from model_build import build_meta, fixed_hash_seed

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "core" / "golden" / "peft_params_2026.json"
T = {"task_type": "CAUSAL_LM"}

# ----------------------------------------------------------------------------------------------------------------
# Module names per family (as the model names them)
# ----------------------------------------------------------------------------------------------------------------
QKVO = ["q_proj", "k_proj", "v_proj", "o_proj"]
GATE_UP_DOWN = ["gate_proj", "up_proj", "down_proj"]
VISION_NAMES = {
    # names that exist only in the vision tower / projector (a list of them adapts the tower alone)
    "gemma3": ["out_proj", "fc1", "fc2"],
    "gemma4": ["linear", "embedding_projection"],
    "mistral3": ["merging_layer", "linear_1", "linear_2"],
    "qwen2_5_vl": ["qkv", "attn.proj"],
    "mllama": ["fc1", "fc2", "multi_modal_projector"],
    "llama4": ["fc1", "fc2", "linear_1"],
    "qwen3_5": ["qkv", "attn.proj", "linear_fc1", "linear_fc2"],
    "qwen3_5_moe": ["qkv", "attn.proj", "linear_fc1", "linear_fc2"],
}
PROJECTOR = {
    "gemma3": "multi_modal_projector",
    "gemma4": "embed_vision",
    "mistral3": "multi_modal_projector",
    "qwen2_5_vl": "merger",
    "mllama": "multi_modal_projector",
    "llama4": "multi_modal_projector",
    "qwen3_5": "merger",
    "qwen3_5_moe": "merger",
}
# MoE: the expert container, the router module, the shared-expert container
MOE = {
    "qwen3_moe": {"experts": "mlp.experts", "router": "gate", "shared": None},
    "qwen2_moe": {"experts": "mlp.experts", "router": "gate", "shared": "shared_expert"},
    "qwen3_5_moe": {"experts": "mlp.experts", "router": "gate", "shared": "shared_expert"},
    "qwen3_next": {"experts": "mlp.experts", "router": "gate", "shared": "shared_expert"},
    "gpt_oss": {"experts": "mlp.experts", "router": "router", "shared": None, "biases": True},
    "glm4_moe": {"experts": "mlp.experts", "router": "gate", "shared": "shared_experts"},
    "deepseek_v2": {"experts": "mlp.experts", "router": "gate", "shared": "shared_experts"},
    "deepseek_v3": {"experts": "mlp.experts", "router": "gate", "shared": "shared_experts"},
    "llama4": {"experts": "feed_forward.experts", "router": "router", "shared": "shared_expert"},
    "gemma4": {"experts": "experts", "router": "router.proj", "shared": None},
    "gemma4_text": {"experts": "experts", "router": "router.proj", "shared": None},
}
LINEAR_ATTENTION = {
    "qwen3_5": ["in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a", "out_proj"],
    "qwen3_5_moe": ["in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a", "out_proj"],
    "qwen3_next": ["in_proj_qkvz", "in_proj_ba", "out_proj"],
    "lfm2": ["in_proj", "out_proj"],
}


def text_config(config: dict) -> dict:
    return config.get("text_config") or config


def base_names(config: dict) -> dict:
    """qv / attention / MLP names and the embedding / layer-stack names, per model_type."""
    mt = config["model_type"]
    n = {"qv": ["q_proj", "v_proj"], "attn": list(QKVO), "mlp": list(GATE_UP_DOWN), "embed": "embed_tokens"}
    if mt == "glm4":
        n["mlp"] = ["gate_up_proj", "down_proj"]
    elif mt == "phi3":  # Phi-3 / Phi-4 (catalog): fused projections
        n |= {"qv": ["qkv_proj"], "attn": ["qkv_proj", "o_proj"], "mlp": ["gate_up_proj", "down_proj"]}
    elif mt == "phi":
        n |= {"attn": ["q_proj", "k_proj", "v_proj", "dense"], "mlp": ["fc1", "fc2"]}
    elif mt == "starcoder2":
        n["mlp"] = ["c_fc", "c_proj"]
    elif mt == "falcon":
        n |= {
            "qv": ["query_key_value"],
            "attn": ["query_key_value", "dense"],
            "mlp": ["dense_h_to_4h", "dense_4h_to_h"],
            "embed": "word_embeddings",
        }
    elif mt == "lfm2":
        n |= {"attn": ["q_proj", "k_proj", "v_proj", "self_attn.out_proj"], "mlp": ["w1", "w2", "w3"]}
    elif mt in ("deepseek_v2", "deepseek_v3"):
        q = ["q_proj"] if text_config(config).get("q_lora_rank") is None else ["q_a_proj", "q_b_proj"]
        n |= {"qv": [q[-1], "kv_b_proj"], "attn": [*q, "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"]}
    elif mt == "mllama":
        n["attn"] = QKVO  # self- and cross-attention layers use the same names
    return n


class Structure:
    """Paths read from the model itself: the text layer stack, the first layer having each name."""

    def __init__(self, model):
        from torch import nn

        self.paths = [p for p, _ in model.named_modules()]
        self.classes = [(p, type(m).__name__) for p, m in model.named_modules()]
        self.groups = {
            p: m.groups for p, m in model.named_modules() if hasattr(m, "groups") and isinstance(m, nn.Module)
        }
        stacks = [p for p, m in model.named_modules() if isinstance(m, nn.ModuleList)]
        text = [s for s in stacks if not re.search(r"vision|visual|audio", s)]
        self.stack = text[0]  # model.layers, model.language_model.layers, transformer.h, ...
        self.stack_leaf = self.stack.rsplit(".", 1)[-1]
        self.num_layers = len(model.get_submodule(self.stack))

    def first(self, suffix: str) -> str | None:
        """Full path of the first text-layer module whose name ends with `suffix`."""
        for p in self.paths:
            if p.startswith(self.stack + ".") and (p == suffix or p.endswith("." + suffix)):
                return p
        return None

    def first_of_kind(self, class_name: str) -> str:
        """Full path of the first text-layer module of that class (e.g. the Conv1d of a linear-attention block)."""
        return next(p for p, c in self.classes if p.startswith(self.stack + ".") and c == class_name)

    def rel(self, path: str) -> str:
        """`layers.3.self_attn.v_proj` from `model.layers.3.self_attn.v_proj` (a rank_pattern key)."""
        return self.stack_leaf + path[len(self.stack) :]

    def has(self, suffix: str) -> bool:
        return any(p == suffix or p.endswith("." + suffix) for p in self.paths)


def _re(names: list[str]) -> str:
    return "(" + "|".join(re.escape(x) for x in names) + ")"


# ----------------------------------------------------------------------------------------------------------------
# Grid
# ----------------------------------------------------------------------------------------------------------------
def grid(config: dict, auto_class: str) -> list[tuple[str, dict]]:
    mt = config["model_type"]
    model, _ = build_meta(config, auto_class)
    st = Structure(model)
    n = base_names(config)
    qv, attn, mlp, embed = n["qv"], n["attn"], n["mlp"], n["embed"]
    head = "lm_head"
    linear_attn = LINEAR_ATTENTION.get(mt, [])
    mlp_present = [m for m in mlp if st.has(m)] or mlp
    all_lin = attn + linear_attn + mlp_present
    all_lin = list(dict.fromkeys(x for x in all_lin if st.has(x)))
    q_full = st.first(qv[0]) or st.first(attn[0])
    v_name = qv[-1]
    v_path = st.first(v_name)
    v_layer = st.rel(v_path) if v_path else v_name
    stack_re = re.escape(st.stack)
    mlp_re = _re(mlp_present)
    rank_pattern = {qv[0]: 4, v_layer: 2, rf"{st.stack_leaf}\.[12]\..*{mlp_re}": 12}
    alpha_pattern = {qv[0]: 8, v_layer: 4}
    layer01 = rf"{stack_re}\.(0|1)\..*\.{_re(attn + linear_attn)}"
    exclude_list = [mlp_present[-1]]
    exclude_regex = rf".*\.{re.escape(st.stack_leaf)}\.0\..*"
    tokens = [0, 1, 5]
    base = {**T, "r": 8, "lora_alpha": 16}
    cases: list[tuple[str, dict]] = [
        ("default_targets", {**T, "r": 8, "lora_alpha": 8}),
        ("qv_r16", {**T, "r": 16, "lora_alpha": 32, "target_modules": qv}),
        ("attn_r32_a64", {**T, "r": 32, "lora_alpha": 64, "target_modules": attn}),
        ("mlp_r8", base | {"target_modules": mlp}),
        ("all_linear_r64", {**T, "r": 64, "lora_alpha": 128, "target_modules": "all-linear"}),
        ("explicit_all_r8", base | {"target_modules": all_lin}),
        ("all_linear_dora_r16", {**T, "r": 16, "lora_alpha": 32, "target_modules": "all-linear", "use_dora": True}),
        ("qv_dora_r8", base | {"target_modules": qv, "use_dora": True}),
        ("qv_bias_all", base | {"target_modules": qv, "bias": "all"}),
        ("attn_bias_lora_only", base | {"target_modules": attn, "bias": "lora_only"}),
        ("all_linear_bias_lora_only", base | {"target_modules": "all-linear", "bias": "lora_only"}),
        ("all_linear_lora_bias", base | {"target_modules": "all-linear", "lora_bias": True}),
        ("qv_mts_head", base | {"target_modules": qv, "modules_to_save": [head]}),
        ("qv_mts_embed", base | {"target_modules": qv, "modules_to_save": [embed]}),
        ("qv_mts_embed_tying", base | {"target_modules": qv, "modules_to_save": [embed], "ensure_weight_tying": True}),
        ("qv_mts_head_tying", base | {"target_modules": qv, "modules_to_save": [head], "ensure_weight_tying": True}),
        ("qv_mts_head_embed", base | {"target_modules": qv, "modules_to_save": [embed, head]}),
        (
            "qv_mts_head_embed_tying",
            base | {"target_modules": qv, "modules_to_save": [embed, head], "ensure_weight_tying": True},
        ),
        ("embed_head_q_targets", base | {"target_modules": [embed, head, qv[0]]}),
        ("embed_head_q_targets_tying", base | {"target_modules": [embed, head, qv[0]], "ensure_weight_tying": True}),
        ("embed_q_dora", base | {"target_modules": [embed, qv[0]], "use_dora": True}),
        ("qv_trainable_tokens", base | {"target_modules": qv, "trainable_token_indices": tokens}),
        (
            "qv_trainable_tokens_tying",
            base | {"target_modules": qv, "trainable_token_indices": tokens, "ensure_weight_tying": True},
        ),
        (
            "qv_trainable_tokens_embed_and_head",
            base | {"target_modules": qv, "trainable_token_indices": {embed: tokens, head: tokens}},
        ),
        (
            "qv_trainable_tokens_embed_and_head_differ_tying",
            base
            | {
                "target_modules": qv,
                "trainable_token_indices": {embed: tokens, head: [2, 3]},
                "ensure_weight_tying": True,
            },
        ),
        (
            "err_trainable_tokens_and_mts_embed",
            base | {"target_modules": qv, "trainable_token_indices": {embed: tokens}, "modules_to_save": [embed]},
        ),
        ("qv_layers_list", base | {"target_modules": qv, "layers_to_transform": [0, 1, 5]}),
        ("mlp_layers_int", base | {"target_modules": mlp, "layers_to_transform": 1}),
        (
            "attn_layers_pattern",
            base | {"target_modules": attn, "layers_to_transform": [0, 2], "layers_pattern": st.stack_leaf},
        ),
        (
            "attn_layers_last",
            base | {"target_modules": attn + linear_attn, "layers_to_transform": [st.num_layers - 1]},
        ),
        ("full_name_target_with_layers", base | {"target_modules": [q_full], "layers_to_transform": [1]}),
        (
            "rank_alpha_pattern",
            base | {"target_modules": all_lin, "rank_pattern": rank_pattern, "alpha_pattern": alpha_pattern},
        ),
        (
            "rank_pattern_order_suffix_first",
            base | {"target_modules": list(dict.fromkeys([*qv, v_name])), "rank_pattern": {v_name: 4, v_layer: 2}},
        ),
        (
            "rank_pattern_order_layer_first",
            base | {"target_modules": list(dict.fromkeys([*qv, v_name])), "rank_pattern": {v_layer: 2, v_name: 4}},
        ),
        ("regex_qv", base | {"target_modules": rf".*\.{_re(qv)}"}),
        ("regex_layers01_attn", base | {"target_modules": layer01}),
        ("all_linear_exclude_list", base | {"target_modules": "all-linear", "exclude_modules": exclude_list}),
        ("all_linear_exclude_regex", base | {"target_modules": "all-linear", "exclude_modules": exclude_regex}),
        ("qv_rslora_r16", {**T, "r": 16, "lora_alpha": 16, "target_modules": qv, "use_rslora": True}),
        ("suffix_must_be_whole_component", base | {"target_modules": ["proj"]}),
        ("err_all_linear_with_layers", base | {"target_modules": "all-linear", "layers_to_transform": [0]}),
        ("err_dora_with_lora_bias", base | {"target_modules": qv, "use_dora": True, "lora_bias": True}),
    ]
    cases += family_cases(config, st, n, linear_attn, base)
    return cases


def family_cases(config: dict, st: Structure, n: dict, linear_attn: list[str], base: dict) -> list[tuple[str, dict]]:
    mt = config["model_type"]
    qv, attn = n["qv"], n["attn"]
    out: list[tuple[str, dict]] = []
    # ---- hybrid: linear attention / convolution blocks beside attention -------------------------------------------
    if linear_attn:
        out += [
            ("hybrid_linear_attention_names", base | {"target_modules": linear_attn}),
            ("hybrid_linear_and_full_attention", base | {"target_modules": attn + linear_attn}),
            ("hybrid_out_proj_only", base | {"target_modules": ["out_proj"]}),
        ]
        conv_path = st.first_of_kind("Conv1d")  # the depthwise short convolution (groups = channels)
        conv = ".".join(conv_path.split(".")[-2:]) if mt == "lfm2" else conv_path.rsplit(".", 1)[-1]
        out.append(("hybrid_conv_target", base | {"target_modules": [conv]}))
        out.append(("hybrid_conv_full_name", base | {"target_modules": [conv_path]}))
        out.append(("hybrid_container_name", base | {"target_modules": ["conv" if mt == "lfm2" else "linear_attn"]}))
        # PEFT's LoRA Conv1d needs r % groups == 0: a depthwise convolution takes r = a multiple of its channels
        groups = st.groups[conv_path]
        out.append(("hybrid_conv_rank_groups", {**T, "r": groups, "lora_alpha": groups, "target_modules": [conv]}))
    # ---- MLA -------------------------------------------------------------------------------------------------------
    if mt in ("deepseek_v2", "deepseek_v3"):
        out += [
            ("mla_kv_b_only", base | {"target_modules": ["kv_b_proj"]}),
            ("mla_compressions", base | {"target_modules": [x for x in attn if x.endswith("a_proj") or "_a_" in x]}),
            (
                "mla_rank_pattern",
                base | {"target_modules": attn, "rank_pattern": {"kv_a_proj_with_mqa": 4, "o_proj": 16}},
            ),
        ]
    # ---- MoE -------------------------------------------------------------------------------------------------------
    moe = MOE.get(mt)
    if moe and st.has(moe["experts"].rsplit(".", 1)[-1]):
        experts = moe["experts"]
        leaf = experts.rsplit(".", 1)[-1]
        router = moe["router"]
        out += [
            ("moe_v4_names_qv_gate_up_down", base | {"target_modules": qv + list(GATE_UP_DOWN)}),
            ("moe_v4_gate_proj_only", base | {"target_modules": ["gate_proj"]}),
            ("moe_v4_down_proj_only", base | {"target_modules": ["down_proj"]}),
            ("moe_router_name", base | {"target_modules": [router]}),
            ("moe_experts_module", base | {"target_modules": [leaf]}),
            (
                "moe_tp_experts",
                base | {"target_modules": [], "target_parameters": [f"{leaf}.gate_up_proj", f"{leaf}.down_proj"]},
            ),
            (
                "moe_tp_experts_r16_full_suffix",
                {
                    **T,
                    "r": 16,
                    "lora_alpha": 32,
                    "target_modules": [],
                    "target_parameters": [f"{experts}.gate_up_proj", f"{experts}.down_proj"],
                },
            ),
            ("moe_tp_down_plus_qv", base | {"target_modules": qv, "target_parameters": [f"{experts}.down_proj"]}),
            ("moe_tp_gate_up_only_default_modules", base | {"target_parameters": ["gate_up_proj"]}),
            ("moe_tp_router_weight", base | {"target_modules": [], "target_parameters": [f"{router}.weight"]}),
            (
                "moe_tp_rank_pattern",
                base
                | {
                    "target_modules": [],
                    "target_parameters": [f"{leaf}.gate_up_proj", f"{leaf}.down_proj"],
                    "rank_pattern": {"gate_up_proj": 4, st.rel(st.first(leaf)) + ".down_proj": 2},
                },
            ),
            (
                "moe_tp_layers_to_transform",
                base
                | {
                    "target_modules": ["q_proj"] if st.has("q_proj") else qv,
                    "target_parameters": [f"{leaf}.down_proj"],
                    "layers_to_transform": [0],
                },
            ),
            (
                "moe_tp_exclude_modules",
                base | {"target_modules": qv, "target_parameters": [f"{leaf}.down_proj"], "exclude_modules": [leaf]},
            ),
            ("moe_regex_layer0_q", base | {"target_modules": rf"{re.escape(st.first(qv[0]) or '')}"}),
            ("moe_regex_experts_v4", base | {"target_modules": rf".*\.{leaf}\.(gate_proj|up_proj|down_proj)"}),
            (
                "moe_tp_with_dropout",
                base | {"lora_dropout": 0.05, "target_modules": [], "target_parameters": [f"{leaf}.down_proj"]},
            ),
            (
                "moe_tp_dora",
                base | {"use_dora": True, "target_modules": [], "target_parameters": [f"{leaf}.down_proj"]},
            ),
            (
                "moe_tp_lora_bias",
                base | {"lora_bias": True, "target_modules": [], "target_parameters": [f"{leaf}.down_proj"]},
            ),
        ]
        if moe["shared"]:
            shared = moe["shared"]
            out += [
                ("moe_shared_expert_names", base | {"target_modules": [f"{shared}.{x}" for x in GATE_UP_DOWN]}),
                (
                    "moe_all_linear_exclude_shared",
                    base | {"target_modules": "all-linear", "exclude_modules": rf".*\.{shared}\..*"},
                ),
            ]
        if moe.get("biases"):
            out += [
                (
                    "moe_tp_expert_biases",
                    base
                    | {
                        "target_modules": [],
                        "target_parameters": [f"{leaf}.gate_up_proj_bias", f"{leaf}.down_proj_bias"],
                    },
                ),
                ("moe_tp_router_bias", base | {"target_modules": [], "target_parameters": [f"{router}.bias"]}),
                ("moe_attention_sinks_mts", base | {"target_modules": qv, "modules_to_save": ["self_attn"]}),
                (
                    "moe_attention_sinks_mts_experts",
                    base
                    | {
                        "target_modules": [],
                        "target_parameters": [f"{leaf}.down_proj"],
                        "modules_to_save": ["self_attn"],
                    },
                ),
            ]
    # ---- multimodal: the vision tower and projector ----------------------------------------------------------------
    vision = VISION_NAMES.get(mt)
    if vision and any(re.search(r"vision|visual", p) for p in st.paths):
        proj = PROJECTOR[mt]
        out += [
            ("vision_names", base | {"target_modules": vision}),
            ("vision_names_and_qv", base | {"target_modules": vision + qv}),
            ("text_only_regex_qv", base | {"target_modules": rf".*language_model.*\.{_re(qv)}"}),
            ("vision_only_regex", base | {"target_modules": r".*(vision|visual).*\.(q_proj|v_proj|qkv|linear)"}),
            (
                "qv_layers_pattern_both_towers",
                base | {"target_modules": qv, "layers_to_transform": [0], "layers_pattern": ["layers", "blocks"]},
            ),
            ("qv_layers_1_no_pattern", base | {"target_modules": qv, "layers_to_transform": [1]}),
            ("qv_mts_projector", base | {"target_modules": qv, "modules_to_save": [proj]}),
            ("all_linear_bias_all", base | {"target_modules": "all-linear", "bias": "all"}),
            (
                "all_linear_exclude_vision",
                base
                | {
                    "target_modules": "all-linear",
                    "exclude_modules": r".*(vision|visual|audio|embed_vision|embed_audio|multi_modal_projector).*",
                },
            ),
        ]
        # the language model alone through a regex (what PEFT's own gemma4 default does): the text grid for the
        # families whose vision tower shares module names (gemma4's are not nn.Linear: a name list fails there)
        lm = r".*language_model.*\."
        mlp_names = [m for m in n["mlp"] if st.has(m)]
        out += [
            ("lm_regex_attn_r32", {**T, "r": 32, "lora_alpha": 64, "target_modules": lm + _re(attn)}),
            ("lm_regex_mlp", base | {"target_modules": lm + _re(mlp_names)}),
            ("lm_regex_all_r16", {**T, "r": 16, "lora_alpha": 32, "target_modules": lm + _re(attn + mlp_names)}),
            ("lm_regex_qv_dora", base | {"target_modules": lm + _re(qv), "use_dora": True}),
            ("lm_regex_qv_bias_all", base | {"target_modules": lm + _re(qv), "bias": "all"}),
            ("lm_regex_attn_bias_lora_only", base | {"target_modules": lm + _re(attn), "bias": "lora_only"}),
            ("lm_regex_qv_lora_bias", base | {"target_modules": lm + _re(qv), "lora_bias": True}),
            (
                "lm_regex_qv_mts_head_embed_tying",
                base
                | {
                    "target_modules": lm + _re(qv),
                    "modules_to_save": ["embed_tokens", "lm_head"],
                    "ensure_weight_tying": True,
                },
            ),
            ("lm_regex_qv_mts_embed", base | {"target_modules": lm + _re(qv), "modules_to_save": ["embed_tokens"]}),
            (
                "lm_regex_qv_trainable_tokens_tying",
                base
                | {"target_modules": lm + _re(qv), "trainable_token_indices": [0, 1, 5], "ensure_weight_tying": True},
            ),
            (
                "lm_regex_embed_head_q",
                base | {"target_modules": rf".*(embed_tokens|lm_head|language_model.*\.{re.escape(qv[0])})"},
            ),
            (
                "lm_regex_rank_alpha_pattern",
                base
                | {
                    "target_modules": lm + _re(attn + mlp_names),
                    "rank_pattern": {qv[0]: 4, r"layers\.1\..*": 2},
                    "alpha_pattern": {qv[0]: 8},
                },
            ),
        ]
    # ---- family specifics ---------------------------------------------------------------------------------------------
    if mt == "falcon":
        out.append(
            (
                "falcon_layers_pattern_h",
                base | {"target_modules": qv, "layers_to_transform": [1], "layers_pattern": "h"},
            )
        )
        out.append(
            (
                "falcon_mts_word_embeddings_tying",
                base | {"target_modules": qv, "modules_to_save": ["word_embeddings"], "ensure_weight_tying": True},
            )
        )
    if mt == "phi":
        out.append(("phi_head_bias_mts", base | {"target_modules": qv, "modules_to_save": ["lm_head"], "bias": "all"}))
    if mt == "gemma4":
        out.append(
            (
                "gemma4_vision_q_proj_full_name",
                base | {"target_modules": [p for p in st.paths if re.search(r"vision.*q_proj$", p)][:1]},
            )
        )
        out.append(
            (
                "gemma4_per_layer_names",
                base
                | {"target_modules": ["per_layer_input_gate", "per_layer_projection", "per_layer_model_projection"]},
            )
        )
    return out


# ----------------------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------------------
def run(config: dict, auto_class: str, lora_kwargs: dict, low_cpu_mem_usage: bool = False) -> dict:
    holder: dict = {}

    def build(cfg):
        holder["model"], _ = build_meta(cfg, auto_class)
        return holder["model"]

    out = peft_golden.run_case(config, lora_kwargs, build=build, low_cpu_mem_usage=low_cpu_mem_usage)
    if "error" not in out:
        model = holder["model"]  # PEFT injected into this module tree in place
        by_component: dict[str, int] = {}
        for name, p in model.named_parameters():
            if p.requires_grad:
                key = component_of(name)
                by_component[key] = by_component.get(key, 0) + p.numel()
        out["by_component"] = dict(sorted(by_component.items()))
        cfg = getattr(model, "peft_config", {}).get("default")
        if cfg is not None and getattr(cfg, "trainable_token_indices", None) is not None:
            out["effective"]["trainable_token_indices"] = peft_golden._jsonable(cfg.trainable_token_indices)
    return out


def main(argv: list[str]) -> int:
    fixed_hash_seed(__file__, argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", action="append", help="only these config names (regex, full match; repeatable)")
    parser.add_argument("--stdout", action="store_true", help="print the cases instead of writing the file")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--low-cpu-mem",
        choices=("catalog", "all", "none"),
        default="catalog",
        help="PEFT's low_cpu_mem_usage (adapter weights on the meta device) for these sources, except in cases with "
        "ensure_weight_tying; the counts are the same (checked on every small config, see README), only the time "
        "differs (the real-size MoE configs would allocate and initialise billions of expert-LoRA weights per case)",
    )
    args = parser.parse_args(argv)

    import transformers

    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    sources = all_sources()
    # ImageTextToText variants of the text-only CausalLM types: small configs only (the real-size count is in
    # inventories.json; the grid on the small tower shows every PEFT rule that reaches a vision tower)
    sources = {k: v for k, v in sources.items() if not (k.endswith(VISION_SUFFIX) and v["source"] != "small")}
    order = list(sources)
    if args.arch:
        sources = {k: v for k, v in sources.items() if any(re.fullmatch(a, k) for a in args.arch)}
        if not sources:
            parser.error("no config matches --arch")
    doc = peft_golden.new_doc("validation/peft_golden_2026.py")
    t_start = time.time()
    for slug, src in sources.items():
        t0 = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, auto_class = build_meta(src["config"], src["auto_class"])
            base = sum(p.numel() for p in model.parameters())
            model_class = type(model).__name__
            del model
        low_mem = args.low_cpu_mem == "all" or (args.low_cpu_mem == "catalog" and src["source"] == "catalog")
        doc["architectures"][slug] = {
            "config": src["config"],
            "base_params": int(base),
            "source": src["source"],
            "config_file": src["config_file"],
            "auto_class": auto_class,
            "model_class": model_class,
            "low_cpu_mem_usage": low_mem,
        }
        cases = grid(src["config"], auto_class)
        ids = [c for c, _ in cases]
        assert len(ids) == len(set(ids)), f"duplicate case ids for {slug}"
        n_err = 0
        for case_id, kwargs in cases:
            # low_cpu_mem_usage changes one thing PEFT counts: with it, ensure_weight_tying no longer ties a
            # modules_to_save copy of a tied head / embedding (counted twice); those cases always run without it
            low = low_mem and not kwargs.get("ensure_weight_tying")
            result = run(src["config"], auto_class, kwargs, low_cpu_mem_usage=low)
            n_err += "error" in result
            case = {"arch": slug, "id": case_id, "lora": kwargs, **result}
            doc["cases"].append(case)
            if args.stdout:
                print(json.dumps(case))
        print(
            f"{slug}: base {base:,d}, {len(cases)} cases ({n_err} errors) in {time.time() - t0:.1f}s",
            file=sys.stderr,
            flush=True,
        )
    if not args.stdout:
        if args.arch and args.out.exists():
            # a partial run replaces those configs in the existing file; the others are kept, in source order
            old = json.loads(args.out.read_text())
            archs = old["architectures"] | doc["architectures"]
            cases = [c for c in old["cases"] if c["arch"] not in doc["architectures"]] + doc["cases"]
            doc["architectures"] = {k: archs[k] for k in order if k in archs}
            doc["cases"] = [c for k in doc["architectures"] for c in cases if c["arch"] == k]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(peft_golden.dump(doc))
        print(
            f"wrote {args.out} ({args.out.stat().st_size:,d} bytes, {len(doc['cases'])} cases) "
            f"in {time.time() - t_start:.0f}s",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
