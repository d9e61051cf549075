"""Add the models of 2026 (calculator/data/presets_2026.json) to the preset catalog.

Each row keeps the count the model card publishes, the count transformers builds from the config and, where
they differ, why. Rows that exist already (the 2024 starters, or an admin's edits) are kept as they are; only
their empty count fields are filled. New rows go after the existing ones.
"""

import json
from pathlib import Path

from django.db import migrations
from django.db.models import Max

PRESETS_2026_FILE = Path(__file__).resolve().parent.parent / "data" / "presets_2026.json"


def seed(apps, schema_editor):
    ModelPreset = apps.get_model("calculator", "ModelPreset")
    start = (ModelPreset.objects.aggregate(last=Max("order"))["last"] or 0) + 1
    for order, item in enumerate(json.loads(PRESETS_2026_FILE.read_text()), start=start):
        counts = {
            "published_params_exact": item.get("published_params_exact", True),
            "transformers_params": item.get("transformers_params"),
            "params_note": item.get("params_note", ""),
        }
        preset, created = ModelPreset.objects.get_or_create(
            slug=item["slug"],
            defaults={
                "name": item["name"],
                "family": item["family"],
                "config": item["config"],
                "published_params": item["published_params"],
                "source_url": item.get("source_url", ""),
                "notes": item.get("notes", ""),
                "order": order,
                **counts,
            },
        )
        if not created and preset.transformers_params is None and not preset.params_note:
            preset.transformers_params = counts["transformers_params"]
            preset.params_note = counts["params_note"]
            preset.save(update_fields=["transformers_params", "params_note"])


def unseed(apps, schema_editor):
    ModelPreset = apps.get_model("calculator", "ModelPreset")
    seeded_before = {item["slug"] for item in json.loads((PRESETS_2026_FILE.parent / "presets.json").read_text())}
    slugs = [item["slug"] for item in json.loads(PRESETS_2026_FILE.read_text())]
    ModelPreset.objects.filter(slug__in=slugs).exclude(slug__in=seeded_before).delete()


class Migration(migrations.Migration):
    dependencies = [("calculator", "0003_preset_counts_and_dotted_slugs")]
    operations = [migrations.RunPython(seed, unseed)]
