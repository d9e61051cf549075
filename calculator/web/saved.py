"""Saved configurations as the pages list them: "My configurations" rows and their edit form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse

from calculator.models import SavedConfiguration
from calculator.services import catalog


def model_label(configuration: SavedConfiguration) -> str:
    """What a saved configuration's model is called: the preset's name, the pasted config's
    ``_name_or_path``, or "Custom (model type)"."""
    model = configuration.inputs.get("model") or {}
    snapshot = configuration.model_snapshot or {}
    model_type = str(snapshot.get("model_type") or "unknown type")
    preset = model.get("preset")
    if preset:
        catalog.refresh()
        entry = catalog.presets.get(preset)
        return entry.name if entry else str(preset)
    if model.get("hf_config") is not None:
        name = snapshot.get("_name_or_path") or snapshot.get("name_or_path")
        return name if isinstance(name, str) and name else f"Pasted config.json ({model_type})"
    return f"Custom ({model_type})"


class RenameForm(forms.ModelForm):
    """Only the name and the note change (as in the API); the inputs of a permalink are immutable."""

    class Meta:
        model = SavedConfiguration
        fields = ["name", "note"]
        widgets = {
            "name": forms.TextInput(attrs={"aria-describedby": "e-name"}),
            "note": forms.Textarea(attrs={"rows": 3, "aria-describedby": "e-note"}),
        }


def row(configuration: SavedConfiguration) -> dict[str, Any]:
    slug = configuration.slug
    return {
        "slug": slug,
        "name": configuration.name,
        "note": configuration.note,
        "model": model_label(configuration),
        "created": configuration.created,
        "href": configuration.get_absolute_url(),
        "edit_href": reverse("mine-edit", args=[slug]),
        "delete_href": reverse("mine-delete", args=[slug]),
    }
