"""Measured reference data for lorasite's memory estimator (LoRA / QLoRA training memory).

Run:  validation/.venv/bin/python validation/measure_memory.py [--quick] [--family llama ...] [--detail]
      ... --extended            only the extended grid (DoRA, Mixtral MoE, Qwen3, Gemma v1), merged into the JSON
      ... --listing-extended    rewrite the extended listing (Appendix B of ACTIVATIONS.md)
Writes tests/core/golden/memory_measured.json; --listing (or --detail) rewrites the appendix of
validation/ACTIVATIONS.md: the saved tensors of one full layer, the rest and the head for representative cases;
--recheck re-evaluates measure_formula.py against the stored measurements without measuring again.

Small models of several families are built with transformers from the configs in validation/configs/small/
(random weights, CPU), LoRA is applied with PEFT, one forward + backward + one optimizer step is run, and
  * trainable parameter, gradient and optimizer-state bytes are measured exactly (several optimizers);
  * the bytes the forward keeps for the backward are measured twice (see measure_tracking.py): by
    saved_tensors_hooks (what autograd packs) and by storage liveness after the forward (what is really kept,
    including checkpoint closures); each storage once, parameters/buffers excluded;
  * with gradient checkpointing, the bytes one layer's recomputation keeps during the backward.
The closed-form formulas of measure_formula.py are evaluated for every case and compared with the measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import peft  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import measure_formula as formula  # noqa: E402
from measure_tracking import (  # noqa: E402
    ModuleContext,
    SavedTensorRecorder,
    StorageTracker,
    autograd_graph_saved,
    storage_of,
)

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "validation" / "configs" / "small"
OUT_JSON = ROOT / "tests" / "core" / "golden" / "memory_measured.json"
ACTIVATIONS_MD = ROOT / "validation" / "ACTIVATIONS.md"

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
DESCRIPTION = (
    "Measured reference data for the memory estimator, produced by validation/measure_memory.py "
    "(see validation/ACTIVATIONS.md). Small random-weight models on the CPU; LoRA via PEFT. "
    "saved.total_cpu = bytes kept for backward by one forward of batch x seq tokens (labels = input_ids), "
    "each storage once, parameters/buffers and the loss value excluded; activations_gpu_adjusted replaces "
    "the CPU dropout masks (input dtype) by CUDA's 1-byte bool masks. formula.* = measure_formula.py. "
    "Cases with formula.scope = 'extended' (DoRA, Mixtral MoE incl. LoRA on expert parameters, Qwen3, Gemma v1) "
    "are checked against the extended closed form but have formula.applicable = false: they are outside the "
    "product's tested feature set."
)
TORCH_THREADS = 2

# ----------------------------------------------------------------------------------------------------------------
# Families: small configs (saved to validation/configs/small/<family>.json) and their module naming
# ----------------------------------------------------------------------------------------------------------------
FAMILIES = {
    "llama": {
        "config": {
            "model_type": "llama",
            "vocab_size": 8192,
            "hidden_size": 256,
            "intermediate_size": 688,
            "num_hidden_layers": 3,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "max_position_embeddings": 1024,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
            "attention_bias": False,
            "mlp_bias": False,
            "attention_dropout": 0.0,
            "hidden_act": "silu",
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": None,
        },
        "qv": ["q_proj", "v_proj"],
        "attn_kernels": ["eager", "sdpa"],
    },
    "qwen2": {
        "config": {
            "model_type": "qwen2",
            "vocab_size": 12000,
            "hidden_size": 256,
            "intermediate_size": 704,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "max_position_embeddings": 1024,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True,
            "attention_dropout": 0.0,
            "hidden_act": "silu",
            "use_sliding_window": False,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": None,
        },
        "qv": ["q_proj", "v_proj"],
        "attn_kernels": ["eager", "sdpa"],
    },
    "gemma2": {
        # head_dim 96 != hidden/heads (64); GQA 4/2; tied embeddings; 4 norms per layer; soft-capping.
        "config": {
            "model_type": "gemma2",
            "vocab_size": 16384,
            "hidden_size": 256,
            "intermediate_size": 1024,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 96,
            "query_pre_attn_scalar": 96,
            "max_position_embeddings": 1024,
            "sliding_window": 128,
            "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True,
            "attention_dropout": 0.0,
            "hidden_activation": "gelu_pytorch_tanh",
            "bos_token_id": 2,
            "eos_token_id": 1,
            "pad_token_id": 0,
        },
        "qv": ["q_proj", "v_proj"],
        # transformers: Gemma2PreTrainedModel._supports_sdpa = False (sdpa has no soft-capping)
        "attn_kernels": ["eager"],
    },
    "gpt2": {
        "config": {
            "model_type": "gpt2",
            "vocab_size": 8192,
            "n_embd": 256,
            "n_layer": 2,
            "n_head": 4,
            "n_positions": 1024,
            "n_inner": None,
            "activation_function": "gelu_new",
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "attn_pdrop": 0.0,
            "layer_norm_epsilon": 1e-5,
            "tie_word_embeddings": True,
            "bos_token_id": 0,
            "eos_token_id": 0,
        },
        "qv": ["c_attn"],
        "attn_kernels": ["eager", "sdpa"],
        "dropout_keys": ["resid_pdrop", "embd_pdrop", "attn_pdrop"],
    },
    "phi3": {
        "config": {
            "model_type": "phi3",
            "vocab_size": 6144,
            "hidden_size": 256,
            "intermediate_size": 640,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "max_position_embeddings": 1024,
            "original_max_position_embeddings": 1024,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
            "attention_dropout": 0.0,
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "hidden_act": "silu",
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
        },
        "qv": ["qkv_proj"],
        "attn_kernels": ["eager", "sdpa"],
        "dropout_keys": ["resid_pdrop", "embd_pdrop", "attention_dropout"],
    },
    # ---- extended families (grid_extended(): DoRA on llama, the MoE block, q/k norms, Gemma v1) ----------------
    "mixtral": {
        # transformers 5 MoE: router = MixtralTopKRouter (a (E, h) weight Parameter), experts = MixtralExperts with
        # fused 3-D Parameters gate_up_proj (E, 2i, h) and down_proj (E, h, i); GQA 8/2
        "config": {
            "model_type": "mixtral",
            "vocab_size": 8192,
            "hidden_size": 256,
            "intermediate_size": 512,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "max_position_embeddings": 1024,
            "rms_norm_eps": 1e-5,
            "sliding_window": None,
            "router_jitter_noise": 0.0,
            "output_router_logits": False,
            "tie_word_embeddings": False,
            "attention_dropout": 0.0,
            "hidden_act": "silu",
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": None,
        },
        "qv": ["q_proj", "v_proj"],
        "attn_kernels": ["eager", "sdpa"],
        "extended": True,
    },
    "qwen3": {
        # q_norm / k_norm (RMSNorm over head_dim) before rotary; explicit head_dim 96 != 256/4; GQA 4/2; tied
        "config": {
            "model_type": "qwen3",
            "vocab_size": 12000,
            "hidden_size": 256,
            "intermediate_size": 704,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 96,
            "max_position_embeddings": 1024,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True,
            "attention_bias": False,
            "attention_dropout": 0.0,
            "hidden_act": "silu",
            "use_sliding_window": False,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": None,
        },
        "qv": ["q_proj", "v_proj"],
        "attn_kernels": ["eager", "sdpa"],
        "extended": True,
    },
    "gemma": {
        # Gemma v1: RMSNorm (1 + weight), GELU-tanh MLP, explicit head_dim 96 != 256/4, MQA 4/1 (as Gemma-2B),
        # tied, embedding scaled by sqrt(hidden)
        "config": {
            "model_type": "gemma",
            "vocab_size": 16384,
            "hidden_size": 256,
            "intermediate_size": 1024,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "head_dim": 96,
            "max_position_embeddings": 1024,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True,
            "attention_bias": False,
            "attention_dropout": 0.0,
            "hidden_activation": "gelu_pytorch_tanh",
            "bos_token_id": 2,
            "eos_token_id": 1,
            "pad_token_id": 0,
        },
        "qv": ["q_proj", "v_proj"],
        "attn_kernels": ["eager", "sdpa"],
        "extended": True,
    },
}
LEGACY_FAMILIES = [f for f in FAMILIES if not FAMILIES[f].get("extended")]
EXTENDED_FAMILIES = ["llama"] + [f for f in FAMILIES if FAMILIES[f].get("extended")]  # llama: the DoRA cases


def make_config(family: str, model_dropout: float = 0.0):
    kw = dict(FAMILIES[family]["config"])
    model_type = kw.pop("model_type")
    for k in FAMILIES[family].get("dropout_keys", []):
        kw[k] = model_dropout
    return AutoConfig.for_model(model_type, **kw)


def save_configs():
    CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    for fam in FAMILIES:
        cfg = make_config(fam)
        d = cfg.to_dict()
        d.pop("transformers_version", None)
        d.pop("dtype", None)
        d.pop("torch_dtype", None)
        (CONFIG_DIR / f"{fam}.json").write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")


def dims_of(cfg) -> dict:
    """The dimensions the formulas need, read from the config the model was built with."""
    if cfg.model_type == "gpt2":
        h = cfg.n_embd
        return {
            "model_type": "gpt2",
            "hidden": h,
            "intermediate": cfg.n_inner or 4 * h,
            "layers": cfg.n_layer,
            "heads": cfg.n_head,
            "kv_heads": cfg.n_head,
            "head_dim": h // cfg.n_head,
            "vocab": cfg.vocab_size,
            "tied": bool(cfg.tie_word_embeddings),
        }
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    dims = {
        "model_type": cfg.model_type,
        "hidden": cfg.hidden_size,
        "intermediate": cfg.intermediate_size,
        "layers": cfg.num_hidden_layers,
        "heads": cfg.num_attention_heads,
        "kv_heads": cfg.num_key_value_heads,
        "head_dim": hd,
        "vocab": cfg.vocab_size,
        "tied": bool(cfg.tie_word_embeddings),
    }
    if getattr(cfg, "num_local_experts", None):
        dims |= {"experts": cfg.num_local_experts, "top_k": cfg.num_experts_per_tok}
    return dims


def layer_prefix_of(family: str) -> tuple[str, str]:
    if family == "gpt2":
        return "base_model.model.transformer.h.", "base_model.model"
    return "base_model.model.model.layers.", "base_model.model"


def decoder_layers(pm, family):
    base = pm.base_model.model
    return list(base.transformer.h) if family == "gpt2" else list(base.model.layers)


# ----------------------------------------------------------------------------------------------------------------
# Optimizers
# ----------------------------------------------------------------------------------------------------------------
def optimizer_factories():
    from transformers.optimization import Adafactor

    facs = {
        "adamw_torch": lambda ps: torch.optim.AdamW(ps, lr=1e-4),
        # HF Trainer's default optim since torch 2.8: "adamw_torch_fused" (step tensors live on the param device)
        "adamw_torch_fused": lambda ps: torch.optim.AdamW(ps, lr=1e-4, fused=True),
        "sgd": lambda ps: torch.optim.SGD(ps, lr=1e-3),
        "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9),
        # HF Trainer optim="adafactor": Adafactor(scale_parameter=False, relative_step=False, warmup_init=False,
        # lr=...)
        "adafactor": lambda ps: Adafactor(ps, lr=1e-3, scale_parameter=False, relative_step=False, warmup_init=False),
    }
    unavailable = {}
    try:
        import bitsandbytes as bnb

        facs["adamw_8bit_bnb"] = lambda ps: bnb.optim.AdamW8bit(ps, lr=1e-4)
        facs["paged_adamw_8bit_bnb"] = lambda ps: bnb.optim.PagedAdamW8bit(ps, lr=1e-4)
        facs["lion_32bit_bnb"] = lambda ps: bnb.optim.Lion(ps, lr=1e-4)
        facs["lion_8bit_bnb"] = lambda ps: bnb.optim.Lion8bit(ps, lr=1e-4)
    except Exception as e:  # pragma: no cover
        unavailable["bitsandbytes"] = repr(e)
    try:
        from lion_pytorch import Lion

        facs["lion_pytorch"] = lambda ps: Lion(ps, lr=1e-4)
    except Exception as e:  # pragma: no cover
        unavailable["lion_pytorch"] = repr(e)
    return facs, unavailable


def measure_optimizers(params: list[torch.nn.Parameter]) -> dict:
    facs, unavailable = optimizer_factories()
    out = {}
    for name, fac in facs.items():
        # a trainable parameter the step did not reach (a vision-tower LoRA under a text batch) has no grad
        saved_grads = [p.grad.detach().clone() if p.grad is not None else None for p in params]
        backup = [p.detach().clone() for p in params]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                opt = fac(params)
                opt.step()
        except Exception as e:  # record what could not run
            out[name] = {"error": repr(e)[:300]}
            continue
        seen = set()
        state_bytes = 0
        step_bytes = 0
        step_kind = set()
        per_key = {}
        shared_bytes = 0
        ptr_count: dict[int, int] = {}
        for p in params:
            for k, v in opt.state.get(p, {}).items():
                if torch.is_tensor(v):
                    ptr_count[storage_of(v)[0]] = ptr_count.get(storage_of(v)[0], 0) + 1
        small_fp32_params = 0
        for p in params:
            st = opt.state.get(p, {})
            if "state1" in st and st["state1"].dtype == torch.float32 and "qmap1" not in st:
                small_fp32_params += 1
            for k, v in st.items():
                if k == "step":
                    if torch.is_tensor(v):
                        step_bytes += v.untyped_storage().nbytes()
                        step_kind.add(f"tensor {str(v.dtype).replace('torch.', '')} {tuple(v.shape)} on {v.device}")
                    else:
                        step_kind.add(f"python {type(v).__name__}")
                    continue
                if not torch.is_tensor(v):
                    per_key.setdefault(k, f"python {type(v).__name__}")
                    continue
                ptr, nb = storage_of(v)
                if ptr in seen:
                    continue
                seen.add(ptr)
                state_bytes += nb
                info = per_key.setdefault(k, {"bytes": 0, "dtypes": set()})
                info["bytes"] += nb
                info["dtypes"].add(str(v.dtype).replace("torch.", ""))
                if ptr_count.get(ptr, 0) > 1:
                    shared_bytes += nb
        for k, v in per_key.items():
            if isinstance(v, dict):
                v["dtypes"] = sorted(v["dtypes"])
        out[name] = {
            "state_bytes": state_bytes,
            "step_bytes": step_bytes,
            "step_kind": sorted(step_kind),
            "per_key": per_key,
            "shared_between_params_bytes": shared_bytes,
            "params_with_fp32_state_below_min_8bit_size": small_fp32_params if name.endswith("8bit_bnb") else None,
        }
        del opt
        with torch.no_grad():
            for p, g, b in zip(params, saved_grads, backup, strict=False):
                p.grad = g
                p.copy_(b)
    out["_unavailable"] = unavailable
    return out


# ----------------------------------------------------------------------------------------------------------------
# One case
# ----------------------------------------------------------------------------------------------------------------
_CHECKPOINTS: dict[str, str] = {}


def random_checkpoint(fam: str) -> str:
    """A random-weight bf16 checkpoint of the small config (quantized bases are loaded from it)."""
    if fam not in _CHECKPOINTS:
        import tempfile

        torch.manual_seed(0)
        m = AutoModelForCausalLM.from_config(make_config(fam), dtype=torch.bfloat16)
        path = tempfile.mkdtemp(prefix=f"lorasite-{fam}-")
        m.save_pretrained(path)
        _CHECKPOINTS[fam] = path
    return _CHECKPOINTS[fam]


def bnb_config(quant: str):
    """The quantized bases measured: nf4 with double quantization and bf16 compute (the QLoRA recipe), or LLM.int8."""
    from transformers import BitsAndBytesConfig

    if quant == "nf4":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    return BitsAndBytesConfig(load_in_8bit=True)


def build(case):
    fam = case["family"]
    cfg = make_config(fam, case.get("model_dropout", 0.0))
    torch.manual_seed(0)
    if case.get("quant"):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        qc = bnb_config(case["quant"])
        model = AutoModelForCausalLM.from_pretrained(
            random_checkpoint(fam),
            quantization_config=qc,
            dtype=torch.bfloat16,
            device_map="cpu",
            attn_implementation=case["attn"],
        )
        if case.get("kbit_prep"):
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        extra = {}
        if case.get("experts_impl"):
            extra["experts_implementation"] = case["experts_impl"].replace("grouped_mm_fallback", "grouped_mm")
        model = AutoModelForCausalLM.from_config(
            cfg, dtype=DTYPES[case["dtype"]], attn_implementation=case["attn"], **extra
        )
    if case["gc"]:
        model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": bool(case.get("reentrant", False))}
        )
    targets = {"qv": FAMILIES[fam]["qv"], "all": "all-linear", "experts": None}[case["targets"]]
    lora_kwargs = {
        "r": case["r"],
        "lora_alpha": 2 * case["r"],
        "lora_dropout": case["lora_dropout"],
        "target_modules": targets,
        "bias": "none",
        "task_type": "CAUSAL_LM",
    }
    if case["targets"] == "experts":
        # LoRA on the fused expert Parameters only (PEFT's ParamWrapper), no target_modules
        lora_kwargs["target_parameters"] = ["experts.gate_up_proj", "experts.down_proj"]
    if case.get("dora"):
        lora_kwargs["use_dora"] = True
    pm = get_peft_model(model, LoraConfig(**lora_kwargs))
    if case["gc"] or case.get("input_grads"):
        pm.enable_input_require_grads()
    pm.train()
    return cfg, pm, lora_kwargs


def effective_peft_config(pm) -> dict:
    """What PEFT made of the LoraConfig (all-linear resolved; on MoE models target_parameters and rank_pattern)."""
    pc = pm.peft_config["default"]

    def norm(v):
        if isinstance(v, (set, frozenset, list, tuple)):
            return sorted(v)
        return v

    return {
        "target_modules": norm(pc.target_modules),
        "target_parameters": norm(getattr(pc, "target_parameters", None)),
        "rank_pattern": dict(pc.rank_pattern or {}),
        "alpha_pattern": dict(pc.alpha_pattern or {}),
        "use_dora": bool(pc.use_dora),
    }


def adapter_shapes(pm) -> list:
    """(module[.parameter], shape) of every trainable tensor; ParamWrapper adapters are named by their parameter."""
    out = set()
    for name, mod in pm.named_modules():
        if not isinstance(getattr(mod, "lora_A", None), torch.nn.ModuleDict):
            continue
        label = name.split(".")
        label = [x for x in label if x != "base_layer"]
        pname = getattr(mod, "parameter_name", None)
        label = f"{label[-1]}.{pname}" if pname else label[-1]
        for sub in ("lora_A", "lora_B", "lora_magnitude_vector"):
            d = getattr(mod, sub, None)
            if d is None or "default" not in d:
                continue
            for p in d["default"].parameters(recurse=True):
                if p.requires_grad:
                    out.add((f"{label}.{sub}", tuple(p.shape), str(p.dtype).replace("torch.", "")))
    return sorted(out)


def classify_extra(rec_entries):
    return rec_entries


@contextlib.contextmanager
def grouped_mm_fallback(active: bool):
    """transformers' own grouped-mm fallback (a custom op looping over experts), what it runs when
    torch's grouped_mm cannot (CUDA compute capability < 8.0, torch.compile with non-bf16 weights)."""
    if not active:
        yield
        return
    from transformers.integrations import moe

    orig = moe._can_use_grouped_mm
    moe._can_use_grouped_mm = lambda *a, **k: False
    try:
        yield
    finally:
        moe._can_use_grouped_mm = orig


