"""Training FLOPs of one micro-batch, from the architecture: forward, backward and checkpoint recomputation.

Convention (PaLM, Chowdhery et al. 2022, appendix B; nanoGPT ``model.py`` ``estimate_mfu``): matrix
multiplications only, 2 FLOPs per multiply-accumulate, elementwise work not counted. For full fine-tuning
that gives the familiar ``6·N + 12·L·H·Q·T`` per token (forward 2N, backward 4N: the input gradient and the
weight gradient of every matmul); LoRA differs in what the backward computes:

- a frozen linear layer computes only its input's gradient (``2·in·out`` per token), and only when its input
  needs one: before the first adapted module of a model with a frozen embedding nothing needs a gradient,
  so the first layer's early projections skip even that (autograd's rule, as the memory replay applies it);
- LoRA's ``B·A·x`` adds ``2·r·(in + out)`` forward; backward, both factors' weight gradients, the gradient
  into ``A``'s output, and the input gradient through ``A`` when the input needs one;
- no frozen weight gradient is ever computed (the 2N that full fine-tuning spends on weights);
- attention's two matmuls per layer (``Q·Kᵀ``, ``P·V``) cost ``2·heads·head_dim`` per attended (query, key)
  pair each. Which pairs are computed depends on the kernel: eager computes all ``s²`` (the causal mask is
  applied afterwards); SDPA and FlashAttention-2 skip the masked half (``s(s+1)/2`` pairs); a sliding window
  limits each query to ``window`` keys with FlashAttention-2, while SDPA with a window needs an explicit mask
  and computes all ``s²``. Backward: eager computes the gradients that are needed (``dQ``, ``dK``, ``dP``,
  ``dV``); the fused kernels recompute ``Q·Kᵀ`` and always produce ``dQ``, ``dK``, ``dV`` (5 matmuls);
- MoE layers run only the ``top_k`` chosen experts per token, plus the router;
- gradient checkpointing (transformers checkpoints every decoder layer) runs every layer's forward again
  during backward.

Checked against ``torch.utils.flop_counter.FlopCounterMode`` on real models of every family
(``validation/planning/measure_flops.py``, ``tests/core/golden/flops_measured.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from .architecture import LINEAR_KINDS, Architecture
from .errors import InputError
from .expressions import num
from .families.spec import Attention, GatedDeltaNet, GatedMlp, Mla, Mlp, Moe, ShortConv
from .form import asked_often, lora_count
from .lora import LoraCount, LoraSettings
from .training import TrainingSettings

FUSED_ATTENTION_KERNELS = ("sdpa", "flash_attention_2")


@dataclass(frozen=True, slots=True)
class Flops:
    """FLOPs of one micro-batch on one GPU."""

    forward: int
    backward: int
    recompute: int  # gradient checkpointing: the layers' forward run again during backward

    @property
    def total(self) -> int:
        return self.forward + self.backward + self.recompute


@dataclass(frozen=True, slots=True)
class AttentionTerm:
    """The attention matmuls of ``layers`` layers with one window, as widths (heads x head dim) summed over
    the matmuls and layers: each costs ``2 · batch · width`` FLOPs per attended (query, key) pair."""

    layers: int
    window: int | None
    forward_width: int
    backward_width: int  # the first layers may need fewer gradients
    recompute_width: int


@dataclass(frozen=True, slots=True)
class FlopsForm:
    """A structure's training FLOPs as a closed form in (batch_size, seq_len): terms per token, per
    sequence (attention, quadratic in the sequence length) and per micro-batch (DoRA's weight norm,
    merged MoE expert deltas). Derived once per structure; every (b, s) is then arithmetic."""

    forward_per_token: int
    backward_per_token: int
    recompute_per_token: int
    forward_per_step: int  # per micro-batch, independent of its size
    backward_per_step: int
    recompute_per_step: int
    attention: tuple[AttentionTerm, ...]
    kernel: str

    def at(self, batch_size: int, seq_len: int) -> Flops:
        tokens = batch_size * seq_len
        fwd = tokens * self.forward_per_token + self.forward_per_step
        bwd = tokens * self.backward_per_token + self.backward_per_step
        rec = tokens * self.recompute_per_token + self.recompute_per_step
        for term in self.attention:
            unit = 2 * batch_size * attention_pairs(seq_len, self.kernel, term.window)
            fwd += unit * term.forward_width
            bwd += unit * term.backward_width
            rec += unit * term.recompute_width
        return Flops(fwd, bwd, rec)

    def per_token(self, batch_size: int, seq_len: int) -> float:
        """All FLOPs of a micro-batch divided by its tokens (what a tokens/s figure divides)."""
        return self.at(batch_size, seq_len).total / (batch_size * seq_len)


def attention_pairs(seq_len: int, kernel: str, window: int | None) -> int:
    """(query, key) pairs one head's attention computes for a sequence, by kernel (see the module doc)."""
    s = seq_len
    if kernel not in FUSED_ATTENTION_KERNELS:
        return s * s
    if window is None or window >= s:
        return s * (s + 1) // 2
    if kernel == "sdpa":
        return s * s  # an explicit sliding-window mask: the memory-efficient kernel computes every pair
    return window * (window + 1) // 2 + (s - window) * window


