"""Stored state: the preset catalog, the GPU catalog and users' saved configurations.

Models are adapters to the pure core: `ModelPreset.to_spec()` gives the core's `Architecture`,
`SavedConfiguration.to_request()` the estimate request. Results are never stored; they are recomputed.
"""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse

from calculator.core import Architecture, Gpu, architecture_from_config
from calculator.schemas import PRESET_SLUG, EstimateRequest

PRESETS_FILE = Path(__file__).resolve().parent / "data" / "presets.json"  # the seed catalog (2024)
PRESETS_2026_FILE = Path(__file__).resolve().parent / "data" / "presets_2026.json"  # the models of 2026
preset_slug = RegexValidator(
    f"^{PRESET_SLUG}$",
    "Lower-case letters and digits, in words joined by dots, dashes or underscores (e.g. llama-3.1-8b).",
)
SLUG_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no look-alikes (l/1, o/0)
SLUG_LENGTH = 10  # 32**10 ≈ 1.1e15: unguessable, still short enough to paste


def new_slug() -> str:
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(SLUG_LENGTH))


class ModelPresetQuerySet(models.QuerySet["ModelPreset"]):
    def published(self) -> ModelPresetQuerySet:
        return self.filter(is_published=True)


class ModelPreset(models.Model):
    slug = models.CharField(max_length=80, unique=True, validators=[preset_slug], help_text=preset_slug.message)
    name = models.CharField(max_length=120)
    family = models.CharField(max_length=80, db_index=True)
    config = models.JSONField(help_text="The config.json fields (model_type decides the architecture).")
    published_params = models.BigIntegerField(help_text="Total parameters as the model's page publishes them.")
    published_params_exact = models.BooleanField(
        default=True, help_text='Unticked when the published figure is rounded ("4B") rather than an exact count.'
    )
    transformers_params = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="What transformers builds from the config (sum of model.parameters()); empty when it equals the "
        "published count.",
    )
    params_note = models.TextField(
        blank=True,
        help_text="Why the published count and transformers' count differ (multi-token-prediction layers, a "
        "tied head stored twice, a vision tower the text class drops...).",
    )
    source_url = models.URLField(blank=True)
    hf_repo = models.CharField(
        max_length=200, blank=True, help_text="The Hugging Face repository (org/name) the recipe exports load."
    )
    notes = models.TextField(blank=True)
    is_published = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    objects = ModelPresetQuerySet.as_manager()

    class Meta:
        ordering = ["order", "family", "name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return f"{reverse('calculator')}?preset={self.slug}"

    def to_spec(self) -> Architecture:
        return _architecture_of(json.dumps(self.config, sort_keys=True))


@lru_cache(maxsize=1024)
def _architecture_of(config_json: str) -> Architecture:
    """One architecture per distinct config. The catalog is re-read every few seconds in every worker; building
    its ~70 architectures again cost over a second of CPU each time (stalling the requests beside it), and an
    equal but new object made every engine cache compare architectures field by field instead of by identity."""
    return architecture_from_config(json.loads(config_json), field="config")


class GpuModel(models.Model):
    """A card in the GPU catalog: its memory, peak tensor throughput and rental price, each with a source.
    Seeded from ``calculator/data/gpus.json``; the admins keep prices current."""

    name = models.CharField(max_length=80, unique=True)
    memory_bytes = models.BigIntegerField(help_text="Total memory the card reports (bytes).")
    peak_bf16_tflops = models.FloatField(
        null=True, blank=True, help_text="Peak dense BF16 tensor TFLOPS (no sparsity); empty when the card has none."
    )
    peak_fp16_tflops = models.FloatField(
        null=True, blank=True, help_text="Peak dense FP16 tensor TFLOPS, for cards without BF16 (T4, V100)."
    )
    price_per_hour = models.DecimalField(
        max_digits=8, decimal_places=3, null=True, blank=True, help_text="On-demand USD per GPU-hour; empty: unknown."
    )
    price_date = models.DateField(null=True, blank=True, help_text="When the price was read.")
    memory_source = models.TextField(blank=True)
    tflops_source = models.TextField(blank=True)
    price_source = models.TextField(blank=True)
    note = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "memory_bytes", "name"]
        verbose_name = "GPU"

    def __str__(self) -> str:
        return self.name

    def to_spec(self) -> Gpu:
        """The core's `Gpu` for this row."""
        price = float(self.price_per_hour) if self.price_per_hour is not None else None
        return Gpu(self.name, self.memory_bytes, self.peak_bf16_tflops, price, self.peak_fp16_tflops)


class SavedConfiguration(models.Model):
    """A user's named configuration. ``inputs`` is immutable once saved: a permalink never changes meaning."""

    slug = models.CharField(max_length=16, unique=True, default=new_slug, editable=False)
    name = models.CharField(max_length=200)
    note = models.TextField(blank=True, max_length=5000)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="configurations"
    )
    inputs = models.JSONField(editable=False)
    # The architecture at save time (a preset's config.json), so later catalog edits can't change a permalink.
    model_snapshot = models.JSONField(editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A configuration read from the database is only ever updated, never inserted again: renaming
        one that a concurrent DELETE removed raises `NotUpdated` (a 404) instead of resurrecting it."""
        if not self._state.adding and not kwargs.get("force_insert"):
            kwargs["force_update"] = True
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("permalink", args=[self.slug])

    def to_request(self) -> EstimateRequest:
        """The estimate request this configuration means, pinned to the architecture it was saved with
        (a later edit of its preset cannot change a permalink). Raises pydantic's ValidationError for
        inputs that no longer validate."""
        return EstimateRequest.model_validate({**self.inputs, "model": {"hf_config": self.model_snapshot}})