class Families2024:
    """How _run_case reaches the model of a case (the families above); measure_memory_2026.py passes its own."""

    build = staticmethod(lambda case: build(case))
    dims = staticmethod(lambda cfg: dims_of(cfg))
    layer_prefix = staticmethod(lambda fam: layer_prefix_of(fam))
    layers = staticmethod(lambda pm, fam: decoder_layers(pm, fam))

    @staticmethod
    def input_id_high(dims) -> int:
        return dims["vocab"]

    @staticmethod
    def routing_hooks(pm, fam, dims, routing) -> list:
        """Tokens routed to each expert, per layer (the saved bytes are checked for routing independence)."""
        handles = []
        for li, layer in enumerate(decoder_layers(pm, fam)):

            def rhook(mod, args, out, li=li):
                idx = out[2].reshape(-1)
                routing.setdefault(str(li), torch.bincount(idx, minlength=dims["experts"]).tolist())

            handles.append(layer.mlp.gate.register_forward_hook(rhook))
        return handles


def run_case(case, detail=False, optim_cache=None, families=Families2024):
    with grouped_mm_fallback(case.get("experts_impl") == "grouped_mm_fallback"):
        return _run_case(case, detail, optim_cache, families)


def _run_case(case, detail=False, optim_cache=None, families=Families2024):
    fam = case["family"]
    t0 = time.time()
    cfg, pm, lora_kwargs = families.build(case)
    dims = families.dims(cfg)
    effective = effective_peft_config(pm) if case.get("extended") else None
    experts_impl = getattr(pm.base_model.model.config, "_experts_implementation", None) if "experts" in dims else None
    if experts_impl == "grouped_mm" and case.get("experts_impl") == "grouped_mm_fallback":
        experts_impl = "grouped_mm_fallback"
    routing: dict[str, list[int]] = {}
    routing_handles = []
    if "experts" in dims and case.get("extended"):
        routing_handles = families.routing_hooks(pm, fam, dims, routing)
    b, s = case["batch"], case["seq"]
    layer_prefix, head_module = families.layer_prefix(fam)
    excluded = {storage_of(p)[0] for p in pm.parameters()} | {storage_of(x)[0] for x in pm.buffers()}
    trainable = [p for p in pm.parameters() if p.requires_grad]
    lora_dtypes = sorted({str(p.dtype).replace("torch.", "") for p in trainable})
    ctx = ModuleContext(pm, layer_prefix, head_module)
    tracker = StorageTracker(ctx, excluded)
    rec = SavedTensorRecorder(ctx, excluded, tracker)

    layers = families.layers(pm, fam)
    layer_inputs: dict[int, tuple[int, int]] = {}
    hook_handles = []

    def pre_hook(idx):
        def hook(mod, args, kwargs):
            hs = args[0] if args else kwargs.get("hidden_states")
            if torch.is_tensor(hs) and idx not in layer_inputs:
                layer_inputs[idx] = storage_of(hs)

        return hook

    for i, layer in enumerate(layers):
        hook_handles.append(layer.register_forward_pre_hook(pre_hook(i), with_kwargs=True))

    # --- recomputation probe (gradient checkpointing): wrap each layer's checkpoint function ---------------------
    recompute = {}
    phase = {"backward": False}
    bw_tracker = StorageTracker(ctx, excluded)
    if case["gc"]:
        for i, layer in enumerate(layers):
            orig = layer._gradient_checkpointing_func

            def make(orig, idx):
                def ckpt(fn, *args, **kwargs):
                    def wrapped(*a, **k):
                        if not phase["backward"]:
                            return fn(*a, **k)
                        bw_tracker.phase_tag = f"recompute:{idx}"
                        try:
                            res = fn(*a, **k)
                        finally:
                            bw_tracker.phase_tag = None
                        gc.collect()
                        out_ptr = storage_of(res)[0] if torch.is_tensor(res) else None
                        alive = [
                            e
                            for e in bw_tracker.entries.values()
                            if e.region == f"recompute:{idx}" and not e.ref.expired() and e.ptr != out_ptr
                        ]
                        recompute[idx] = {"bytes": sum(e.nbytes for e in alive), "count": len(alive)}
                        return res

                    return orig(wrapped, *args, **kwargs)

                return ckpt

            layer._gradient_checkpointing_func = make(orig, i)

    torch.manual_seed(case.get("input_seed", 1))
    input_ids = torch.randint(0, families.input_id_high(dims), (b, s))
    labels = input_ids.clone()
    excluded_inputs = {storage_of(input_ids)[0], storage_of(labels)[0]}
    # views of the inputs are not activations (packed ones are added). Parameters are excluded again after the
    # forward by their storages *then* (a parameter whose data is replaced must not hide a reused address).
    tracker.excluded = excluded_inputs
    rec.excluded = set()

    # early stop off (read when the checkpoint frame is created, i.e. in the forward) so that the recomputation
    # runs to the end of the layer and the probe sees its complete saved set; it does not change what is saved.
    es = torch.utils.checkpoint.set_checkpoint_early_stop(False) if case["gc"] else contextlib.nullcontext()
    with es, tracker, rec:
        out = pm(input_ids=input_ids, labels=labels, use_cache=case.get("use_cache", False))
    loss = out.loss
    saved_names = autograd_graph_saved(loss.grad_fn) if detail else {}
    del out
    gc.collect()
    loss_ptr = storage_of(loss)[0]
    excluded = {storage_of(p)[0] for p in pm.parameters()} | {storage_of(x)[0] for x in pm.buffers()}
    rec.excluded = excluded
    alive = tracker.alive(exclude_ptrs=[loss_ptr, *excluded])
    alive_ptrs = {e.ptr: e for e in alive}
    packed = rec.unique()
    freed_records = rec.freed()

    # --- backward (with recomputation probe) ----------------------------------------------------------------------
    phase["backward"] = True
    bw_tracker.preexisting = tracker
    bw_tracker.excluded = excluded | excluded_inputs
    with bw_tracker:
        loss.backward()
    phase["backward"] = False
    bw_tracker.reset()
    for h in hook_handles + routing_handles:
        h.remove()
    ctx.remove()

    del loss  # frees the graph (checkpoint frames, custom-Function ctx attributes)
    # storages still alive after the backward are module caches, not activations (e.g. bitsandbytes int8 keeps a
    # per-layer [out, 1] fp32 scale cached in its state); they are recorded apart and excluded
    gc.collect()
    persistent = [e for e in alive if not e.ref.expired()]
    persistent_ptrs = {e.ptr for e in persistent}
    alive = [e for e in alive if e.ptr not in persistent_ptrs]
    alive_ptrs = {e.ptr: e for e in alive}
    packed = {p: r for p, r in packed.items() if p not in persistent_ptrs}
    packed_inputs = {p: r for p, r in packed.items() if p in excluded_inputs}
    packed_total = sum(r.nbytes for r in packed.values())
    # packed during the forward but freed before it ended: a graph branch nothing downstream needed (DoRA builds
    # lora_B(lora_A(eye)) for the weight norm and uses it detached). Not kept for backward: not in `packed`.
    packed_freed = dict(enumerate(freed_records))

    # (A) packed split (first packing site)
    split_packed = {"layers": 0, "head": 0, "rest": 0}
    per_layer_packed: dict[str, int] = {}
    for p, r in packed.items():
        reg = r.region
        if reg.startswith("layer:"):
            split_packed["layers"] += r.nbytes
            per_layer_packed[reg[6:]] = per_layer_packed.get(reg[6:], 0) + r.nbytes
        elif reg == "head":
            split_packed["head"] += r.nbytes
        else:
            split_packed["rest"] += r.nbytes

    # (B) alive-after-forward; storages kept without being packed (checkpoint closures, ctx attributes)
    alive_total = sum(e.nbytes for e in alive) + sum(r.nbytes for r in packed_inputs.values())
    unpacked_alive = [e for e in alive if e.ptr not in packed]
    layer_input_ptrs = {v[0]: k for k, v in layer_inputs.items()}
    kept_unpacked = []
    for e in unpacked_alive:
        what = f"input of layer {layer_input_ptrs[e.ptr]}" if e.ptr in layer_input_ptrs else "other"
        kept_unpacked.append(
            {"what": what, "op": e.op, "module": e.module, "shape": list(e.shape), "dtype": e.dtype, "bytes": e.nbytes}
        )
    # deterministic order (the tracker's order follows storage addresses, which differ from run to run)
    kept_unpacked.sort(key=lambda x: (x["what"], x["module"], x["op"], x["shape"], x["bytes"]))
    packed_not_alive = [p for p in packed if p not in alive_ptrs and p not in excluded_inputs]
    # storages kept without being packed are attributed to the region that created them (e.g. bitsandbytes'
    # MatMul8bitLt keeps its input in ctx.tensors; the embedding leaf is kept by its AccumulateGrad node)
    for e in unpacked_alive:
        if e.region.startswith("layer:"):
            split_packed["layers"] += e.nbytes
            per_layer_packed[e.region[6:]] = per_layer_packed.get(e.region[6:], 0) + e.nbytes
        elif e.region == "head":
            split_packed["head"] += e.nbytes

    # CPU-vs-CUDA: dropout masks (CPU: the bernoulli_ noise tensor in the input dtype; CUDA native_dropout: bool)
    dropout_masks = [r for r in packed.values() if "bernoulli_" in r.creator]
    mask_cpu = sum(r.nbytes for r in dropout_masks)
    mask_cuda = sum(math.prod(r.shape) for r in dropout_masks)
    mask_dtypes = sorted({r.dtype for r in dropout_masks})
    lora_masks = [r for r in dropout_masks if "lora_dropout" in r.module]
    # CPU-vs-CUDA: LayerNorm mean/rstd are in the input dtype on CPU (bf16 here), float32 on CUDA
    ln_stats = [r for r in packed.values() if "native_layer_norm" in r.creator and r.shape and r.shape[-1] == 1]
    ln_cpu = sum(r.nbytes for r in ln_stats)
    ln_cuda = sum(math.prod(r.shape) * 4 for r in ln_stats)
    # sdpa kernel on CPU
    attn_ops = sorted(op for op in tracker.ops_seen if "scaled_dot_product" in op)
    sdpa_kernel = None
    if case["attn"] == "sdpa":
        sdpa_kernel = (
            "cpu_flash (_scaled_dot_product_flash_attention_for_cpu)"
            if any("flash_attention_for_cpu" in o for o in attn_ops)
            else "math (decomposed: matmul/softmax/dropout)"
        )
    sdpa_saved_lse = sorted(
        {
            (tuple(r.shape), r.dtype)
            for r in packed.values()
            if "scaled_dot_product" in r.creator and r.dtype == "float32" and len(r.shape) == 3
        }
    )

    # head and loss breakdown
    head_items = sorted([(r.seq, r.creator, r.shape, r.dtype, r.nbytes) for r in packed.values() if r.region == "head"])

    grads_bytes = 0
    seen = set()
    for p in trainable:
        if p.grad is not None:
            ptr, nb = storage_of(p.grad)
            if ptr not in seen:
                seen.add(ptr)
                grads_bytes += nb
    trainable_bytes = sum(p.numel() * p.element_size() for p in trainable)
    trainable_params = sum(p.numel() for p in trainable)

    okey = (fam, case["dtype"], case["targets"], case["r"]) + (
        (bool(case.get("dora")),) if case.get("extended") else ()
    )
    if optim_cache is not None and okey in optim_cache:
        optim = optim_cache[okey]
    else:
        optim = measure_optimizers(trainable)
        if optim_cache is not None:
            optim_cache[okey] = optim
    lora_shapes = sorted(
        {(n.split(".lora_")[0].rsplit(".", 1)[-1], tuple(p.shape)) for n, p in pm.named_parameters() if p.requires_grad}
    )
    if case.get("extended"):
        lora_shapes = adapter_shapes(pm)

    # ----- assemble --------------------------------------------------------------------------------------------------
    activations_cpu = alive_total  # every storage once, params excluded, loss value excluded
    # with checkpointing the layer inputs are packed by checkpoint's _NoopSaveInputs inside the layer region;
    # its kwargs (mask, cos/sin, position_ids) are held by the checkpoint frame unpacked -> "rest"
    layers_part = split_packed["layers"]
    head_part = split_packed["head"]
    rest_part = activations_cpu - layers_part - head_part
    # CPU-vs-CUDA: the CPU flash kernel allocates its output like the query; a query that is contiguous
    # [b, nh, s, hd] (Phi-3) makes attn_out.transpose(1, 2).contiguous() a copy, which an fp32 o_proj LoRA then
    # saves; CUDA flash / mem-efficient outputs are [b, s, nh, hd] already (no copy)
    sdpa_out_copy = 0
    if case["attn"] == "sdpa":
        sdpa_out_copy = sum(
            r.nbytes
            for r in packed.values()
            if r.creator.startswith("clone") and r.module.endswith("o_proj.lora_A.default")
        )
    gpu_adjust = -(mask_cpu - mask_cuda) + (ln_cuda - ln_cpu) - sdpa_out_copy
    result = {
        "id": case["id"],
        "family": fam,
        "config_file": f"validation/configs/small/{fam}.json",
        "dims": dims,
        "inputs": {k: case[k] for k in ("batch", "seq", "dtype", "attn", "targets", "r", "lora_dropout", "gc")}
        | {
            "model_dropout": case.get("model_dropout", 0.0),
            "input_grads": bool(case.get("input_grads") or case["gc"]),
            "quant": case.get("quant"),
            "kbit_prep": bool(case.get("kbit_prep")),
            "reentrant": bool(case.get("reentrant")),
        }
        | (
            {
                "use_dora": bool(case.get("dora")),
                "experts_implementation": experts_impl,
                "input_seed": case.get("input_seed", 1),
            }
            if case.get("extended")
            else {}
        ),
        "lora_kwargs": lora_kwargs,
        "lora_param_dtypes": lora_dtypes,
        "lora_shapes": [[n, list(sh), *rest] for n, sh, *rest in lora_shapes],
        "trainable_params": trainable_params,
        "trainable_bytes": trainable_bytes,
        "gradients_bytes": grads_bytes,
        "optimizers": optim,
        "saved": {
            "total_cpu": activations_cpu,
            "layers_cpu": layers_part,
            "head_loss_cpu": head_part,
            "rest_cpu": rest_part,
            "per_layer_cpu": {k: per_layer_packed[k] for k in sorted(per_layer_packed, key=int)},
            "packed_total": packed_total + 0,
            "packed_split": split_packed,
            "alive_after_forward_total": alive_total,
            "kept_without_packing": kept_unpacked,
            "packed_but_not_alive_count": len(packed_not_alive),
            "persistent_caches_bytes": sum(e.nbytes for e in persistent),
            "persistent_caches": sorted({(e.module.split(".")[-1], tuple(e.shape), e.dtype) for e in persistent}),
            "head_loss_items": [
                {"creator": c, "shape": list(sh), "dtype": dt, "bytes": nb} for _, c, sh, dt, nb in head_items
            ],
        },
        "cpu_vs_cuda": {
            "dropout_mask_bytes_cpu": mask_cpu,
            "dropout_mask_bytes_cuda": mask_cuda,
            "dropout_mask_dtypes_cpu": mask_dtypes,
            "lora_dropout_mask_count": len(lora_masks),
            "model_dropout_mask_count": len(dropout_masks) - len(lora_masks),
            "layernorm_stat_bytes_cpu": ln_cpu,
            "layernorm_stat_bytes_cuda": ln_cuda,
            "sdpa_output_copy_bytes_cpu": sdpa_out_copy,
            "sdpa_cpu_kernel": sdpa_kernel,
            "sdpa_saved_logsumexp": [[list(sh), dt] for sh, dt in sdpa_saved_lse],
            "adjustment_bytes": gpu_adjust,
        },
        "activations_gpu_adjusted": activations_cpu + gpu_adjust,
        "recompute_one_layer": recompute or None,
        "seconds": round(time.time() - t0, 2),
    }
    if case.get("extended"):
        result["peft_effective"] = effective
        result["saved"]["packed_but_freed_in_forward"] = sorted(
            {(r.module.split(".default")[0].rsplit(".", 1)[-1], tuple(r.shape), r.dtype) for r in packed_freed.values()}
        )
        if routing:
            result["routing"] = routing
    if case["gc"] and recompute:
        result["recompute_one_layer_max_bytes"] = max(v["bytes"] for v in recompute.values())
    if detail:
        result["_detail"] = detail_listing(rec, packed, saved_names, alive, layer_inputs, case, dims)
    del pm
    gc.collect()
    return result


