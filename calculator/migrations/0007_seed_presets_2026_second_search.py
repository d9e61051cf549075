"""Add the presets a second search for published configs found (calculator/data/presets_2026.json) to
databases that ran 0004 before them: Llama 3.3 70B, Llama 4 Scout, Mistral Small 3.1, Mistral-Nemo, Granite
3.3, OLMo 2 7B, Phi-2, Qwen3.5 0.8B, DeepSeek-V2-Lite and three more R1 distills.

Rows that exist are kept as they are, except that an exact published total replaces a rounded one (Qwen3.5-9B's
Hub total was found). A fresh database gets the same rows from 0004, so this adds nothing there.
"""

import json
from pathlib import Path

from django.db import migrations
from django.db.models import Max

PRESETS_2026_FILE = Path(__file__).resolve().parent.parent / "data" / "presets_2026.json"
HUB = "https://huggingface.co/"


def _hub_repo(url):
    """https://huggingface.co/org/name -> org/name."""
    parts = url.removeprefix(HUB).strip("/").split("/") if url.startswith(HUB) else []
    return "/".join(parts[:2]) if len(parts) == 2 else ""


def seed(apps, schema_editor):
    ModelPreset = apps.get_model("calculator", "ModelPreset")
    order = (ModelPreset.objects.aggregate(last=Max("order"))["last"] or 0) + 1
    for item in json.loads(PRESETS_2026_FILE.read_text()):
        row = ModelPreset.objects.filter(slug=item["slug"]).first()
        exact = item.get("published_params_exact", True)
        if row is None:
            ModelPreset.objects.create(
                slug=item["slug"],
                name=item["name"],
                family=item["family"],
                config=item["config"],
                published_params=item["published_params"],
                published_params_exact=exact,
                transformers_params=item.get("transformers_params"),
                params_note=item.get("params_note", ""),
                source_url=item.get("source_url", ""),
                hf_repo=_hub_repo(item.get("source_url", "")),
                notes=item.get("notes", ""),
                order=order,
            )
            order += 1
        elif exact and not row.published_params_exact:
            row.published_params = item["published_params"]
            row.published_params_exact = True
            row.params_note = item.get("params_note", row.params_note)
            row.save(update_fields=["published_params", "published_params_exact", "params_note"])


class Migration(migrations.Migration):
    dependencies = [("calculator", "0006_seed_gpu_specs")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
