"""One decoder layer's forward replayed on the symbolic graph (`graph.Graph`), from its block description.

A layer kind's `families.build.Block` says which mixer (attention, MLA, gated DeltaNet, short convolution),
which feed-forward (gated MLP, MLP, mixture of experts) and how the norms sit around them; each function here
replays one of those building blocks as transformers 5.23's modeling code runs it. The Llama-style blocks,
GPT-2's and Mixtral's experts are checked against measurements (`tests/core/golden/memory_measured.json`);
the others follow the modeling code and are checked as measurements for them land (docs/accuracy.md says
which).
"""

from __future__ import annotations

from typing import Any

from .expressions import num
from .families.spec import Attention, GatedDeltaNet, GatedMlp, Mla, Mlp, Moe, Norms, ShortConv
from .graph import FP32, INT64, Graph, LoraModule, Tensor

LayerPlan = tuple[tuple[str, LoraModule | None], ...]
Lora = dict[str, LoraModule | None]


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def replay_layer(g: Graph, x: Tensor, block: Any, plan: LayerPlan) -> Tensor:
    """The layer's output; what it saves for backward accumulates in ``g``."""
    lora = dict(plan)
    if isinstance(block.mixer, Attention) and block.mixer.cross:
        return x  # Mllama skips its cross-attention layers on text-only batches
    norms: Norms = block.norms
    h = num(norms.size)
    resid = block.dropout[1]
    names = norms.names
    if norms.style == "pre":
        a = g.dropout(_mixer(g, _norm(g, x, norms), block, lora), resid)
        x = g.act(h, x.requires_grad or a.requires_grad)
        m = g.dropout(_ffn(g, _norm(g, x, norms), block, lora), resid)
        out = g.act(h, x.requires_grad or m.requires_grad)
    elif norms.style == "sandwich":
        a = g.dropout(_norm(g, _mixer(g, _norm(g, x, norms), block, lora), norms), resid)
        x = g.act(h, x.requires_grad or a.requires_grad)
        m = g.dropout(_norm(g, _ffn(g, _norm(g, x, norms), block, lora), norms), resid)
        out = g.act(h, x.requires_grad or m.requires_grad)
    elif norms.style == "post":
        a = _norm(g, _mixer(g, x, block, lora), norms)
        x = g.act(h, x.requires_grad or a.requires_grad)
        m = _norm(g, _ffn(g, x, block, lora), norms)
        out = g.act(h, x.requires_grad or m.requires_grad)
    else:  # parallel: one norm feeds both blocks (parallel2: one norm each)
        normed = _norm(g, x, norms)
        a = _mixer(g, normed, block, lora)
        m = _ffn(g, normed if len(names) == 1 else _norm(g, x, norms), block, lora)
        out = g.act(h, x.requires_grad or a.requires_grad or m.requires_grad)
    if block.per_layer_input is not None:
        out = _per_layer_input(g, out, block, lora)
    return out


def _norm(g: Graph, x: Tensor, norms: Norms) -> Tensor:
    size = num(norms.size)
    if norms.kind == "cohere":
        return g.cohere_norm(x, size)
    if norms.kind == "layer":
        return g.layer_norm(x, size)
    return g.rms_norm(x, size, gemma=norms.kind == "rms_gemma")


def _mixer(g: Graph, x: Tensor, block: Any, lora: Lora) -> Tensor:
    mixer = block.mixer
    if isinstance(mixer, Attention):
        return _attention(g, x, mixer, block, lora)
    if isinstance(mixer, Mla):
        return _mla(g, x, mixer, block, lora)
    if isinstance(mixer, GatedDeltaNet):
        return _deltanet(g, x, mixer, lora)
    assert isinstance(mixer, ShortConv)
    return _short_conv(g, x, mixer, lora)


def _ffn(g: Graph, x: Tensor, block: Any, lora: Lora) -> Tensor:
    ffn = block.ffn
    if isinstance(ffn, GatedMlp):
        return _gated_mlp(g, x, ffn, lora)
    if isinstance(ffn, Mlp):
        return _mlp(g, x, ffn, lora)
    assert isinstance(ffn, Moe)
    return _moe(g, x, ffn, lora)


def _rope(g: Graph, q: Tensor, k: Tensor, q_out: int, kv_out: int) -> tuple[Tensor, Tensor]:
    """RoPE: q·cos + rotate_half(q)·sin keeps only the cos/sin tables, shared by all layers (counted outside)."""
    g.rope_needed = g.rope_needed or q.requires_grad or k.requires_grad or g.full
    return g.act(q_out, q.requires_grad or g.full), g.act(kv_out, k.requires_grad or g.full)


