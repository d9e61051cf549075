"""The output head and the loss: what each loss path keeps for backward and what it holds at its peak.

Five loss paths (``training.loss``), each read from its library's source at a pinned version and checked
against measurements (``validation/recipes/measure_losses.py``, ``tests/core/golden/recipes_measured.json``):

- ``hf``: transformers 5.23.0 ``ForCausalLMLoss``: full logits upcast to fp32, ``cross_entropy``.
- ``chunked``: torchtune 0.6.1 ``CEWithChunkedOutputLoss`` with ``TransformerDecoder.chunked_output``: the
  output projection and the fp32 upcast run per chunk of the sequence, but every chunk's fp32 log-softmax is
  still saved; what chunking removes is the full fp32 copy of the logits at the peak.
- ``trl_chunked_nll``: trl 1.16.0 ``add_fused_lm_head`` + ``kernels/chunked_logprob.py``
  ``ChunkedLogProbFunction``: positions whose label is -100 are dropped before the head (``hidden[mask]``), the
  projection runs on ``[4096 tokens x 32768 vocab]`` tiles into one reused buffer and only per-token
  statistics are kept.
- ``fused_linear``: liger-kernel 0.8.5 ``LigerFusedLinearCrossEntropyFunction``: the gradient of the hidden
  states is computed during the forward, in token chunks sized so a chunk's logits are about ``T·h``
  elements, and that gradient is what is kept.
- ``cut``: cut-cross-entropy 25.1.1 ``LinearCrossEntropyFunction``: keeps the hidden states, a float32
  log-sum-exp per scored position, the targets, the valid-position index and a float32 average logit per
  vocabulary entry; the backward recomputes logits block by block in SRAM.
"""

from __future__ import annotations

import math

from .architecture import Architecture
from .graph import FP32, INT64, Graph, LoraModule, Tensor
from .lora import LoraCount
from .training import TrainingSettings

TRL_TOKEN_TILE = 4096  # trl/kernels/chunked_logprob.py TOKEN_CHUNK_SIZE
TRL_VOCAB_TILE = 32768  # trl/trainer/utils.py _CHUNKED_LOGPROB_CHUNK_SIZE
TRL_TOKEN_STATS = 7  # running max, sum-exp, x·sum-exp, sq·sum-exp, z-sum, max-before-target, target logit
INT32 = 4
BOOL = 1


def head_bytes(
    arch: Architecture, count: LoraCount, training: TrainingSettings, final_rg: bool, full: bool
) -> tuple[int, int]:
    """(saved bytes, transient bytes around the loss) of the output head and the chosen loss."""
    g = Graph(arch, training, full)
    g.int8 = False  # the output head is never quantized
    x = g.act(arch.dims.hidden_size, final_rg)
    head_trainable = full or arch.output_head in count.saved_modules
    head_r = next((r for path, r in count.global_adapters if path == arch.output_head), None)
    if training.loss == "hf" or training.loss == "chunked" or head_r is not None:
        # A LoRA adapter on the head runs the head module itself; fused paths read ``lm_head.weight``.
        return _materialised_logits(g, x, count, training, head_trainable, head_r)
    if not (final_rg or head_trainable):
        return 0, 0
    if training.loss == "trl_chunked_nll":
        return _trl_chunked_nll(g, head_trainable)
    if training.loss == "fused_linear":
        return _liger_fused_linear(g, head_trainable)
    return _cut_cross_entropy(g, head_trainable)


def _materialised_logits(
    g: Graph, x: Tensor, count: LoraCount, training: TrainingSettings, head_trainable: bool, head_r: int | None
) -> tuple[int, int]:
    """transformers' ForCausalLMLoss and torchtune's chunked variant: logits exist in full (bf16), cross
    entropy keeps fp32 log-probabilities, the shifted labels (int64) and a scalar per chunk; Gemma 2's
    final soft-capping keeps a tanh."""
    arch = g.arch
    b, s = training.batch_size, training.seq_len
    tokens, vocab, h = training.tokens, arch.dims.vocab_size, arch.dims.hidden_size
    if head_trainable:
        g.save(x)  # a trainable head keeps its input
        logits = g.act(vocab, True)
    else:
        lora = LoraModule(head_r, count.lora_dropout, count.use_dora) if head_r else None
        logits = g.linear(x, h, vocab, lora)
    if not logits.requires_grad:
        return 0, 0
    if arch.forward.head_softcap:
        g.save(g.act(vocab, True))  # final_logit_softcapping's tanh output
    log_probs = g.act(vocab, True, FP32)
    if training.loss == "chunked":
        # torchtune shifts the labels itself (hstack with an ignore column), each chunk's labels are an int64
        # [b·s/C] view or copy (8·T in all), and the sum is divided by an int64 count of tokens.
        chunks = min(training.loss_chunks, s)
        chunk = math.ceil(s / chunks) * b
        g.save(g.new(tokens, INT64, False), g.new(1, INT64, False))
        if training.compile_loss:
            # torchtune's compile_loss compiles compute_cross_entropy: the compiled graph keeps each chunk's
            # bf16 logits and two float32 values per token instead of the fp32 log-probabilities.
            g.save(g.act(vocab, True), g.new(2 * tokens, FP32, False))
            return g.total, chunk * vocab * FP32
        # Eager: every chunk's fp32 log-softmax is kept and nll_loss keeps a float32 total weight per chunk;
        # at the forward's peak every chunk's bf16 logits (the recipe holds the list) and one fp32 chunk copy.
        g.save(log_probs, g.new(chunks, FP32, False))
        return g.total, tokens * vocab * g.p + chunk * vocab * FP32
    labels = INT64 * (s + 1 if b == 1 else tokens)  # shifted labels; with b = 1 a view of the padded row
    g.save(log_probs, g.new(labels, 1, False), g.new(1, FP32, False))
    # At log_softmax's backward its output (saved), the incoming gradient and the outgoing fp32 gradient
    # coexist: two more fp32 logits-sized buffers at the peak.
    return g.total, 2 * tokens * vocab * FP32


