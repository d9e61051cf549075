"""The JSON shapes of the model-backed endpoints: presets, saved configurations, renaming one."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from rest_framework import serializers

from calculator import services
from calculator.api.representation import estimate_dict
from calculator.models import SavedConfiguration
from calculator.schemas import pydantic_errors


class ConfigurationUpdateSerializer(serializers.ModelSerializer):
    """Only the name and the note change; the inputs of a permalink are immutable."""

    class Meta:
        model = SavedConfiguration
        fields = ["name", "note"]


class ConfigurationSerializer(serializers.ModelSerializer):
    """A saved configuration: its inputs as saved and (unless ``with_estimate`` is False in the context)
    a fresh estimate, or the errors that stop it from computing any more."""

    url = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()
    lora = serializers.SerializerMethodField()
    training = serializers.SerializerMethodField()

    class Meta:
        model = SavedConfiguration
        fields = ["slug", "url", "name", "note", "created", "owner", "model", "lora", "training"]
        read_only_fields = fields

    def get_url(self, configuration: SavedConfiguration) -> str:
        return str(self.context["request"].build_absolute_uri(configuration.get_absolute_url()))

    def get_owner(self, configuration: SavedConfiguration) -> str | None:
        """The owner's username, shown to the owner only (a permalink is public; who saved it is not)."""
        user = getattr(self.context.get("request"), "user", None)
        if configuration.owner is None or user is None or configuration.owner_id != user.pk:
            return None
        return configuration.owner.get_username()

    def get_model(self, configuration: SavedConfiguration) -> Any:
        return configuration.inputs.get("model")

    def get_lora(self, configuration: SavedConfiguration) -> Any:
        return configuration.inputs.get("lora")

    def get_training(self, configuration: SavedConfiguration) -> Any:
        return configuration.inputs.get("training")

    def to_representation(self, instance: SavedConfiguration) -> dict[str, Any]:
        data: dict[str, Any] = dict(super().to_representation(instance))
        if self.context.get("with_estimate", True):
            try:
                planned = services.configuration_plan(configuration=instance)
                data["estimate"] = estimate_dict(planned.estimate, planned=planned)
            except services.InputError as error:
                data["estimate"], data["error"] = None, error.errors
            except ValidationError as error:
                data["estimate"], data["error"] = None, pydantic_errors(error)
        return data
