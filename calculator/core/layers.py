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
        f = _ffn(g, _norm(g, x, norms), block, lora)
        if block.experts_branch is not None:
            f = _beside_experts(g, x, f, block, lora)
        m = g.dropout(_norm(g, f, norms), resid)
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
    return g.rms_norm(x, size, kind=norms.kind)


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


def _beside_experts(g: Graph, x: Tensor, dense: Tensor, block: Any, lora: Lora) -> Tensor:
    """Gemma 4's MoE layers: the dense MLP's output through its own norm, plus the routed experts on the
    residual stream (their own pre- and post-norm, the router reading the residual), summed."""
    norms: Norms = block.norms
    h = num(norms.size)
    first = _norm(g, dense, norms)
    routed = _moe(g, _norm(g, x, norms), block.experts_branch, lora, router_input=x, norm_kind=norms.kind)
    second = _norm(g, routed, norms)
    return g.act(h, first.requires_grad or second.requires_grad)


def _rope(g: Graph, q: Tensor, k: Tensor, q_out: int, kv_out: int, own_tables: int = 0) -> tuple[Tensor, Tensor]:
    """RoPE: q·cos + rotate_half(q)·sin keeps only the cos/sin tables, shared by all layers (counted outside).
    ``own_tables`` (a width): GLM-4 repeat-interleaves cos/sin inside every layer, which keeps its own pair."""
    needed = q.requires_grad or k.requires_grad or g.full
    if own_tables:
        s = g.training.seq_len
        g.save_if(needed, g.new(s * own_tables, g.p, False), g.new(s * own_tables, g.p, False))
    else:
        g.rope_needed = g.rope_needed or needed
    return g.act(q_out, q.requires_grad or g.full), g.act(kv_out, k.requires_grad or g.full)


def _attention(g: Graph, x: Tensor, a: Attention, block: Any, lora: Lora) -> Tensor:
    """Llama-style attention: projections (or one fused qkv whose q, k, v are views of one storage),
    optional q/k norms, RoPE, the attention kernel, the output projection. Frozen q/k/v biases keep nothing."""
    c = a.container
    h, heads, kv, hd = num(a.hidden), num(a.heads), num(a.kv_heads), num(a.head_dim)
    q_out, kv_out = heads * hd, kv * hd
    gate: Tensor | None = None
    if a.fused:
        qkv = g.linear(x, h, q_out + 2 * kv_out, lora.get(_join(c, a.fused)))
        q = k = v = qkv  # views of one storage: keeping v keeps all of it
    else:
        q = g.linear(x, h, q_out * (2 if a.q_gate else 1), lora.get(_join(c, a.q)))
        if a.q_gate:  # chunk(q_proj(x), 2): q is one half (a view), the output gate the other
            gate, q = q, g.view(q, g.tokens * q_out)
        if a.has_kv:
            k = g.linear(x, h, kv_out, lora.get(_join(c, a.k)))
            v = g.linear(x, h, kv_out, lora.get(_join(c, a.v))) if a.has_v else k
        else:  # Gemma 4's KV sharing: the storing layer's k and v, already kept there (no bytes here)
            k = v = g.new(0, g.p, x.requires_grad)
    q, k, v = _qkv_transforms(g, q, k, v, a, block)
    if gate is not None and gate.storage in g.saved:
        g.save(gate)  # a norm kept q, a view of q_proj's output (fp32: no copy), so it keeps all of it
    out = g.attention(
        q,
        k,
        v,
        heads=heads,
        qk_dim=hd,
        v_dim=hd,
        kv_heads=kv,
        masked=_sliding_mask(g, a) or a.always_masked,
        mask_shared=bool(a.alibi),
        broadcast_kv=bool(a.broadcast_kv),
        softcap=bool(a.softcap),
        fp32_softmax=a.fp32_softmax,
        dropout=block.dropout[0],
        sinks=a.sinks,
    )
    if gate is not None:  # Qwen3-Next / Qwen3.5: out (reshaped to tokens x heads·hd, a copy) * sigmoid(gate)
        out = g.mul_sigmoid(g.act(q_out, out.requires_grad), gate, q_out, q_out)
    return g.linear(out, q_out, h, lora.get(_join(c, a.o)))


