"""What bitsandbytes keeps resident for a quantized Linear weight (CPU backend), as a function of n = in*out.

Used by measure_memory.py (section "quantization" of tests/core/golden/memory_measured.json); also runnable alone:
    validation/.venv/bin/python validation/measure_quant.py
For every layer shape and setting, every tensor reachable from the quantized parameter (packed data, QuantState
absmax / code / offset / nested state2.absmax / state2.code; Int8Params CB / SCB) is listed with its bytes, and
storages shared between two layers are detected by data_ptr.  The measured bytes are compared with
    4-bit:  ceil(n/2) + [no DQ] 4*ceil(n/64)
                      + [DQ]    ceil(n/64) + 4*ceil(ceil(n/64)/256) + 4 (offset) + 1024 (state2.code, 256 fp32)
                      + 64 (the 16-entry fp32 code table)            (blocksize 64, per layer, nothing shared)
    int8:   n (CB int8) + 4*out (SCB fp32)
"""

from __future__ import annotations

import json
import math
import sys
import warnings

import torch

warnings.filterwarnings("ignore")

SHAPES = [(256, 512), (688, 256), (1000, 300), (4096, 4096), (11008, 4096)]  # (out_features, in_features)


def _tensors_of_quant_state(qs, prefix="quant_state"):
    out = []
    for attr in ("absmax", "code", "offset"):
        t = getattr(qs, attr, None)
        if torch.is_tensor(t):
            out.append((f"{prefix}.{attr}", t))
    st2 = getattr(qs, "state2", None)
    if st2 is not None:
        out += _tensors_of_quant_state(st2, prefix + ".state2")
    return out


def _desc(name, t):
    return {
        "tensor": name,
        "shape": list(t.shape),
        "dtype": str(t.dtype).replace("torch.", ""),
        "bytes": t.untyped_storage().nbytes(),
        "numel_bytes": t.numel() * t.element_size(),
    }


def formula_4bit(n: int, double_quant: bool, blocksize: int = 64) -> int:
    blocks = math.ceil(n / blocksize)
    packed = math.ceil(n / 2)
    code = 16 * 4
    if not double_quant:
        return packed + 4 * blocks + code
    return packed + blocks + 4 * math.ceil(blocks / 256) + 4 + 256 * 4 + code


def formula_int8(n: int, out_features: int) -> int:
    return n + 4 * out_features


def measure_4bit(out_f, in_f, quant_type, double_quant, blocksize=64, dtype=torch.bfloat16):
    import bitsandbytes as bnb

    res = []
    ptrs = []
    for seed in (0, 1):  # two layers: which tensors are shared?
        torch.manual_seed(seed)
        w = torch.randn(out_f, in_f, dtype=dtype)
        p = bnb.nn.Params4bit(
            w,
            requires_grad=False,
            compress_statistics=double_quant,
            quant_type=quant_type,
            blocksize=blocksize,
            quant_storage=torch.uint8,
        )
        p = p.to("cpu")  # quantizes (Params4bit._quantize)
        items = [("weight (packed)", p.data), *_tensors_of_quant_state(p.quant_state)]
        res.append(items)
        ptrs.append({name: t.untyped_storage().data_ptr() for name, t in items})
    shared = sorted(k for k in ptrs[0] if ptrs[0][k] == ptrs[1].get(k))
    items = res[0]
    total = sum(t.untyped_storage().nbytes() for _, t in items)
    n = out_f * in_f
    return {
        "out_features": out_f,
        "in_features": in_f,
        "n": n,
        "quant_type": quant_type,
        "double_quant": double_quant,
        "blocksize": blocksize,
        "weight_dtype_in": str(dtype).replace("torch.", ""),
        "tensors": [_desc(nm, t) for nm, t in items],
        "resident_bytes": total,
        "shared_between_layers": shared,
        "formula_bytes": formula_4bit(n, double_quant, blocksize),
        "quant_state_scalars": {
            "blocksize": p.quant_state.blocksize,
            "dtype": str(p.quant_state.dtype),
            "shape": list(p.quant_state.shape),
        },
    }


