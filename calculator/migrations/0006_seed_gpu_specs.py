"""Fill the GPU catalog from calculator/data/gpus.json: peak BF16/FP16 TFLOPS, price per GPU-hour with its date,
and a source for each figure; add the cards the catalog lacked (B200, GH200, GB200, H200 NVL, H100 NVL,
RTX PRO 6000 Blackwell, MI325X, MI355X...).

Rows that exist keep what the admins set: only empty fields are filled (memory is never changed). Every card
takes its place in the file (which lists cards by memory) as its order, unless an admin reordered it.
"""

import datetime
import json
from decimal import Decimal
from pathlib import Path

from django.db import migrations

GPUS_FILE = Path(__file__).resolve().parent.parent / "data" / "gpus.json"
SPECS = ("peak_bf16_tflops", "peak_fp16_tflops", "price_per_hour", "price_date")
SOURCES = ("memory_source", "tflops_source", "price_source", "note")
# 0002_seed_catalogs's order: a row still at its seeded position was not reordered by an admin.
SEEDED_ORDER = [
    "NVIDIA T4 16 GB",
    "NVIDIA L4 24 GB",
    "NVIDIA A10G 24 GB",
    "NVIDIA RTX 3090 24 GB",
    "NVIDIA RTX 4090 24 GB",
    "NVIDIA RTX 5090 32 GB",
    "NVIDIA V100 32 GB",
    "NVIDIA A100 40 GB",
    "NVIDIA L40S 48 GB",
    "NVIDIA RTX 6000 Ada 48 GB",
    "NVIDIA A100 80 GB",
    "NVIDIA H100 80 GB",
    "NVIDIA H200 141 GB",
    "AMD MI300X 192 GB",
]


def _values(row):
    values = {
        "peak_bf16_tflops": row.get("peak_bf16_tflops"),
        "peak_fp16_tflops": row.get("peak_fp16_tflops"),
        "price_per_hour": Decimal(str(row["price_per_hour"])) if row.get("price_per_hour") is not None else None,
        "price_date": datetime.date.fromisoformat(row["price_date"]) if row.get("price_date") else None,
    }
    values.update({field: row.get(field) or "" for field in SOURCES})
    return values


def seed(apps, schema_editor):
    GpuModel = apps.get_model("calculator", "GpuModel")
    for order, row in enumerate(json.loads(GPUS_FILE.read_text())["gpus"]):
        values = _values(row)
        gpu, created = GpuModel.objects.get_or_create(
            name=row["name"], defaults={"memory_bytes": row["memory_mib"] * 2**20, "order": order, **values}
        )
        if created:
            continue
        changed = [f for f in (*SPECS, *SOURCES) if getattr(gpu, f) in (None, "") and values[f] not in (None, "")]
        for field in changed:
            setattr(gpu, field, values[field])
        if gpu.name in SEEDED_ORDER and gpu.order == SEEDED_ORDER.index(gpu.name) and gpu.order != order:
            gpu.order = order
            changed.append("order")
        if changed:
            gpu.save(update_fields=changed)


def unseed(apps, schema_editor):
    """The fields go with the schema migration before this one; the added cards stay (admins may use them)."""


class Migration(migrations.Migration):
    dependencies = [("calculator", "0005_gpu_specs_and_prices")]
    operations = [migrations.RunPython(seed, unseed)]
