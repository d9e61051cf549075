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

from dataclasses import dataclass
from functools import lru_cache

from .architecture import LINEAR_KINDS, Architecture, Kind, Module
from .lora import LoraCount
from .training import TrainingSettings

ATTENTION_PREFIXES = ("self_attn.", "attn.", "attention.", "self_attention.")
MLP_PREFIXES = ("mlp.", "feed_forward.", "block_sparse_moe.")
OUTPUT_PROJECTIONS = frozenset({"o_proj", "c_proj", "out_proj", "dense", "wo", "down_proj", "fc2", "w2"})
FEEDS: dict[str, frozenset[str]] = {"q_proj": frozenset("q"), "k_proj": frozenset("k"), "v_proj": frozenset("v")}
QKV = frozenset("qkv")
FUSED_ATTENTION_KERNELS = ("sdpa", "flash_attention_2")
FUSED_BACKWARD_MATMULS = 5  # flash / memory-efficient backward: recompute Q·Kᵀ, then dV, dP, dQ, dK


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
    """Attention matmuls of ``layers`` layers with the same geometry, counted in units of one
    ``(batch·heads, s, head_dim)`` matmul over the attended pairs."""

    layers: int
    width: int  # heads · head_dim
    window: int | None
    forward_units: int  # per layer
    backward_units: int  # summed over the layers (the first layers may need fewer gradients)
    recompute_units: int  # summed over the layers


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
            unit = 2 * batch_size * term.width * attention_pairs(seq_len, self.kernel, term.window)
            fwd += unit * term.forward_units * term.layers
            bwd += unit * term.backward_units
            rec += unit * term.recompute_units
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


# --- the architecture, seen as the roles its modules play ------------------------------------------------


@dataclass(frozen=True, slots=True)
class LayerRoles:
    """A decoder layer's matmuls grouped by where they sit in the data flow. Written against the module
    inventory's names so a new family only needs its names here (the lead's multi-stack rewrite adapts
    ``layer_roles`` and ``attention_windows``)."""

    attention_in: tuple[tuple[Module, frozenset[str]], ...]  # module, which of q/k/v it produces
    attention_out: tuple[Module, ...]
    mlp_in: tuple[Module, ...]
    mlp_out: tuple[Module, ...]
    other: tuple[Module, ...]  # linear layers outside both blocks, fed by the layer input
    router: Module | None
    experts: Module | None
    saves_after_mlp: bool  # a post-MLP norm, residual dropout or MoE routing weights keep a tensor


POST_MLP_NORMS = ("post_feedforward_layernorm", "post_mlp_layernorm")


@lru_cache(maxsize=256)
def layer_roles(arch: Architecture) -> LayerRoles:
    attention_in: list[tuple[Module, frozenset[str]]] = []
    attention_out: list[Module] = []
    mlp_in: list[Module] = []
    mlp_out: list[Module] = []
    other: list[Module] = []
    router = experts = None
    for module in arch.layer_modules:
        if module.kind is Kind.ROUTER:
            router = module
        elif module.kind is Kind.EXPERTS:
            experts = module
        elif module.kind in LINEAR_KINDS:
            out = module.name in OUTPUT_PROJECTIONS
            if module.path.startswith(ATTENTION_PREFIXES):
                if out:
                    attention_out.append(module)
                else:
                    attention_in.append((module, FEEDS.get(module.name, QKV)))
            elif module.path.startswith(MLP_PREFIXES):
                (mlp_out if out else mlp_in).append(module)
            else:
                other.append(module)
    saves_after = (
        experts is not None
        or arch.dims.residual_dropout > 0
        or any(m.kind is Kind.NORM and m.name in POST_MLP_NORMS for m in arch.layer_modules)
    )
    return LayerRoles(
        tuple(attention_in),
        tuple(attention_out),
        tuple(mlp_in),
        tuple(mlp_out),
        tuple(other),
        router,
        experts,
        saves_after,
    )


def attention_windows(arch: Architecture) -> tuple[int | None, ...]:
    """Each layer's sliding window (None: full causal attention). Read from the architecture when it
    carries one (``dims.sliding_window`` and ``dims.layer_types``); today's inventory has none."""
    window = getattr(arch.dims, "sliding_window", None)
    types = getattr(arch.dims, "layer_types", None)
    if not isinstance(window, int) or window <= 0:
        return (None,) * arch.num_layers
    if isinstance(types, tuple) and len(types) == arch.num_layers:
        return tuple(window if t == "sliding_attention" else None for t in types)
    return (window,) * arch.num_layers


# --- one layer ----------------------------------------------------------------------------------------


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
    q: bool = False
    k: bool = False
    v: bool = False
    tail_token: int = 0  # the last matmul, which checkpoint recomputation stops before (see _recompute_tail)


