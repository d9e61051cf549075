"""`CalculatorResults` (from the services) as the strings the results panel shows.

Everything is formatted here, once; the template only prints. Plain dicts (not objects) because
Django's template variable lookup tries ``obj[key]`` first. No number is computed here: every verdict
("fits", the smallest card, the notes) comes from the services.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.urls import reverse

from calculator import services
from calculator.web import formatting as fmt
from calculator.web import labels
from calculator.web import plan as plan_panels
from calculator.web.chart import host_chart, memory_chart

Link = Callable[[Mapping[str, object]], str]  # field changes -> the calculator URL of that state


def present(results: services.CalculatorResults, link: Link) -> dict[str, Any]:
    """The panel's strings; ``link`` gives the query of the state with some fields changed."""
    href = _hrefs(link)
    result = results.estimate
    arch, count, memory = result.architecture, result.count, result.memory
    gpu, fit = results.gpu, results.fit
    smallest = results.smallest_fit
    plan = results.planned.plan
    return {
        "name": result.name or arch.family or arch.model_type,
        "model_type": arch.model_type,
        "approximate": not arch.exact,
        "assumptions": list(arch.assumptions),
        "base_params": fmt.count(arch.base_params),
        "base_short": fmt.short_count(arch.base_params),
        "trainable": fmt.count(count.trainable_params),
        "trainable_short": fmt.short_count(count.trainable_params),
        "of_base": fmt.percent(count.percent_of_base),
        "peft_percent": fmt.percent(count.trainable_percent),
        "reduction": fmt.factor(results.parameter_reduction),
        "all_params": fmt.count(count.all_params),
        "adapter_file": fmt.size(result.adapter_file_bytes),
        "adapter_dtype": result.training.adapter_dtype,
        "peak": fmt.gib(memory.total_bytes),
        "gpu": gpu.name,
        "gpu_size": fmt.gib(gpu.memory_bytes),
        "fits": fit.fits,
        "verdict": plan_panels.verdict(fit),
        "margin": fmt.gib(fit.margin_bytes),
        "safety_margin": fmt.share(results.planned.settings.safety_margin),
        "headroom": fmt.gib(abs(fit.headroom_bytes)),
        "fit_count": f"{len(results.fitting)} of {len(plan.fits)}",
        "smallest_fit": smallest.gpu if smallest else "",
        "fit_rows": [
            {
                "gpu": f.gpu,
                "size": fmt.gib(f.memory_bytes),
                "fits": f.fits,
                "verdict": plan_panels.verdict(f),
                "headroom": fmt.gib(abs(f.headroom_bytes)),
                "chosen": f.gpu == gpu.name,
            }
            for f in plan.fits
        ],
        "modules": _modules(result),
        "oversized": [
            {"name": m.name, "r": str(m.r), "limit": fmt.count(min(m.in_features, m.out_features))}
            for m in results.oversized_ranks
        ],
        "memory": [
            {
                "key": key,
                "label": label,
                "what": what,
                "value": fmt.size(getattr(memory, attr)),
                "share": fmt.percent(memory.percent_of_total(getattr(memory, attr))),
            }
            for key, attr, label, what in labels.MEMORY_PARTS
        ],
        "chart": memory_chart(
            [(key, label, getattr(memory, attr)) for key, attr, label, _ in labels.MEMORY_PARTS],
            memory.total_bytes,
            plan.fits,
            fit,
        ),
        "time": plan_panels.time_panel(results.planned),
        "costs": plan_panels.cost_rows(results.planned),
        "sweep": plan_panels.sweep_panel(results, href),
        "scaling": _scaling(result),
        "comparison": _comparison(results),
        "notes": results.notes,
        "advice": _advice(results, href),
        "serving": _serving(results),
        "files": _files(results.adapter_files),
        "snippet": result.peft_config,
        "tokens": fmt.count(result.training.tokens),
        "training": _training_line(result),
        "overhead": fmt.size(memory.overhead_bytes),
        "engine": result.engine_version,
        "host": _host(results),
        "loss": _loss(results),
        "experts": _experts(results, href),
        "exports": _exports(results),
        "framework": labels.FRAMEWORK_SHORT.get(result.training.framework, result.training.framework),
        "sure": _sure(results),
        "sure_short": _sure_short(results),
    }


def _sure_short(results: services.CalculatorResults) -> str:
    """The one line the panel shows before it is opened."""
    sure = results.confidence
    counts = "exact counts and bytes" if sure.counts_exact else "approximate counts"
    if sure.cuda_only_kernel:
        activations = "activations modelled on a CUDA kernel"
    elif sure.activations_cases:
        error = "exactly" if sure.activations_worst == 0 else f"within {sure.activations_worst:.1%}"
        activations = f"activations {error} on {sure.activations_cases} measured cases"
    else:
        activations = "activations not measured for this type"
    return f"{counts} · {activations} · peak without allocator slack (the margin covers it)"


