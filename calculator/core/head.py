"""The output head and the loss: the logits and cross-entropy buffers kept for backward."""

from __future__ import annotations

from .architecture import Architecture
from .graph import FP32, INT64, Graph, LoraModule
from .lora import LoraCount
from .training import TrainingSettings


def head_bytes(
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
    if arch.forward.head_softcap:
        g.save(g.act(vocab, True))  # final_logit_softcapping's tanh output
    labels = INT64 * (s + 1 if b == 1 else tokens)  # shifted labels; with b = 1 a view of the padded row
    g.save(g.act(vocab, True, FP32), g.new(labels, 1, False), g.new(1, FP32, False))
    # At log_softmax's backward its output (saved), the incoming gradient and the outgoing fp32 gradient
    # coexist: two more fp32 logits-sized buffers at the peak.
    return g.total, 2 * tokens * vocab * FP32