def _attention(g: Graph, x: Tensor, a: Attention, block: Any, lora: Lora) -> Tensor:
    """Llama-style attention: projections (or one fused qkv whose q, k, v are views of one storage),
    optional q/k norms, RoPE, the attention kernel, the output projection. Frozen q/k/v biases keep nothing."""
    c = a.container
    h, heads, kv, hd = num(a.hidden), num(a.heads), num(a.kv_heads), num(a.head_dim)
    q_out, kv_out = heads * hd, kv * hd
    if a.fused:
        qkv = g.linear(x, h, q_out + 2 * kv_out, lora.get(_join(c, a.fused)))
        q = k = v = qkv  # views of one storage: keeping v keeps all of it
    else:
        q = g.linear(x, h, q_out * (2 if a.q_gate else 1), lora.get(_join(c, a.q)))
        if a.has_kv:
            k = g.linear(x, h, kv_out, lora.get(_join(c, a.k)))
            v = g.linear(x, h, kv_out, lora.get(_join(c, a.v))) if a.has_v else k
        else:  # Gemma 4's KV sharing: an earlier layer's k and v (already kept by that layer)
            k = v = g.act(kv_out, False)
    gate = q if a.q_gate else None  # Qwen3-Next / Qwen3.5: q_proj's second half gates the output
    if a.qk_norm in ("head", "full") and a.qk_norm_when:
        gemma = block.norms.kind == "rms_gemma"
        q_size, k_size = (hd, hd) if a.qk_norm == "head" else (q_out, kv_out)
        if a.qk_norm_bias:
            q, k = g.layer_norm(q, q_size), g.layer_norm(k, k_size)
        else:
            q, k = g.rms_norm(q, q_size, gemma=gemma), g.rms_norm(k, k_size, gemma=gemma)
    if a.rotary:
        q, k = _rope(g, q, k, q_out, kv_out)
    elif a.qk_norm == "l2":  # Llama 4: a parameter-free L2 norm on the RoPE layers' q and k
        q, k = g.rms_norm(q, hd), g.rms_norm(k, hd)
    if a.v_norm:
        v = g.rms_norm(v, hd)
    out = g.attention(
        q,
        k,
        v,
        heads=heads,
        qk_dim=hd,
        v_dim=hd,
        kv_heads=kv,
        masked=_sliding_mask(g, a),
        softcap=bool(a.softcap),
        fp32_softmax=a.fp32_softmax,
        dropout=block.dropout[0],
        sinks=a.sinks,
    )
    if gate is not None:
        out = g.mul_sigmoid(out, gate, q_out, q_out)
    return g.linear(out, q_out, h, lora.get(_join(c, a.o)))


def _sliding_mask(g: Graph, a: Attention) -> bool:
    """Whether the layer gets a 4-D mask (a sliding window shorter than the sequence): sdpa then cannot use
    its causal flag alone (transformers' masking_utils skips the mask only while the keys are fewer than the
    window: ``_ignore_causal_mask_sdpa``)."""
    window = g.arch.forward.sliding_window
    return bool(a.sliding) and window is not None and g.training.seq_len >= window


def _mla(g: Graph, x: Tensor, a: Mla, block: Any, lora: Lora) -> Tensor:
    """DeepSeek's latent attention as transformers runs it (non-absorbed, for training): q (through the
    q_a/q_b bottleneck and its norm), the compressed kv and its norm, kv_b's per-head k and v, RoPE on the
    rope slice, attention with qk_dim = nope + rope and v_dim, o_proj."""
    c = a.container
    h, heads = num(a.hidden), num(a.heads)
    nope, rope, vd = num(a.qk_nope_head_dim), num(a.qk_rope_head_dim), num(a.v_head_dim)
    kv_rank = num(a.kv_lora_rank)
    qk = nope + rope
    if a.q_lora_rank:
        q_rank = num(a.q_lora_rank)
        q = g.linear(x, h, q_rank, lora.get(f"{c}.q_a_proj"))
        q = g.rms_norm(q, q_rank)
        q = g.linear(q, q_rank, heads * qk, lora.get(f"{c}.q_b_proj"))
    else:
        q = g.linear(x, h, heads * qk, lora.get(f"{c}.q_proj"))
    compressed = g.linear(x, h, kv_rank + rope, lora.get(f"{c}.kv_a_proj_with_mqa"))
    latent = g.rms_norm(g.act(kv_rank, compressed.requires_grad), kv_rank)
    kv = g.linear(latent, kv_rank, heads * (nope + vd), lora.get(f"{c}.kv_b_proj"))
    q, k = _rope(g, q, kv, heads * qk, heads * qk)
    v = g.act(heads * vd, kv.requires_grad)
    out = g.attention(q, k, v, heads=heads, qk_dim=qk, v_dim=vd, dropout=block.dropout[0])
    return g.linear(out, heads * vd, h, lora.get(f"{c}.o_proj"))