def measure_int8(out_f, in_f, dtype=torch.bfloat16):
    import bitsandbytes as bnb

    torch.manual_seed(0)
    lin = bnb.nn.Linear8bitLt(in_f, out_f, bias=False, has_fp16_weights=False, threshold=6.0)
    lin.weight = bnb.nn.Int8Params(torch.randn(out_f, in_f, dtype=dtype), requires_grad=False, has_fp16_weights=False)
    lin = lin.to("cpu")
    w = lin.weight
    items = [("weight (CB int8)", w.data)]
    if torch.is_tensor(getattr(w, "SCB", None)):
        items.append(("weight.SCB", w.SCB))
    seen = {}
    for nm, t in items:
        seen.setdefault(t.untyped_storage().data_ptr(), (nm, t))
    state_alias = {}
    for attr in ("CB", "SCB"):
        t = getattr(lin.state, attr, None)
        if torch.is_tensor(t):
            state_alias[f"state.{attr}"] = t.untyped_storage().data_ptr() in seen
    total = sum(t.untyped_storage().nbytes() for _, t in seen.values())
    # what a forward with an input that requires grad keeps for backward (ctx.tensors of MatMul8bitLt)
    x = torch.randn(2, 8, in_f, dtype=dtype, requires_grad=True)
    y = lin(x)
    kept = []
    # CUDA path MatMul8bitLt: ctx.tensors = (CAt, subA, A); CPU/XPU training path MatMul8bitFp: ctx.A = A
    cands = list(getattr(y.grad_fn, "tensors", ()) or ())
    if torch.is_tensor(getattr(y.grad_fn, "A", None)):
        cands.append(y.grad_fn.A)
    for t in cands:
        kept.append(
            None
            if t is None
            else {
                "shape": list(t.shape),
                "dtype": str(t.dtype).replace("torch.", ""),
                "is_input_storage": t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr(),
            }
        )
    after = {}
    for attr in ("CB", "SCB"):
        t = getattr(lin.state, attr, None)
        if torch.is_tensor(t):
            after[f"state.{attr}"] = {
                "shape": list(t.shape),
                "dtype": str(t.dtype).replace("torch.", ""),
                "same_storage_as_weight": t.untyped_storage().data_ptr()
                in {
                    x_.untyped_storage().data_ptr()
                    for x_ in (lin.weight.data, getattr(lin.weight, "SCB", None))
                    if torch.is_tensor(x_)
                },
            }
    n = out_f * in_f
    return {
        "out_features": out_f,
        "in_features": in_f,
        "n": n,
        "tensors": [_desc(nm, t) for nm, t in seen.values()],
        "state_aliases_weight": state_alias,
        "resident_bytes": total,
        "formula_bytes": formula_int8(n, out_f),
        "threshold": lin.state.threshold,
        "backward_keeps": kept,
        "state_after_training_forward": after,
        "grad_fn": type(y.grad_fn).__name__,
    }


def measure_4bit_backward(out_f=256, in_f=512):
    """What MatMul4Bit keeps for backward when its input requires grad."""
    import bitsandbytes as bnb

    lin = bnb.nn.Linear4bit(
        in_f, out_f, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4", compress_statistics=True
    )
    lin.weight = bnb.nn.Params4bit(
        torch.randn(out_f, in_f, dtype=torch.bfloat16),
        requires_grad=False,
        compress_statistics=True,
        quant_type="nf4",
        blocksize=64,
    )
    lin = lin.to("cpu")
    x = torch.randn(2, 8, in_f, dtype=torch.bfloat16, requires_grad=True)
    y = lin(x)
    node = y.grad_fn
    while node is not None and not hasattr(node, "tensors"):
        node = node.next_functions[0][0] if node.next_functions else None
    kept = []
    for t in getattr(node, "tensors", ()) or ():
        kept.append(
            None
            if t is None
            else {
                "shape": list(t.shape),
                "dtype": str(t.dtype).replace("torch.", ""),
                "is_weight_storage": t.untyped_storage().data_ptr() == lin.weight.untyped_storage().data_ptr(),
            }
        )
    return {"grad_fn": type(node).__name__ if node is not None else None, "ctx.tensors(A,B)": kept}


