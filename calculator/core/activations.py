"""Bytes the forward pass keeps for backward, from a symbolic replay of each layer's autograd graph.

Autograd saves a tensor only when a gradient that needs it will be computed: a frozen linear layer
saves nothing (its weight is frozen and its input's gradient only needs the weight), while LoRA's
``lora_A`` saves its (fp32-cast, dropped-out) input and ``lora_B`` the rank-r activation. So what a
layer keeps depends on which tensors require grad, and the first layer differs from the others (its
input, the frozen embedding's output, does not). We replay each layer's forward with that rule per
operand, counting every storage once, and model the CUDA kernels (1-byte dropout masks, fused
attention saving q, k, v, output and a float32 log-sum-exp). Validated against measurements in
``tests/core/golden/memory_measured.json`` (see docs/accuracy.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count as counter

from .architecture import Architecture
from .dtypes import FLOAT_BYTES, compute_dtype
from .lora import LoraCount
from .training import TrainingSettings

FP32 = 4
INT64 = 8
CUDA_DROPOUT_MASK = 1  # CUDA's fused dropout keeps a bool mask; the CPU keeps one in the input dtype


@dataclass(frozen=True, slots=True)
class Tensor:
    storage: int
    nbytes: int
    elem_bytes: int
    requires_grad: bool


@dataclass(frozen=True, slots=True)
class Activations:
    layers_bytes: int  # all decoder layers, what they keep for backward
    outside_bytes: int  # embeddings, final norm, rotary tables: outside the layers, before the head
    logits_bytes: int  # output head and loss
    recompute_bytes: int  # with gradient checkpointing: one layer's activations rebuilt in backward
    per_layer_bytes: int  # a typical (not the first) layer without checkpointing
    head_transient_bytes: int  # logits-sized buffers alive at the loss besides what is saved


class Graph:
    """Records saved storages of one forward replay."""

    def __init__(
        self, tokens: int, act_bytes: int, adapter_bytes: int, training: TrainingSettings, full: bool = False
    ) -> None:
        self.full = full  # full fine-tuning: every weight trains, so every linear keeps its input
        self.tokens = tokens
        self.p = act_bytes
        self.a = adapter_bytes
        self.training = training
        self.saved: dict[int, int] = {}
        self._ids = counter()

    def new(self, numel: int, elem_bytes: int, requires_grad: bool) -> Tensor:
        return Tensor(next(self._ids), numel * elem_bytes, elem_bytes, requires_grad)

    def act(self, features: int, requires_grad: bool, elem_bytes: int | None = None) -> Tensor:
        """A (tokens x features) activation."""
        e = self.p if elem_bytes is None else elem_bytes
        return self.new(self.tokens * features, e, requires_grad)

    def save(self, *tensors: Tensor) -> None:
        for t in tensors:
            self.saved[t.storage] = t.nbytes

    def save_if(self, condition: bool, *tensors: Tensor) -> None:
        if condition:
            self.save(*tensors)

    @property
    def total(self) -> int:
        return sum(self.saved.values())

    # --- ops -----------------------------------------------------------------------------------

    def mul(self, a: Tensor, b: Tensor, out: Tensor) -> Tensor:
        """Elementwise product of two tensors: each operand is saved for the other's gradient."""
        self.save_if(b.requires_grad, a)
        self.save_if(a.requires_grad, b)
        return out

    def rms_norm(self, x: Tensor, size: int, *, gemma: bool = False) -> Tensor:
        """transformers' RMSNorm: upcast to fp32, x * rsqrt(mean(x²) + eps), weight (frozen) applied.

        Saves the fp32 input (the input itself when already fp32) and the per-row rsqrt; Gemma's
        ``1 + weight`` is a fresh (non-parameter) tensor saved for the product.
        """
        rows = x.nbytes // x.elem_bytes // size
        if x.requires_grad:
            upcast = x if x.elem_bytes == FP32 else self.new(rows * size, FP32, True)
            self.save(upcast, self.new(rows, FP32, True))
            if gemma:
                self.save(self.new(size, FP32, False))
        if self.full:  # a trainable norm weight keeps the normalised input for its gradient
            self.save(self.new(rows * size, FP32 if gemma else self.p, True))
        return self.new(rows * size, self.p, x.requires_grad or self.full)

    def layer_norm(self, x: Tensor, size: int) -> Tensor:
        """native_layer_norm saves its input, mean and rstd (fp32 per row)."""
        rows = x.nbytes // x.elem_bytes // size
        if x.requires_grad:
            self.save(x, self.new(rows, FP32, True), self.new(rows, FP32, True))
        return self.new(rows * size, self.p, x.requires_grad)

    def dropout(self, x: Tensor, p: float) -> Tensor:
        if p <= 0:
            return x
        if x.requires_grad:
            self.save(self.new(x.nbytes // x.elem_bytes, CUDA_DROPOUT_MASK, False))
        return self.new(x.nbytes // x.elem_bytes, x.elem_bytes, x.requires_grad)

    def linear(self, x: Tensor, in_features: int, out_features: int, lora: LoraModule | None) -> Tensor:
        """A frozen linear layer, with PEFT's LoRA branch when the module is adapted."""
        if self.full:
            self.save(x)
            return self.act(out_features, True)
        base_out = self.act(out_features, x.requires_grad)
        if lora is None:
            return base_out
        xc = x if x.elem_bytes == self.a else self.act(in_features, x.requires_grad, self.a)
        xd = self.dropout(xc, lora.dropout)
        self.save(xd)  # lora_A's weight needs its input
        hidden = self.act(lora.r, True, self.a)
        self.save(hidden)  # lora_B's weight needs lora_A's output
        lora_out = self.act(out_features, True, self.a)
        if lora.dora:
            # DoRA rescales: (m/‖W‖ - 1)·base + m/‖W‖·lora·s saves both products' other operand.
            self.save(base_out, lora_out, self.new(out_features, self.a, True))
        return self.act(out_features, True)

    def silu_mul(self, gate: Tensor, up: Tensor, features: int) -> Tensor:
        """act(gate) * up, with act a single kernel (SiLU, tanh-GELU) that saves its input."""
        self.save_if(gate.requires_grad, gate)
        activated = self.act(features, gate.requires_grad)
        return self.mul(activated, up, self.act(features, activated.requires_grad or up.requires_grad))


@dataclass(frozen=True, slots=True)
class LoraModule:
    r: int
    dropout: float
    dora: bool


LayerPlan = tuple[tuple[str, LoraModule | None], ...]


def estimate_activations(
    arch: Architecture, count: LoraCount, training: TrainingSettings, *, full: bool = False
) -> Activations:
    """Saved activations for one micro-batch; ``full`` models full fine-tuning instead of LoRA."""
    p = FLOAT_BYTES[compute_dtype(training.base_dtype)]
    a = FLOAT_BYTES[training.adapter_dtype]
    dropout = count.lora_dropout
    plans = _layer_plans(arch, count, dropout)
    embedding_trainable = full or _embedding_trainable(arch, count)
    first_rg = embedding_trainable or training.gradient_checkpointing

    def replay(plan: LayerPlan, input_rg: bool) -> tuple[int, bool]:
        graph = Graph(training.tokens, p, a, training, full)
        x = graph.act(arch.dims.hidden_size, input_rg)
        out = _layer_forward(arch, graph, x, dict(plan))
        return graph.total, out.requires_grad

    cache: dict[tuple[LayerPlan, bool], tuple[int, bool]] = {}
    layers_bytes = 0
    rg = first_rg
    typical = 0
    recompute = 0
    rope_rg = False
    for plan in plans:
        key = (plan, rg)
        if key not in cache:
            cache[key] = replay(plan, rg)
        layer_bytes, out_rg = cache[key]
        rope_rg = rope_rg or _rope_needs_tables(plan, rg)
        if not training.gradient_checkpointing:
            layers_bytes += layer_bytes
        else:
            # The checkpoint keeps the layer's input; the layer is rebuilt once during backward.
            layers_bytes += training.tokens * arch.dims.hidden_size * p
            recompute = max(recompute, cache.setdefault((plan, True), replay(plan, True))[0])
        typical = max(typical, layer_bytes)
        rg = out_rg

    outside = _outside_bytes(arch, training, p, final_rg=rg, rope=rope_rg and arch.model_type != "gpt2")
    logits, transient = _head_bytes(arch, count, training, p, a, rg, dropout, full)
    return Activations(
        layers_bytes=layers_bytes,
        outside_bytes=outside,
        logits_bytes=logits,
        recompute_bytes=recompute,
        per_layer_bytes=typical,
        head_transient_bytes=transient,
    )


def _layer_plans(arch: Architecture, count: LoraCount, dropout: float) -> list[LayerPlan]:
    """For each layer, which of its modules are adapted and with what rank."""
    per_layer: list[dict[str, LoraModule | None]] = [{} for _ in range(arch.num_layers)]
    prefix = f"{arch.layer_prefix}."
    for key, _module, r in count.adapted_keys:
        if not key.startswith(prefix):
            continue
        index_text, _, relative = key[len(prefix) :].partition(".")
        if index_text.isdigit() and int(index_text) < arch.num_layers:
            per_layer[int(index_text)][relative] = LoraModule(r, dropout, count.use_dora)
    return [tuple(sorted(d.items())) for d in per_layer]


def _embedding_trainable(arch: Architecture, count: LoraCount) -> bool:
    if any(key == arch.input_embedding for key, _, _ in count.adapted_keys):
        return True
    return arch.input_embedding in count.saved_modules


def _rope_needs_tables(plan: LayerPlan, input_rg: bool) -> bool:
    """cos/sin are saved (once, shared by all layers) when q or k requires grad somewhere."""
    names = {name for name, lora in plan if lora is not None}
    return input_rg or bool(names & {"self_attn.q_proj", "self_attn.k_proj", "self_attn.qkv_proj"})


def _outside_bytes(arch: Architecture, training: TrainingSettings, p: int, *, final_rg: bool, rope: bool) -> int:
    tokens, h = training.tokens, arch.dims.hidden_size
    total = 0
    if final_rg and arch.model_type == "gpt2":
        total += tokens * h * p + 2 * tokens * FP32  # ln_f: input, mean, rstd
    elif final_rg:
        total += tokens * h * FP32 + tokens * FP32  # final RMSNorm: fp32 input, rsqrt
        if arch.model_type in ("gemma", "gemma2"):
            total += h * FP32
    if rope:
        total += 2 * training.seq_len * arch.dims.head_dim * p
    return total


def _head_bytes(
    arch: Architecture,
    count: LoraCount,
    training: TrainingSettings,
    p: int,
    a: int,
    final_rg: bool,
    dropout: float,
    full: bool = False,
) -> tuple[int, int]:
    """Output head and loss: transformers upcasts the logits to fp32 and cross-entropy keeps the
    fp32 log-probabilities, the shifted labels (int64) and a scalar."""
    tokens, vocab, h = training.tokens, arch.dims.vocab_size, arch.dims.hidden_size
    graph = Graph(tokens, p, a, training)
    x = graph.act(h, final_rg)
    head_lora = next((r for key, _, r in count.adapted_keys if key == arch.output_head), None)
    if full or arch.output_head in count.saved_modules:
        graph.save(x)
        logits = graph.act(vocab, True)
    else:
        lora = LoraModule(head_lora, dropout, count.use_dora) if head_lora else None
        logits = graph.linear(x, h, vocab, lora)
    if not logits.requires_grad:
        return 0, 0
    if arch.model_type == "gemma2":
        graph.save(graph.act(vocab, True))  # final_logit_softcapping: tanh keeps its output
    graph.save(graph.act(vocab, True, FP32), graph.new(tokens, INT64, False), graph.new(1, FP32, False))
    # At the loss backward the fp32 gradient of the log-probs and of the logits coexist with them.
    transient = 2 * tokens * vocab * FP32
    return graph.total, transient


def _layer_forward(arch: Architecture, g: Graph, x: Tensor, lora: dict[str, LoraModule | None]) -> Tensor:
    if arch.model_type == "gpt2":
        return _gpt2_layer(arch, g, x, lora)
    return _decoder_layer(arch, g, x, lora)


def _attention_core(arch: Architecture, g: Graph, q: Tensor, k: Tensor, v: Tensor, *, softcap: bool) -> Tensor:
    """Scaled dot-product attention as the chosen kernel stores it for backward."""
    d = arch.dims
    b, s = g.training.batch_size, g.training.seq_len
    heads, kv_heads, hd = d.num_attention_heads, d.num_key_value_heads, d.head_dim
    needs = q.requires_grad or k.requires_grad or v.requires_grad
    out_features = heads * hd
    if g.training.attn_implementation == "eager":
        # repeat_kv expands k and v to all heads; matmul keeps each operand the other needs.
        k_full = g.act(out_features, k.requires_grad) if kv_heads != heads else k
        v_full = g.act(out_features, v.requires_grad) if kv_heads != heads else v
        g.save_if(k.requires_grad, q)
        g.save_if(q.requires_grad, k_full)
        scores_rg = q.requires_grad or k.requires_grad
        scores = b * heads * s * s
        if softcap and scores_rg:
            g.save(g.new(scores, g.p, True))  # tanh keeps its output
        softmax_out = g.new(scores, FP32, scores_rg)  # softmax runs in fp32 and keeps its result
        g.save_if(scores_rg, softmax_out)
        probs = softmax_out if g.p == FP32 else g.new(scores, g.p, scores_rg)
        g.save_if(v.requires_grad, probs)
        g.save_if(scores_rg, v_full)
        return g.act(out_features, needs)
    # sdpa / flash-attention: q, k, v (not expanded), the output and a fp32 log-sum-exp per row.
    if needs:
        g.save(q, k, v, g.new(b * heads * s, FP32, True))
        out = g.act(out_features, True)
        g.save(out)
        return out
    return g.act(out_features, False)


def _decoder_layer(arch: Architecture, g: Graph, x: Tensor, lora: dict[str, LoraModule | None]) -> Tensor:
    d = arch.dims
    h, hd = d.hidden_size, d.head_dim
    q_out, kv_out = d.num_attention_heads * hd, d.num_key_value_heads * hd
    gemma = arch.model_type in ("gemma", "gemma2")
    normed = g.rms_norm(x, h, gemma=gemma)
    if arch.model_type == "phi3":
        qkv = g.linear(normed, h, q_out + 2 * kv_out, lora.get("self_attn.qkv_proj"))
        q = k = v = qkv  # views of one storage
    else:
        q = g.linear(normed, h, q_out, lora.get("self_attn.q_proj"))
        k = g.linear(normed, h, kv_out, lora.get("self_attn.k_proj"))
        v = g.linear(normed, h, kv_out, lora.get("self_attn.v_proj"))
    if arch.model_type == "qwen3":
        q = g.rms_norm(q, hd)
        k = g.rms_norm(k, hd)
    # RoPE: q*cos + rotate_half(q)*sin keeps only the (shared) cos/sin tables; new q, k.
    q = g.act(q_out, q.requires_grad)
    k = g.act(kv_out, k.requires_grad)
    attn = _attention_core(arch, g, q, k, v, softcap=arch.model_type == "gemma2")
    o = g.linear(attn, q_out, h, lora.get("self_attn.o_proj"))
    if arch.model_type == "gemma2":
        o = g.rms_norm(o, h, gemma=True)
    x = g.act(h, x.requires_grad or o.requires_grad)
    normed = g.rms_norm(x, h, gemma=gemma)
    if arch.model_type == "mixtral":
        m = _moe(arch, g, normed)
    elif arch.model_type == "phi3":
        i = d.intermediate_size
        gate_up = g.linear(normed, h, 2 * i, lora.get("mlp.gate_up_proj"))
        hidden = g.silu_mul(gate_up, gate_up, i)
        m = g.linear(hidden, i, h, lora.get("mlp.down_proj"))
    else:
        i = d.intermediate_size
        gate = g.linear(normed, h, i, lora.get("mlp.gate_proj"))
        up = g.linear(normed, h, i, lora.get("mlp.up_proj"))
        hidden = g.silu_mul(gate, up, i)
        m = g.linear(hidden, i, h, lora.get("mlp.down_proj"))
    if arch.model_type == "gemma2":
        m = g.rms_norm(m, h, gemma=True)
    return g.act(h, x.requires_grad or m.requires_grad)


def _moe(arch: Architecture, g: Graph, x: Tensor) -> Tensor:
    """Mixtral (transformers 5): router softmax in fp32, then each token through top-k experts whose
    fused gate_up/down weights are frozen 3-D parameters."""
    d = arch.dims
    h, i, k, e = d.hidden_size, d.intermediate_size, d.num_experts_per_tok, d.num_local_experts
    if not x.requires_grad:
        return g.act(h, False)
    tokens = g.tokens
    g.save(g.new(tokens * e, FP32, True))  # router softmax result
    g.save(g.new(tokens * k, INT64, False), g.new(tokens * k, FP32, True))  # top-k indices, weights
    routed = tokens * k
    g.save(g.new(routed, INT64, False))  # token index per routed row
    g.save(g.new(routed * 2 * i, g.p, True))  # gate_up output (act input and up operand)
    g.save(g.new(routed * i, g.p, True))  # act output
    g.save(g.new(routed * h, g.p, True))  # expert output, scaled by its routing weight
    return g.act(h, True)


def _gpt2_layer(arch: Architecture, g: Graph, x: Tensor, lora: dict[str, LoraModule | None]) -> Tensor:
    d = arch.dims
    h, i = d.hidden_size, d.intermediate_size
    normed = g.layer_norm(x, h)
    qkv = g.linear(normed, h, 3 * h, lora.get("attn.c_attn"))
    attn = _attention_core(arch, g, qkv, qkv, qkv, softcap=False)
    o = g.linear(attn, h, h, lora.get("attn.c_proj"))
    x = g.act(h, x.requires_grad or o.requires_grad)
    normed = g.layer_norm(x, h)
    fc = g.linear(normed, h, i, lora.get("mlp.c_fc"))
    if fc.requires_grad:
        # gelu_new = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) as separate kernels
        g.save(fc, g.act(i, True), g.act(i, True), g.act(i, True))
    hidden = g.act(i, fc.requires_grad)
    m = g.linear(hidden, i, h, lora.get("mlp.c_proj"))
    return g.act(h, x.requires_grad or m.requires_grad)