# --- one layer, from its block description (families.build.Block) -----------------------------------


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def attention_windows(arch: Architecture) -> tuple[int | None, ...]:
    """Each text layer's sliding window (None: full causal attention). The architecture marks sliding
    layers but does not carry the window's size yet; until it does, sliding layers count as full causal
    attention (an upper bound for FlashAttention-2, what SDPA computes anyway)."""
    out: list[int | None] = []
    for kind_index in arch.text.layout:
        mixer = getattr(arch.text.kinds[kind_index].block, "mixer", None)
        window = getattr(mixer, "sliding", None)
        out.append(window if isinstance(window, int) and not isinstance(window, bool) and window > 0 else None)
    return tuple(out)


def attention_module_names(arch: Architecture) -> tuple[str, ...]:
    """Names of the text layers' attention projections (what "LoRA on attention only" targets)."""
    names: dict[str, None] = {}
    for kind in arch.text.kinds:
        mixer = getattr(kind.block, "mixer", None)
        if isinstance(mixer, Attention) and not mixer.cross:
            parts = [mixer.fused] if mixer.fused else [mixer.q, mixer.k, mixer.v]
            names.update(dict.fromkeys([*parts, mixer.o]))
        elif isinstance(mixer, Mla):
            q = ["q_a_proj", "q_b_proj"] if mixer.q_lora_rank else ["q_proj"]
            names.update(dict.fromkeys([*q, "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"]))
    return tuple(names)


@dataclass(frozen=True, slots=True)
class _Trainable:
    """What trains in one layer: LoRA ranks by module path (bare parameters: ``path.param``), full copies."""

    lora: tuple[tuple[str, int], ...]
    copies: frozenset[str]


@dataclass(slots=True)
class _Tally:
    fwd_token: int = 0
    bwd_token: int = 0
    fwd_step: int = 0
    bwd_step: int = 0
    attention_fwd: int = 0  # widths (heads x dim) of the attention matmuls, per attended pair
    attention_bwd: int = 0
    tail_token: int = 0  # the last matmul, which checkpoint recomputation stops before (see _recompute_tail)
    last: tuple[int, int, int | None, bool] | None = None  # (in, out, LoRA rank, DoRA) of the latest linear


@dataclass(slots=True)
class _Layer:
    """One layer's walk: what trains, whether every weight trains, and the running tally."""

    ranks: dict[str, int]
    copies: frozenset[str]
    full: bool
    dora: bool
    dropout: bool
    kernel: str
    t: _Tally

    def linear(self, path: str, fin: int, fout: int, input_rg: bool) -> bool:
        """A linear layer with its LoRA branch; returns whether its output needs a gradient."""
        t, r, copy = self.t, self.ranks.get(path), path in self.copies
        t.last = (fin, fout, r, self.dora)
        t.fwd_token += 2 * fin * fout
        if input_rg:
            t.bwd_token += 2 * fin * fout  # input gradient through the (frozen or trainable) weight
        if self.full or copy:
            t.bwd_token += 2 * fin * fout  # weight gradient
        if r is None:
            return input_rg or self.full or copy
        t.fwd_token += 2 * r * (fin + fout)
        # lora_B's weight gradient and the gradient into lora_A's output; lora_A's weight gradient
        t.bwd_token += 2 * r * fout * 2 + 2 * fin * r
        if input_rg:
            t.bwd_token += 2 * fin * r  # the input gradient through lora_A
        if self.dora:
            # PEFT's DoraLinearLayer.get_weight_norm: lora_B(lora_A(eye(in))) every forward, detached
            t.fwd_step += 2 * fin * r * (fin + fout)
            if self.dropout:  # with dropout the base result is recomputed on the dropped-out input
                t.fwd_token += 2 * fin * fout
                if input_rg:
                    t.bwd_token += 2 * fin * fout
        return True

    def attention(self, heads: int, qk_dim: int, v_dim: int, q: bool, k: bool, v: bool) -> bool:
        """Q·Kᵀ and P·V per attended pair; backward as the kernel computes it (see the module doc)."""
        t = self.t
        qk, vw = heads * qk_dim, heads * v_dim
        t.attention_fwd += qk + vw
        if not (q or k or v or self.full):
            return False
        if self.kernel in FUSED_ATTENTION_KERNELS:
            t.attention_bwd += 3 * qk + 2 * vw  # Q·Kᵀ again, then dP and dV, dQ and dK
        else:
            q, k, v = q or self.full, k or self.full, v or self.full
            t.attention_bwd += qk * (int(q) + int(k)) + vw * (int(q or k) + int(v))
        return True


