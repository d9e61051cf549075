"""Bytes the forward pass keeps for backward, from a symbolic replay of each layer's autograd graph.

Autograd saves a tensor only for a gradient that will be computed: a frozen linear layer keeps nothing
(its input's gradient needs only the frozen weight), while LoRA's ``lora_A`` keeps its (fp32-cast or
dropped-out) input and ``lora_B`` the rank-r activation. What a layer keeps therefore depends on which
tensors require grad, and the first layer differs from the others (its input, the frozen embedding's
output, does not). We replay each layer's forward with that rule applied per operand, count every storage
once, and model the CUDA kernels: 1-byte dropout masks, fused attention keeping q, k, v, the output and a
float32 log-sum-exp, float32 LayerNorm statistics. Checked against measurements of real models
(`tests/core/golden/memory_measured.json`, see docs/accuracy.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import count as counter

from .architecture import Architecture
from .dtypes import FLOAT_BYTES, ceil_div
from .lora import LoraCount
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


@dataclass(frozen=True, slots=True)
class Activations:
    layers_bytes: int  # the decoder layers (with checkpointing: what the checkpoints keep)
    outside_bytes: int  # outside the layers before the head: final norm, rotary tables, checkpoint kwargs
    logits_bytes: int  # output head and loss
    recompute_bytes: int  # with checkpointing: one layer rebuilt during backward (part of the peak)
    per_layer_bytes: int  # the largest layer without checkpointing
    head_transient_bytes: int  # logits-sized buffers alive around the loss besides what is saved


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
        self._ids = counter()

    def new(self, numel: int, elem_bytes: int, requires_grad: bool) -> Tensor:
        return Tensor(next(self._ids), numel * elem_bytes, elem_bytes, requires_grad)

    def act(self, features: int, requires_grad: bool, elem_bytes: int | None = None) -> Tensor:
        """A (tokens x features) activation."""
        return self.new(self.tokens * features, self.p if elem_bytes is None else elem_bytes, requires_grad)

    def save(self, *tensors: Tensor) -> None:
        for t in tensors:
            self.saved[t.storage] = t.nbytes

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

    def rms_norm(self, x: Tensor, size: int, *, gemma: bool = False) -> Tensor:
        """transformers' RMSNorm: x.float() (the input itself when fp32) and rsqrt per row are kept;
        Gemma's ``1 + weight.float()`` is a fresh tensor kept for the product. The weight is frozen."""
        rows = x.nbytes // x.elem_bytes // size
        if x.requires_grad:
            self.save(x if x.elem_bytes == FP32 else self.new(rows * size, FP32, True))
            self.save(self.new(rows, FP32, True))
            if gemma:
                self.save(self.new(size, FP32, False))
        if self.full:  # a trainable norm weight keeps the normalised input for its own gradient
            self.save(self.new(rows * size, FP32 if gemma else self.p, True))
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

    def attention(self, q: Tensor, k: Tensor, v: Tensor, *, softcap: bool = False, fp32_softmax: bool = True) -> Tensor:
        """Scaled dot-product attention as the chosen kernel stores it; returns the output."""
        d = self.arch.dims
        b, s = self.training.batch_size, self.training.seq_len
        heads, hd = d.num_attention_heads, d.head_dim
        width = heads * hd
        needed = q.requires_grad or k.requires_grad or v.requires_grad
        if self.training.attn_implementation != "eager":
            # flash / memory-efficient / cuDNN: q, k, v as passed (GQA: kv heads only), output, logsumexp
            if not needed:
                return self.act(width, False)
            out = self.act(width, True)
            lse_len = s
            if self.training.attn_implementation == "sdpa" and self.p == FP32:
                lse_len = ceil_div(s, 32) * 32  # fp32 runs the memory-efficient kernel, which pads it
            self.save(q, k, v, out, self.new(b * heads * lse_len, FP32, True))
            return out
        # eager: scores = q @ k^T with k repeated to all heads, softmax, probs @ v with v repeated
        scores_rg = q.requires_grad or k.requires_grad
        self.save_if(k.requires_grad, self.act(width, True))  # the query operand (a copy)
        self.save_if(q.requires_grad, self.act(width, True))  # the key repeated to every head
        scores = b * heads * s * s
        if softcap:
            self.save_if(scores_rg, self.new(scores, self.p, True))  # tanh keeps its output
        softmax_bytes = FP32 if fp32_softmax else self.p
        probs = self.new(scores, softmax_bytes, scores_rg)
        self.save_if(scores_rg, probs)
        if softmax_bytes != self.p:
            probs = self.new(scores, self.p, scores_rg)  # .to(query.dtype)
        probs = self.dropout(probs, d.attention_dropout)
        self.save_if(v.requires_grad, probs)
        self.save_if(scores_rg, self.act(width, True))  # the value repeated to every head
        return self.act(width, needed)


