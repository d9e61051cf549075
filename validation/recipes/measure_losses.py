"""Measure what each loss path keeps for backward and its peak, on the CPU (writes recipes_measured.json).

    /work/venvs/recipes/bin/python validation/recipes/measure_losses.py

Two experiments per loss path, both in bf16:

1. **Whole model** (``saved``): the small Llama of ``validation/configs/small/llama.json`` (transformers,
   random weights) with PEFT LoRA on q, v; the forward runs through the loss; the storages still alive
   afterwards (parameters and inputs excluded, the model output dropped) are what the graph keeps. The core's
   ``estimate_activations`` must give exactly this total.
2. **Loss path alone** (``peak``): hidden states that require grad, a frozen head weight and labels; the
   largest live total during forward + backward, and what is kept after the forward.

Paths: ``hf`` (transformers' ``ForCausalLMLoss`` through the model's own forward), ``chunked`` (torchtune
0.6.1 ``CEWithChunkedOutputLoss`` on ``TransformerDecoder.chunked_output``-style chunks, eager and with the
recipe's ``training.compile_loss``), ``trl_chunked_nll`` (trl 1.16.0 ``add_fused_lm_head`` on the real model,
with its Triton-device ``compact`` path forced: the GPU behaviour; the per-tile fold runs its torch version),
``fused_linear`` and ``cut`` (GPU-only Triton kernels: pure-torch equivalents that keep exactly what
``LigerFusedLinearCrossEntropyFunction`` and cut-cross-entropy's ``LinearCrossEntropyFunction`` keep, run
chunk by chunk the same way; they measure the memory behaviour, not the libraries).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "validation" / "recipes"))
from tracking import LiveStorages, PackedStorages  # noqa: E402

GOLDEN = ROOT / "tests" / "core" / "golden" / "recipes_measured.json"
CONFIG = json.loads((ROOT / "validation" / "configs" / "small" / "llama.json").read_text())
VERSIONS = ("torch", "transformers", "peft", "trl", "torchtune", "torchao", "liger-kernel", "cut-cross-entropy")


# --- pure-torch equivalents of the GPU-only kernels ------------------------------------------------------


class LigerEquivalent(torch.autograd.Function):
    """Liger 0.8.5 fused_linear_cross_entropy_forward: gradient of the input computed in the forward in token
    chunks (chunk = min(T, next_pow2(ceil(T / ceil(V / H))))), only ``grad_input`` saved."""

    @staticmethod
    def forward(ctx, x, weight, target):  # type: ignore[no-untyped-def]
        bt, h = x.shape
        v = weight.shape[0]
        inc = -(-v // h)
        chunk = min(bt, 1 << (-(-bt // inc) - 1).bit_length())
        grad_input = torch.zeros_like(x)
        loss_1d = torch.zeros(bt, dtype=torch.float32)
        valid = (target != -100).sum().clamp(min=1)
        for start in range(0, bt, chunk):
            end = min(start + chunk, bt)
            logits = x[start:end] @ weight.t()
            t = target[start:end]
            lse = torch.logsumexp(logits.float(), -1)
            picked = logits.float().gather(-1, t.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            loss_1d[start:end] = torch.where(t != -100, lse - picked, 0.0)
            grad = torch.softmax(logits.float(), -1)
            grad[torch.arange(end - start), t.clamp(min=0)] -= 1
            grad[t == -100] = 0
            logits.copy_(grad / valid)  # in place, as the kernel overwrites the logits chunk
            grad_input[start:end] = logits @ weight
            del logits, grad
        ctx.save_for_backward(grad_input)
        return loss_1d.sum() / valid

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[no-untyped-def]
        (grad_input,) = ctx.saved_tensors
        return grad_input * grad_output, None, None


class CutEquivalent(torch.autograd.Function):
    """cut-cross-entropy 25.1.1 LinearCrossEntropyFunction with shift=True: saves e, lse (valid positions),
    targets, valids (int32) and logit_avg (fp32 per vocabulary entry)."""

    @staticmethod
    def forward(ctx, e, weight, targets, valids):  # type: ignore[no-untyped-def]
        rows = e[valids.long()]
        lse = torch.empty(valids.numel(), dtype=torch.float32)
        logit_avg = torch.zeros(weight.shape[0], dtype=torch.float32)
        for start in range(0, valids.numel(), 64):
            logits = (rows[start : start + 64] @ weight.t()).float()
            lse[start : start + 64] = torch.logsumexp(logits, -1)
            logit_avg += logits.sum(0)
            del logits
        del rows
        nll = lse.sum()
        ctx.save_for_backward(e, lse, targets, valids, logit_avg)
        ctx.weight = weight
        return nll / valids.numel()

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[no-untyped-def]
        e, lse, _targets, valids, _ = ctx.saved_tensors
        de = torch.zeros_like(e)
        rows = valids.long()
        probs = torch.exp((e[rows] @ ctx.weight.t()).float() - lse.unsqueeze(-1))
        de[rows] = ((probs @ ctx.weight.float()) * grad_out / rows.numel()).to(e.dtype)
        return de, None, None, None


def cut_loss(hidden, weight, labels):  # type: ignore[no-untyped-def]
    """cce_linear_cross_entropy(e, c, targets, shift=True): flatten, valid shifted positions (int32)."""
    _b, s, _h = hidden.shape
    e = hidden.contiguous().flatten(0, -2)
    targets = labels.flatten()
    valids = (labels[..., 1:] != -100).nonzero().to(torch.int32)
    valids[:, 0] *= s  # targets.stride(0) of the unshifted [b, s] labels, as _build_flat_valids
    return CutEquivalent.apply(e, weight, targets, valids.sum(1).to(torch.int32))


def torchtune_chunked_loss():  # type: ignore[no-untyped-def]
    """torchtune 0.6.1's CEWithChunkedOutputLoss, loaded from its file: the package's __init__ imports
    torchao's NF4 tensor, which torchao 0.18 no longer ships (the loss itself needs only torch)."""
    import importlib.util

    spec = importlib.util.find_spec("torchtune")
    path = Path(spec.origin).parent / "modules" / "loss" / "ce_chunked_output_loss.py"
    module_spec = importlib.util.spec_from_file_location("tt_ce_chunked", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.CEWithChunkedOutputLoss


# --- the loss paths on a hidden-state tensor ----------------------------------------------------------------


def loss_path(name, hidden, weight, labels, vocab, chunks=8):  # type: ignore[no-untyped-def]
    if name == "hf":
        from transformers.loss.loss_utils import ForCausalLMLoss

        logits = F.linear(hidden, weight)
        return ForCausalLMLoss(logits, labels, vocab_size=vocab)
    if name.startswith("chunked"):
        loss_fn = torchtune_chunked_loss()(num_output_chunks=chunks)
        if name == "chunked_compiled":  # torchtune.training.compile_loss for this class, line for line
            loss_fn.compute_cross_entropy = torch.compile(loss_fn.compute_cross_entropy, backend="inductor")
        # the recipe: labels shifted with an ignore column, logits as TransformerDecoder.chunked_output
        shifted = torch.hstack((labels[..., 1:], torch.full((labels.shape[0], 1), -100)))
        outputs = [F.linear(c, weight) for c in hidden.chunk(chunks, dim=1)]
        loss = loss_fn(outputs, shifted)
        del outputs
        return loss
    if name == "trl_chunked_nll":
        from trl.kernels import ChunkedLogProbFunction
        from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE

        # add_fused_lm_head's compact branch, line for line
        h = hidden[:, :-1]
        lab = labels[:, 1:]
        mask = lab != -100
        outs = ChunkedLogProbFunction.apply(
            h[mask],
            weight,
            None,
            lab[mask],
            1.0,
            _CHUNKED_LOGPROB_CHUNK_SIZE,
            None,
            1.0,
            ("log_probs", "entropy", "is_top1"),
        )
        log_probs = outs[0].new_zeros(mask.shape).masked_scatter(mask, outs[0])
        entropy = outs[1].new_zeros(mask.shape).masked_scatter(mask, outs[1])
        del entropy
        return -log_probs.sum() / mask.sum().clamp(min=1)
    if name == "fused_linear":
        shifted = F.pad(labels, (0, 1), value=-100)[..., 1:].contiguous()  # LigerForCausalLMLoss
        return LigerEquivalent.apply(hidden.view(-1, hidden.shape[-1]), weight, shifted.view(-1))
    if name == "cut":
        return cut_loss(hidden, weight, labels)
    raise ValueError(name)


def make_labels(b, s, vocab, fraction, gen):  # type: ignore[no-untyped-def]
    labels = torch.randint(0, vocab, (b, s), generator=gen)
    scored = round(b * (s - 1) * fraction)
    flat = labels[:, 1:].reshape(-1).clone()
    flat[scored:] = -100  # the first `scored` shifted positions count, like a prompt masked at the end
    labels[:, 1:] = flat.view(b, s - 1)
    return labels


def isolated(name, b, s, h, vocab, fraction, chunks=8):  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(vocab, h, dtype=torch.bfloat16, generator=gen) * 0.02
    hidden = torch.randn(b, s, h, dtype=torch.bfloat16, generator=gen).requires_grad_()
    labels = make_labels(b, s, vocab, fraction, gen)
    packed = PackedStorages(exclude=(weight, hidden, labels))
    with packed:
        packed_loss = loss_path(name, hidden, weight, labels, vocab, chunks)
    packed_loss.backward()
    hidden.grad = None
    del packed_loss
    if name == "chunked_compiled":  # a dispatch mode would make dynamo fall back to eager: hooks only
        return {"saved": packed.total, "packed": packed.total}
    with LiveStorages(exclude=(weight, hidden, labels)) as live:
        loss = loss_path(name, hidden, weight, labels, vocab, chunks)
        saved = live.alive() - loss.untyped_storage().nbytes()
        forward_peak = live.peak
        loss.backward()
        del loss
    return {
        "saved": saved,
        "packed": packed.total,
        "peak": live.peak,
        "forward_peak": forward_peak,
        "grad_bytes": hidden.grad.nbytes,
    }


def whole_model(name, b, s, fraction, chunks=8):  # type: ignore[no-untyped-def]
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(**{k: v for k, v in CONFIG.items() if k not in ("model_type", "architectures")})
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    base = model
    if name == "trl_chunked_nll":
        import trl.trainer.utils as trl_utils

        trl_utils._use_triton = lambda device: True  # the compact (CUDA/XPU) path
        trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    model.train()
    gen = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, config.vocab_size, (b, s), generator=gen)
    labels = make_labels(b, s, config.vocab_size, fraction, gen)
    params = tuple(p for p in model.parameters()) + tuple(base.buffers())
    with LiveStorages(exclude=(*params, input_ids, labels)) as live:
        if name == "hf":
            loss = model(input_ids=input_ids, labels=labels, use_cache=False).loss
        elif name == "trl_chunked_nll":
            loss = model(input_ids=input_ids, labels=labels, fused_lm_head=True).loss
        else:
            hidden = model.base_model.model.model(input_ids=input_ids, use_cache=False).last_hidden_state
            loss = loss_path(name, hidden, base.lm_head.weight, labels, config.vocab_size, chunks)
            del hidden
        saved = live.alive() - loss.untyped_storage().nbytes()
    loss.backward()
    return {"saved": saved}


