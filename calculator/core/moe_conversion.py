"""PEFT's rewrite of LoRA targets for MoE models whose layout changed in transformers 5.

In transformers 5 Mixtral's experts are fused 3-D parameters (``experts.gate_up_proj``,
``experts.down_proj``) and the router a bare ``gate.weight``: no ``nn.Linear`` is left to wrap. PEFT
(``peft/utils/transformers_weight_conversion.py``, ``_convert_peft_config_moe``) therefore maps the
transformers-4 names a user writes to ``target_parameters`` before matching:
``w1``/``w3`` -> ``gate_up_proj`` (both or neither; fused, so rank and alpha double through a
``.*\\.gate_up_proj`` rank/alpha pattern), ``w2`` -> ``down_proj``, ``gate`` -> ``gate.weight``.
A string target (a regex or ``"all-linear"``) is first resolved to the leaf names it would match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace

from .architecture import LINEAR_KINDS, Architecture
from .errors import InputError
from .lora_settings import LoraSettings

# conversion pattern -> {transformers-4 name: transformers-5 target parameter}, in PEFT's order
# (peft/utils/transformers_weight_conversion.py: _MOE_TARGET_MODULE_MAPPING, _MOE_FUSED_TARGETS)
TARGET_MAPPING: dict[str, dict[str, str]] = {
    "mixtral": {"gate": "gate.weight", "w1": "gate_up_proj", "w3": "gate_up_proj", "w2": "down_proj"},
    "qwen2_moe": {
        "gate": "gate.weight",
        "gate_proj": "gate_up_proj",
        "up_proj": "gate_up_proj",
        "down_proj": "down_proj",
    },
}
FUSED_TARGETS: dict[str, dict[str, tuple[str, ...]]] = {
    "mixtral": {"gate_up_proj": ("w1", "w3")},
    "qwen2_moe": {"gate_up_proj": ("gate_proj", "up_proj")},
}


def module_keys(arch: Architecture) -> Iterator[str]:
    for key, _ in arch.modules():
        yield key


def parameter_keys(arch: Architecture) -> Iterator[str]:
    for key, module in arch.modules():
        for param in module.params:
            yield f"{key}.{param.name}"


def convert_moe_targets(arch: Architecture, lora: LoraSettings, matches: Callable[[str], bool]) -> LoraSettings:
    """Return the LoraSettings PEFT actually applies to this (MoE) model; unchanged for other models."""
    mapping = TARGET_MAPPING.get(arch.moe_conversion)
    if not mapping:
        return lora
    fused = FUSED_TARGETS[arch.moe_conversion]
    targets = lora.target_modules
    if isinstance(targets, str):
        resolved = _resolve_string(arch, targets, mapping, matches)
        if not resolved:
            return lora  # nothing matched: the usual "not found" error follows
        targets = tuple(sorted(resolved))
    parameters = list(lora.target_parameters or ())
    remaining: list[str] = []
    present: dict[str, set[str]] = {new: set() for new in fused}
    for target in targets or ():
        hit = next(((old, new) for old, new in mapping.items() if target == old or target.endswith(f".{old}")), None)
        if hit is None:
            remaining.append(target)
            continue
        old, new = hit
        if new not in parameters:
            parameters.append(new)
        if new in fused:
            present[new].add(old)
    rank_pattern, alpha_pattern = dict(lora.rank_pattern), dict(lora.alpha_pattern)
    for new, required in fused.items():
        have = present[new]
        if 0 < len(have) < len(required):
            missing = ", ".join(sorted(set(required) - have))
            raise InputError.single(
                "lora.target_modules",
                f"Cannot target {', '.join(sorted(have))} without {missing}: transformers 5 fuses them into {new}.",
            )
        if len(have) == len(required) > 1:
            key = rf".*\.{re.escape(new)}"
            rank_pattern[key] = lora.r * len(required)
            alpha_pattern[key] = lora.lora_alpha * len(required)
    return replace(
        lora,
        target_modules=tuple(remaining),
        target_parameters=tuple(parameters) if parameters else None,
        rank_pattern=tuple(rank_pattern.items()),
        alpha_pattern=tuple(alpha_pattern.items()),
    )


def _resolve_string(
    arch: Architecture, target: str, mapping: dict[str, str], matches: Callable[[str], bool]
) -> set[str]:
    if target.lower() == "all-linear":
        linear = {
            key.rsplit(".", 1)[-1] for key, m in arch.modules() if m.kind in LINEAR_KINDS and key != arch.output_head
        }
        return linear | set(mapping)
    keys = list(module_keys(arch))
    params = list(parameter_keys(arch))
    matched = {key.rsplit(".", 1)[-1] for key in [*keys, *params] if matches(key)}
    containers: dict[str, set[str]] = {}
    for name in params:
        container, _, leaf = name.rpartition(".")
        containers.setdefault(leaf, set()).add(container)
    for old, new in mapping.items():
        if old not in matched and any(matches(f"{c}.{old}") for c in containers.get(new, ())):
            matched.add(old)
    return matched