def _decoder_layer(g: Graph, x: Tensor, lora: dict[str, LoraModule | None]) -> Tensor:
    """Llama-style layer: llama, mistral, mixtral, qwen2 (frozen q/k/v biases keep nothing), qwen3
    (q/k norms), gemma, gemma2 (four norms, soft-capping), phi3 (fused qkv and gate_up)."""
    arch = g.arch
    d, mt = arch.dims, arch.model_type
    h, hd = d.hidden_size, d.head_dim
    q_out, kv_out = d.num_attention_heads * hd, d.num_key_value_heads * hd
    gemma = mt in ("gemma", "gemma2")
    normed = g.rms_norm(x, h, gemma=gemma)
    if mt == "phi3":
        qkv = g.linear(normed, h, q_out + 2 * kv_out, lora.get("self_attn.qkv_proj"))
        q = k = v = qkv  # views of one storage: keeping v keeps all of it
    else:
        q = g.linear(normed, h, q_out, lora.get("self_attn.q_proj"))
        k = g.linear(normed, h, kv_out, lora.get("self_attn.k_proj"))
        v = g.linear(normed, h, kv_out, lora.get("self_attn.v_proj"))
    if mt == "qwen3":
        q = g.rms_norm(q, hd)
        k = g.rms_norm(k, hd)
    # RoPE: q·cos + rotate_half(q)·sin keeps only the cos/sin tables, shared by all layers (counted outside).
    g.rope_needed = g.rope_needed or q.requires_grad or k.requires_grad or g.full
    q = g.act(q_out, q.requires_grad or g.full)
    k = g.act(kv_out, k.requires_grad or g.full)
    attn = g.attention(q, k, v, softcap=mt == "gemma2")
    o = g.linear(attn, q_out, h, lora.get("self_attn.o_proj"))
    if mt == "gemma2":
        o = g.rms_norm(o, h, gemma=True)
    o = g.dropout(o, d.residual_dropout)  # Phi-3's resid_attn_dropout
    x = g.act(h, x.requires_grad or o.requires_grad)
    normed = g.rms_norm(x, h, gemma=gemma)
    i = d.intermediate_size
    if mt == "mixtral":
        m = _moe(g, normed, lora)
    elif mt == "phi3":
        gate_up = g.linear(normed, h, 2 * i, lora.get("mlp.gate_up_proj"))
        m = g.linear(g.gated_mlp(gate_up, gate_up, i), i, h, lora.get("mlp.down_proj"))
    else:
        gate = g.linear(normed, h, i, lora.get("mlp.gate_proj"))
        up = g.linear(normed, h, i, lora.get("mlp.up_proj"))
        m = g.linear(g.gated_mlp(gate, up, i), i, h, lora.get("mlp.down_proj"))
    if mt == "gemma2":
        m = g.rms_norm(m, h, gemma=True)
    m = g.dropout(m, d.residual_dropout)  # Phi-3's resid_mlp_dropout
    return g.act(h, x.requires_grad or m.requires_grad)


