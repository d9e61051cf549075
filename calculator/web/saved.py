"""Saved configurations as the pages list them: "My configurations" rows and their edit form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse
from pydantic import ValidationError

from calculator import services
from calculator.models import SavedConfiguration
from calculator.schemas import EstimateRequest, LoraInput, TrainingInput
from calculator.web import state
from calculator.web.fields import BY_NAME


def model_label(configuration: SavedConfiguration) -> str:
    return services.saved_model_name(configuration=configuration)


def calculator_query(configuration: SavedConfiguration) -> str:
    """The calculator's query for a saved configuration: by preset while the preset still means the
    same model (its config unchanged since), else the config.json it was saved with."""
    inputs = dict(configuration.inputs)
    model = inputs.get("model") or {}
    preset = model.get("preset")
    entry = services.find_preset(preset) if preset else None
    if entry is None or entry.config != configuration.model_snapshot:
        inputs["model"] = (
            {"custom": model["custom"]} if model.get("custom") else {"hf_config": configuration.model_snapshot}
        )
    return state.query_of_request(inputs)


def saved_request(configuration: SavedConfiguration) -> EstimateRequest | None:
    """The configuration's own request (None for inputs that no longer validate: the page then shows why)."""
    try:
        return configuration.to_request()
    except ValidationError:
        return None


def page_drops(configuration: SavedConfiguration) -> list[str]:
    """Saved settings the calculator page has no inputs for (rank patterns, excludes...): opening the
    configuration there leaves them out, and the permalink says so."""
    dropped = []
    for group, schema in (("lora", LoraInput), ("training", TrainingInput)):
        for key, value in (configuration.inputs.get(group) or {}).items():
            field = schema.model_fields.get(key)
            if key in BY_NAME or key == "target_modules" or field is None:
                continue
            if value not in (None, [], {}) and value != field.default:
                dropped.append(key)
    return dropped


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