CASES = [
    # (path, batch, seq, loss fraction)
    ("hf", 2, 64, 1.0),
    ("chunked", 2, 64, 1.0),
    ("chunked_compiled", 2, 64, 1.0),
    ("trl_chunked_nll", 2, 64, 1.0),
    ("trl_chunked_nll", 2, 64, 0.5),
    ("trl_chunked_nll", 1, 256, 0.25),
    ("fused_linear", 2, 64, 1.0),
    ("fused_linear", 1, 256, 1.0),
    ("cut", 2, 64, 1.0),
    ("cut", 1, 256, 0.5),
]


def main() -> None:
    torch.set_num_threads(2)
    out = {
        "versions": {p: md.version(p) for p in VERSIONS},
        "config": "validation/configs/small/llama.json",
        "lora": {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]},
        "losses": [],
    }
    for name, b, s, fraction in CASES:
        row = {"loss": name, "batch": b, "seq": s, "loss_token_fraction": fraction, "chunks": 8}
        row["model"] = whole_model(name, b, s, fraction) if name != "chunked_compiled" else None
        row["isolated"] = isolated(name, b, s, CONFIG["hidden_size"], CONFIG["vocab_size"], fraction)
        row["isolated"]["hidden_size"] = CONFIG["hidden_size"]
        print(json.dumps(row), flush=True)
        out["losses"].append(row)
    existing = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    existing.update(out)
    GOLDEN.write_text(json.dumps(existing, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
