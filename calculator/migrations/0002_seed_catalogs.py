"""Seed the starter preset catalog (calculator/data/presets.json) and the GPU catalog.

Runs once; afterwards both catalogs belong to the admins. Existing rows are left untouched.
"""

import json
from pathlib import Path

from django.db import migrations

PRESETS_FILE = Path(__file__).resolve().parent.parent / "data" / "presets.json"

# (name, MiB as nvidia-smi / rocm-smi report the card's total memory)
GPUS = [
    ("NVIDIA T4 16 GB", 15_360),
    ("NVIDIA L4 24 GB", 23_034),
    ("NVIDIA A10G 24 GB", 23_028),
    ("NVIDIA RTX 3090 24 GB", 24_576),
    ("NVIDIA RTX 4090 24 GB", 24_564),
    ("NVIDIA RTX 5090 32 GB", 32_607),
    ("NVIDIA V100 32 GB", 32_768),
    ("NVIDIA A100 40 GB", 40_960),
    ("NVIDIA L40S 48 GB", 46_068),
    ("NVIDIA RTX 6000 Ada 48 GB", 49_140),
    ("NVIDIA A100 80 GB", 81_920),
    ("NVIDIA H100 80 GB", 81_559),
    ("NVIDIA H200 141 GB", 143_771),
    ("AMD MI300X 192 GB", 196_608),
]


def seed(apps, schema_editor):
    ModelPreset = apps.get_model("calculator", "ModelPreset")
    GpuModel = apps.get_model("calculator", "GpuModel")
    for order, item in enumerate(json.loads(PRESETS_FILE.read_text())):
        ModelPreset.objects.get_or_create(
            slug=item["slug"],
            defaults={
                "name": item["name"],
                "family": item["family"],
                "config": item["config"],
                "published_params": item["published_params"],
                "source_url": item.get("source_url", ""),
                "notes": item.get("notes", ""),
                "order": order,
            },
        )
    for order, (name, mib) in enumerate(GPUS):
        GpuModel.objects.get_or_create(name=name, defaults={"memory_bytes": mib * 2**20, "order": order})


def unseed(apps, schema_editor):
    apps.get_model("calculator", "ModelPreset").objects.all().delete()
    apps.get_model("calculator", "GpuModel").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("calculator", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