def _mixer(w: _Layer, mixer: Any, x_rg: bool) -> bool:
    if isinstance(mixer, Attention):
        c = mixer.container
        h, heads, kv, hd = num(mixer.hidden), num(mixer.heads), num(mixer.kv_heads), num(mixer.head_dim)
        q_out, kv_out = heads * hd, kv * hd
        if mixer.fused:
            q = k = v = w.linear(_join(c, mixer.fused), h, q_out + 2 * kv_out, x_rg)
        else:
            q = w.linear(_join(c, mixer.q), h, q_out * (2 if mixer.q_gate else 1), x_rg)
            k = v = False
            if mixer.has_kv:
                k = w.linear(_join(c, mixer.k), h, kv_out, x_rg)
                v = w.linear(_join(c, mixer.v), h, kv_out, x_rg) if mixer.has_v else k
        out = w.attention(heads, hd, hd, q, k, v)
        return w.linear(_join(c, mixer.o), q_out, h, out or (mixer.q_gate and q))
    if isinstance(mixer, Mla):
        c, h, heads = mixer.container, num(mixer.hidden), num(mixer.heads)
        nope, rope, vd = num(mixer.qk_nope_head_dim), num(mixer.qk_rope_head_dim), num(mixer.v_head_dim)
        kv_rank, qk = num(mixer.kv_lora_rank), nope + rope
        if mixer.q_lora_rank:
            q_rank = num(mixer.q_lora_rank)
            q = w.linear(f"{c}.q_b_proj", q_rank, heads * qk, w.linear(f"{c}.q_a_proj", h, q_rank, x_rg))
        else:
            q = w.linear(f"{c}.q_proj", h, heads * qk, x_rg)
        latent = w.linear(f"{c}.kv_a_proj_with_mqa", h, kv_rank + rope, x_rg)
        kv = w.linear(f"{c}.kv_b_proj", kv_rank, heads * (nope + vd), latent)
        out = w.attention(heads, qk, vd, q, kv or latent, kv)
        return w.linear(f"{c}.o_proj", heads * vd, h, out)
    if isinstance(mixer, GatedDeltaNet):
        # the projections; the chunked delta rule's own small matmuls are not counted
        c, h = mixer.container, num(mixer.hidden)
        kh, vh, kd, vd = num(mixer.key_heads), num(mixer.value_heads), num(mixer.key_dim), num(mixer.value_dim)
        key_total, value_total = kh * kd, vh * vd
        if mixer.split:
            rg = w.linear(f"{c}.in_proj_qkv", h, 2 * key_total + value_total, x_rg)
            rg = w.linear(f"{c}.in_proj_z", h, value_total, x_rg) or rg
            rg = w.linear(f"{c}.in_proj_b", h, vh, x_rg) or rg
            rg = w.linear(f"{c}.in_proj_a", h, vh, x_rg) or rg
        else:
            rg = w.linear(f"{c}.in_proj_qkvz", h, 2 * key_total + 2 * value_total, x_rg)
            rg = w.linear(f"{c}.in_proj_ba", h, 2 * vh, x_rg) or rg
        return w.linear(f"{c}.out_proj", value_total, h, rg)
    assert isinstance(mixer, ShortConv)
    c, h = mixer.container, num(mixer.hidden)
    return w.linear(f"{c}.out_proj", h, h, w.linear(f"{c}.in_proj", h, 3 * h, x_rg))