def _qkv_transforms(
    g: Graph, q: Tensor, k: Tensor, v: Tensor, a: Attention, block: Any
) -> tuple[Tensor, Tensor, Tensor]:
    """q/k norms, RoPE and Gemma 4's v norm. A KV-sharing layer applies them to q only (its k and v come
    normed and rotated from the storing layer)."""
    heads, kv, hd = num(a.heads), num(a.kv_heads), num(a.head_dim)
    q_out, kv_out = heads * hd, kv * hd
    own_kv = bool(a.has_kv)
    if a.qk_norm in ("head", "full") and a.qk_norm_when:
        q_size, k_size = (hd, hd) if a.qk_norm == "head" else (q_out, kv_out)
        if a.qk_norm_bias:
            q, k = g.layer_norm(q, q_size), g.layer_norm(k, k_size) if own_kv else k
        else:
            kind = block.norms.kind
            q, k = g.rms_norm(q, q_size, kind=kind), g.rms_norm(k, k_size, kind=kind) if own_kv else k
    if a.rotary:
        own = int(hd * float(a.rotary_fraction or 1.0)) if a.rope_per_layer else 0
        rotated_q, rotated_k = _rope(g, q, k, q_out, kv_out, own)
        q, k = rotated_q, rotated_k if own_kv else k
    if a.qk_norm == "l2" and a.qk_norm_when:  # Llama 4: a parameter-free L2 norm on q and k after RoPE
        q, k = g.rms_norm(q, hd), g.rms_norm(k, hd)
    if a.temperature_tuning:  # Llama 4's NoPE layers: q * a per-position fp32 scale, kept for q's gradient
        g.save_if(q.requires_grad, g.new(g.training.seq_len, FP32, False))
        q = g.act(q_out, q.requires_grad)
    if a.v_norm and own_kv:
        v = g.rms_norm(v, hd, kind=block.norms.kind, scale=False)
    return q, k, v


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


DELTA_CHUNK = 64  # transformers' torch_chunk_gated_delta_rule chunk size


