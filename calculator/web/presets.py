"""The /presets/ page: the catalog as a filterable table, each preset with both counts where they differ.

Filtering is by words (name, family, model type, slug) and by family, on the server (``?q=&family=``, so it
works without JavaScript and can be linked) and live in the browser (static/calculator/app.js)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from calculator import services
from calculator.web import formatting as fmt
from calculator.web import labels
from calculator.web.model import preset_counts
from calculator.web.state import Links
from calculator.web.targets import quick_picks

MAX_QUERY = 100


def _search_text(entry: services.PresetEntry) -> str:
    return f"{entry.name} {entry.family} {entry.architecture.model_type} {entry.slug}".lower()


def context(q: str = "", family: str = "") -> dict[str, Any]:
    q = q.strip()[:MAX_QUERY]
    words = q.lower().split()
    entries = services.presets()
    families = sorted({e.family for e in entries}, key=str.lower)
    rows = [_row(e) for e in entries if (not family or e.family == family) and all(w in _search_text(e) for w in words)]
    return {"rows": rows, "families": families, "q": q, "family": family, "total": len(entries), "nav": "presets"}


def _row(entry: services.PresetEntry) -> dict[str, Any]:
    arch = entry.architecture
    d = arch.dims
    # Models without PEFT default targets open with their q,v-equivalent modules ticked.
    targets = () if services.has_default_targets(arch) else quick_picks(arch.lora_module_names)["qv"]
    query = Links(source=("preset", entry.slug), dims={}, targets=targets, values={}, default_gpu="")({})
    groups = services.layer_groups(arch)
    return {
        "slug": entry.slug,
        "name": entry.name,
        "family": entry.family,
        "model_type": arch.model_type,
        "search": _search_text(entry),
        "counts": preset_counts(entry),
        "hidden": fmt.count(d.hidden_size),
        "layers": str(d.num_hidden_layers),
        "heads": f"{d.num_attention_heads}/{d.num_key_value_heads}",
        "vocab": fmt.count(d.vocab_size),
        "experts": f"{d.num_local_experts} experts, {d.num_experts_per_tok} active" if d.num_local_experts else "",
        "kinds": [f"{g.layers} \u00d7 {labels.layer_kind(g.kind)}" for g in groups if g.role == "text"]
        if len(groups) > 1
        else [],
        "towers": [labels.COMPONENTS.get(name, name) for name, _ in arch.components if "tower" in name],
        "href": reverse("calculator") + "?" + query,
        "source_url": entry.source_url,
    }