def _sure(results: services.CalculatorResults) -> list[str]:
    """How sure each figure is, in the order the page shows them (core.confidence's facts, said plainly)."""
    sure = results.confidence
    lines = []
    if sure.counts_exact:
        lines.append(
            "Parameter counts and the weights, adapter, gradient and optimizer bytes are exact (checked "
            "against transformers, PEFT and bitsandbytes)."
        )
    else:
        lines.append("Counts are an approximate reading of an unknown model type (typically within a few percent).")
    if sure.cuda_only_kernel:
        lines.append(
            "Activations: modelled on CUDA's memory-efficient attention kernel, which this model's "
            "attention (q/k wider than v) needs; the CPU measurements cannot run it."
        )
    elif sure.activations_cases:
        agree = "equal to" if sure.activations_worst == 0 else f"within {sure.activations_worst:.2%} of"
        bound = ""
        if sure.upper_bound:
            bound = " (an upper bound: the torch path of Gated DeltaNet; fla's kernels keep less)"
        lines.append(
            f"Activations: replayed as the model's code keeps them, {agree} the measurement in all "
            f"{sure.activations_cases} measured {sure.measured_as} cases{bound}."
        )
    else:
        lines.append("Activations: replayed from the model's code; this type's layers were not measured themselves.")
    lines.append(
        f"The peak leaves out allocator slack (reserved memory runs 8 to 15% above it): the "
        f"{fmt.share(results.planned.settings.safety_margin)} safety margin is for that."
    )
    return lines


def _loss(results: services.CalculatorResults) -> dict[str, Any] | None:
    """What the chosen loss keeps against transformers' full fp32 logits, when it is another one."""
    baseline = results.loss_baseline
    if baseline is None:
        return None
    now, hf = results.estimate.memory, baseline.memory
    return {
        "name": labels.choice("loss", results.estimate.training.loss),
        "now": fmt.size(now.logits_bytes),
        "hf": fmt.size(hf.logits_bytes),
        "peak_hf": fmt.gib(hf.total_bytes),
    }


def _host(results: services.CalculatorResults) -> dict[str, Any] | None:
    """Host (CPU) memory beside the GPU figure, when the recipe offloads anything."""
    fit = results.host_fit
    if fit is None:
        return None
    host = results.estimate.memory.host_bytes
    return {
        "value": fmt.gib(host),
        "ram": fmt.size(fit.memory_bytes),
        "fits": fit.fits,
        "headroom": fmt.gib(abs(fit.headroom_bytes)),
        "chart": host_chart(host, fit.memory_bytes, fit.fits),
    }


def _experts(results: services.CalculatorResults, href: Link) -> dict[str, Any] | None:
    """Why a quantized MoE base keeps its experts in 16 bit, and what quantizing them gives."""
    e, fit = results.experts, results.experts_fit
    if e is None or fit is None:
        return None
    now, quantized = results.estimate.memory, e.quantized.memory
    return {
        "params": fmt.short_count(e.expert_params),
        "base_now": fmt.gib(now.base_weights_bytes),
        "base_quantized": fmt.gib(quantized.base_weights_bytes),
        "peak_now": fmt.gib(now.total_bytes),
        "peak_quantized": fmt.gib(quantized.total_bytes),
        "fits_quantized": fit.fits,
        "raises_peak": e.raises_peak,
        "peak_checkpointed": fmt.gib(e.checkpointed.memory.total_bytes) if e.checkpointed else None,
        "checkpointing_href": href({"quantize_moe_experts": True, "gradient_checkpointing": True}),
        "dtype": results.estimate.training.base_dtype,
        "href": href({"quantize_moe_experts": True}),
    }


def _exports(results: services.CalculatorResults) -> dict[str, Any]:
    """The recipe to copy back into a framework; the chosen framework's format opens first."""
    x = results.exports
    first = {"torchtune": "torchtune", "axolotl": "axolotl"}.get(results.estimate.training.framework, "trl")
    return {
        "model_id": x.model_id,
        "placeholder": x.model_id == services.PLACEHOLDER_MODEL,
        "trl": x.trl_python,
        "torchtune": x.torchtune_command,
        "torchtune_config": x.torchtune_config,
        "torchtune_exact": x.torchtune_exact,
        "axolotl": x.axolotl_yaml,
        "first": first,
    }


def _modules(result: services.Estimate) -> list[dict[str, str]]:
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


def _scaling(result: services.Estimate) -> dict[str, Any]:
    lora = result.lora_settings
    return {
        "alpha": fmt.number(lora.lora_alpha),
        "r": str(lora.r),
        "value": f"{result.scaling:.4g}",
        "formula": "lora_alpha / √r (rsLoRA)" if lora.use_rslora else "lora_alpha / r",
        "rslora": lora.use_rslora,
    }