def _deltanet(g: Graph, x: Tensor, a: GatedDeltaNet, lora: Lora) -> Tensor:
    """Gated DeltaNet (Qwen3-Next / Qwen3.5) as transformers' torch path keeps tensors (``causal_conv1d_fn``
    and ``torch_chunk_gated_delta_rule``, used unless flash-linear-attention's CUDA kernels are installed, which
    keep less): the depthwise convolution's input and output, the gates, q and k L2-normalised in fp32, the
    sequence padded to 64-token chunks, per chunk the decay, UT-system and attention matrices (64 x 64) and
    the recurrent state, and the gated RMSNorm in fp32."""
    c = a.container
    h = num(a.hidden)
    kh, vh, kd, vd = num(a.key_heads), num(a.value_heads), num(a.key_dim), num(a.value_dim)
    key_total, value_total = kh * kd, vh * vd
    conv_dim = 2 * key_total + value_total
    if a.split:
        qkv = g.linear(x, h, conv_dim, lora.get(f"{c}.in_proj_qkv"))
        z = g.linear(x, h, value_total, lora.get(f"{c}.in_proj_z"))
        beta = g.linear(x, h, vh, lora.get(f"{c}.in_proj_b"))
        decay = g.linear(x, h, vh, lora.get(f"{c}.in_proj_a"))
    else:
        qkvz = g.linear(x, h, 2 * key_total + 2 * value_total, lora.get(f"{c}.in_proj_qkvz"))
        beta = decay = g.linear(x, h, 2 * vh, lora.get(f"{c}.in_proj_ba"))
        qkv, z = qkvz, qkvz
    rg = qkv.requires_grad or beta.requires_grad or decay.requires_grad
    b, s = g.training.batch_size, g.training.seq_len
    tokens = g.tokens
    chunk = DELTA_CHUNK
    padded = -(-s // chunk) * chunk  # per sequence
    chunks = b * padded // chunk

    def fp32(numel: int) -> Tensor:
        return g.new(numel, FP32, True)

    if rg:
        kernel = num(a.kernel)
        g.save(g.new(b * conv_dim * s, g.p, True), g.new(b * conv_dim * (s + kernel - 1), g.p, True))  # conv in, out
        g.save(g.new(tokens * vh, g.p, True), fp32(tokens * vh), g.new(vh, FP32, False))  # beta, softplus in, -A
        g.save(fp32(tokens * vh * kd), fp32(tokens * vh), fp32(tokens * vh * kd), fp32(tokens * vh))  # l2norm q, k
        rows = b * vh * padded  # padded positions over every value head
        g.save(fp32(rows), fp32(rows * vd), fp32(rows * kd))  # beta, value and key, padded to the chunks
        g.save(g.new(chunk * chunk, 1, False))  # the strictly-upper mask
        square = vh * chunks * chunk * chunk
        g.save(fp32(square), fp32(square), fp32(square), fp32(square), fp32(square))  # decay, kβk, qk, UT, intra
        g.save(fp32(rows * kd), fp32(rows * kd), fp32(rows * kd))  # k·β, q, decayed k
        g.save(fp32(rows), fp32(rows), fp32(rows), fp32(vh * chunks))  # the cumulative decays' exps
        g.save(fp32(rows * vd), fp32(rows * kd), fp32(rows * vd))  # new values, k cumdecay, v_new
        g.save(g.new(chunks * vh * kd * vd, FP32, True))  # the recurrent state entering each chunk
    core = g.act(value_total, rg)
    gate_rg = z.requires_grad
    if core.requires_grad or gate_rg:  # RMSNormGated in fp32: x, rsqrt, the gate, silu(gate), the product
        g.save(fp32(tokens * value_total), fp32(tokens * vh), fp32(tokens * value_total), fp32(tokens * value_total))
        g.save(g.act(value_total, True))
    gated = g.act(value_total, core.requires_grad or gate_rg)
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


def _moe(g: Graph, x: Tensor, m: Moe, lora: Lora, router_input: Tensor | None = None, norm_kind: str = "rms") -> Tensor:
    """Routed experts in transformers 5 (grouped_mm), as measured on Mixtral. ``S = tokens·top_k`` routed rows;
    no tensor depends on how tokens are routed. Router: fp32 softmax, top-k indices, the normalising sum and
    a copy of the weights. Experts: three index tensors and the group offsets, the gate_up output (gate and
    up are views of it), the activation output, the routing weight per row and the down output. LoRA on an
    expert parameter (PEFT's ParamWrapper) keeps its input rows and the merged 3-D weight in the compute
    dtype (plus the LoRA factors cast to it on a 16-bit base); LoRA on a bare router weight keeps its input
    and the merged router weight, on an nn.Linear router what any LoRA Linear keeps. A shared expert runs as
    a gated MLP beside them (with its sigmoid gate). Gemma 4's
    router (``router_norm``) reads ``router_input`` through a parameter-free norm and keeps the per-expert
    scale it gathers for every routed row."""
    if m.dense:
        return _dense_experts(g, x, m, lora)
    c = m.container
    h, i, k, e = num(m.hidden), num(m.intermediate), num(m.top_k), num(m.num_experts)
    tokens, routed, p = g.tokens, g.tokens * k, g.p
    router_path = _join(c, m.router)
    router = lora.get(f"{router_path}.weight") or (lora.get(router_path) if m.router_linear else None)
    gate_up = lora.get(_join(c, m.experts, "gate_up_proj"))
    down = lora.get(_join(c, m.experts, "down_proj"))
    x_rg = x.requires_grad or g.full
    scores_in = x if router_input is None else router_input
    if m.router_norm:  # norm (no weight), times a frozen scale and a constant: a new tensor for the projection
        normed = g.rms_norm(scores_in, h, kind=norm_kind, scale=False)
        scores_in = g.act(h, normed.requires_grad)
    weights_rg = scores_in.requires_grad or g.full or router is not None  # the routing weights need a gradient
    gate_up_rg = x_rg or gate_up is not None
    down_rg = gate_up_rg or down is not None
    shared = _shared_expert(g, x, m, lora) if m.shared is not None else None
    if not (weights_rg or down_rg):
        routed_out_rg = False
    else:
        routed_out_rg = True
        if router is not None and m.router_linear:  # an nn.Linear router: PEFT's LoRA Linear
            g.linear(scores_in, h, e, router)
        elif router is not None and m.router_kind in ("deepseek_v2", "sigmoid_groups"):
            # ParamWrapper on a float32 router: F.linear keeps the input's fp32 copy for the merged weight's
            # gradient (the weight's fp32 copy is kept anyway, see _router_bytes)
            g.save(g.new(tokens * h, FP32, True))
        elif router is not None:  # a bare router weight: PEFT's ParamWrapper merges it
            g.save(scores_in)
            g.save_if(scores_in.requires_grad, g.new(e * h, p, False))  # the merged router weight
        g.save_if(weights_rg, g.new(_router_bytes(m, tokens, h, e, k, p), 1, True))
        g.save_if(weights_rg and m.router_norm, g.new(routed, p, False))  # per_expert_scale[top_k_index]
        g.save_if(x_rg, g.new(routed * INT64, 1, False))  # perm // k
        g.save_if(weights_rg, g.new(routed * INT64, 1, False))  # perm
        g.save_if(gate_up_rg or down is not None, g.new(e, 4, False))  # grouped_mm offsets (int32)
        # gate_up output (gate, up views) and the activation's output; gpt-oss's clamped GLU keeps the sigmoid,
        # the clamped gate, the glu and up + 1 beside it
        g.save_if(gate_up_rg, g.new(routed * (6 if m.clamped_glu else 3) * i, p, True))
        g.save_if(down_rg, g.new(routed, p if m.router_kind == "topk_softmax" else FP32, True))  # weight per row
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


def _router_bytes(m: Moe, tokens: int, h: int, e: int, k: int, p: int) -> int:
    """What the router keeps when its weights need a gradient (modeling files of transformers 5.23):

    - softmax (Mixtral, Qwen): the fp32 softmax over all experts, top-k values and indices, the sum that
      renormalises them and a copy of the weights;
    - topk_softmax (GptOssTopKRouter): the top-k indices and the softmax over those k logits (compute dtype);
    - deepseek_v2 (DeepseekV2TopkRouter): the fp32 copy of the weight (its logits run in fp32), the softmax,
      with topk_method "group_limited_greedy" each group's max index, the top groups and the mask, and the
      top-k indices;
    - sigmoid_groups (DeepseekV3TopkRouter, GLM-4.5): the fp32 weight copy, the sigmoid, the indices of the
      top 2 per group and of the top groups, the group mask, the top-k indices (gathered, shared), and with
      norm_topk_prob the renormalising denominator and the weights it divides in place."""
    if m.router_kind == "topk_softmax":
        return tokens * k * (INT64 + p)
    if m.router_kind == "softmax":
        return tokens * (4 * e + 12 * k + 4)
    groups, top_groups = num(m.groups), num(m.top_groups)
    weight = e * h * FP32
    if m.router_kind == "deepseek_v2":
        limited = tokens * (groups * INT64 + top_groups * INT64 + e) if m.group_limited else 0
        return weight + tokens * (FP32 * e + INT64 * k) + limited
    assert m.router_kind == "sigmoid_groups"
    normalised = tokens * (FP32 + FP32 * k) if m.normalised else 0
    return weight + tokens * (FP32 * e + INT64 * (2 * groups + top_groups + k) + e) + normalised


def _dense_experts(g: Graph, x: Tensor, m: Moe, lora: Lora) -> Tensor:
    """Llama 4's MoE: the router's top-k logits through a sigmoid (the other experts' scores are 0), every
    token repeated for every expert and scaled by its score, two batched matmuls over all experts, plus the
    shared expert. Keeps the top-k indices and the fp32 scores, the repeated input and the scores for the
    product, and the gate_up output and activation per (expert, token) row."""
    c = m.container
    h, i, k, e = num(m.hidden), num(m.intermediate), num(m.top_k), num(m.num_experts)
    tokens, rows, p = g.tokens, g.tokens * num(m.num_experts), g.p
    router = lora.get(_join(c, m.router))
    gate_up = lora.get(_join(c, m.experts, "gate_up_proj"))
    down = lora.get(_join(c, m.experts, "down_proj"))
    x_rg = x.requires_grad or g.full
    if router is not None:
        g.linear(x, h, e, router)
    scores_rg = x_rg or router is not None
    g.save_if(scores_rg, g.new(tokens * k, INT64, False), g.new(tokens * e, FP32, True))  # top-k, sigmoid
    g.save_if(scores_rg, g.new(rows * h, p, x_rg))  # the repeated input, for the scores' gradient
    g.save_if(x_rg, g.new(rows, p, scores_rg))  # the scores per row, for the input's gradient
    routed_in = g.new(rows * h, p, x_rg or scores_rg)
    gate_up_rg = routed_in.requires_grad or gate_up is not None
    if gate_up is not None:  # ParamWrapper: the input rows, the merged weight, the factors in the compute dtype
        g.save(routed_in)
        g.save_if(routed_in.requires_grad, g.new(2 * e * i * h, p, False))
        g.save_if(p != g.a, g.new(e * gate_up.r * (2 * i + h), p, False))
    g.save_if(gate_up_rg, g.new(rows * 3 * i, p, True))  # gate_up output (gate, up views), act output
    if down is not None:
        g.save(g.new(rows * i, p, True))  # up * act, the second matmul's input
        g.save_if(gate_up_rg, g.new(e * h * i, p, False))
        g.save_if(p != g.a, g.new(e * down.r * (h + i), p, False))
    if g.full:
        g.save(routed_in, g.new(rows * i, p, True))
    shared = _shared_expert(g, x, m, lora) if m.shared is not None else None
    routed_rg = gate_up_rg or down is not None
    return g.act(h, routed_rg or (shared is not None and shared.requires_grad))


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
    g.save_if(g.per_layer_inputs_rg, g.act(size, gate.requires_grad))  # GELU's output, for the slice's gradient
    mixed = g.act(size, gate.requires_grad or g.per_layer_inputs_rg)
    projected = g.linear(mixed, size, h, lora.get(p.projection))
    normed = g.rms_norm(projected, h, kind=block.norms.kind)
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