def _linear(
    t: _Tally, m: Module, input_rg: bool, r: int | None, copy: bool, full: bool, dora: bool, dropout: bool
) -> bool:
    """A linear layer (with its LoRA branch); returns whether its output needs a gradient."""
    fin, fout = m.in_features, m.out_features
    t.fwd_token += 2 * fin * fout
    if input_rg:
        t.bwd_token += 2 * fin * fout  # input gradient through the (frozen or trainable) weight
    if full or copy:
        t.bwd_token += 2 * fin * fout  # weight gradient
    if r is None:
        return input_rg or full or copy
    t.fwd_token += 2 * r * (fin + fout)
    # lora_B's weight gradient and the gradient into lora_A's output; lora_A's weight gradient
    t.bwd_token += 2 * r * fout * 2 + 2 * fin * r
    if input_rg:
        t.bwd_token += 2 * fin * r  # the input gradient through lora_A
    if dora:
        # PEFT's DoraLinearLayer.get_weight_norm: lora_B(lora_A(eye(in))) every forward, detached (no backward)
        t.fwd_step += 2 * fin * r * (fin + fout)
        if dropout:
            # with dropout the base result is recomputed on the dropped-out input
            t.fwd_token += 2 * fin * fout
            if input_rg:
                t.bwd_token += 2 * fin * fout
    return True


def _experts(t: _Tally, arch: Architecture, m: Module, input_rg: bool, ranks: dict[str, int], full: bool) -> bool:
    """MoE experts as 3-D parameters (transformers 5): each token runs top_k experts. LoRA on an expert
    parameter (PEFT's ParamWrapper) merges ``W + B·A`` per forward, so the merged weight needs its full
    weight gradient, and the delta's factors get theirs."""
    d = arch.dims
    k, experts = d.num_experts_per_tok, d.num_local_experts
    rg = input_rg
    for param in m.params:  # gate_up (E, 2i, h) then down (E, h, i): in = last dim, out = middle
        fin, fout = param.shape[-1], param.shape[-2]
        r = ranks.get(f"{m.path}.{param.name}")
        t.fwd_token += 2 * k * fin * fout
        if rg:
            t.bwd_token += 2 * k * fin * fout
        if full or r is not None:
            t.bwd_token += 2 * k * fin * fout
        if r is not None:
            # PEFT 0.21's nested ParamWrappers build each merged delta twice per forward (measured); its
            # backward (both factors' gradients) runs once
            t.fwd_step += 2 * 2 * experts * r * fin * fout
            t.bwd_step += 2 * 2 * experts * r * fin * fout
        rg = rg or full or r is not None
    return rg


def _layer(
    arch: Architecture, trainable: _Trainable, input_rg: bool, full: bool, dora: bool, dropout: bool
) -> tuple[_Tally, bool]:
    roles = layer_roles(arch)
    ranks = {} if full else dict(trainable.lora)
    copies = trainable.copies
    t = _Tally()

    def linear(m: Module, rg: bool) -> bool:
        return _linear(t, m, rg, ranks.get(m.path), m.path in copies, full, dora, dropout)

    for m, feeds in roles.attention_in:
        out = linear(m, input_rg)
        t.q, t.k, t.v = t.q or (out and "q" in feeds), t.k or (out and "k" in feeds), t.v or (out and "v" in feeds)
    attention_rg = t.q or t.k or t.v
    o_rg = attention_rg
    for m in roles.attention_out:
        o_rg = linear(m, attention_rg) or o_rg
    x_rg = input_rg or o_rg
    for m in roles.other:
        x_rg = linear(m, input_rg) or x_rg
    mlp_rg = False
    if roles.router is not None:
        e, h = arch.dims.num_local_experts, arch.dims.hidden_size
        router_r = ranks.get(f"{roles.router.path}.weight")
        router_trained = full or router_r is not None
        t.fwd_token += 2 * h * e
        if x_rg:
            t.bwd_token += 2 * h * e
        if router_trained:
            t.bwd_token += 2 * h * e
        if router_r is not None:  # ParamWrapper merges W + B·A every forward
            t.fwd_step += 2 * e * router_r * h
            t.bwd_step += 2 * 2 * e * router_r * h
        mlp_rg = x_rg or router_trained
    if roles.experts is not None:
        mlp_rg = _experts(t, arch, roles.experts, x_rg, ranks, full) or mlp_rg
    hidden_rg = False
    for m in roles.mlp_in:
        hidden_rg = linear(m, x_rg) or hidden_rg
    for m in roles.mlp_out:
        mlp_rg = linear(m, hidden_rg) or mlp_rg
    if roles.mlp_out and not roles.saves_after_mlp:
        t.tail_token = _recompute_tail(roles.mlp_out[-1], ranks.get(roles.mlp_out[-1].path), dora)
    return t, x_rg or mlp_rg


