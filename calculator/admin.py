"""Admin: the preset catalog (with import from a pasted config.json), the GPU catalog, saved configurations."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from calculator.models import GpuModel, ModelPreset, SavedConfiguration
from calculator.services import InputError, invalidate_catalog


class ModelPresetForm(forms.ModelForm):
    """Paste a config.json into ``config``; it must describe a supported architecture."""

    class Meta:
        model = ModelPreset
        fields = [
            "name",
            "slug",
            "family",
            "config",
            "published_params",
            "published_params_exact",
            "transformers_params",
            "params_note",
            "source_url",
            "hf_repo",
            "notes",
            "is_published",
            "order",
        ]
        widgets = {"config": forms.Textarea(attrs={"rows": 16, "cols": 80, "class": "monospace"})}

    def clean_config(self) -> dict[str, Any]:
        config: dict[str, Any] = self.cleaned_data["config"]
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except json.JSONDecodeError as error:
                raise forms.ValidationError(f"Not valid JSON: {error}") from None
        try:
            ModelPreset(config=config).to_spec()  # the model knows how its config becomes an architecture
        except InputError as error:
            raise forms.ValidationError([f"{k}: {' '.join(v)}" for k, v in error.errors.items()]) from None
        return config


@admin.register(ModelPreset)
class ModelPresetAdmin(admin.ModelAdmin):
    form = ModelPresetForm
    list_display = ["name", "family", "published_params", "computed", "is_published", "order"]
    list_editable = ["is_published", "order"]
    list_filter = ["family", "is_published"]
    search_fields = ["name", "slug", "family"]
    # No prepopulated slug: Django's slugify drops the dots that preset slugs keep ("llama-3.1-8b").
    actions = ["publish", "unpublish"]

    class Media:
        css = {"all": ("calculator/admin.css",)}  # a stylesheet, not inline styles (the CSP allows no inline style)

    @admin.display(description="Computed parameters")
    def computed(self, obj: ModelPreset) -> str:
        """The calculator's count, against transformers' count as the catalog measured it (or, without one,
        the published count): green when equal."""
        try:
            count = obj.to_spec().base_params
        except InputError:
            return format_html('<span class="count-differs">invalid config</span>')
        expected = obj.transformers_params if obj.transformers_params is not None else obj.published_params
        state = "count-matches" if count == expected else "count-differs"
        return format_html('<span class="{}" title="expected {}">{}</span>', state, f"{expected:,}", f"{count:,}")

    @admin.action(description="Publish selected presets")
    def publish(self, request: HttpRequest, queryset: Any) -> None:
        queryset.update(is_published=True)
        invalidate_catalog()

    @admin.action(description="Unpublish selected presets")
    def unpublish(self, request: HttpRequest, queryset: Any) -> None:
        queryset.update(is_published=False)
        invalidate_catalog()

    def save_model(self, request: HttpRequest, obj: ModelPreset, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        invalidate_catalog()


@admin.register(GpuModel)
class GpuModelAdmin(admin.ModelAdmin):
    """The GPU catalog: memory, peak TFLOPS and the dated price per GPU-hour the planner uses, with sources."""

    list_display = ["name", "memory_gib", "peak_bf16_tflops", "price_per_hour", "price_date", "is_active", "order"]
    list_editable = ["price_per_hour", "price_date", "is_active", "order"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "memory_bytes", "memory_source", "is_active", "order"]}),
        ("Throughput", {"fields": ["peak_bf16_tflops", "peak_fp16_tflops", "tflops_source"]}),
        ("Price", {"fields": ["price_per_hour", "price_date", "price_source"]}),
        (None, {"fields": ["note"]}),
    ]

    @admin.display(description="GiB")
    def memory_gib(self, obj: GpuModel) -> str:
        return f"{obj.memory_bytes / 2**30:.1f}"

    def save_model(self, request: HttpRequest, obj: GpuModel, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        invalidate_catalog()


@admin.register(SavedConfiguration)
class SavedConfigurationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "owner", "created"]
    search_fields = ["name", "slug", "note"]
    readonly_fields = ["slug", "inputs", "model_snapshot", "created", "updated"]
    list_select_related = ["owner"]
