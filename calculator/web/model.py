"""What the Model group says about the chosen model, beside its dimension fields: the preset's published
count next to what transformers builds (and why they differ), the layer kinds of hybrid, MoE and multimodal
models, their experts and components, and whether the reading is exact. Formatting only: every number is
the architecture's or the catalog's."""

from __future__ import annotations

from typing import Any

from calculator import services
from calculator.web import formatting as fmt
from calculator.web import labels
from calculator.web.form import Reading


def model_facts(reading: Reading) -> dict[str, Any]:
    arch = reading.arch
    facts: dict[str, Any] = {"counts": None, "layers": [], "experts": "", "components": [], "approximate": False}
    preset = reading.source.preset
    if preset is not None and not reading.dims:
        facts["counts"] = preset_counts(preset)
    if arch is None:
        return facts
    groups = services.layer_groups(arch)
    mixed = len(groups) > 1
    if mixed or arch.dims.num_local_experts:
        facts["layers"] = [
            {
                "stack": labels.STACKS.get(g.role, g.role),
                "kind": "layers" if g.kind == g.role else labels.layer_kind(g.kind),
                "layers": str(g.layers),
            }
            for g in groups
        ]
    if arch.dims.num_local_experts:
        facts["experts"] = f"{arch.dims.num_local_experts} experts, {arch.dims.num_experts_per_tok} active per token"
    if len(arch.components) > 1:
        facts["components"] = [
            {"name": labels.COMPONENTS.get(name, name.replace("_", " ")), "params": fmt.short_count(params)}
            for name, params in arch.components
        ]
    facts["approximate"] = not arch.exact
    return facts


def preset_counts(entry: services.PresetEntry) -> dict[str, Any]:
    """Both counts where the model card's figure is not what transformers builds, with the reason."""
    return {
        "differ": entry.counts_differ,
        "published": fmt.count(entry.published_params) if entry.published_params_exact else None,
        "published_short": fmt.short_count(entry.published_params),
        "rounded": not entry.published_params_exact,
        "built": fmt.count(entry.base_params),
        "built_short": fmt.short_count(entry.base_params),
        "note": entry.params_note,
        "source_url": entry.source_url,
    }