def _recompute_tail(m: Module, r: int | None, dora: bool) -> int:
    """Per-token FLOPs of the layer's last matmul, which recomputation skips. torch.utils.checkpoint's
    non-reentrant mode stops recomputing a layer as soon as every tensor the forward saved has been
    packed again (early stop, the default since PyTorch 2.1), and autograd packs an op's inputs before
    running it: when nothing after the MLP's output projection saves a tensor, that projection (or, with
    LoRA on it, its ``lora_B``) is never run again. Measured with FlopCounterMode."""
    if r is None:
        return 2 * m.in_features * m.out_features
    return 0 if dora else 2 * r * m.out_features


# --- the model ----------------------------------------------------------------------------------------


def _trainable_per_layer(arch: Architecture, count: LoraCount) -> list[_Trainable]:
    shared: dict[str, int] = {}
    specific: dict[int, dict[str, int]] = {}
    for path, layer, r in count.layer_adapters:
        if layer is None:
            shared[path] = r
        else:
            specific.setdefault(layer, {})[path] = r
    prefix = f"{arch.layer_prefix}."
    for key, _shape, r in count.parameter_keys:
        index, _, relative = key.removeprefix(prefix).partition(".")
        if index.isdigit():
            specific.setdefault(int(index), {})[relative] = r
    copies = frozenset(p for p in count.saved_modules if not p.startswith(prefix) and p not in _global_paths(arch))
    common = _Trainable(tuple(sorted(shared.items())), copies)
    return [
        _Trainable(tuple(sorted({**shared, **specific[i]}.items())), copies) if i in specific else common
        for i in range(arch.num_layers)
    ]


def _global_paths(arch: Architecture) -> frozenset[str]:
    return frozenset(m.path for m in arch.global_modules)


def flops_form(arch: Architecture, count: LoraCount, training: TrainingSettings, *, full: bool = False) -> FlopsForm:
    """The FLOPs of one micro-batch for this structure (LoRA, or full fine-tuning with ``full``)."""
    return _flops_form(arch, count, training.attn_implementation, training.gradient_checkpointing, full)


@lru_cache(maxsize=1024)
def _flops_form(arch: Architecture, count: LoraCount, kernel: str, checkpointing: bool, full: bool) -> FlopsForm:
    d = arch.dims
    globals_adapted = {} if full else dict(count.global_adapters)
    embedding_trained = full or arch.input_embedding in globals_adapted or arch.input_embedding in count.saved_modules
    # transformers' gradient checkpointing with a frozen embedding calls enable_input_require_grads
    rg = embedding_trained or checkpointing
    fwd = bwd = rec = fwd_step = bwd_step = rec_step = 0
    width = d.num_attention_heads * d.head_dim
    terms: dict[tuple[int | None, int, int], list[int]] = {}  # (window, fwd units) -> [layers, bwd, recompute]
    cache: dict[tuple[_Trainable, bool], tuple[_Tally, bool]] = {}
    windows = attention_windows(arch)
    for index, trainable in enumerate(_trainable_per_layer(arch, count)):
        key = (trainable, rg)
        if key not in cache:
            cache[key] = _layer(arch, trainable, rg, full, count.use_dora, count.lora_dropout > 0)
        tally, out_rg = cache[key]
        fwd += tally.fwd_token
        bwd += tally.bwd_token
        fwd_step += tally.fwd_step
        bwd_step += tally.bwd_step
        units = _attention_backward_units(tally, kernel)
        term = terms.setdefault((windows[index], width, 2), [0, 0, 0])
        term[0] += 1
        term[1] += units
        if checkpointing:
            rec += tally.fwd_token - tally.tail_token
            rec_step += tally.fwd_step
            term[2] += 2
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
        AttentionTerm(layers, w, window, units, backward, recompute)
        for (window, w, units), (layers, backward, recompute) in terms.items()
    )
    return FlopsForm(fwd, bwd, rec, fwd_step, bwd_step, rec_step, attention, kernel)


def _attention_backward_units(t: _Tally, kernel: str) -> int:
    if not (t.q or t.k or t.v):
        return 0
    if kernel in FUSED_ATTENTION_KERNELS:
        return FUSED_BACKWARD_MATMULS
    # eager: dQ and dK need dP (= dO·Vᵀ); dV = Pᵀ·dO
    return int(t.q) + int(t.k) + int(t.q or t.k) + int(t.v)


def training_flops(arch: Architecture, count: LoraCount, training: TrainingSettings, *, full: bool = False) -> Flops:
    return flops_form(arch, count, training, full=full).at(training.batch_size, training.seq_len)


def palm_flops_per_token(arch: Architecture, seq_len: int) -> int:
    """PaLM appendix B / nanoGPT ``estimate_mfu``: ``6·N + 12·L·H·Q·T`` for full training, with N the
    matmul parameters (the output head, not the embedding lookup) and non-causal attention."""
    d = arch.dims
    weights = sum(m.in_features * m.out_features for m in arch.layer_modules if m.kind in LINEAR_KINDS)
    matmul_params = arch.num_layers * weights + d.hidden_size * d.vocab_size  # biases are not matmuls
    return 6 * matmul_params + 12 * arch.num_layers * d.num_attention_heads * d.head_dim * seq_len