def _moe(g: Graph, x: Tensor, lora: dict[str, LoraModule | None]) -> Tensor:
    """Mixtral in transformers 5 (grouped_mm experts), as measured. ``S = tokens·top_k`` routed rows; no
    tensor depends on how tokens are routed. Router: fp32 softmax, top-k indices, the normalising sum and
    a copy of the weights. Experts: three index tensors and the group offsets, the gate_up output (gate and
    up are views of it), the activation output, the routing weight per row and the down output. LoRA on an
    expert parameter (PEFT's ParamWrapper) keeps its input rows and the merged 3-D weight in the compute
    dtype (plus the LoRA factors cast to it on a 16-bit base); LoRA on the router keeps its input and the
    merged router weight."""
    d = g.arch.dims
    h, i, k, e = d.hidden_size, d.intermediate_size, d.num_experts_per_tok, d.num_local_experts
    tokens, routed, p = g.tokens, g.tokens * d.num_experts_per_tok, g.p
    router = lora.get("mlp.gate.weight")
    gate_up = lora.get("mlp.experts.gate_up_proj")
    down = lora.get("mlp.experts.down_proj")
    x_rg = x.requires_grad or g.full
    weights_rg = x_rg or router is not None  # the routing weights need a gradient
    gate_up_rg = x_rg or gate_up is not None
    down_rg = gate_up_rg or down is not None
    if not (weights_rg or down_rg):
        return g.act(h, False)
    if router is not None:
        g.save(x)
        g.save_if(x_rg, g.new(e * h, p, False))  # the merged router weight
    g.save_if(weights_rg, g.new(tokens * (4 * e + 12 * k + 4), 1, True))  # softmax, top-k, sum, weights
    g.save_if(x_rg, g.new(routed * INT64, 1, False))  # perm // k
    g.save_if(weights_rg, g.new(routed * INT64, 1, False))  # perm
    g.save_if(gate_up_rg or down is not None, g.new(e, 4, False))  # grouped_mm offsets (int32)
    g.save_if(gate_up_rg, g.new(routed * 3 * i, p, True))  # gate_up output (gate, up views), act output
    g.save_if(down_rg, g.new(routed, FP32, True))  # routing weight per row
    g.save_if(weights_rg, g.new(routed * h, p, True))  # down output
    g.save_if(down_rg or weights_rg, g.new(routed * INT64, 1, False))  # inverse perm
    if gate_up is not None:
        g.save(g.new(routed * h, p, True))  # the routed input rows
        g.save_if(x_rg, g.new(2 * e * i * h, p, False))  # merged gate_up weight, for the input's gradient
        if p != g.a:
            g.save(g.new(e * gate_up.r * (2 * i + h), p, False))  # LoRA factors cast to the compute dtype
    if down is not None:
        g.save(g.new(routed * i, p, True))  # act * up rows
        g.save_if(gate_up_rg, g.new(e * h * i, p, False))  # merged down weight
        if p != g.a:
            g.save(g.new(e * down.r * (h + i), p, False))
    if g.full:
        g.save(g.new(routed * (h + i), p, True))
    return g.act(h, weights_rg or down_rg)


def _gpt2_layer(g: Graph, x: Tensor, lora: dict[str, LoraModule | None]) -> Tensor:
    """GPT-2 block: LayerNorm, fused Conv1D c_attn (q, k, v views of one output), softmax in the compute
    dtype, gelu_new as separate kernels, residual dropouts."""
    d = g.arch.dims
    h, i = d.hidden_size, d.intermediate_size
    qkv = g.linear(g.layer_norm(x, h), h, 3 * h, lora.get("attn.c_attn"))
    attn = g.attention(qkv, qkv, qkv, fp32_softmax=False)
    o = g.dropout(g.linear(attn, h, h, lora.get("attn.c_proj")), d.residual_dropout)
    x = g.act(h, x.requires_grad or o.requires_grad)
    fc = g.linear(g.layer_norm(x, h), h, i, lora.get("mlp.c_fc"))
    if fc.requires_grad:
        # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): x, tanh, 1 + tanh and 0.5·x are kept
        g.save(fc, g.act(i, True), g.act(i, True), g.act(i, True))
    m = g.dropout(g.linear(g.act(i, fc.requires_grad), i, h, lora.get("mlp.c_proj")), d.residual_dropout)
    return g.act(h, x.requires_grad or m.requires_grad)


def _layer(g: Graph, x: Tensor, plan: LayerPlan) -> Tensor:
    lora = dict(plan)
    return _gpt2_layer(g, x, lora) if g.arch.model_type == "gpt2" else _decoder_layer(g, x, lora)


