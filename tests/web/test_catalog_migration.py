"""Migration 0007 brings the presets of the second catalog search to a database that seeded 2026's catalog
before they existed, and keeps every existing row."""

import importlib

import pytest
from django.apps import apps

from calculator.models import ModelPreset

pytestmark = pytest.mark.django_db
seed = importlib.import_module("calculator.migrations.0007_seed_presets_2026_second_search").seed


def test_missing_presets_are_added_and_existing_rows_kept():
    ModelPreset.objects.filter(slug__in=["llama-4-scout", "mistral-nemo-12b"]).delete()
    edited = ModelPreset.objects.get(slug="qwen3-8b")
    edited.name = "Our Qwen3 8B"
    edited.save()
    seed(apps, None)
    added = ModelPreset.objects.get(slug="llama-4-scout")
    assert added.hf_repo == "meta-llama/Llama-4-Scout-17B-16E-Instruct"
    assert added.published_params == 108_641_793_536
    assert ModelPreset.objects.filter(slug="mistral-nemo-12b").exists()
    assert ModelPreset.objects.get(slug="qwen3-8b").name == "Our Qwen3 8B"
    assert added.order > ModelPreset.objects.get(slug="qwen3-8b").order


def test_an_exact_published_total_replaces_a_rounded_one_only():
    row = ModelPreset.objects.get(slug="qwen3.5-9b")
    row.published_params, row.published_params_exact = 9_000_000_000, False
    row.save()
    seed(apps, None)
    row.refresh_from_db()
    assert (row.published_params, row.published_params_exact) == (9_653_104_368, True)
    rounded = ModelPreset.objects.get(slug="glm-4.5")
    assert not rounded.published_params_exact
    count = ModelPreset.objects.count()
    seed(apps, None)
    assert ModelPreset.objects.count() == count