def model_level(fam_checkpoint: str | None = None):
    """Quantize a whole small Llama with transformers' BitsAndBytesConfig; list per-layer tensors and sharing."""
    try:
        import measure_memory as mm
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = fam_checkpoint or mm.random_checkpoint("llama")
        out = {}
        for name, qc in {
            "nf4_dq": BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            ),
            "nf4": BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=False,
                bnb_4bit_compute_dtype=torch.bfloat16,
            ),
            "int8": BitsAndBytesConfig(load_in_8bit=True),
        }.items():
            m = AutoModelForCausalLM.from_pretrained(
                path, quantization_config=qc, dtype=torch.bfloat16, device_map="cpu"
            )
            ptr_users: dict[int, list[str]] = {}
            sizes = {}
            quantized, _plain = 0, 0
            for mod_name, mod in m.named_modules():
                w = getattr(mod, "weight", None)
                if w is None or not isinstance(mod, torch.nn.Module) or mod_name.endswith("embed_tokens"):
                    pass
                qs = getattr(w, "quant_state", None) if w is not None else None
                tens = []
                if qs is not None:
                    tens = [("weight", w.data), *_tensors_of_quant_state(qs)]
                elif w is not None and w.dtype == torch.int8:
                    tens = [("weight", w.data)] + ([("SCB", w.SCB)] if torch.is_tensor(getattr(w, "SCB", None)) else [])
                for nm, t in tens:
                    ptr = t.untyped_storage().data_ptr()
                    ptr_users.setdefault(ptr, []).append(f"{mod_name}.{nm}")
                    sizes[ptr] = t.untyped_storage().nbytes()
                if tens:
                    quantized += 1
            shared = {ptr_users[p][0]: len(ptr_users[p]) for p in ptr_users if len(ptr_users[p]) > 1}
            dtypes = {}
            for n_, p_ in m.named_parameters():
                dtypes.setdefault(str(p_.dtype).replace("torch.", ""), []).append(n_)
            out[name] = {
                "quantized_linear_layers": quantized,
                "quantized_bytes_total": sum(sizes.values()),
                "storages_shared_between_layers": shared,
                "non_quantized_params_dtype": {k: len(v) for k, v in dtypes.items()},
                "lm_head_quantized": getattr(m.lm_head.weight, "quant_state", None) is not None
                or m.lm_head.weight.dtype == torch.int8,
                "embed_tokens_dtype": str(m.model.embed_tokens.weight.dtype),
            }
            if name == "nf4_dq":
                from peft import prepare_model_for_kbit_training

                m2 = prepare_model_for_kbit_training(m, use_gradient_checkpointing=False)
                dt = {}
                for n_, p_ in m2.named_parameters():
                    dt.setdefault(str(p_.dtype).replace("torch.", ""), []).append(n_.rsplit(".", 1)[0])
                out[name]["after_prepare_model_for_kbit_training_param_dtypes"] = {
                    k: sorted({x.split(".")[-1] for x in v}) for k, v in dt.items()
                }
            del m
        return out
    except Exception as e:  # pragma: no cover
        return {"error": repr(e)[:400]}


def measure_quantization() -> dict:
    try:
        import bitsandbytes as bnb
    except Exception as e:  # pragma: no cover
        return {"available": False, "error": repr(e)}
    out = {"available": True, "bitsandbytes": bnb.__version__, "backend": "cpu", "four_bit": [], "int8": []}
    for o, i in SHAPES:
        for qt in ("nf4", "fp4"):
            for dq in (False, True):
                out["four_bit"].append(measure_4bit(o, i, qt, dq))
        out["int8"].append(measure_int8(o, i))
    out["four_bit_blocksize_128_example"] = measure_4bit(688, 256, "nf4", True, blocksize=128)
    out["four_bit_fp32_weight_example"] = measure_4bit(688, 256, "nf4", True, dtype=torch.float32)
    out["four_bit_backward"] = measure_4bit_backward()
    out["model_level"] = model_level()
    mism = [
        (
            r["out_features"],
            r["in_features"],
            r["quant_type"],
            r["double_quant"],
            r["resident_bytes"],
            r["formula_bytes"],
        )
        for r in out["four_bit"]
        if r["resident_bytes"] != r["formula_bytes"]
    ]
    mism += [
        (r["out_features"], r["in_features"], "int8", None, r["resident_bytes"], r["formula_bytes"])
        for r in out["int8"]
        if r["resident_bytes"] != r["formula_bytes"]
    ]
    out["formula_mismatches"] = mism
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
    res = measure_quantization()
    print(json.dumps(res, indent=1, default=str))
