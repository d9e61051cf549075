"""The JSON shape of an estimate (api.md). Pure re-shaping: every number comes from the core."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from calculator.services import (
    Architecture,
    Estimate,
    FrameworkDefault,
    GoalResult,
    GpuFit,
    MemoryEstimate,
    PlannedEstimate,
    PresetEntry,
    layer_groups,
)

MEMORY_FIELDS = (
    "base_weights_bytes",
    "adapter_weights_bytes",
    "gradients_bytes",
    "optimizer_states_bytes",
    "activations_bytes",
    "logits_bytes",
    "overhead_bytes",
    "transient_bytes",
    "total_bytes",
    "per_layer_activation_bytes",
    "host_bytes",
)


def memory_dict(memory: MemoryEstimate) -> dict[str, int]:
    return {field: getattr(memory, field) for field in MEMORY_FIELDS}


def layer_list(arch: Architecture) -> list[dict[str, Any]]:
    """What the model is made of: each stack's layer kinds (text, vision_tower...) and how many layers."""
    return [{"stack": g.role, "kind": g.kind, "layers": g.layers} for g in layer_groups(arch)]


def estimate_dict(
    result: Estimate,
    *,
    comparison: bool = True,
    set_by_framework: Iterable[FrameworkDefault] = (),
    planned: PlannedEstimate | None = None,
) -> dict[str, Any]:
    """``set_by_framework``: the training fields the request's ``framework`` filled (with their source);
    ``planned``: the plan on the request's card (verdicts with its safety margin, time, cost, advice)."""
    arch, count, dims = result.architecture, result.count, result.architecture.dims
    data: dict[str, Any] = {
        "engine_version": result.engine_version,
        "model": {
            "name": result.name,
            "model_type": arch.model_type,
            "family": arch.family,
            "base_params": arch.base_params,
            "hidden_size": dims.hidden_size,
            "intermediate_size": dims.intermediate_size,
            "num_hidden_layers": dims.num_hidden_layers,
            "num_attention_heads": dims.num_attention_heads,
            "num_key_value_heads": dims.num_key_value_heads,
            "head_dim": dims.head_dim,
            "vocab_size": dims.vocab_size,
            "tie_word_embeddings": dims.tie_word_embeddings,
            "num_local_experts": dims.num_local_experts,
            "num_experts_per_tok": dims.num_experts_per_tok,
            "target_module_names": list(arch.lora_module_names),
            "exact": arch.exact,
            "assumptions": list(arch.assumptions),
            "components": dict(arch.components),
            "layers": layer_list(arch),
        },
        "lora": {
            "trainable_params": count.trainable_params,
            "all_params": count.all_params,
            "trainable_percent": count.trainable_percent,
            "scaling": result.scaling,
            "lora_params": count.lora_params,
            "bias_params": count.bias_params,
            "modules_to_save_params": count.modules_to_save_params,
            "modules": [
                {
                    "name": m.name,
                    "in_features": m.in_features,
                    "out_features": m.out_features,
                    "layers": m.layers,
                    "r": m.r,
                    "lora_alpha": m.alpha,
                    "num_experts": m.num_experts,
                    "params_per_layer": m.params_per_layer,
                    "params": m.params,
                }
                for m in count.modules
            ],
        },
        "memory": memory_dict(result.memory),
        "adapter_file_bytes": result.adapter_file_bytes,
        "fits": [fit_dict(f) for f in (planned.plan.fits if planned else result.fits)],
        "peft_config": result.peft_config,
        "training": asdict(result.training),  # every setting the numbers are for, the framework's included
        "set_by_framework": [{"field": d.field, "value": d.value, "source": d.source} for d in set_by_framework],
    }
    if planned is not None:
        data.update(plan_dict(planned))
    if comparison:
        data["comparison"] = [
            {
                "label": s.label,
                "base_dtype": s.base_dtype,
                "trainable_params": s.trainable_params,
                "memory": memory_dict(s.memory),
            }
            for s in result.comparison
        ]
    return data


def preset_dict(entry: PresetEntry) -> dict[str, Any]:
    """A catalog preset: ``base_params`` is what the calculator counts (what transformers builds from the
    config, api.md's meaning); the published figure and why the two differ come beside it."""
    arch = entry.architecture
    return {
        "slug": entry.slug,
        "name": entry.name,
        "family": entry.family,
        "model_type": arch.model_type,
        "base_params": arch.base_params,
        "published_params": entry.published_params,
        "published_params_exact": entry.published_params_exact,
        "params_note": entry.params_note,
        "components": dict(arch.components),
        "layers": layer_list(arch),
        "config": entry.config,
        "source_url": entry.source_url,
        "hf_repo": entry.hf_repo,
        "notes": entry.notes,
    }


def fit_dict(fit: GpuFit) -> dict[str, Any]:
    return {
        "gpu": fit.gpu,
        "memory_bytes": fit.memory_bytes,
        "fits": fit.fits,  # v1: the peak is at most the card's memory
        "verdict": fit.verdict,  # fits | tight (inside the safety margin) | does_not_fit
        "margin_bytes": fit.margin_bytes,
    }


def plan_dict(planned: PlannedEstimate) -> dict[str, Any]:
    """api.md v1.1: ``time`` (for the chosen card), ``cost`` (one entry per catalog card), ``advice``."""
    plan, t = planned.plan, planned.plan.time
    return {
        "gpu": {
            "name": plan.gpu.name,
            "verdict": plan.verdict,
            "margin_bytes": plan.margin_bytes,
            "safety_margin": planned.settings.safety_margin,
        },
        "time": {
            "gpu": t.gpu,
            "num_gpus": t.num_gpus,
            "flops_per_token": t.flops_per_token,
            "tokens_per_step": t.tokens_per_step,
            "tokens_per_second": t.tokens_per_second,
            "step_seconds": t.step_seconds,
            "steps": t.steps,
            "total_seconds": t.total_seconds,
            "mfu": t.mfu,
            "mfu_is_default": planned.settings.mfu is None,
            "peak_flops": t.peak_flops,
        },
        "cost": [
            {
                "gpu": c.gpu,
                "gpus_needed": c.gpus_needed,
                "verdict": c.verdict,
                "total_bytes": c.total_bytes,
                "hours": c.hours,
                "price_per_hour": c.price_per_hour,
                "total": c.total,
                "cheapest": c.cheapest,
            }
            for c in plan.costs
        ],
        "advice": [
            {
                "label": c.label,
                "changes": dict(c.settings),
                "total_bytes": c.total_bytes,
                "verdict": c.verdict,
                "total_seconds": c.total_seconds,
                "cost": c.cost,
            }
            for c in plan.advice.changes
        ],
    }


def goal_dict(result: GoalResult, set_by_framework: Iterable[FrameworkDefault] = ()) -> dict[str, Any]:
    """``POST /api/v1/plan/``: the best value of the goal with the margin, and the estimate at that value."""
    answer = result.answer
    planned = result.planned
    return {
        "goal": answer.goal,
        "gpu": result.gpu.name,
        "value": answer.value,
        "verdict": answer.verdict,
        "total_bytes": answer.total_bytes,
        "limit_bytes": answer.limit_bytes,
        "estimate": estimate_dict(planned.estimate, planned=planned, set_by_framework=set_by_framework)
        if planned is not None
        else None,
    }
