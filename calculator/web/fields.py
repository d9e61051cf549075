"""The calculator form's fields, read off the request schemas: a field is declared once.

Each form field is a field of `calculator.schemas` (``LoraInput``, ``TrainingInput``, the page's own
``PageOptions``), so its kind, default, choices and bounds are the schema's, which are the core's. The
form's layout is the list of names per section below; the words are in `calculator.web.labels`.
Adding an input = a core constant or setting, its schema field, its name here, its label.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from calculator.schemas import LoraInput, PageOptions, TrainingInput
from calculator.services import DIMENSION_FIELDS
from calculator.web import labels


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    group: str  # the request group it fills: lora | training | page
    kind: str  # int | float | bool | choice | names | layers | tokens | gpu
    default: object = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def label(self) -> str:
        return labels.label(self.name)

    @property
    def hint(self) -> str:
        return labels.hint(self.name)


GROUPS: dict[str, type[BaseModel]] = {"lora": LoraInput, "training": TrainingInput, "page": PageOptions}


def _kind(annotation: Any) -> tuple[str, tuple[str, ...]]:
    """The form kind of a schema annotation (and the choices of a Literal)."""
    if typing.get_origin(annotation) is Literal:
        return "choice", tuple(str(a) for a in typing.get_args(annotation))
    if annotation in (bool, int, float):
        return annotation.__name__, ()
    args = set(typing.get_args(annotation))
    numbers = args - {type(None)}
    if len(numbers) == 1 and next(iter(numbers)) in (int, float):  # an optional number: empty means none
        return next(iter(numbers)).__name__, ()
    if dict[str, list[int]] in args:
        return "tokens", ()  # trainable_token_indices: the page takes the input embedding's list form
    if list[int] in args:
        return "layers", ()  # int | list[int] | None: layer indexes, written as ranges
    if list[str] in args:
        return "names", ()
    return "text", ()


def _field(group: str, name: str) -> Field:
    info = GROUPS[group].model_fields[name]
    kind, choices = _kind(info.annotation)
    bounds: dict[str, float] = {}
    for item in info.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if getattr(item, attr, None) is not None:
                bounds[attr] = getattr(item, attr)
    default = info.get_default(call_default_factory=True)
    if name == "gpu":
        kind = "gpu"  # a catalog card: its choices are the catalog's, read per request
    return Field(
        name,
        group,
        kind,
        default,
        choices,
        bounds.get("ge", bounds.get("gt")),
        bounds.get("le", bounds.get("lt")),
    )


# The form's sections and, in order, the fields each shows (names as the API spells them).
SECTIONS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "lora",
        "LoRA",
        (
            ("lora", "r"),
            ("lora", "lora_alpha"),
            ("lora", "lora_dropout"),
            ("lora", "bias"),
            ("lora", "use_rslora"),
            ("lora", "use_dora"),
            ("lora", "modules_to_save"),
            ("lora", "layers_to_transform"),
            ("lora", "trainable_token_indices"),
            ("lora", "ensure_weight_tying"),
        ),
    ),
    (
        "recipe",
        "Training recipe",
        (
            ("training", "framework"),
            ("training", "loss"),
            ("training", "loss_chunks"),
            ("training", "compile_loss"),
            ("training", "loss_token_fraction"),
            ("training", "activation_offloading"),
            ("training", "parallelism"),
            ("training", "num_gpus"),
            ("training", "optimizer_offload"),
            ("training", "param_offload"),
            ("training", "quantize_moe_experts"),
            ("training", "quantize_scope"),
            ("page", "host_ram_gib"),
        ),
    ),
    (
        "training",
        "Training",
        (
            ("training", "base_dtype"),
            ("training", "double_quant"),
            ("training", "prepare_model_for_kbit_training"),
            ("training", "adapter_dtype"),
            ("training", "optimizer"),
            ("training", "batch_size"),
            ("training", "seq_len"),
            ("training", "gradient_checkpointing"),
            ("training", "attn_implementation"),
        ),
    ),
    (
        "gpu",
        "Your GPU & plan",
        (
            ("training", "gpu"),
            ("page", "custom_gpu_memory_gib"),
            ("page", "custom_gpu_tflops"),
            ("page", "custom_gpu_price"),
            ("training", "safety_margin"),
            ("training", "gradient_accumulation_steps"),
            ("training", "dataset_tokens"),
            ("training", "dataset_examples"),
            ("training", "mean_example_tokens"),
            ("training", "epochs"),
            ("training", "mfu"),
            ("page", "sweep"),
            ("page", "adapters"),
        ),
    ),
)

SCALAR_FIELDS: tuple[Field, ...] = tuple(_field(group, name) for _, _, names in SECTIONS for group, name in names)
BY_NAME: dict[str, Field] = {f.name: f for f in SCALAR_FIELDS}
SECTION_FIELDS: dict[str, tuple[Field, ...]] = {
    key: tuple(BY_NAME[name] for _, name in names) for key, _, names in SECTIONS
}
SECTION_TITLES: dict[str, str] = {key: title for key, title, _ in SECTIONS}

DIM_FIELDS: tuple[str, ...] = DIMENSION_FIELDS  # the architecture fields the Model section shows
DEFAULT_PRESET = "llama-3.1-8b"
# Parameters the form sends that are not state: the source the dimension fields were filled from, the
# module names the checkboxes were drawn for, a pressed quick pick.
# the framework the training fields were filled with (see `calculator.web.form`).
FORM_ONLY_PARAMS = ("src", "names", "pick", "set", "fw")
# Fields shown across the whole group (their choices have long names).
WIDE_FIELDS = frozenset({"framework", "loss", "parallelism", "quantize_scope"})
# Sections whose fields a framework fills: redrawn when the framework changes.
FRAMEWORK_SECTIONS = ("recipe", "training")
# The custom GPU's fields (shown while the GPU choice is "Custom GPU").
CUSTOM_GPU_FIELDS = frozenset({"custom_gpu_memory_gib", "custom_gpu_tflops", "custom_gpu_price"})
