"""The ``peft.LoraConfig(...)`` call that reproduces a configuration, ready to paste."""

from __future__ import annotations

from .lora import LoraSettings


def _py(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def lora_config_snippet(lora: LoraSettings, resolved_targets: tuple[str, ...] | str | None = None) -> str:
    """Only non-default arguments besides r, lora_alpha and target_modules, as a PEFT user writes them."""
    targets: object = lora.target_modules
    if targets is None and resolved_targets is not None:
        targets = resolved_targets  # spell out PEFT's default for this model type
    args = [f"r={lora.r}", f"lora_alpha={_py(lora.lora_alpha)}"]
    if targets is not None:
        args.append(f"target_modules={_py(targets)}")
    if lora.target_parameters:
        args.append(f"target_parameters={_py(lora.target_parameters)}")
    if lora.exclude_modules:
        args.append(f"exclude_modules={_py(lora.exclude_modules)}")
    args.append(f"lora_dropout={_py(lora.lora_dropout)}")
    args.append(f"bias={lora.bias!r}")
    for name in ("use_rslora", "use_dora", "lora_bias"):
        if getattr(lora, name):
            args.append(f"{name}=True")
    if lora.modules_to_save:
        args.append(f"modules_to_save={_py(lora.modules_to_save)}")
    if lora.layers_to_transform is not None:
        args.append(f"layers_to_transform={_py(lora.layers_to_transform)}")
    if lora.layers_pattern:
        args.append(f"layers_pattern={_py(lora.layers_pattern)}")
    if lora.rank_pattern:
        args.append("rank_pattern={" + ", ".join(f"{k!r}: {v}" for k, v in lora.rank_pattern) + "}")
    if lora.alpha_pattern:
        args.append("alpha_pattern={" + ", ".join(f"{k!r}: {_py(v)}" for k, v in lora.alpha_pattern) + "}")
    args.append('task_type="CAUSAL_LM"')
    return "LoraConfig(\n    " + ",\n    ".join(args) + ",\n)"
