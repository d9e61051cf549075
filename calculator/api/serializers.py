"""DRF serializers for the model-backed endpoints (presets; renaming a saved configuration)."""

from __future__ import annotations

from rest_framework import serializers

from calculator.models import ModelPreset, SavedConfiguration


class PresetSerializer(serializers.ModelSerializer):
    base_params = serializers.IntegerField(source="published_params", read_only=True)

    class Meta:
        model = ModelPreset
        fields = ["slug", "name", "family", "base_params", "config", "source_url", "notes"]


class ConfigurationUpdateSerializer(serializers.ModelSerializer):
    """Only the name and the note change; the inputs of a permalink are immutable."""

    class Meta:
        model = SavedConfiguration
        fields = ["name", "note"]