def _deltanet(g: Graph, x: Tensor, a: GatedDeltaNet, lora: Lora) -> Tensor:
    """Gated DeltaNet (Qwen3-Next / Qwen3.5) as its chunked torch path keeps tensors: the projections, the
    causal depthwise convolution and SiLU on q, k, v, the decay and beta gates, the recurrent state per chunk,
    the gated RMSNorm and out_proj. (The fla/causal-conv1d CUDA kernels keep less: a conservative estimate.)"""
    c = a.container
    h = num(a.hidden)
    kh, vh, kd, vd = num(a.key_heads), num(a.value_heads), num(a.key_dim), num(a.value_dim)
    key_total, value_total = kh * kd, vh * vd
    conv_dim = 2 * key_total + value_total
    if a.split:
        qkv = g.linear(x, h, conv_dim, lora.get(f"{c}.in_proj_qkv"))
        z = g.linear(x, h, value_total, lora.get(f"{c}.in_proj_z"))
        b = g.linear(x, h, vh, lora.get(f"{c}.in_proj_b"))
        g.linear(x, h, vh, lora.get(f"{c}.in_proj_a"))
    else:
        qkvz = g.linear(x, h, 2 * key_total + 2 * value_total, lora.get(f"{c}.in_proj_qkvz"))
        b = g.linear(x, h, 2 * vh, lora.get(f"{c}.in_proj_ba"))
        qkv, z = qkvz, qkvz
    rg = qkv.requires_grad
    g.save_if(rg, qkv)  # the convolution keeps its input
    conv = g.act(conv_dim, rg)
    g.save_if(rg, conv)  # SiLU keeps its input
    mixed = g.act(conv_dim, rg)
    gates = g.act(2 * vh, b.requires_grad or rg, FP32)
    g.save_if(rg or b.requires_grad, gates)
    g.save_if(rg, mixed)
    core = g.act(value_total, rg or b.requires_grad)
    g.save_if(core.requires_grad, core)
    normed = g.rms_norm(core, vd)
    g.save_if(z.requires_grad or normed.requires_grad, g.act(value_total, True))  # silu(z) for the gate
    gated = g.act(value_total, normed.requires_grad or z.requires_grad)
    return g.linear(gated, value_total, h, lora.get(f"{c}.out_proj"))


def _short_conv(g: Graph, x: Tensor, a: ShortConv, lora: Lora) -> Tensor:
    """LFM2's gated short convolution: in_proj into B, C and x; B·x; a causal depthwise Conv1d; C·conv; out_proj."""
    c, h = a.container, num(a.hidden)
    bcx = g.linear(x, h, 3 * h, lora.get(f"{c}.in_proj"))
    rg = bcx.requires_grad
    g.save_if(rg, g.act(h, True), g.act(h, True))  # B and x for their product
    bx = g.act(h, rg)
    g.save_if(rg, bx)  # the convolution's input
    conv = g.act(h, rg)
    g.save_if(rg, conv, g.act(h, True))  # C and the convolution output for their product
    y = g.act(h, rg)
    return g.linear(y, h, h, lora.get(f"{c}.out_proj"))


def _gated_mlp(g: Graph, x: Tensor, m: GatedMlp, lora: Lora, prefix: str = "") -> Tensor:
    c = _join(prefix, m.container)
    h, i = num(m.hidden), num(m.intermediate)
    if m.fused:
        gate_up = g.linear(x, h, 2 * i, lora.get(_join(c, m.fused)))
        activated = g.gated_mlp(gate_up, gate_up, i)
    else:
        gate = g.linear(x, h, i, lora.get(_join(c, m.gate)))
        up = g.linear(x, h, i, lora.get(_join(c, m.up)))
        activated = g.gated_mlp(gate, up, i)
    return g.linear(activated, i, h, lora.get(_join(c, m.down)))


