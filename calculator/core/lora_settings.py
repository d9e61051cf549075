"""The LoRA configuration as the calculator takes it: ``peft.LoraConfig``'s names and defaults, the
checks ``LoraConfig.__post_init__`` makes, and the scaling."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ErrorCollector

ALL_LINEAR = "all-linear"
BIAS_MODES = ("none", "all", "lora_only")


@dataclass(frozen=True, slots=True)
class LoraSettings:
    """The numbers-relevant subset of ``peft.LoraConfig``, with its names and defaults."""

    r: int = 8
    lora_alpha: float = 8
    target_modules: tuple[str, ...] | str | None = None
    lora_dropout: float = 0.0
    bias: str = "none"
    use_dora: bool = False
    use_rslora: bool = False
    lora_bias: bool = False
    modules_to_save: tuple[str, ...] | None = None
    layers_to_transform: tuple[int, ...] | int | None = None
    layers_pattern: tuple[str, ...] | str | None = None
    rank_pattern: tuple[tuple[str, int], ...] = ()
    alpha_pattern: tuple[tuple[str, float], ...] = ()
    target_parameters: tuple[str, ...] | None = None
    exclude_modules: tuple[str, ...] | str | None = None
    # Token indices whose embedding rows train (TrainableTokensWrapper): indices for the input embedding, or
    # (layer name, indices) pairs.
    trainable_token_indices: tuple[int, ...] | tuple[tuple[str, tuple[int, ...]], ...] | None = None
    ensure_weight_tying: bool = False  # keep a tied embedding / output head tied in the adapter too


def scaling(lora_alpha: float, r: int, use_rslora: bool) -> float:
    """PEFT's multiplier of B·A: alpha / r, or alpha / sqrt(r) with rsLoRA."""
    return lora_alpha / math.sqrt(r) if use_rslora else lora_alpha / r


def validate_settings(lora: LoraSettings, errors: ErrorCollector) -> None:
    """The checks ``LoraConfig.__post_init__`` and layer creation make, as field errors."""
    if lora.r < 1:
        errors.add("lora.r", f"`r` should be a positive integer value but the value passed is {lora.r}.")
    for key, value in lora.rank_pattern:
        if value < 1:
            errors.add("lora.rank_pattern", f"Rank for {key!r} must be a positive integer, got {value}.")
    if lora.bias not in BIAS_MODES:
        errors.add("lora.bias", f"Must be one of {', '.join(BIAS_MODES)}.")
    if not 0.0 <= lora.lora_dropout < 1.0:
        errors.add("lora.lora_dropout", "Must be at least 0 and below 1.")
    if isinstance(lora.target_modules, str) and lora.layers_to_transform is not None:
        errors.add("lora.layers_to_transform", "Cannot be used when `target_modules` is a str.")
    if isinstance(lora.target_modules, str) and lora.layers_pattern:
        errors.add("lora.layers_pattern", "Cannot be used when `target_modules` is a str.")
    if lora.layers_pattern and lora.layers_to_transform is None:
        errors.add("lora.layers_pattern", "When `layers_pattern` is specified, `layers_to_transform` must be too.")
    if lora.lora_bias and lora.use_dora:
        errors.add("lora.lora_bias", "lora_bias=True is not supported for DoRA; set use_dora=False.")