def _gated_mlp(w: _Layer, m: GatedMlp, x_rg: bool, prefix: str = "") -> bool:
    c, h, i = _join(prefix, m.container), num(m.hidden), num(m.intermediate)
    if m.fused:
        hidden = w.linear(_join(c, m.fused), h, 2 * i, x_rg)
    else:
        hidden = w.linear(_join(c, m.gate), h, i, x_rg)
        hidden = w.linear(_join(c, m.up), h, i, x_rg) or hidden
    return w.linear(_join(c, m.down), i, h, hidden)


def _ffn(w: _Layer, ffn: Any, x_rg: bool) -> bool:
    if isinstance(ffn, GatedMlp):
        return _gated_mlp(w, ffn, x_rg)
    if isinstance(ffn, Mlp):
        c, h, i = ffn.container, num(ffn.hidden), num(ffn.intermediate)
        return w.linear(f"{c}.{ffn.fc_out}", i, h, w.linear(f"{c}.{ffn.fc_in}", h, i, x_rg))
    assert isinstance(ffn, Moe)
    return _moe(w, ffn, x_rg)


def _moe(w: _Layer, m: Moe, x_rg: bool) -> bool:
    """Routed experts (each token runs ``top_k`` of them), the router and any shared expert. LoRA on an
    expert parameter (PEFT's ParamWrapper) merges ``W + B·A`` per forward, so the merged weight needs its
    full weight gradient, and the delta's factors get theirs."""
    t, c = w.t, m.container
    h, i, k, e = num(m.hidden), num(m.intermediate), num(m.top_k), num(m.num_experts)
    router = f"{c}.{m.router}"
    router_r = w.ranks.get(f"{router}.weight")
    if m.router_linear:
        routing = w.linear(router, h, e, x_rg)
    else:
        t.fwd_token += 2 * h * e
        if x_rg:
            t.bwd_token += 2 * h * e
        if w.full or router_r is not None:
            t.bwd_token += 2 * h * e
        if router_r is not None:
            t.fwd_step += 2 * e * router_r * h
            t.bwd_step += 2 * 2 * e * router_r * h
        routing = x_rg or w.full or router_r is not None
    rg = x_rg
    for name, fin, fout in (("gate_up_proj", h, 2 * i), ("down_proj", i, h)):
        r = w.ranks.get(f"{c}.{m.experts}.{name}")
        t.fwd_token += 2 * k * fin * fout
        if rg:
            t.bwd_token += 2 * k * fin * fout
        if w.full or r is not None:
            t.bwd_token += 2 * k * fin * fout
        if r is not None:
            # PEFT 0.21's nested ParamWrappers build each merged delta twice per forward (measured);
            # its backward (both factors' gradients) runs once
            t.fwd_step += 2 * 2 * e * r * fin * fout
            t.bwd_step += 2 * 2 * e * r * fin * fout
        rg = rg or w.full or r is not None
    out = rg or routing
    if m.shared is not None:
        out = _gated_mlp(w, m.shared, x_rg, c) or out
        if m.shared_gate:
            out = w.linear(f"{c}.{m.shared_gate}", h, 1, x_rg) or out
    return out


def _layer(
    block: Any, trainable: _Trainable, input_rg: bool, full: bool, dora: bool, dropout: bool, kernel: str
) -> tuple[_Tally, bool]:
    """One layer's FLOPs and whether its output needs a gradient, following the block as the replay does."""
    w = _Layer({} if full else dict(trainable.lora), trainable.copies, full, dora, dropout, kernel, _Tally())
    mixer = block.mixer
    if isinstance(mixer, Attention) and mixer.cross:
        return w.t, input_rg  # Mllama skips its cross-attention layers on text-only batches
    style = block.norms.style
    x_rg = input_rg or full
    if style in ("pre", "sandwich", "post"):
        x_rg = _mixer(w, mixer, x_rg) or x_rg
        out = _ffn(w, block.ffn, x_rg) or x_rg
    else:  # parallel: both blocks read the layer input
        out = _mixer(w, mixer, x_rg) or x_rg
        out = _ffn(w, block.ffn, x_rg) or out
    saves_after = style in ("sandwich", "post") or isinstance(block.ffn, Moe) or block.dropout[1] > 0
    if block.per_layer_input is not None:
        p, h = block.per_layer_input, num(block.norms.size)
        size = num(p.size)
        out = w.linear(p.projection, size, h, w.linear(p.gate, h, size, out)) or out
        saves_after = True
    if not saves_after and w.t.last is not None:
        w.t.tail_token = _recompute_tail(*w.t.last)
    return w.t, out


