"""Per-family replays of one decoder layer's forward on the symbolic graph (`graph.Graph`)."""

from __future__ import annotations

from .graph import FP32, INT64, Graph, LoraModule, Tensor

LayerPlan = tuple[tuple[str, LoraModule | None], ...]


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


def replay_layer(g: Graph, x: Tensor, plan: LayerPlan) -> Tensor:
    lora = dict(plan)
    return _gpt2_layer(g, x, lora) if g.arch.model_type == "gpt2" else _decoder_layer(g, x, lora)
