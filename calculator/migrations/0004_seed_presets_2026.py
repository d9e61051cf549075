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
HUB = "https://huggingface.co/"
# The repositories the 2026 presets' configs belong to (validation/configs/catalog/sources.json, "hf_repo").
HF_REPOS = {
    "qwen3-0.6b": "Qwen/Qwen3-0.6B",
    "qwen3-1.7b": "Qwen/Qwen3-1.7B",
    "qwen3-4b": "Qwen/Qwen3-4B",
    "qwen3-8b": "Qwen/Qwen3-8B",
    "qwen3-14b": "Qwen/Qwen3-14B",
    "qwen3-32b": "Qwen/Qwen3-32B",
    "qwen3-30b-a3b": "Qwen/Qwen3-30B-A3B",
    "qwen3.5-9b": "Qwen/Qwen3.5-9B",
    "qwen3.5-27b": "Qwen/Qwen3.5-27B",
    "qwen3.5-35b-a3b": "Qwen/Qwen3.5-35B-A3B",
    "qwen3.5-122b-a10b": "Qwen/Qwen3.5-122B-A10B",
    "qwen3.5-397b-a17b": "Qwen/Qwen3.5-397B-A17B",
    "qwen3.6-35b-a3b": "Qwen/Qwen3.6-35B-A3B",
    "qwen3-next-80b-a3b": "Qwen/Qwen3-Next-80B-A3B-Instruct",
    "qwen1.5-moe-a2.7b": "Qwen/Qwen1.5-MoE-A2.7B",
    "qwen2.5-vl-7b": "Qwen/Qwen2.5-VL-7B-Instruct",
    "gemma-3-1b": "google/gemma-3-1b-it",
    "gemma-3-4b": "google/gemma-3-4b-it",
    "gemma-3-27b": "google/gemma-3-27b-it",
    "gemma-4-e2b": "google/gemma-4-E2B-it",
    "gemma-4-26b-a4b": "google/gemma-4-26B-A4B",
    "gemma-4-31b": "google/gemma-4-31B-it",
    "llama-3.2-1b": "meta-llama/Llama-3.2-1B-Instruct",
    "llama-3.2-3b": "meta-llama/Llama-3.2-3B",
    "llama-3.2-90b-vision": "meta-llama/Llama-3.2-90B-Vision-Instruct",
    "gpt-oss-20b": "openai/gpt-oss-20b",
    "gpt-oss-120b": "openai/gpt-oss-120b",
    "deepseek-v3": "deepseek-ai/DeepSeek-V3",
    "deepseek-r1": "deepseek-ai/DeepSeek-R1",
    "deepseek-r1-distill-llama-8b": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
    "deepseek-r1-distill-qwen-32b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
    "phi-4": "microsoft/phi-4",
    "smollm3-3b": "HuggingFaceTB/SmolLM3-3B",
    "lfm2-1.2b": "LiquidAI/LFM2-1.2B",
    "glm-4.5": "zai-org/GLM-4.5",
    "magistral-small-2509": "mistralai/Magistral-Small-2509",
    "starcoder2-7b": "bigcode/starcoder2-7b",
}


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
    for preset in ModelPreset.objects.filter(hf_repo=""):
        repo = _hub_repo(preset.source_url) or HF_REPOS.get(preset.slug, "")
        if repo:
            preset.hf_repo = repo
            preset.save(update_fields=["hf_repo"])


def _hub_repo(url):
    """https://huggingface.co/org/name -> org/name."""
    parts = url.removeprefix(HUB).strip("/").split("/") if url.startswith(HUB) else []
    return "/".join(parts[:2]) if len(parts) == 2 else ""


def unseed(apps, schema_editor):
    ModelPreset = apps.get_model("calculator", "ModelPreset")
    seeded_before = {item["slug"] for item in json.loads((PRESETS_2026_FILE.parent / "presets.json").read_text())}
    slugs = [item["slug"] for item in json.loads(PRESETS_2026_FILE.read_text())]
    ModelPreset.objects.filter(slug__in=slugs).exclude(slug__in=seeded_before).delete()


class Migration(migrations.Migration):
    dependencies = [("calculator", "0003_preset_counts_and_dotted_slugs")]
    operations = [migrations.RunPython(seed, unseed)]
