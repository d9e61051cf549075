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
from typing import Any

from .architecture import Architecture, Kind, Module
from .dtypes import FLOAT_BYTES, QUANTIZED_DTYPES
from .graph import CUDA_MASK, FP32, INT64, Graph, LoraModule
from .head import head_bytes
from .layers import LayerPlan, linear_input_features, replay_layer
from .lora import LoraCount
from .training import TrainingSettings


@dataclass(frozen=True, slots=True)
class Activations:
    layers_bytes: int  # the decoder layers (with checkpointing: what the checkpoints keep)
    outside_bytes: int  # outside the layers before the head: final norm, rotary tables, checkpoint kwargs
    logits_bytes: int  # output head and loss
    recompute_bytes: int  # with checkpointing: one layer rebuilt during backward (part of the peak)
    per_layer_bytes: int  # the largest layer without checkpointing
    head_transient_bytes: int  # logits-sized buffers alive around the loss besides what is saved
    expert_dequant_bytes: int = 0  # quantized MoE experts: one layer's dequantized expert weights (transient)
    checkpoint_input_bytes: int = 0  # with checkpointing: what one checkpoint keeps (the layer input)


@lru_cache(maxsize=256)
def _layer_plans(arch: Architecture, count: LoraCount) -> tuple[tuple[Any, LayerPlan, int], ...]:
    """Runs of consecutive text layers of one kind with the same adapted modules and ranks:
    (the kind's block, plan, number of layers).

    Cached per count (the closed forms evaluate the same count at a dozen batch and sequence sizes), and a
    layer without adapters of its own reuses its kind's plan: on a 1,024-layer model the per-layer sort was
    most of an estimate."""
    stack = arch.text
    shared: dict[str, LoraModule] = {}
    specific: dict[int, dict[str, LoraModule]] = {}
    for path, layer, r in count.layer_adapters:
        module = LoraModule(r, count.lora_dropout, count.use_dora)
        if layer is None:
            shared[path] = module
        elif layer < stack.num_layers:
            specific.setdefault(layer, {})[path] = module
    prefix = f"{stack.prefix}."
    for key, _shape, r in count.parameter_keys:  # LoRA on bare parameters (MoE experts, router)
        layer_text, _, relative = key.removeprefix(prefix).partition(".")
        if key.startswith(prefix) and layer_text.isdigit() and int(layer_text) < stack.num_layers:
            specific.setdefault(int(layer_text), {})[relative] = LoraModule(r, 0.0, False)
    paths = [_plan_paths(kind.modules) for kind in stack.kinds]
    runs: list[tuple[Any, LayerPlan, int]] = []
    kind_plans: dict[int, LayerPlan] = {}
    for index, kind_index in enumerate(stack.layout):
        own = specific.get(index)
        if own is None and kind_index in kind_plans:
            plan = kind_plans[kind_index]
        else:
            relevant = paths[kind_index]
            merged = {**shared, **own} if own else shared
            plan = tuple(sorted((p, m) for p, m in merged.items() if p.rsplit(".", 1)[0] in relevant or p in relevant))
            if own is None:
                kind_plans[kind_index] = plan
        block = stack.kinds[kind_index].block
        if runs and runs[-1][0] is block and runs[-1][1] == plan:
            runs[-1] = (block, plan, runs[-1][2] + 1)
        else:
            runs.append((block, plan, 1))
    return tuple(runs)


def _plan_paths(modules: tuple[Module, ...]) -> frozenset[str]:
    return frozenset(m.path for m in modules)


@dataclass(frozen=True, slots=True)
class _LayerReplay:
    saved_bytes: int
    input_saved_bytes: int  # part of saved_bytes that is the layer's own input storage
    output_requires_grad: bool
    rope_needed: bool
    shared_mask_needed: bool
    skipped: bool  # the layer does not run on text batches (Mllama's cross-attention)


