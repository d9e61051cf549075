"""Error mapping: a dotted error path from the schema or the core (``lora.r``,
``model.hf_config.n_embd``, ``page.gpu``) -> the form field that shows it, in words for people."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from calculator import services
from calculator.web import labels

ANCHORS = {"target_modules": "targets", "form": "calc"}  # fields whose input has another id


def form_field(path: str, overridden: Collection[str] = (), model_type: str = "") -> tuple[str, str]:
    """A dotted error path -> (form field, prefix for the message). A config key that is an edited
    dimension field (``n_embd`` is GPT-2's hidden_size) is shown under that field."""
    parts = path.split(".")
    if parts[0] == "model":
        if len(parts) >= 3 and parts[1] in ("hf_config", "custom"):
            key = ".".join(parts[2:])
            dimension = services.dimension_of(model_type, tuple(parts[2:])) if model_type else None
            dimension = dimension or (key if key in services.DIMENSION_FIELDS else None)
            if parts[1] == "custom" or (dimension and overridden):
                return dimension or "preset", ""
            return "hf_config", f"{key}: "
        if len(parts) >= 2 and parts[1] == "hf_config":
            return "hf_config", ""
        return "preset", ""
    if parts[0] in ("lora", "training", "page") and len(parts) >= 2:
        return parts[1], ""
    return "form", ""


def friendly(message: str) -> str:
    message = message.replace("Input should be ", "Must be ")
    return message[:1].upper() + message[1:]


def field_errors(
    flat: Mapping[str, list[str]], overridden: Collection[str] = (), model_type: str = ""
) -> dict[str, list[str]]:
    """Errors by dotted path -> errors by form field."""
    errors: dict[str, list[str]] = {}
    for path, messages in flat.items():
        name, prefix = form_field(path, overridden, model_type)
        errors.setdefault(name, []).extend(prefix + friendly(m) for m in messages)
    return errors


def error_list(errors: Mapping[str, Collection[str]]) -> list[dict[str, str]]:
    """The results panel's list: each wrong field with a link to its input."""
    return [
        {"field": ANCHORS.get(name, name), "label": labels.label(name), "message": " ".join(messages)}
        for name, messages in errors.items()
    ]