def _recompute_tail(fin: int, fout: int, r: int | None, dora: bool) -> int:
    """Per-token FLOPs of the layer's last matmul, which recomputation skips. torch.utils.checkpoint's
    non-reentrant mode stops recomputing a layer as soon as every tensor the forward saved has been
    packed again (early stop, the default since PyTorch 2.1), and autograd packs an op's inputs before
    running it: when nothing after the layer's last projection saves a tensor, that projection (or, with
    LoRA on it, its ``lora_B``; with DoRA, nothing) is never run again. Measured with FlopCounterMode."""
    if r is None:
        return 2 * fin * fout
    return 0 if dora else 2 * r * fout


# --- the model ----------------------------------------------------------------------------------------


def _trainable_per_layer(arch: Architecture, count: LoraCount) -> list[_Trainable]:
    stack = arch.text
    shared: dict[str, int] = {}
    specific: dict[int, dict[str, int]] = {}
    for path, layer, r in count.layer_adapters:
        if layer is None:
            shared[path] = r
        elif layer < stack.num_layers:
            specific.setdefault(layer, {})[path] = r
    prefix = f"{stack.prefix}."
    for key, _shape, r in count.parameter_keys:
        index, _, relative = key.removeprefix(prefix).partition(".")
        if key.startswith(prefix) and index.isdigit():
            specific.setdefault(int(index), {})[relative] = r
    globals_ = frozenset(m.path for m in arch.global_modules)
    copies = frozenset(p for p in count.saved_modules if not p.startswith(prefix) and p not in globals_)
    common = _Trainable(tuple(sorted(shared.items())), copies)
    return [
        _Trainable(tuple(sorted({**shared, **specific[i]}.items())), copies) if i in specific else common
        for i in range(stack.num_layers)
    ]


def flops_form(arch: Architecture, count: LoraCount, training: TrainingSettings, *, full: bool = False) -> FlopsForm:
    """The FLOPs of one micro-batch for this structure (LoRA, or full fine-tuning with ``full``)."""
    return _flops_form(arch, count, training.attn_implementation, training.gradient_checkpointing, full)


def lora_flops_form(arch: Architecture, lora: LoraSettings, training: TrainingSettings) -> FlopsForm:
    """`flops_form` of ``lora``'s count at its rank. With one rank for every adapted module each LoRA matmul is
    ``r`` wide, so every per-token and per-step term is affine in r and the attention terms do not depend on it:
    once a structure has been asked for often enough (`LINE_AFTER`, so an unusual structure's first requests
    cost what they did), a new rank is read off the line through its forms at r = 1 and 2, checked at r = 3
    and 64 (exact, or every rank is counted as before)."""
    return _lora_flops_form(arch, lora, training.attn_implementation, training.gradient_checkpointing)


LINE_AFTER = 4  # the line costs four counted forms
LINE_CHECKS = (3, 64)  # a quadratic term or a step in r would leave the line at either


@lru_cache(maxsize=1024)  # the cost table asks once per card
def _lora_flops_form(arch: Architecture, lora: LoraSettings, kernel: str, checkpointing: bool) -> FlopsForm:
    if not lora.rank_pattern:
        structure = replace(lora, r=1)
        if asked_often(("flops", arch, structure, kernel, checkpointing), LINE_AFTER):
            line = _rank_line(arch, structure, kernel, checkpointing)
            if line is not None:
                return _on_line(*line, lora.r)
    return _flops_form(arch, lora_count(arch, lora, lora.r), kernel, checkpointing, False)


RANK_TERMS: tuple[str, ...] = (
    "forward_per_token",
    "backward_per_token",
    "recompute_per_token",
    "forward_per_step",
    "backward_per_step",
    "recompute_per_step",
)


def _on_line(at_one: FlopsForm, slope: tuple[int, ...], r: int) -> FlopsForm:
    terms = {name: getattr(at_one, name) + (r - 1) * step for name, step in zip(RANK_TERMS, slope, strict=True)}
    return FlopsForm(**terms, attention=at_one.attention, kernel=at_one.kernel)


@lru_cache(maxsize=512)
def _rank_line(
    arch: Architecture, lora: LoraSettings, kernel: str, checkpointing: bool
) -> tuple[FlopsForm, tuple[int, ...]] | None:
    try:
        forms = {r: _flops_form(arch, lora_count(arch, lora, r), kernel, checkpointing, False) for r in (1, 2)}
        one = forms[1]
        slope = tuple(getattr(forms[2], name) - getattr(one, name) for name in RANK_TERMS)
        for r in LINE_CHECKS:
            if _flops_form(arch, lora_count(arch, lora, r), kernel, checkpointing, False) != _on_line(one, slope, r):
                return None
    except InputError:  # a rank PEFT refuses here (a grouped convolution): count each rank
        return None
    return one, slope


