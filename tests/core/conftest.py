"""Shared fixtures for the core: real published configs from the preset catalog."""

import json
from pathlib import Path

import pytest

from calculator.core import Architecture, architecture_from_config

ROOT = Path(__file__).resolve().parents[2]
PRESETS = {p["slug"]: p for p in json.loads((ROOT / "calculator" / "data" / "presets.json").read_text())}


def preset_arch(slug: str) -> Architecture:
    return architecture_from_config(PRESETS[slug]["config"])


@pytest.fixture
def llama8b() -> Architecture:
    return preset_arch("llama-3.1-8b")