def _mlp(g: Graph, x: Tensor, m: Mlp, lora: Lora) -> Tensor:
    """fc_in, activation, fc_out. GPT-2's gelu_new runs as separate kernels: 0.5·x·(1 + tanh(√(2/π)·(x +
    0.044715·x³))) keeps x, tanh, 1 + tanh and 0.5·x; a one-kernel GELU keeps its input."""
    c, h, i = m.container, num(m.hidden), num(m.intermediate)
    fc = g.linear(x, h, i, lora.get(f"{c}.{m.fc_in}"))
    if fc.requires_grad:
        g.save(fc)
        if m.gelu_tanh_parts:
            g.save(g.act(i, True), g.act(i, True), g.act(i, True))
    return g.linear(g.act(i, fc.requires_grad), i, h, lora.get(f"{c}.{m.fc_out}"))


def _moe(g: Graph, x: Tensor, m: Moe, lora: Lora) -> Tensor:
    """Routed experts in transformers 5 (grouped_mm), as measured on Mixtral. ``S = tokens·top_k`` routed rows;
    no tensor depends on how tokens are routed. Router: fp32 softmax, top-k indices, the normalising sum and
    a copy of the weights. Experts: three index tensors and the group offsets, the gate_up output (gate and
    up are views of it), the activation output, the routing weight per row and the down output. LoRA on an
    expert parameter (PEFT's ParamWrapper) keeps its input rows and the merged 3-D weight in the compute
    dtype (plus the LoRA factors cast to it on a 16-bit base); LoRA on the router keeps its input and the
    merged router weight. A shared expert runs as a gated MLP beside them (with its sigmoid gate)."""
    c = m.container
    h, i, k, e = num(m.hidden), num(m.intermediate), num(m.top_k), num(m.num_experts)
    tokens, routed, p = g.tokens, g.tokens * k, g.p
    router = lora.get(f"{c}.{m.router}.weight") or (lora.get(f"{c}.{m.router}") if m.router_linear else None)
    gate_up = lora.get(f"{c}.{m.experts}.gate_up_proj")
    down = lora.get(f"{c}.{m.experts}.down_proj")
    x_rg = x.requires_grad or g.full
    weights_rg = x_rg or router is not None  # the routing weights need a gradient
    gate_up_rg = x_rg or gate_up is not None
    down_rg = gate_up_rg or down is not None
    shared = _shared_expert(g, x, m, lora) if m.shared is not None else None
    if not (weights_rg or down_rg):
        routed_out_rg = False
    else:
        routed_out_rg = True
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
    return g.act(h, routed_out_rg or (shared is not None and shared.requires_grad))


def _shared_expert(g: Graph, x: Tensor, m: Moe, lora: Lora) -> Tensor:
    assert m.shared is not None
    h = num(m.hidden)
    out = _gated_mlp(g, x, m.shared, lora, m.container)
    if not m.shared_gate:
        return out
    gate = g.linear(x, h, 1, lora.get(f"{m.container}.{m.shared_gate}"))
    return g.mul_sigmoid(out, gate, 1, h)


def _per_layer_input(g: Graph, x: Tensor, block: Any, lora: Lora) -> Tensor:
    """Gemma 4's per-layer input: gate (h -> p), GELU, times the layer's slice of the per-layer embedding
    (frozen), projection (p -> h), norm, added to the residual stream."""
    p = block.per_layer_input
    size, h = num(p.size), num(block.norms.size)
    gate = g.linear(x, h, size, lora.get(p.gate))
    g.save_if(gate.requires_grad, gate)  # GELU keeps its input
    g.save_if(gate.requires_grad, g.act(size, False))  # the per-layer embedding slice, for the product
    mixed = g.act(size, gate.requires_grad)
    projected = g.linear(mixed, size, h, lora.get(p.projection))
    normed = g.rms_norm(projected, h, gemma=True)
    return g.act(h, x.requires_grad or normed.requires_grad)


def linear_input_features(block: Any) -> int:
    """Features of the distinct inputs the layer's linear modules read (q, k and v share one; gate and up
    another): what bitsandbytes int8 layers keep alive under checkpointing."""
    total = 0
    mixer, ffn = block.mixer, block.ffn
    if isinstance(mixer, Attention):
        total += num(mixer.hidden) + num(mixer.heads) * num(mixer.head_dim)
    elif isinstance(mixer, Mla):
        total += num(mixer.hidden) + num(mixer.kv_lora_rank) + num(mixer.heads) * num(mixer.v_head_dim)
        total += num(mixer.q_lora_rank or 0)
    elif isinstance(mixer, GatedDeltaNet):
        total += num(mixer.hidden) + num(mixer.value_heads) * num(mixer.value_dim)
    else:
        total += 2 * num(mixer.hidden)
    if isinstance(ffn, GatedMlp | Mlp):
        total += num(ffn.hidden) + num(ffn.intermediate)
    return total
