"""Which keys of a pasted config.json change the numbers (the rest can be dropped from a shareable URL)."""

from __future__ import annotations

from .families import relevant_config

__all__ = ["relevant_config"]