def _layer_plans(arch: Architecture, count: LoraCount) -> list[tuple[LayerPlan, int]]:
    """Runs of consecutive layers with the same adapted modules and ranks: (plan, number of layers)."""
    shared: dict[str, LoraModule] = {}
    specific: dict[int, dict[str, LoraModule]] = {}
    for path, layer, r in count.layer_adapters:
        module = LoraModule(r, count.lora_dropout, count.use_dora)
        if layer is None:
            shared[path] = module
        elif layer < arch.num_layers:
            specific.setdefault(layer, {})[path] = module
    prefix = f"{arch.layer_prefix}."
    for key, _shape, r in count.parameter_keys:  # LoRA on bare parameters (MoE experts, router)
        layer_text, _, relative = key.removeprefix(prefix).partition(".")
        if layer_text.isdigit() and int(layer_text) < arch.num_layers:
            specific.setdefault(int(layer_text), {})[relative] = LoraModule(r, 0.0, False)
    common: LayerPlan = tuple(sorted(shared.items()))
    if not specific:
        return [(common, arch.num_layers)]
    runs: list[tuple[LayerPlan, int]] = []
    for index in range(arch.num_layers):
        extra = specific.get(index)
        plan = tuple(sorted({**shared, **extra}.items())) if extra else common
        if runs and runs[-1][0] == plan:
            runs[-1] = (plan, runs[-1][1] + 1)
        else:
            runs.append((plan, 1))
    return runs


@dataclass(frozen=True, slots=True)
class _LayerReplay:
    saved_bytes: int
    input_saved_bytes: int  # part of saved_bytes that is the layer's own input storage
    output_requires_grad: bool
    rope_needed: bool


def _replay(
    arch: Architecture, training: TrainingSettings, plan: LayerPlan, input_rg: bool, full: bool
) -> _LayerReplay:
    # Key the cache on the only settings a layer's saved tensors depend on, so an advice search that
    # changes the optimizer, checkpointing, quantization format or GPU count reuses every replay.
    base = training.base_dtype if training.base_dtype == "int8" else training.float_dtype
    layer_settings = TrainingSettings(
        base_dtype=base,
        adapter_dtype=training.adapter_dtype,
        batch_size=training.batch_size,
        seq_len=training.seq_len,
        attn_implementation=training.attn_implementation,
        prepare_model_for_kbit_training=training.prepare_model_for_kbit_training,
    )
    return _replay_layer(arch, layer_settings, plan, input_rg, full)


@lru_cache(maxsize=4096)
def _replay_layer(
    arch: Architecture, training: TrainingSettings, plan: LayerPlan, input_rg: bool, full: bool
) -> _LayerReplay:
    g = Graph(arch, training, full)
    x = g.act(arch.dims.hidden_size, input_rg)
    out = _layer(g, x, plan)
    return _LayerReplay(g.total, g.saved.get(x.storage, 0), out.requires_grad, g.rope_needed)


def estimate_activations(
    arch: Architecture, count: LoraCount, training: TrainingSettings, *, full: bool = False
) -> Activations:
    """Saved activations for one micro-batch; ``full`` models full fine-tuning instead of LoRA.

    With gradient checkpointing the embedding output requires grad (transformers/PEFT call
    ``enable_input_require_grads``), every layer keeps only its input, and one layer is rebuilt during
    backward at a time.
    """
    p = FLOAT_BYTES[training.float_dtype]
    tokens, h, s = training.tokens, arch.dims.hidden_size, training.seq_len
    checkpointing = training.gradient_checkpointing
    embedding_trainable = full or _embedding_trainable(arch, count)
    rg = embedding_trainable or checkpointing
    cache: dict[tuple[LayerPlan, bool], _LayerReplay] = {}

    def replay(plan: LayerPlan, input_rg: bool) -> _LayerReplay:
        key = (plan, input_rg)
        if key not in cache:
            cache[key] = _replay(arch, training, plan, input_rg, full)
        return cache[key]

    layers_bytes = typical = recompute = 0
    rope = False
    for plan, layers in _layer_plans(arch, count):
        while layers:
            layer = replay(plan, rg)
            # Once a layer's output needs a gradient exactly when its input does, the rest of the run repeats.
            repeats = layers if layer.output_requires_grad == rg else 1
            rope = rope or layer.rope_needed
            typical = max(typical, layer.saved_bytes)
            if checkpointing:
                layers_bytes += repeats * (tokens * h * p + _int8_checkpoint_leak(arch, training))
                recompute = max(recompute, layer.saved_bytes - layer.input_saved_bytes)
            else:
                layers_bytes += repeats * layer.saved_bytes
            rg = layer.output_requires_grad
            layers -= repeats

    outside = _final_norm_bytes(arch, training, p) if rg else 0
    if rope and arch.model_type != "gpt2":
        outside += 2 * s * arch.dims.head_dim * p  # cos, sin: one pair for all layers
    if checkpointing:
        outside += _checkpoint_kwargs_bytes(arch, training, p)
    logits, transient = _head_bytes(arch, count, training, rg, full)
    return Activations(
        layers_bytes=layers_bytes,
        outside_bytes=outside,
        logits_bytes=logits,
        recompute_bytes=recompute,
        per_layer_bytes=typical,
        head_transient_bytes=transient,
    )


