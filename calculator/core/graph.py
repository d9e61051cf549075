"""The symbolic autograd graph the activation replay runs on: tensors, what is saved, and the ops.

Autograd saves a tensor only for a gradient that will be computed: a frozen linear layer keeps nothing
(its input's gradient needs only the frozen weight), while LoRA's ``lora_A`` keeps its (fp32-cast or
dropped-out) input and ``lora_B`` the rank-r activation. Each op below applies that rule per operand and
models the CUDA kernels: 1-byte dropout masks, fused attention keeping q, k, v, the output and a float32
log-sum-exp, float32 LayerNorm statistics. Storages are counted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count as counter

from .architecture import Architecture
from .dtypes import FLOAT_BYTES, ceil_div
from .training import TrainingSettings

FP32 = 4
INT64 = 8
CUDA_MASK = 1  # CUDA's native_dropout keeps a bool mask


@dataclass(frozen=True, slots=True)
class Tensor:
    storage: int
    nbytes: int
    elem_bytes: int
    requires_grad: bool


@dataclass(frozen=True, slots=True)
class LoraModule:
    r: int
    dropout: float
    dora: bool


LayerPlan = tuple[tuple[str, LoraModule | None], ...]


class Graph:
    """The storages one replay saves, plus the context every op needs."""

    def __init__(self, arch: Architecture, training: TrainingSettings, full: bool = False) -> None:
        self.arch = arch
        self.training = training
        self.tokens = training.tokens
        self.p = FLOAT_BYTES[training.float_dtype]
        self.a = FLOAT_BYTES[training.adapter_dtype]
        self.int8 = training.base_dtype == "int8"
        self.full = full  # full fine-tuning: every weight trains, so every linear keeps its input
        self.saved: dict[int, int] = {}
        self.rope_needed = False
        self.shared_mask_needed = False  # an attention kept the model's one shared mask (Falcon's ALiBi)
        self.per_layer_inputs_rg = False  # Gemma 4: the per-layer inputs the layers mix in need a gradient
        self._ids = counter()

    def new(self, numel: int, elem_bytes: int, requires_grad: bool) -> Tensor:
        return Tensor(next(self._ids), numel * elem_bytes, elem_bytes, requires_grad)

    def act(self, features: int, requires_grad: bool, elem_bytes: int | None = None) -> Tensor:
        """A (tokens x features) activation."""
        return self.new(self.tokens * features, self.p if elem_bytes is None else elem_bytes, requires_grad)

    def save(self, *tensors: Tensor) -> None:
        """Keep each tensor's storage (once; a view and its whole storage count as the whole storage)."""
        for t in tensors:
            self.saved[t.storage] = max(self.saved.get(t.storage, 0), t.nbytes)

    def view(self, base: Tensor, numel: int) -> Tensor:
        """A view of part of ``base``: saving it keeps ``base``'s storage."""
        return Tensor(base.storage, numel * base.elem_bytes, base.elem_bytes, base.requires_grad)

    def save_if(self, condition: bool, *tensors: Tensor) -> None:
        if condition:
            self.save(*tensors)

    @property
    def total(self) -> int:
        return sum(self.saved.values())

    # --- ops ---------------------------------------------------------------------------------------

    def dropout(self, x: Tensor, p: float) -> Tensor:
        """nn.Dropout in training: keeps only its mask, and only when the input needs a gradient."""
        if p <= 0:
            return x
        numel = x.nbytes // x.elem_bytes
        self.save_if(x.requires_grad, self.new(numel, CUDA_MASK, False))
        return self.new(numel, x.elem_bytes, x.requires_grad)

    def rms_norm(self, x: Tensor, size: int, *, kind: str = "rms", scale: bool = True) -> Tensor:
        """transformers' RMSNorm: x.float() (the input itself when fp32) and rsqrt per row are kept.
        ``rms_gemma``: Gemma's ``1 + weight.float()`` is a fresh tensor kept for the product. ``rms_gemma4``:
        Gemma 4 writes ``x * pow(mean(x²) + eps, -0.5)``, keeping both per-row tensors, then multiplies by
        ``weight.float()`` (a copy unless the weights are fp32; none without a scale). The weight is frozen."""
        rows = x.nbytes // x.elem_bytes // size
        fp32_out = kind != "rms"
        if x.requires_grad:
            self.save(x if x.elem_bytes == FP32 else self.new(rows * size, FP32, True))
            self.save(self.new(rows, FP32, True))
            if kind == "rms_gemma":
                self.save(self.new(size, FP32, False))
            elif kind == "rms_gemma4":
                self.save(self.new(rows, FP32, True))
                self.save_if(scale and not self.fp32_norm_weights, self.new(size, FP32, False))
        if self.full:  # a trainable norm weight keeps the normalised input for its own gradient
            self.save(self.new(rows * size, FP32 if fp32_out else self.p, True))
        return self.new(rows * size, self.p, x.requires_grad or self.full)

    @property
    def fp32_norm_weights(self) -> bool:
        """Norm weights are fp32 in fp32 training and after prepare_model_for_kbit_training's upcast."""
        return self.p == FP32 or self.training.prepare_model_for_kbit_training

    def cohere_norm(self, x: Tensor, size: int) -> Tensor:
        """Cohere's LayerNorm without bias, written out in fp32 (modeling_cohere2.py Cohere2LayerNorm): x - mean
        computed twice (for the variance and for the output) and both kept, rsqrt per row, the weight cast to
        fp32 for the product."""
        rows = x.nbytes // x.elem_bytes // size
        if x.requires_grad:
            self.save(self.new(rows * size, FP32, True), self.new(rows * size, FP32, True))
            self.save(self.new(rows, FP32, True), self.new(size, FP32, False))
        if self.full:
            self.save(self.new(rows * size, FP32, True))
        return self.new(rows * size, self.p, x.requires_grad or self.full)

    def layer_norm(self, x: Tensor, size: int) -> Tensor:
        """native_layer_norm keeps its input and float32 mean and rstd per row (CUDA)."""
        rows = x.nbytes // x.elem_bytes // size
        if x.requires_grad or self.full:
            self.save(x, self.new(rows, FP32, True), self.new(rows, FP32, True))
        return self.new(rows * size, self.p, x.requires_grad or self.full)

    def linear(self, x: Tensor, in_features: int, out_features: int, lora: LoraModule | None) -> Tensor:
        """A frozen linear layer (bitsandbytes int8 keeps its input), plus PEFT's LoRA branch:
        ``base(x) + lora_B(lora_A(dropout(x.to(adapter dtype)))) * scaling``."""
        if self.full:
            self.save(x)
            return self.act(out_features, True)
        if self.int8 and x.requires_grad:
            self.save(x)  # MatMul8bitLt keeps its input in ctx.tensors
        base_out = self.act(out_features, x.requires_grad)
        if lora is None:
            return base_out
        cast = x if x.elem_bytes == self.a else self.act(in_features, x.requires_grad, self.a)
        lora_in = self.dropout(cast, lora.dropout)
        self.save(lora_in)  # lora_A's weight gradient needs its input
        self.save(self.act(lora.r, True, self.a))  # lora_B's needs lora_A's output
        if lora.dora:
            self._dora(x, in_features, out_features, lora)
        return self.act(out_features, True)

    def _dora(self, x: Tensor, in_features: int, out_features: int, lora: LoraModule) -> None:
        """DoRA's ``m / ‖W + s·BA‖ · (base + lora·s)`` (PEFT's DoraLinearLayer), as measured: the weight
        norm, the magnitude ratio (and ratio - 1 when the input needs a gradient), the base result (recomputed
        in the adapter dtype when dropout is on) and the LoRA output; with dropout on a 16-bit base the
        weight itself is cast to the adapter dtype and kept for the input's gradient."""
        dropout = lora.dropout > 0
        self.save(self.new(out_features, FP32, True), self.new(out_features, FP32, True))
        self.save_if(x.requires_grad, self.new(out_features, FP32, True))
        self.save(self.act(out_features, True, self.a if dropout else self.p), self.act(out_features, True, self.a))
        if dropout and x.requires_grad and self.p != self.a:
            self.save(self.new(in_features * out_features, self.a, False))

    def gated_mlp(self, gate: Tensor, up: Tensor, features: int) -> Tensor:
        """act(gate) * up with a one-kernel activation (SiLU, tanh-GELU) that keeps its input."""
        self.save_if(gate.requires_grad, gate)
        activated = self.act(features, gate.requires_grad)
        self.save_if(up.requires_grad, activated)
        self.save_if(activated.requires_grad, up)
        return self.act(features, activated.requires_grad or up.requires_grad)

    def attention(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        *,
        heads: int,
        qk_dim: int,
        v_dim: int,
        kv_heads: int | None = None,
        masked: bool = False,
        softcap: bool = False,
        fp32_softmax: bool = True,
        dropout: float = 0.0,
        sinks: bool = False,
        mask_shared: bool = False,
        broadcast_kv: bool = False,
    ) -> Tensor:
        """Scaled dot-product attention as the chosen kernel stores it; returns the output. gpt-oss's attention
        sinks only run in the eager path (a logit per head appended to every row).

        transformers' sdpa path (integrations/sdpa_attention.py) lets SDPA handle GQA only without a mask and with
        equal q/k and v head sizes up to 256; otherwise (a sliding-window mask, Gemma 4's 512-wide global heads)
        it repeats k and v to every head first, and SDPA keeps the repeated copies, and the mask (each layer its
        own additive copy, batch-expanded, as measured). ``mask_shared``: the mask is one tensor the model built
        for every layer (Falcon's ALiBi mask), counted once outside the layers. ``broadcast_kv``: k/v heads handed
        over to broadcast (Falcon's multi-query), which only sdpa's math kernel accepts: it stores what eager
        attention does, in float32; a batch of one keeps the unexpanded k and v."""
        b, s = self.training.batch_size, self.training.seq_len
        qk_width, v_width = heads * qk_dim, heads * v_dim
        needed = q.requires_grad or k.requires_grad or v.requires_grad
        math = broadcast_kv and self.training.attn_implementation == "sdpa"
        if not math and self.training.attn_implementation != "eager" and not sinks:
            # flash / memory-efficient / cuDNN: q, k, v as passed (GQA: kv heads only), output, logsumexp
            if not needed:
                return self.act(v_width, False)
            out = self.act(v_width, True)
            grouped = kv_heads is not None and kv_heads < heads
            repeated = masked or qk_dim != v_dim or qk_dim > 256
            if grouped and self.training.attn_implementation == "sdpa" and repeated:
                k = self.act(qk_width, k.requires_grad)
                v = self.act(v_width, v.requires_grad)
            if masked and self.training.attn_implementation == "sdpa" and mask_shared:
                self.shared_mask_needed = True
            elif masked and self.training.attn_implementation == "sdpa":
                self.save(self.new(b * s * s, self.p, False))  # the layer's additive mask, a copy of its own
            lse_len = s
            if self.training.attn_implementation == "sdpa" and self.p == FP32:
                lse_len = ceil_div(s, 32) * 32  # fp32 runs the memory-efficient kernel, which pads it
            self.save(q, k, v, out, self.new(b * heads * lse_len, FP32, True))
            return out
        # eager: scores = q @ k^T with k repeated to all heads, softmax, probs @ v with v repeated. The math
        # kernel does the same in float32 (torch upcasts unless allow_fp16_bf16_reduction_math_sdp is set)
        width = FP32 if math else self.p
        # the math kernel's broadcast k and v stay unexpanded views when the batch is one sequence
        k_saved, v_saved = qk_width, v_width
        if broadcast_kv and b == 1 and kv_heads is not None:
            k_saved, v_saved = kv_heads * qk_dim, kv_heads * v_dim
        scores_rg = q.requires_grad or k.requires_grad
        self.save_if(k.requires_grad, self.act(qk_width, True, width))  # the query operand (a copy)
        self.save_if(q.requires_grad, self.act(k_saved, True, width))  # the key repeated to every head
        columns = s + 1 if sinks else s
        scores = b * heads * s * columns
        # gpt-oss subtracts each row's max before its softmax: max keeps its indices
        self.save_if(sinks and scores_rg, self.new(b * heads * s, INT64, False))
        if softcap:
            self.save_if(scores_rg, self.new(scores, self.p, True))  # tanh keeps its output
        softmax_bytes = FP32 if fp32_softmax or math else self.p
        probs = self.new(scores, softmax_bytes, scores_rg)
        self.save_if(scores_rg, probs)
        if softmax_bytes != width:
            probs = self.new(b * heads * s * s, self.p, scores_rg)  # .to(query.dtype) (sinks dropped)
        probs = self.dropout(probs, dropout)
        self.save_if(v.requires_grad, probs)
        self.save_if(scores_rg, self.act(v_saved, True, width))  # the value repeated to every head
        return self.act(v_width, needed)

    def mul_sigmoid(self, x: Tensor, gate: Tensor, gate_width: int, width: int) -> Tensor:
        """``x * sigmoid(gate)``: sigmoid keeps its output, the product keeps both operands as needed."""
        sigmoid = self.act(gate_width, gate.requires_grad)
        self.save_if(gate.requires_grad or x.requires_grad, sigmoid)
        self.save_if(gate.requires_grad, x)
        return self.act(width, x.requires_grad or gate.requires_grad)