def _trl_chunked_nll(g: Graph, head_trainable: bool) -> tuple[int, int]:
    """TRL's fused head on a Triton device (``compact``): ``labels[:, 1:] != -100`` (a bool mask, kept by the
    index and the masked scatters), ``hidden[mask]`` (a gathered copy of the scored rows), their int64
    targets and two float32 per-token results (log-sum-exp and entropy, which the SFTTrainer requests)."""
    t, arch = g.training, g.arch
    h, vocab = arch.dims.hidden_size, arch.dims.vocab_size
    n = t.loss_tokens
    g.save(g.new(t.batch_size * (t.seq_len - 1), BOOL, False))  # mask
    g.save(g.new(n * h, g.p, True), g.new(n, INT64, False), g.new(n, FP32, True), g.new(n, FP32, True))
    g.save(g.new(1, INT64, False))  # the token count the summed loss is divided by
    tile = min(n, TRL_TOKEN_TILE) * TRL_VOCAB_TILE * g.p
    # Backward: float32 gradient accumulator for the rows, the reused tile, the cast back and the scatter
    # into the full hidden-state gradient; plus an fp32 weight gradient when the head trains.
    backward = n * h * FP32 + tile + n * h * g.p + t.tokens * h * g.p
    weight_grad = vocab * h * FP32 if head_trainable else 0
    return g.total, max(tile + TRL_TOKEN_STATS * n * FP32, backward) + weight_grad


def _liger_fused_linear(g: Graph, head_trainable: bool) -> tuple[int, int]:
    """Liger: ``grad_input`` (``T x h`` in the input dtype) is computed and saved in the forward; with a
    trainable head, ``grad_weight`` too. Token chunks: ``inc = ceil(V / h)``,
    ``chunk = min(T, next_pow2(ceil(T / inc)))`` (``fused_linear_cross_entropy_forward``)."""
    t, arch = g.training, g.arch
    h, vocab, tokens = arch.dims.hidden_size, arch.dims.vocab_size, t.tokens
    g.save(g.new(tokens * h, g.p, True))
    if head_trainable:
        g.save(g.new(vocab * h, g.p, True))
    chunk = liger_chunk_size(tokens, vocab, h)
    # The chunk's logits (overwritten in place by their gradient), the fp32 per-token loss, the padded and
    # shifted labels, and the chunk's ``grad_logits @ weight`` product.
    return g.total, chunk * vocab * g.p + tokens * FP32 + 2 * tokens * INT64 + chunk * h * g.p


def liger_chunk_size(tokens: int, vocab: int, hidden: int) -> int:
    inc_factor = -(-vocab // hidden)
    per_chunk = -(-tokens // inc_factor)
    return min(tokens, 1 << (per_chunk - 1).bit_length())


def _cut_cross_entropy(g: Graph, head_trainable: bool) -> tuple[int, int]:
    """cut-cross-entropy with ``shift=True`` (its transformers patch): saves ``e`` (the final hidden states,
    which nothing else keeps), ``lse`` float32 and ``valids`` int32 per scored position and ``logit_avg``
    (float32 per vocabulary entry, for the gradient filter); the targets it keeps are the caller's labels."""
    t, arch = g.training, g.arch
    h, vocab, tokens = arch.dims.hidden_size, arch.dims.vocab_size, t.tokens
    n = t.loss_tokens
    g.save(g.new(tokens * h, g.p, True), g.new(n, FP32, True), g.new(n, INT32, False), g.new(vocab, FP32, False))
    # Backward: ``de`` like ``e``, the vocabulary ordering (argsort of logit_avg), ``dc`` for a trainable head.
    return g.total, tokens * h * g.p + vocab * INT64 + (vocab * h * g.p if head_trainable else 0)