def _embedding_trainable(arch: Architecture, count: LoraCount) -> bool:
    if any(path == arch.input_embedding for path, _ in count.global_adapters):
        return True
    return arch.input_embedding in count.saved_modules


def _final_norm_bytes(arch: Architecture, training: TrainingSettings, p: int) -> int:
    tokens, h = training.tokens, arch.dims.hidden_size
    if arch.model_type == "gpt2":
        return tokens * h * p + 2 * tokens * FP32  # ln_f: input, mean, rstd
    gemma = h * FP32 if arch.model_type in ("gemma", "gemma2") else 0
    return tokens * h * FP32 + tokens * FP32 + gemma  # fp32 input, rsqrt


def _checkpoint_kwargs_bytes(arch: Architecture, training: TrainingSettings, p: int) -> int:
    """What the checkpointed forward keeps besides the layer inputs: the arguments every layer gets
    (position ids, the eager 4-D mask; rotary tables are counted with the layers' use of them) and, for
    GPT-2, the embedding output that requires grad plus its dropout mask."""
    tokens, h, b, s = training.tokens, arch.dims.hidden_size, training.batch_size, training.seq_len
    total = INT64 * s  # position_ids
    if training.attn_implementation == "eager":
        masks = 2 if arch.model_type == "gemma2" else 1  # Gemma 2: full and sliding-window masks
        total += masks * b * s * s * p
    if arch.model_type == "gpt2":
        total += tokens * h * p  # the wte output leaf, separate from wte + wpe
        if arch.dims.embedding_dropout > 0:
            total += tokens * h * CUDA_MASK
    return total


def _int8_checkpoint_leak(arch: Architecture, training: TrainingSettings) -> int:
    """bitsandbytes int8 layers keep their inputs as ctx attributes, which non-reentrant checkpointing
    cannot drop: the inputs of every int8 linear layer stay alive."""
    if training.base_dtype != "int8":
        return 0
    d = arch.dims
    attn_width = d.hidden_size if arch.model_type == "gpt2" else d.num_attention_heads * d.head_dim
    p = FLOAT_BYTES[training.float_dtype]
    return training.tokens * p * (2 * d.hidden_size + attn_width + d.intermediate_size)


def _head_bytes(
    arch: Architecture, count: LoraCount, training: TrainingSettings, final_rg: bool, full: bool
) -> tuple[int, int]:
    """Output head and loss: transformers upcasts the logits to fp32; cross-entropy keeps the fp32
    log-probabilities, the shifted labels (int64) and a scalar; Gemma 2's final soft-capping keeps a
    tanh. Returns (saved bytes, transient bytes around the loss)."""
    b, s = training.batch_size, training.seq_len
    tokens, vocab, h = training.tokens, arch.dims.vocab_size, arch.dims.hidden_size
    g = Graph(arch, training, full)
    g.int8 = False  # the output head is never quantized
    x = g.act(h, final_rg)
    head_r = next((r for path, r in count.global_adapters if path == arch.output_head), None)
    if full or arch.output_head in count.saved_modules:
        g.save(x)  # a trainable head keeps its input
        logits = g.act(vocab, True)
    else:
        lora = LoraModule(head_r, count.lora_dropout, count.use_dora) if head_r else None
        logits = g.linear(x, h, vocab, lora)
    if not logits.requires_grad:
        return 0, 0
    if arch.model_type == "gemma2":
        g.save(g.act(vocab, True))  # final_logit_softcapping's tanh output
    labels = INT64 * (s + 1 if b == 1 else tokens)  # shifted labels; with b = 1 a view of the padded row
    g.save(g.act(vocab, True, FP32), g.new(labels, 1, False), g.new(1, FP32, False))
    # At log_softmax's backward its output (saved), the incoming gradient and the outgoing fp32 gradient
    # coexist: two more fp32 logits-sized buffers at the peak.
    return g.total, 2 * tokens * vocab * FP32
