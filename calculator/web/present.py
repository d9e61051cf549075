"""An `Estimate` (plus advice and serving, from the core) as the strings the results panel shows.

Everything is formatted here, once; the template only prints. Plain dicts (not objects) because
Django's template variable lookup tries ``obj[key]`` first.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from calculator.core import Estimate, Gpu, MemoryEstimate
from calculator.core.advice import Advice, advise
from calculator.core.dtypes import compute_dtype
from calculator.core.gpus import fits
from calculator.core.optimizers import OPTIMIZERS
from calculator.core.serving import ServingEstimate, serving_estimate
from calculator.services import catalog
from calculator.web import formatting as fmt
from calculator.web.chart import memory_chart
from calculator.web.query import Parsed, canonical_query

PARTS: tuple[tuple[str, str, str, str], ...] = (
    # (css key, MemoryEstimate field, label, what it is)
    ("base", "base_weights_bytes", "Base weights", "the frozen model as loaded"),
    ("adapter", "adapter_weights_bytes", "LoRA weights", "A and B matrices (and copies) in the adapter dtype"),
    ("grads", "gradients_bytes", "Gradients", "one per trainable parameter"),
    ("optim", "optimizer_states_bytes", "Optimizer states", "after the first step"),
    ("acts", "activations_bytes", "Activations", "saved for backward, one micro-batch"),
    ("logits", "logits_bytes", "Logits & loss", "output head and cross-entropy"),
    ("transient", "transient_bytes", "Transient at peak", "recomputed layer, dequantized weight, loss buffers"),
    ("overhead", "overhead_bytes", "CUDA context & allocator", "a stated allowance"),
)


def memory_parts(memory: MemoryEstimate) -> list[tuple[str, str, int]]:
    return [(key, label, getattr(memory, attr)) for key, attr, label, _ in PARTS]


def present(p: Parsed) -> dict[str, Any]:
    result = p.result
    assert result is not None
    assert p.gpu is not None
    arch, count, memory = result.architecture, result.count, result.memory
    gpu = p.gpu
    total = memory.total_bytes
    gpus = catalog.gpus
    fitting = [f for f in result.fits if f.fits]
    chosen_fit = next((f for f in result.fits if f.gpu == gpu.name), None)
    (chosen,) = fits(total, (gpu,))  # the chosen GPU need not be in the catalog
    base = arch.base_params
    ctx: dict[str, Any] = {
        "name": result.name or arch.family or arch.model_type,
        "model_type": arch.model_type,
        "base_params": fmt.count(base),
        "base_short": fmt.short_count(base),
        "trainable": fmt.count(count.trainable_params),
        "trainable_short": fmt.short_count(count.trainable_params),
        "of_base": fmt.percent(count.percent_of_base),
        "peft_percent": fmt.percent(count.trainable_percent),
        "all_params": fmt.count(count.all_params),
        "adapter_file": fmt.size(result.adapter_file_bytes),
        "adapter_file_bytes": fmt.count(result.adapter_file_bytes),
        "adapter_dtype": result.training.adapter_dtype,
        "peak": fmt.gib(total),
        "peak_bytes": fmt.count(total),
        "gpu": gpu.name,
        "gpu_size": fmt.gib(gpu.memory_bytes),
        "fits": chosen.fits,
        "headroom": fmt.gib(abs(chosen.headroom_bytes)),
        "fit_count": f"{len(fitting)} of {len(result.fits)}",
        "smallest_fit": min(fitting, key=lambda f: f.memory_bytes).gpu if fitting else "",
        "fit_rows": [
            {
                "gpu": f.gpu,
                "size": fmt.gib(f.memory_bytes),
                "fits": f.fits,
                "headroom": fmt.gib(abs(f.headroom_bytes)),
                "chosen": f.gpu == gpu.name,
            }
            for f in result.fits
        ],
        "chosen_fit": chosen_fit is not None,
        "modules": _modules(result),
        "memory": [
            {
                "key": key,
                "label": label,
                "what": what,
                "value": fmt.size(getattr(memory, attr)),
                "share": fmt.percent(memory.percent_of_total(getattr(memory, attr))),
            }
            for key, attr, label, what in PARTS
        ],
        "chart": memory_chart(memory_parts(memory), total, gpus, gpu),
        "scaling": _scaling(result),
        "comparison": _comparison(result, gpu),
        "advice": _advice(p, advise(arch, result.lora_settings, result.training, gpu)),
        "serving": _serving(serving_estimate(arch, result.lora_settings, result.training, p.adapters, gpus), gpu),
        "snippet": result.peft_config,
        "tokens": fmt.count(result.training.tokens),
        "training": _training_line(result),
        "overhead": fmt.size(memory.overhead_bytes),
        "engine": result.engine_version,
    }
    return ctx


def _modules(result: Estimate) -> list[dict[str, str]]:
    rows = []
    for m in result.count.modules:
        rows.append(
            {
                "name": m.name,
                "shape": f"{m.in_features:,} → {m.out_features:,}",
                "experts": f" \u00d7 {m.num_experts}" if m.num_experts > 1 else "",
                "layers": str(m.layers),
                "r": str(m.r),
                "per_layer": fmt.count(m.params_per_layer),
                "total": fmt.count(m.params),
                "share": fmt.percent(result.count.percent_of_trainable(m.params)),
            }
        )
    extra = result.count.bias_params + result.count.modules_to_save_params
    if extra:
        rows.append(
            {
                "name": "biases / modules_to_save",
                "shape": "",
                "experts": "",
                "layers": "",
                "r": "",
                "per_layer": "",
                "total": fmt.count(extra),
                "share": fmt.percent(result.count.percent_of_trainable(extra)),
            }
        )
    return rows


def _scaling(result: Estimate) -> dict[str, str]:
    lora = result.lora_settings
    return {
        "alpha": fmt.number(lora.lora_alpha),
        "r": str(lora.r),
        "value": f"{result.scaling:.4g}",
        "formula": "lora_alpha / √r (rsLoRA)" if lora.use_rslora else "lora_alpha / r",
        "rslora": lora.use_rslora,
    }


def _comparison(result: Estimate, gpu: Gpu) -> list[dict[str, Any]]:
    rows = []
    for s in result.comparison:
        m = s.memory
        rows.append(
            {
                "label": s.label,
                "dtype": s.base_dtype,
                "trainable": fmt.short_count(s.trainable_params),
                "weights": fmt.gib(m.base_weights_bytes + m.adapter_weights_bytes),
                "grads": fmt.gib(m.gradients_bytes),
                "optim": fmt.gib(m.optimizer_states_bytes),
                "acts": fmt.gib(m.activations_bytes + m.logits_bytes + m.transient_bytes),
                "peak": fmt.gib(m.total_bytes),
                "fits": m.total_bytes <= gpu.memory_bytes,
            }
        )
    return rows


def _advice(p: Parsed, a: Advice) -> dict[str, Any]:
    changes = []
    for c in a.changes:
        values = {path.split(".", 1)[1]: value for path, value in c.settings}
        changes.append({"label": c.label, "peak": fmt.gib(c.total_bytes), "fits": c.fits, "href": _calc_url(p, values)})
    t = p.result.training if p.result else None
    return {
        "fits": a.fits,
        "gpu": a.gpu.name,
        "headroom": fmt.gib(abs(a.headroom_bytes)),
        "max_batch": fmt.count(a.max_batch_size) if a.max_batch_size else "",
        "max_seq": fmt.count(a.max_seq_len) if a.max_seq_len else "",
        "seq_capped": a.max_seq_len == a.seq_len_limit,
        "seq_limit": fmt.count(a.seq_len_limit),
        "seq_len": fmt.count(t.seq_len) if t else "",
        "batch": str(t.batch_size) if t else "",
        "changes": changes,
        "batch_href": _calc_url(p, {"batch_size": a.max_batch_size})
        if a.max_batch_size and t and a.max_batch_size != t.batch_size
        else "",
        "seq_href": _calc_url(p, {"seq_len": a.max_seq_len})
        if a.max_seq_len and t and a.max_seq_len != t.seq_len
        else "",
    }


def _calc_url(p: Parsed, changes: dict[str, object]) -> str:
    return reverse("calculator") + "?" + canonical_query(p, changes)


def _serving(s: ServingEstimate, gpu: Gpu) -> dict[str, Any]:
    return {
        "adapters": str(s.adapters),
        "plural": s.adapters != 1,
        "base": fmt.size(s.base_weights_bytes),
        "adapter": fmt.size(s.adapter_bytes),
        "adapters_total": fmt.size(s.adapters_bytes),
        "kv": fmt.size(s.kv_cache_bytes),
        "context": fmt.count(s.context_len),
        "overhead": fmt.size(s.overhead_bytes),
        "total": fmt.gib(s.total_bytes),
        "fits": s.total_bytes <= gpu.memory_bytes,
        "merged": fmt.size(s.merged_weights_bytes),
        "merged_total": fmt.gib(s.merged_total_bytes),
        "merged_fits": s.merged_total_bytes <= gpu.memory_bytes,
        "dequant": s.merged_needs_dequantization,
        "extra_flops": fmt.percent(100 * s.extra_flops_fraction),
    }


def _training_line(result: Estimate) -> str:
    t = result.training
    parts = [
        f"base {t.base_dtype}" + (" + double quant" if t.base_dtype in ("nf4", "fp4") and t.double_quant else ""),
        f"compute {compute_dtype(t.base_dtype)}"
        + (", unquantized parameters and activations fp32" if t.float_dtype != compute_dtype(t.base_dtype) else ""),
        f"adapters {t.adapter_dtype}",
        OPTIMIZERS.get(t.optimizer, t.optimizer),
        f"micro-batch {t.batch_size} \u00d7 {t.seq_len:,} tokens",
        "gradient checkpointing" if t.gradient_checkpointing else "no gradient checkpointing",
        t.attn_implementation,
    ]
    return " · ".join(parts)