def _comparison(results: services.CalculatorResults) -> list[dict[str, Any]]:
    """The columns, labelled by what each assumes."""
    training = results.estimate.training
    assumes = (
        f"every weight trains, {training.optimizer} states for all",
        f"your settings: {training.base_dtype} base, {training.adapter_dtype} adapters",
        "your settings on a 4-bit NF4 base (double quant)",
    )
    rows = []
    for s, fit, note in zip(results.estimate.comparison, results.scenario_fits, assumes, strict=True):
        m = s.memory
        rows.append(
            {
                "label": s.label,
                "assumes": note,
                "dtype": s.base_dtype,
                "trainable": fmt.short_count(s.trainable_params),
                "weights": fmt.gib(m.base_weights_bytes + m.adapter_weights_bytes),
                "grads": fmt.gib(m.gradients_bytes),
                "optim": fmt.gib(m.optimizer_states_bytes),
                "acts": fmt.gib(m.activations_bytes + m.logits_bytes + m.transient_bytes),
                "peak": fmt.gib(m.total_bytes),
                "fits": fit.fits,
                "verdict": plan_panels.verdict(fit),
            }
        )
    return rows


def _advice(results: services.CalculatorResults, href: Link) -> dict[str, Any]:
    a = results.advice
    t = results.estimate.training
    return {
        "fits": a.verdict == "fits",
        "verdict": a.verdict,
        "gpu": a.gpu.name,
        "max_batch": fmt.count(a.max_batch_size) if a.max_batch_size else "",
        "max_seq": fmt.count(a.max_seq_len) if a.max_seq_len else "",
        "seq_capped": a.max_seq_len == a.seq_len_limit,
        "seq_len": fmt.count(t.seq_len),
        "batch": str(t.batch_size),
        "changes": plan_panels.advice_rows(a, href),
        "batch_href": href({"batch_size": a.max_batch_size})
        if a.max_batch_size and a.max_batch_size != t.batch_size
        else "",
        "seq_href": href({"seq_len": a.max_seq_len}) if a.max_seq_len and a.max_seq_len != t.seq_len else "",
    }


def _hrefs(link: Link) -> Link:
    """The calculator's URL of the state with some fields changed (the path reversed once per panel, not once
    for each of its ~20 links)."""
    path = reverse("calculator") + "?"
    return lambda changes: path + link(changes)


def _serving(results: services.CalculatorResults) -> dict[str, Any]:
    s = results.serving
    return {
        "adapters": str(s.adapters),
        "plural": s.adapters != 1,
        "base": fmt.size(s.base_weights_bytes),
        "adapter": fmt.size(s.adapter_bytes),
        "kv": fmt.size(s.kv_cache_bytes),
        "context": fmt.count(s.context_len),
        "overhead": fmt.size(s.overhead_bytes),
        "total": fmt.gib(s.total_bytes),
        "fits": results.serving_fit.fits,
        "merged": fmt.size(s.merged_weights_bytes),
        "merged_total": fmt.gib(s.merged_total_bytes),
        "merged_fits": results.merged_fit.fits,
        "dequant": s.merged_needs_dequantization,
        "extra_flops": fmt.percent(100 * s.extra_flops_fraction),
    }


def _files(sizes: services.AdapterFileSizes) -> dict[str, Any]:
    return {
        "columns": [{"targets": targets, "dtype": dtype} for targets, dtype in sizes.columns],
        "rows": [
            {"r": str(r), "sizes": [fmt.size(b) if b is not None else "—" for b in row]}
            for r, row in zip(sizes.ranks, sizes.sizes, strict=True)
        ],
    }


def _training_line(result: services.Estimate) -> str:
    t = result.training
    parts = [labels.choice("framework", t.framework), labels.choice("loss", t.loss) + " loss"]
    if t.activation_offloading:
        parts.append("activation offloading")
    if t.num_gpus > 1 or t.parallelism != "ddp":
        gpus = f"{t.num_gpus} GPU{'s' if t.num_gpus > 1 else ''}"
        parts.append(f"{gpus}, {labels.choice('parallelism', t.parallelism)}")
    offloads = (("optimizer offload", t.optimizer_offload), ("parameter offload", t.param_offload))
    parts += [name for name, on in offloads if on]
    parts += [
        f"base {t.base_dtype}" + (" + double quant" if t.base_dtype in services.FOUR_BIT and t.double_quant else ""),
        f"activations and unquantized parameters {t.float_dtype}",
        f"adapters {t.adapter_dtype}",
        labels.choice("optimizer", t.optimizer),
        f"micro-batch {t.batch_size} \u00d7 {t.seq_len:,} tokens",
        "gradient checkpointing" if t.gradient_checkpointing else "no gradient checkpointing",
        t.attn_implementation,
    ]
    return " · ".join(parts)