def detail_listing(rec, packed, saved_names, alive, layer_inputs, case, dims):
    """Saved storages of layer 1 (a full layer: its input requires grad), the head/loss and the rest."""
    lines = []
    by_region: dict[str, list] = {}
    for _p, r in packed.items():
        by_region.setdefault(r.region, []).append(r)
    for reg in ("layer:1", "rest", "head"):
        rs = sorted(by_region.get(reg, []), key=lambda r: r.seq)
        lines.append(f"  [{reg}] {sum(r.nbytes for r in rs)} bytes in {len(rs)} storages")
        for r in rs:
            names = ",".join(sorted(set(saved_names.get(r.ptr, []))))
            mod = (
                r.module.replace("base_model.model.", "")
                .replace("model.layers.1.", "")
                .replace("transformer.h.1.", "")
                .replace(".default", "")
            )
            lines.append(f"    {r.nbytes:>9} {r.dtype:<8} {list(r.shape)!s:<17} {mod:<30} {names}")
    return lines


LISTING_BEGIN = "<!-- BEGIN generated by measure_memory.py --listing -->"
LISTING_END = "<!-- END generated -->"


LISTING_EXT_BEGIN = "<!-- BEGIN generated by measure_memory.py --listing-extended -->"


def write_listing(lines, begin=LISTING_BEGIN):
    doc = ACTIVATIONS_MD.read_text()
    block = begin + "\n```text\n" + "\n".join(lines) + "\n```\n" + LISTING_END
    if begin in doc:
        start = doc.index(begin)
        end = doc.index(LISTING_END, start) + len(LISTING_END)
        doc = doc[:start] + block + doc[end:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    ACTIVATIONS_MD.write_text(doc)


# ----------------------------------------------------------------------------------------------------------------
# Grid
# ----------------------------------------------------------------------------------------------------------------
BASE = {"batch": 2, "seq": 64, "dtype": "bf16", "targets": "qv", "r": 8, "lora_dropout": 0.0, "gc": False}


def grid(families, quick=False):
    cases = []

    def add(fam, **kw):
        c = dict(BASE)
        c["attn"] = "sdpa" if "sdpa" in FAMILIES[fam]["attn_kernels"] else "eager"
        c.update(kw)
        c["family"] = fam
        if c["attn"] not in FAMILIES[fam]["attn_kernels"]:
            return
        key = tuple(sorted((k, v) for k, v in c.items()))
        if key in {tuple(sorted((k, v) for k, v in x.items() if k != "id")) for x in cases}:
            return
        c["id"] = (
            f"{fam}-b{c['batch']}-s{c['seq']}-{c['dtype']}-{c['attn']}-{c['targets']}-r{c['r']}"
            f"-do{c['lora_dropout']}-{'gc' if c['gc'] else 'nogc'}"
            + ("-ig" if c.get("input_grads") else "")
            + (f"-md{c['model_dropout']}" if c.get("model_dropout") else "")
            + (f"-{c['quant']}" if c.get("quant") else "")
            + ("-kbitprep" if c.get("kbit_prep") else "")
            + ("-reentrant" if c.get("reentrant") else "")
        )
        cases.append(c)

    for fam in families:
        kernels = FAMILIES[fam]["attn_kernels"]
        add(fam)
        if quick:
            add(fam, attn="eager", targets="all", lora_dropout=0.1)
            add(fam, gc=True, dtype="fp32")
            if fam == "llama":
                add(fam, quant="nf4", kbit_prep=True, targets="all")
                add(fam, quant="int8", targets="all")
                add(fam, quant="int8", kbit_prep=True, targets="all", gc=True)
                add(fam, quant="int8", targets="all", gc=True, reentrant=True)
            continue
        # one factor at a time
        add(fam, batch=1)
        add(fam, seq=256)
        add(fam, dtype="fp32")
        add(fam, attn="eager")
        add(fam, targets="all")
        add(fam, r=64)
        add(fam, lora_dropout=0.1)
        add(fam, gc=True)
        add(fam, input_grads=True)
        # pairs
        for attn in kernels:
            add(fam, attn=attn, dtype="fp32")
            add(fam, attn=attn, targets="all", lora_dropout=0.1)
            add(fam, attn=attn, gc=True)
            add(fam, attn=attn, gc=True, targets="all")
            add(fam, attn=attn, seq=256, batch=1)
            add(fam, attn=attn, dtype="fp32", lora_dropout=0.1)
            add(fam, attn=attn, dtype="fp32", gc=True, lora_dropout=0.1)
        add(fam, targets="all", r=64)
        add(fam, targets="all", dtype="fp32")
        add(fam, r=64, lora_dropout=0.1)
        add(fam, gc=True, r=64, seq=256)
        # a handful of full combinations
        add(fam, batch=1, seq=256, dtype="fp32", attn=kernels[0], targets="all", r=64, lora_dropout=0.1, gc=False)
        add(fam, batch=2, seq=256, dtype="bf16", attn=kernels[-1], targets="all", r=64, lora_dropout=0.1, gc=True)
        add(fam, batch=1, seq=64, dtype="fp32", attn=kernels[-1], targets="qv", r=64, lora_dropout=0.0, gc=True)
        add(
            fam,
            batch=2,
            seq=256,
            dtype="bf16",
            attn=kernels[0],
            targets="all",
            r=8,
            lora_dropout=0.0,
            gc=False,
            input_grads=True,
        )
        if fam in ("llama", "qwen2"):
            # quantized base (bitsandbytes on the CPU): nf4 + double quant and LLM.int8, bf16 compute; with and
            # without peft.prepare_model_for_kbit_training (which casts every non-quantized parameter to fp32)
            for q in ("nf4", "int8"):
                add(fam, quant=q)
                add(fam, quant=q, kbit_prep=True)
                add(fam, quant=q, attn="eager", targets="all", lora_dropout=0.1)
                add(fam, quant=q, gc=True, targets="all")
                add(fam, quant=q, kbit_prep=True, gc=True, attn="eager")
                add(fam, quant=q, gc=True, targets="all", reentrant=True)
            add(fam, gc=True, targets="all", reentrant=True)
        if fam == "gpt2":
            # the model's own dropouts (GPT-2 ships 0.1 everywhere); attention dropout on -> CPU sdpa = math path
            add(fam, attn="eager", model_dropout=0.1)
            add(fam, attn="eager", model_dropout=0.1, dtype="fp32", targets="all", lora_dropout=0.1)
            if "sdpa" in kernels:
                add(fam, attn="sdpa", model_dropout=0.1)
    return cases


def case_id(c) -> str:
    return (
        f"{c['family']}-b{c['batch']}-s{c['seq']}-{c['dtype']}-{c['attn']}-{c['targets']}-r{c['r']}"
        f"-do{c['lora_dropout']}-{'gc' if c['gc'] else 'nogc'}"
        + ("-ig" if c.get("input_grads") else "")
        + ("-dora" if c.get("dora") else "")
        + (f"-xp_{c['experts_impl']}" if c.get("experts_impl") else "")
        + (f"-seed{c['input_seed']}" if c.get("input_seed") else "")
    )


def grid_extended(families, quick=False):
    """DoRA (llama), Mixtral MoE (+ LoRA on the expert parameters), Qwen3 (q/k norms), Gemma v1.

    Cases carry "extended": True: their JSON records add inputs.use_dora / experts_implementation / input_seed,
    peft_effective and (MoE) the per-layer routing, and their formula check is reported with scope "extended"."""
    cases, seen = [], set()

    def add(fam, **kw):
        if fam not in families:
            return
        c = dict(BASE) | {"attn": "sdpa"} | kw | {"family": fam, "extended": True}
        c["id"] = case_id(c)
        if c["id"] not in seen:
            seen.add(c["id"])
            cases.append(c)

    if quick:
        add("llama", dora=True, targets="all", lora_dropout=0.1)
        add("mixtral", targets="all")
        add("mixtral", targets="experts", gc=True)
        add("qwen3", attn="eager", targets="all")
        add("gemma", targets="all", gc=True)
        return cases
    # DoRA on the llama config: dtype x targets x lora_dropout x checkpointing, + eager, rank, input grads, b/s
    for dtype in ("bf16", "fp32"):
        for targets in ("qv", "all"):
            for do in (0.0, 0.1):
                for gcv in (False, True):
                    add("llama", dora=True, dtype=dtype, targets=targets, lora_dropout=do, gc=gcv)
    add("llama", dora=True, attn="eager", targets="all", lora_dropout=0.1)
    add("llama", dora=True, targets="all", r=64, lora_dropout=0.1)
    add("llama", dora=True, input_grads=True)
    add("llama", dora=True, batch=1, seq=256, targets="all", lora_dropout=0.1)
    # Mixtral: q+v / all-linear (+ expert and router parameters) / expert parameters only, x dtype x checkpointing
    for targets in ("qv", "all", "experts"):
        for dtype in ("bf16", "fp32"):
            for gcv in (False, True):
                add("mixtral", targets=targets, dtype=dtype, gc=gcv)
    add("mixtral", attn="eager")
    add("mixtral", attn="eager", targets="all", gc=True)
    add("mixtral", lora_dropout=0.1)  # lora_dropout > 0 is refused by ParamWrapper: q+v only
    add("mixtral", targets="all", r=64)
    add("mixtral", targets="all", batch=1, seq=256)
    # routing independence: other input ids (other routing), same bytes
    add("mixtral", input_seed=7)
    add("mixtral", targets="all", input_seed=7)
    # the experts loop (experts_implementation="eager") and transformers' grouped-mm fallback op
    add("mixtral", experts_impl="eager")
    add("mixtral", targets="all", experts_impl="eager")
    add("mixtral", targets="all", experts_impl="eager", input_seed=7)
    add("mixtral", targets="experts", dtype="fp32", experts_impl="eager")
    add("mixtral", experts_impl="grouped_mm_fallback")
    add("mixtral", targets="experts", experts_impl="grouped_mm_fallback")
    # Qwen3 and Gemma v1: dtype x kernel x targets x checkpointing, + lora_dropout
    for fam in ("qwen3", "gemma"):
        for dtype in ("bf16", "fp32"):
            for attn in ("eager", "sdpa"):
                for targets in ("qv", "all"):
                    for gcv in (False, True):
                        add(fam, dtype=dtype, attn=attn, targets=targets, gc=gcv)
        add(fam, attn="eager", targets="all", lora_dropout=0.1)
        add(fam, dtype="fp32", lora_dropout=0.1, gc=True)
    return cases


# representative extended cases whose saved tensors are listed in ACTIVATIONS.md (second generated block)
EXTENDED_LISTING = [
    {"family": "llama", "dora": True, "targets": "all", "lora_dropout": 0.0},
    {"family": "llama", "dora": True, "targets": "qv", "lora_dropout": 0.1},
    {"family": "mixtral", "targets": "all"},
    {"family": "mixtral", "targets": "experts", "dtype": "fp32"},
    {"family": "qwen3", "targets": "all", "attn": "eager"},
    {"family": "gemma", "targets": "all", "lora_dropout": 0.1},
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--family", action="append")
    ap.add_argument(
        "--detail",
        action="store_true",
        help="also write the per-layer saved-tensor listing (appendix of validation/ACTIVATIONS.md)",
    )
    ap.add_argument(
        "--listing",
        action="store_true",
        help="only run the representative cases and rewrite the ACTIVATIONS.md appendix",
    )
    ap.add_argument(
        "--extended",
        action="store_true",
        help="only the extended grid (DoRA, Mixtral MoE, Qwen3, Gemma): run it and merge its cases into the existing "
        "JSON (every other case kept as it is)",
    )
    ap.add_argument(
        "--listing-extended",
        action="store_true",
        help="only run EXTENDED_LISTING and rewrite the second generated listing block of ACTIVATIONS.md",
    )
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument(
        "--recheck",
        action="store_true",
        help="only re-evaluate measure_formula.py against the stored measurements and rewrite the JSON",
    )
    args = ap.parse_args()
    if args.recheck:
        doc = json.loads(OUT_JSON.read_text())
        for r in doc["cases"]:
            r.setdefault("config_file", f"validation/configs/small/{r['family']}.json")
            r["formula"] = formula.check_case(r)
        doc["summary"] = formula.summarize(doc["cases"]) | {"extended": formula.summarize_extended(doc["cases"])}
        print(json.dumps(doc["summary"], indent=1))
        OUT_JSON.write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
        return
    torch.set_num_threads(TORCH_THREADS)
    families = args.family or list(FAMILIES)
    save_configs()
    if args.listing_extended:
        lines = []
        for kw in EXTENDED_LISTING:
            c = dict(BASE) | {"attn": "sdpa"} | kw | {"extended": True}
            c["id"] = case_id(c)
            r = run_case(c, detail=True)
            lines.append(f"== {c['id']}   dims {json.dumps(r['dims'])}")
            lines.extend(r["_detail"])
        write_listing(lines, LISTING_EXT_BEGIN)
        print(f"rewrote the extended listing in {ACTIVATIONS_MD.relative_to(ROOT)}")
        return
    if args.listing:
        lines = []
        for fam in [f for f in families if f in LEGACY_FAMILIES]:
            for kw in (
                {"attn": "eager", "targets": "all", "lora_dropout": 0.1},
                {"attn": "sdpa" if "sdpa" in FAMILIES[fam]["attn_kernels"] else "eager", "dtype": "fp32"},
            ):
                c = dict(BASE) | kw | {"family": fam}
                c["id"] = (
                    f"{fam} b{c['batch']} s{c['seq']} {c['dtype']} {c['attn']} {c['targets']} r{c['r']} "
                    f"lora_dropout {c['lora_dropout']}"
                )
                r = run_case(c, detail=True)
                lines.append(f"== {c['id']}   dims {json.dumps(r['dims'])}")
                lines.extend(r["_detail"])
        write_listing(lines)
        print(f"rewrote the listing in {ACTIVATIONS_MD.relative_to(ROOT)}")
        return
    legacy = [f for f in families if f in LEGACY_FAMILIES]
    if args.extended:
        cases = grid_extended(families, quick=args.quick)
    else:
        cases = grid(legacy, quick=args.quick) + grid_extended(families, quick=args.quick)
    print(f"{len(cases)} cases", flush=True)
    results = []
    optim_cache = {}
    detail_lines = []
    representative = {}
    for fam in families:
        # representative case per family: bf16, all-linear, dropout 0.1, eager (shows every saved tensor kind)
        representative[fam] = f"{fam}-b2-s64-bf16-eager-all-r8-do0.1-nogc"
    t_all = time.time()
    for i, c in enumerate(cases):
        want_detail = (
            args.detail
            and not c.get("extended")
            and (
                c["id"] == representative[c["family"]]
                or c["id"] == f"{c['family']}-b2-s64-bf16-sdpa-qv-r8-do0.0-nogc"
                or c["id"] == f"{c['family']}-b2-s64-fp32-sdpa-qv-r8-do0.0-nogc"
                or c["id"] == f"{c['family']}-b2-s64-fp32-eager-qv-r8-do0.0-nogc"
            )
        )
        r = run_case(c, detail=want_detail, optim_cache=optim_cache)
        if "_detail" in r:
            detail_lines.append(f"== {r['id']}  (dims {r['dims']})")
            detail_lines.extend(r.pop("_detail"))
        f = formula.check_case(r)
        r["formula"] = f
        results.append(r)
        print(
            f"[{i + 1}/{len(cases)}] {r['id']:<56} meas={r['saved']['total_cpu']:>9} "
            f"f_cpu={f['cpu']['total']:>9} err={f['rel_error_total']:+.1e} "
            f"(lay {f['rel_error_layers']:+.1e} rest {f['rel_error_rest']:+.1e} head {f['rel_error_head']:+.1e}"
            f"{' rec {:+.1e}'.format(f['rel_error_recompute']) if 'rel_error_recompute' in f else ''}) "
            f"gpu_adj={r['activations_gpu_adjusted']:>9} f_cuda={f['activations_bytes'] + f['logits_bytes']:>9} "
            f"{r['seconds']}s",
            flush=True,
        )
    worst = formula.summarize(results) | {"extended": formula.summarize_extended(results)}
    print(json.dumps(worst, indent=1))
    print(f"total {time.time() - t_all:.0f}s")
    if args.detail and detail_lines:
        write_listing(detail_lines)
    if args.no_write:
        return
    if args.extended and OUT_JSON.exists():
        # merge: the extended cases replace those with the same id, everything else is kept byte for byte
        doc = json.loads(OUT_JSON.read_text())
        new = {r["id"]: r for r in json.loads(json.dumps(results, default=_json_default))}
        merged = [new.pop(r["id"], r) for r in doc["cases"]]
        merged += list(new.values())
        doc["cases"] = merged
        doc["description"] = DESCRIPTION
        doc["summary"] = formula.summarize(merged) | {"extended": formula.summarize_extended(merged)}
        OUT_JSON.write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
        print(f"merged {len(results)} extended cases into {OUT_JSON.relative_to(ROOT)} ({len(merged)} cases)")
        return
    from measure_quant import measure_quantization

    quant = measure_quantization()
    doc = {
        "description": DESCRIPTION,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "bitsandbytes": _version("bitsandbytes"),
            "lion_pytorch": _version("lion_pytorch"),
            "device": "cpu",
            "threads": TORCH_THREADS,
        },
        "configs_dir": "validation/configs/small",
        "summary": worst,
        "quantization": quant,
        "cases": results,
    }
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
    print(f"wrote {OUT_JSON.relative_to(ROOT)}")


def _json_default(o):
    if isinstance(o, (set, tuple)):
        return list(o)
    if isinstance(o, torch.dtype):
        return str(o).replace("torch.", "")
    return str(o)


def _version(mod):
    try:
        from importlib.metadata import version

        return version(mod.replace("_", "-"))
    except Exception:
        return None


if __name__ == "__main__":
    main()