@lru_cache(maxsize=1024)
def _flops_form(arch: Architecture, count: LoraCount, kernel: str, checkpointing: bool, full: bool) -> FlopsForm:
    d = arch.dims
    globals_adapted = {} if full else dict(count.global_adapters)
    embedding_trained = full or arch.input_embedding in globals_adapted or arch.input_embedding in count.saved_modules
    # transformers' gradient checkpointing with a frozen embedding calls enable_input_require_grads
    rg = embedding_trained or checkpointing
    fwd = bwd = rec = fwd_step = bwd_step = rec_step = 0
    terms: dict[int | None, list[int]] = {}  # window -> [layers, forward, backward, recompute widths]
    cache: dict[tuple[Any, _Trainable, bool], tuple[_Tally, bool]] = {}
    windows = attention_windows(arch)
    stack = arch.text
    for index, trainable in enumerate(_trainable_per_layer(arch, count)):
        block = stack.kinds[stack.layout[index]].block
        key = (block, trainable, rg)
        if key not in cache:
            cache[key] = _layer(block, trainable, rg, full, count.use_dora, count.lora_dropout > 0, kernel)
        tally, out_rg = cache[key]
        fwd += tally.fwd_token
        bwd += tally.bwd_token
        fwd_step += tally.fwd_step
        bwd_step += tally.bwd_step
        term = terms.setdefault(windows[index], [0, 0, 0, 0])
        term[0] += 1
        term[1] += tally.attention_fwd
        term[2] += tally.attention_bwd
        if checkpointing:
            rec += tally.fwd_token - tally.tail_token
            rec_step += tally.fwd_step
            term[3] += tally.attention_fwd
        rg = out_rg
    # embedding LoRA: lora_embedding_B after a lookup
    embedding_r = globals_adapted.get(arch.input_embedding)
    if embedding_r is not None:
        fwd += 2 * embedding_r * d.hidden_size
        bwd += 2 * 2 * embedding_r * d.hidden_size
    # output head
    h, vocab = d.hidden_size, d.vocab_size
    fwd += 2 * h * vocab
    head_r = globals_adapted.get(arch.output_head)
    if rg:
        bwd += 2 * h * vocab
    if full or arch.output_head in count.saved_modules:
        bwd += 2 * h * vocab
    if head_r is not None:
        fwd += 2 * head_r * (h + vocab)
        bwd += 2 * head_r * vocab * 2 + 2 * h * head_r + (2 * h * head_r if rg else 0)
    attention = tuple(
        AttentionTerm(layers, window, forward, backward, recompute)
        for window, (layers, forward, backward, recompute) in terms.items()
    )
    return FlopsForm(fwd, bwd, rec, fwd_step, bwd_step, rec_step, attention, kernel)


def training_flops(arch: Architecture, count: LoraCount, training: TrainingSettings, *, full: bool = False) -> Flops:
    return flops_form(arch, count, training, full=full).at(training.batch_size, training.seq_len)


def palm_flops_per_token(arch: Architecture, seq_len: int) -> int:
    """PaLM appendix B / nanoGPT ``estimate_mfu``: ``6·N + 12·L·H·Q·T`` for full training, with N the
    matmul parameters a token runs through (the output head, not the embedding lookup; of a MoE layer the
    router and ``top_k`` experts) and non-causal attention."""
    d = arch.dims
    stack = arch.text
    weights = 0
    for index, kind in enumerate(stack.kinds):
        layers = stack.layout.count(index)
        weights += layers * sum(m.in_features * m.out_features for m in kind.modules if m.kind in LINEAR_KINDS)
        ffn = kind.block.ffn
        if isinstance(ffn, Moe):
            h, i = num(ffn.hidden), num(ffn.intermediate)
            router = 0 if ffn.router_linear else h * num(ffn.num_experts)  # a bare weight, not a Linear
            weights += layers * (num(ffn.top_k) * 3 * h * i + router)
    matmul_params = weights + d.hidden_size * d.vocab_size  # biases are not matmuls
    return 6 * matmul_params + 12 * arch.num_layers * d.num_attention_heads * d.head_dim * seq_len