def _replay(
    arch: Architecture,
    training: TrainingSettings,
    block: Any,
    plan: LayerPlan,
    input_rg: bool,
    full: bool,
    per_layer_inputs_rg: bool = False,
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
    return _replay_layer(arch, layer_settings, block, plan, input_rg, full, per_layer_inputs_rg)


@lru_cache(maxsize=4096)
def _replay_layer(
    arch: Architecture,
    training: TrainingSettings,
    block: Any,
    plan: LayerPlan,
    input_rg: bool,
    full: bool,
    per_layer_inputs_rg: bool,
) -> _LayerReplay:
    g = Graph(arch, training, full)
    g.per_layer_inputs_rg = per_layer_inputs_rg
    x = g.act(arch.dims.hidden_size, input_rg)
    out = replay_layer(g, x, block, plan)
    input_saved = g.saved.get(x.storage, 0)
    return _LayerReplay(g.total, input_saved, out.requires_grad, g.rope_needed, g.shared_mask_needed, out is x)


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
    embeddings_rg = rg
    per_layer_inputs_rg = _per_layer_inputs_rg(arch, count, embeddings_rg)
    cache: dict[tuple[Any, LayerPlan, bool], _LayerReplay] = {}

    def replay(block: Any, plan: LayerPlan, input_rg: bool) -> _LayerReplay:
        key = (block, plan, input_rg)
        if key not in cache:
            cache[key] = _replay(arch, training, block, plan, input_rg, full, per_layer_inputs_rg)
        return cache[key]

    layers_bytes = typical = recompute = 0
    experts = _quantized_expert_bytes(arch, count, training)
    rope = shared_mask = False
    for block, plan, layers in _layer_plans(arch, count):
        while layers:
            layer = replay(block, plan, rg)
            # Once a layer's output needs a gradient exactly when its input does, the rest of the run repeats.
            repeats = layers if layer.output_requires_grad == rg else 1
            rope = rope or layer.rope_needed
            shared_mask = shared_mask or layer.shared_mask_needed
            # grouped_mm keeps its weight for the input's gradient: a parametrized (dequantized) expert
            # weight is a new tensor, so each layer whose MoE block needs a gradient keeps one.
            layer_experts = experts.get(block, 0)
            saved = layer.saved_bytes + (layer_experts if layer.output_requires_grad else 0)
            typical = max(typical, saved)
            if layer.skipped:
                pass
            elif checkpointing:
                layers_bytes += repeats * (tokens * h * p + _int8_checkpoint_leak(block, training))
                recompute = max(recompute, saved - layer.input_saved_bytes)
            else:
                layers_bytes += repeats * saved
            rg = layer.output_requires_grad
            layers -= repeats

    forward = arch.forward
    outside = _final_norm_bytes(arch, training, p) if rg else 0
    if shared_mask and not checkpointing:  # Falcon's ALiBi mask, one (batch, heads, s, s) tensor kept by sdpa
        outside += training.batch_size * forward.alibi_heads * s * s * p
    if (rope or (checkpointing and forward.rope_dim)) and not forward.learned_positions:
        # with checkpointing every checkpoint holds the tables (passed to each layer) whether used or not
        # cos, sin: one pair for all layers (Llama 4: one complex64 table)
        if forward.rope_complex:
            outside += s * forward.rope_dim * FP32
        else:
            rows = s * (training.batch_size if forward.rope_batched else 1)
            outside += 2 * rows * forward.rope_dim * (FP32 if forward.rope_fp32 else p)
    outside += _per_layer_inputs_bytes(arch, count, training, embeddings_rg)
    if checkpointing:
        outside += _checkpoint_kwargs_bytes(arch, training, p)
        # the storing layers' k and v, held by the sharing layers' checkpoints (their kwargs) until backward
        outside += tokens * forward.shared_kv_features * p
    logits, transient = head_bytes(arch, count, training, rg, full)
    return Activations(
        layers_bytes=layers_bytes,
        outside_bytes=outside,
        logits_bytes=logits,
        recompute_bytes=recompute,
        per_layer_bytes=typical,
        head_transient_bytes=transient,
        expert_dequant_bytes=max(experts.values(), default=0),
        checkpoint_input_bytes=tokens * h * p if checkpointing else 0,
    )


def _quantized_expert_bytes(arch: Architecture, count: LoraCount, training: TrainingSettings) -> dict[Any, int]:
    """Per text layer kind (by its block): one layer's expert tensors dequantized to the compute dtype, when
    ``quantize_moe_experts`` stores them in 4/8 bit (bitsandbytes' ``replace_parameter_4bit``
    parametrization, as Axolotl 0.19.0's ``monkeypatch/moe_quant.py`` applies it). Expert tensors that carry
    a LoRA (PEFT's ParamWrapper) are already kept merged by the replay, so they add nothing here."""
    if not (training.quantize_moe_experts and training.base_dtype in QUANTIZED_DTYPES):
        return {}
    adapted = {key.rsplit(".", 1)[-1] for key, _shape, _r in count.parameter_keys}
    found: dict[Any, int] = {}
    for kind in arch.text.kinds:
        numel = sum(
            param.numel
            for module in kind.modules
            if module.kind == Kind.EXPERTS
            for param in module.params
            if param.name not in adapted
        )
        if numel:
            found[kind.block] = numel * FLOAT_BYTES[training.float_dtype]
    return found


def _per_layer_inputs_rg(arch: Architecture, count: LoraCount, embeddings_rg: bool) -> bool:
    """Whether Gemma 4's per-layer inputs need a gradient (their projection has a LoRA, or the embeddings
    require grad): each layer's product then also keeps its gate's activation."""
    inputs = arch.forward.per_layer_inputs
    if inputs is None:
        return False
    return embeddings_rg or any(path == inputs[0] for path, _ in count.global_adapters)


def _per_layer_inputs_bytes(arch: Architecture, count: LoraCount, training: TrainingSettings, rg: bool) -> int:
    """Gemma 4's per-layer inputs, computed before the layers: the projection of the embeddings (a LoRA there
    keeps its input) and its norm, which keeps its fp32 input when the embeddings require grad. With
    checkpointing every layer's checkpoint holds its slice of the combined table, so the whole table stays
    (without it the layers' products keep it, counted with the layers)."""
    inputs = arch.forward.per_layer_inputs
    if inputs is None:
        return 0
    path, width, size = inputs
    r = next((r for adapted, r in count.global_adapters if adapted == path), None)
    g = Graph(arch, training)
    x = g.act(arch.dims.hidden_size, rg)  # the embeddings (the first layer's input: not counted here)
    projected = g.linear(
        x, arch.dims.hidden_size, width, LoraModule(r, count.lora_dropout, count.use_dora) if r else None
    )
    g.rms_norm(projected, size, kind=arch.forward.final_norm)
    table = training.tokens * width * FLOAT_BYTES[training.float_dtype] if training.gradient_checkpointing else 0
    return g.total - g.saved.get(x.storage, 0) + table


def _embedding_trainable(arch: Architecture, count: LoraCount) -> bool:
    if any(path == arch.input_embedding for path, _ in count.global_adapters):
        return True
    return arch.input_embedding in count.saved_modules


def _final_norm_bytes(arch: Architecture, training: TrainingSettings, p: int) -> int:
    tokens, h = training.tokens, arch.dims.hidden_size
    kind = arch.forward.final_norm
    if not kind:
        return 0
    if kind == "layer":
        return tokens * h * p + 2 * tokens * FP32  # native_layer_norm: input, mean, rstd
    if kind == "cohere":
        return 2 * tokens * h * FP32 + tokens * FP32 + h * FP32  # x - mean twice, rsqrt, the fp32 weight
    if kind == "rms_gemma4":  # fp32 input, mean(x²) + eps and its pow(-0.5), weight.float() unless fp32
        weight = 0 if training.float_dtype == "fp32" or training.prepare_model_for_kbit_training else h * FP32
        return tokens * h * FP32 + 2 * tokens * FP32 + weight
    gemma = h * FP32 if kind == "rms_gemma" else 0
    return tokens * h * FP32 + tokens * FP32 + gemma  # fp32 input, rsqrt


def _checkpoint_kwargs_bytes(arch: Architecture, training: TrainingSettings, p: int) -> int:
    """What the checkpointed forward keeps besides the layer inputs: the arguments every layer gets
    (position ids, the eager 4-D masks — a sliding-window one too when some layers slide; rotary tables are
    counted with the layers' use of them) and, with learned positions (GPT-2), the embedding output that
    requires grad plus its dropout mask."""
    tokens, h, b, s = training.tokens, arch.dims.hidden_size, training.batch_size, training.seq_len
    total = INT64 * s  # position_ids
    sliding = _sliding_masked(arch, training)
    forward = arch.forward
    if forward.alibi_heads:  # Falcon: the causal mask with ALiBi folded in, and ALiBi itself
        total += b * forward.alibi_heads * s * s * p + b * forward.alibi_heads * s * p
    elif training.attn_implementation == "eager":
        total += forward.attention_types * b * s * s * p  # a full and/or a sliding-window mask
    elif training.attn_implementation == "sdpa" and (sliding or forward.always_masked):
        # sdpa: the sliding layers' boolean mask (full causal layers need none; Falcon always builds one);
        # Llama 4's chunked one per batch row
        total += s * s * (b if forward.chunked_mask else 1)
    if arch.forward.learned_positions or arch.forward.embedding_copy:
        # the embedding's output (made to require grad) stays referenced by its AccumulateGrad node, apart
        # from the first layer's input (GPT-2's wte + wpe, Granite's scaled embeddings)
        total += tokens * h * p
        if arch.dims.embedding_dropout > 0:
            total += tokens * h * CUDA_MASK
    return total


def _sliding_masked(arch: Architecture, training: TrainingSettings) -> bool:
    window = arch.forward.sliding_window
    return window is not None and training.seq_len >= window


def _int8_checkpoint_leak(block: Any, training: TrainingSettings) -> int:
    """bitsandbytes int8 layers keep their inputs as ctx attributes, which non-reentrant checkpointing
    cannot drop: the inputs of every int8 linear layer stay alive."""
    if training.base_dtype != "int8":
        return 0
    p = FLOAT_BYTES[training.float_dtype]
    return training.tokens * p * linear_input_features(block)


@dataclass(frozen=True, slots=True)
class PlacedActivations:
    activations_bytes: int  # saved activations that stay on the GPU
    logits_bytes: int
    host_bytes: int  # offloaded to (pinned) CPU memory
    brought_back_bytes: int  # on the GPU again during the backward: the layer being differentiated


def place_activations(acts: Activations, training: TrainingSettings) -> PlacedActivations:
    """Activation offloading: where the saved tensors live.

    - torchtune 0.6.1 ``training/_activation_offloading.py`` ``OffloadActivations`` and its copy in trl 1.16.0
      ``models/activation_offloading.py``: a saved-tensor hook moves every saved tensor of at least 1024
      bytes that is not a parameter to pinned CPU memory and brings it back when the backward unpacks it; with
      gradient checkpointing that is the layer inputs the checkpoints keep. The output head's forward is
      excluded. torchtune computes the loss outside the context, so the head and loss stay on the GPU; TRL
      wraps the whole training step, and its fused head never calls ``lm_head.forward``, so its loss tensors
      are offloaded too.
    - Unsloth's ``use_gradient_checkpointing="unsloth"`` offloads only the checkpointed layer inputs.

    During the backward one layer's tensors are back on the GPU (with checkpointing its input; the rebuilt
    layer is ``recompute_bytes``). Tensors under 1024 bytes (per-row statistics of tiny batches) are
    counted as offloaded.
    """
    if not training.activation_offloading:
        return PlacedActivations(acts.layers_bytes + acts.outside_bytes, acts.logits_bytes, 0, 0)
    checkpointing = training.gradient_checkpointing
    if training.framework == "unsloth":
        if not checkpointing:  # Unsloth's offload is a checkpointing mode: nothing else moves
            return PlacedActivations(acts.layers_bytes + acts.outside_bytes, acts.logits_bytes, 0, 0)
        offloaded_layers, kept_outside = acts.layers_bytes, acts.outside_bytes
    else:
        offloaded_layers, kept_outside = acts.layers_bytes + acts.outside_bytes, 0
    logits_offloaded = training.framework == "trl"
    host = offloaded_layers + (acts.logits_bytes if logits_offloaded else 0)
    brought_back = acts.checkpoint_input_bytes if checkpointing else acts.per_layer_bytes
    return PlacedActivations(kept_outside, 0 if logits_offloaded else acts.logits_bytes, host, brought_back)
