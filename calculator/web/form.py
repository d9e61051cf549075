"""Form state: a submitted calculator query, read into the request it asks for and the form to show.

The model comes from a preset, a pasted ``config.json`` (``hf_config``) or custom dimensions. The
dimension fields stay editable: values that differ from the source's are overrides. The hidden
``src`` field says which source the dimension fields were filled from; when the source changes
(another preset picked, a config pasted), the stale dimensions are ignored and refilled, and the
module checkboxes carry the chosen roles over to the new model's names.

Every error is collected (the codec's, the schema's), so a user sees all wrong fields at once; the
core's are added by `Reading.with_errors` once the view has asked the services.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.http import QueryDict
from pydantic import ValidationError

from calculator import services
from calculator.schemas import PLAN_FIELDS, EstimateRequest, ModelChoice, PageOptions, pydantic_errors
from calculator.web import errors as error_mapping
from calculator.web import state
from calculator.web.fields import BY_NAME, DEFAULT_PRESET, DIM_FIELDS, SCALAR_FIELDS
from calculator.web.targets import carry_over, quick_picks


@dataclass(frozen=True, slots=True)
class Source:
    """Which model the query means."""

    kind: str  # preset | config | custom
    id: str  # what the hidden "src" field holds
    preset: services.PresetEntry | None = None
    config: dict[str, Any] | None = None  # the numbers-relevant keys of a pasted config.json
    config_text: str = ""  # that, as compact JSON (what the URL carries)
    arch: services.Architecture | None = None

    @property
    def pair(self) -> tuple[str, str] | None:
        """The source's parameter in the canonical query."""
        if self.kind == "preset" and self.preset is not None:
            return ("preset", self.preset.slug)
        if self.kind == "config":
            return ("hf_config", self.config_text)
        return None


@dataclass(frozen=True, slots=True)
class Reading:
    """A calculator query, read. ``request``/``options`` are None while any field is wrong."""

    values: Mapping[str, Any]  # what the form shows, by field
    errors: Mapping[str, list[str]]  # form field -> messages
    source: Source
    applicable: frozenset[str]  # the dimension fields this model type reads
    module_names: tuple[str, ...]  # the target_modules checkboxes
    picks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    refresh: frozenset[str] = frozenset()  # form parts the browser must redraw (htmx out of band)
    request: EstimateRequest | None = None
    options: PageOptions | None = None
    dims: Mapping[str, Any] = field(default_factory=dict)  # given (custom) or edited dimension fields
    canonical: str = ""
    arch: services.Architecture | None = None  # the model the request means (edits applied), when it builds
    framework: Framework | None = None

    @property
    def ok(self) -> bool:
        return self.request is not None and self.options is not None and not self.errors

    @property
    def model_error(self) -> bool:
        """Whether the model itself is what fails (the page then keeps the last good results)."""
        return any(name in MODEL_FIELDS for name in self.errors)

    def custom_link(self) -> str:
        """The canonical query of custom dimensions prefilled from what the dimension fields show (a pasted
        config's usual keys, or the model read approximately), keeping every other input; "" when there is
        nothing to prefill."""
        dims = {name: self.values[name] for name in DIM_FIELDS if _is_dimension(self.values.get(name))}
        if not dims or self.source.kind == "custom":
            return ""
        targets = self.values.get("target_modules")
        return self._links(None, dims, targets if isinstance(targets, str) else None)({})

    def link(self, changes: Mapping[str, object]) -> str:
        """The canonical query of this state with some fields changed (advice's "apply" links)."""
        return self.links()(changes)

    def links(self) -> state.Links:
        """`link` for many changes of this one state (a results panel draws about twenty)."""
        targets = self.values.get("target_modules")
        return self._links(self.source.pair, self.dims, list(targets) if isinstance(targets, tuple) else targets)

    def _links(
        self, source: tuple[str, str] | None, dims: Mapping[str, Any], targets: Sequence[str] | str | None
    ) -> state.Links:
        return state.Links(
            source=source,
            dims=dims,
            targets=targets,
            values=self.values,
            default_gpu=services.default_gpu().name,
            defaults=self.framework.defaults if self.framework else None,
        )

    def with_errors(self, flat: Mapping[str, list[str]]) -> Reading:
        """Add the core's errors (dotted paths) under the form fields that caused them."""
        mapped = error_mapping.field_errors(
            flat, tuple(self.dims), self.source.arch.model_type if self.source.arch else ""
        )
        merged = {name: list(messages) for name, messages in self.errors.items()}
        for name, messages in mapped.items():
            merged.setdefault(name, []).extend(messages)
        return replace(self, errors=merged, request=None, options=None)


MODEL_FIELDS = frozenset({"preset", "hf_config", *DIM_FIELDS})
UNREADABLE = "config:?"  # the source id of a pasted text that is not a config.json


def _is_dimension(value: object) -> bool:
    return isinstance(value, bool) or (isinstance(value, int) and value > 0)


def _last(query: QueryDict, name: str) -> str | None:
    values = query.getlist(name)
    return values[-1] if values else None


def read(query: QueryDict, *, live: bool = False) -> Reading:
    """``live``: the request came from the live form (htmx), where quick picks set fields in the browser
    (htmx may still send a focused quick-pick button's name and value: they are ignored)."""
    if "set" in query or "pick" in query:
        query = query.copy()
        pressed = query.pop("set", [])
        if live:
            query.pop("pick", None)
        else:  # a chip pressed without JavaScript: "field=value"
            for item in pressed[-1:]:
                name, _, value = item.partition("=")
                if name in BY_NAME:
                    query.setlist(name, [value])
    errors: dict[str, list[str]] = {}
    source, cleared = _source(query, errors)
    src = _last(query, "src")
    source_changed = src is not None and src != source.id
    refresh = set()
    if source_changed:
        refresh |= {"dims", "targets"}
    if source.kind == "config" and _last(query, "preset"):
        refresh.add("preset_select")  # a pasted config won over the preset the select still shows
    if cleared:
        refresh.add("config")  # a preset replaced a pasted config: empty the textarea
    values: dict[str, Any] = {}
    applicable = services.dimensions_read(
        model_type=source.arch.model_type if source.kind != "custom" and source.arch else None
    )
    if source.kind == "config" and source.arch is None:
        applicable = frozenset()  # a config that does not build: its usual keys are shown, not edited
    use_submitted = source.kind == "custom" or (not source_changed and source.arch is not None)
    model, dims = _model(query, source, values, errors, applicable, use_submitted=use_submitted)
    arch = _final_arch(model)
    lora, training, page, framework = _scalars(query, values, errors)
    if framework.changed:
        refresh.add("sections")  # the fields the framework fills show its values now
    if training.get("framework") in services.FRAMEWORKS:  # an unknown one is reported by the schema
        recipe = {k: v for k, v in training.items() if k not in PLAN_FIELDS}
        framework = replace(framework, filled=services.framework_fill(given=recipe).set_by_framework)
    names = arch.lora_module_names if arch else ()
    picks = quick_picks(names) if names else {}
    submitted_names = _last(query, "names")
    names_changed = submitted_names is not None and submitted_names != " ".join(names)
    selected = [t.strip() for t in query.getlist("target_modules") if t.strip()]
    pick = _last(query, "pick")
    targets: list[str] | str | None
    if pick in picks:
        targets = list(picks[pick])
        names_changed = True
    elif selected and names and (source_changed or names_changed):
        targets = carry_over(selected, names)
    else:
        targets = selected or None
    if targets == [state.ALL_LINEAR]:
        targets = state.ALL_LINEAR
    if targets is None and arch is not None and picks and not services.has_default_targets(arch):
        targets = list(picks["qv"])  # PEFT has no defaults here (phi3) or they convert to nothing (Mixtral)
    if names_changed:
        refresh.add("targets")
    values["target_modules"] = targets
    values["target_modules_shown"] = _shown_targets(targets, arch, names)
    if targets is not None:
        lora["target_modules"] = targets
    request, options = _validate(
        {"model": model or {"preset": "-"}, "lora": lora, "training": training}, page, errors, model is not None
    )
    reading = Reading(
        values=values,
        errors=errors,
        source=source,
        applicable=applicable,
        module_names=names,
        picks=picks,
        refresh=frozenset(refresh),
        request=request,
        options=options,
        dims=dims,
        arch=arch,
        framework=framework,
    )
    return replace(reading, canonical=reading.link({}))


def _shown_targets(
    targets: list[str] | str | None, arch: services.Architecture | None, names: tuple[str, ...]
) -> list[str]:
    """The ticked checkboxes: PEFT's defaults when none are given, every name for all-linear."""
    if targets is None:
        return list(arch.default_target_modules or ()) if arch is not None else []
    if targets == state.ALL_LINEAR:
        return list(names)
    return list(targets)


def _source(query: QueryDict, errors: dict[str, list[str]]) -> tuple[Source, bool]:
    """Which model the query means, and whether a pasted config was just replaced by a preset."""
    text = (_last(query, "hf_config") or "").strip()
    preset = _last(query, "preset")
    src = _last(query, "src")
    config: dict[str, Any] | None = None
    if text:
        config, problem = state.read_config(text)
        # A preset picked after an unreadable text replaces it, as it replaces a readable one.
        if config is None and not (preset and src == UNREADABLE):
            errors.setdefault("hf_config", []).append(problem)
            return Source("config", UNREADABLE, config_text=text), False
    if config is not None:
        config_text = state.compact(config)
        config_id = "config:" + hashlib.sha1(config_text.encode()).hexdigest()[:12]
        if not (preset and src == config_id):
            try:
                arch = services.resolve_model(choice=ModelChoice(hf_config=config)).architecture
            except services.InputError:
                arch = None  # reported when the request is computed
            return Source("config", config_id, config=config, config_text=config_text, arch=arch), False
    cleared = bool(text)
    if preset:
        entry = services.find_preset(preset)
        if entry is None:
            errors.setdefault("preset", []).append(f"Unknown preset {preset!r}; pick one from the list.")
            return Source("preset", "preset:?"), cleared
        return Source("preset", f"preset:{entry.slug}", preset=entry, arch=entry.architecture), cleared
    if preset == "" or any(_last(query, d) for d in DIM_FIELDS):
        return Source("custom", "custom"), cleared
    entry = services.find_preset(DEFAULT_PRESET) or next(iter(services.presets()), None)
    if entry is None:
        return Source("custom", "custom"), cleared
    return Source("preset", f"preset:{entry.slug}", preset=entry, arch=entry.architecture), cleared


def _model(
    query: QueryDict,
    source: Source,
    values: dict[str, Any],
    errors: dict[str, list[str]],
    applicable: frozenset[str],
    *,
    use_submitted: bool,
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Fill the dimension values; return the request's ``model`` group (None when unusable) and the
    dimension fields that are given (custom) or edited (overrides)."""
    values["preset"] = source.preset.slug if source.preset else ""
    values["hf_config"] = source.config_text if source.kind == "config" else ""
    values["src"] = source.id
    if source.arch is not None:
        base: Mapping[str, Any] = services.dimension_values(source.arch)
    elif source.kind == "config" and source.config is not None:
        base = services.dimensions_from_config(config=source.config)  # what custom dimensions would start from
    else:
        base = {}
    given: dict[str, Any] = {}
    for name in DIM_FIELDS:
        raw = _last(query, name) if use_submitted and name in applicable else None
        value: Any = base.get(name)
        if raw is not None and raw.strip() != "":
            parsed, problem = state.read_dimension(name, raw)
            if problem:
                errors.setdefault(name, []).append(problem)
                values[name] = raw
                continue
            value = parsed
            if source.kind == "custom" or parsed != base.get(name):
                given[name] = parsed
        values[name] = value
    if source.kind == "custom":
        if not errors:
            values["preset"] = ""
        return {"custom": given}, given
    if source.arch is None and source.kind == "preset":
        return None, given
    if source.kind == "config" and source.config is None:
        return None, given
    if not given:
        if source.preset is not None:
            return {"preset": source.preset.slug}, given
        return {"hf_config": source.config}, given
    model_type = source.arch.model_type if source.arch else ""
    if source.preset is not None:
        config = {**source.preset.config, "_name_or_path": f"{source.preset.name} (edited)"}
    else:
        config = dict(source.config or {})
    for name, value in given.items():
        *sections, key = services.config_key(model_type, name)
        target = config
        for section in sections:  # a multimodal model's text_config: copy it before editing
            target[section] = dict(target.get(section) or {})
            target = target[section]
        target[key] = value
    return {"hf_config": config}, given


def _scalars(
    query: QueryDict, values: dict[str, Any], errors: dict[str, list[str]]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], Framework]:
    """Every scalar field's value (its default when absent), by request group.

    A training field is *given* only when it differs from the value the form showed for it (the defaults
    of the framework the fields were drawn with, ``fw``); the others are left to the chosen framework,
    which fills them. So picking a framework changes every field the user has not changed, and a URL
    holds only what differs from that framework's defaults."""
    groups: dict[str, dict[str, Any]] = {"lora": {}, "training": {}, "page": {}}
    framework = _framework(query)
    drawn_with = _last(query, "fw")
    shown = framework.defaults
    if drawn_with != framework.name and drawn_with in services.FRAMEWORKS:
        shown = services.training_defaults(framework=drawn_with)
    for f in SCALAR_FIELDS:
        default = framework.defaults.get(f.name, f.default) if f.group == "training" else f.default
        raw = _last(query, f.name)
        value, problem = state.read_field(f, raw, default) if raw is not None else (default, "")
        if problem:
            errors.setdefault(f.name, []).append(problem)
            values[f.name] = raw
            continue
        if f.group == "training" and f.name != "framework" and value == shown.get(f.name, f.default):
            value = default  # not changed by the user: the framework's
        values[f.name] = value
        if f.group == "training" and (f.name == "framework" or value != default):
            groups["training"][f.name] = value
        elif f.group != "training" and value is not None:
            groups[f.group][f.name] = value
    if values.get("gpu") is None:
        values["gpu"] = services.default_gpu().name
    return groups["lora"], groups["training"], groups["page"], framework


@dataclass(frozen=True, slots=True)
class Framework:
    """The framework a query chose, its training defaults (the engine's where it sets none), whether the
    form's fields were drawn with another one, and which fields it fills."""

    name: str
    defaults: Mapping[str, Any]
    changed: bool = False
    filled: tuple[services.FrameworkDefault, ...] = ()


def _framework(query: QueryDict) -> Framework:
    raw = (_last(query, "framework") or "").strip()
    name = raw if raw in services.FRAMEWORKS else BY_NAME["framework"].default
    drawn_with = _last(query, "fw")
    return Framework(
        str(name), services.training_defaults(framework=str(name)), drawn_with is not None and drawn_with != name
    )


def _final_arch(model: dict[str, Any] | None) -> services.Architecture | None:
    if model is None:
        return None
    try:
        return services.resolve_model(choice=ModelChoice.model_validate(model)).architecture
    except (ValidationError, services.InputError):
        return None


def _validate(
    data: dict[str, Any], page: dict[str, Any], errors: dict[str, list[str]], usable: bool
) -> tuple[EstimateRequest | None, PageOptions | None]:
    """Validate the request and the page options; errors go under their form fields."""
    request = options = None
    flat: dict[str, list[str]] = {}
    try:
        request = EstimateRequest.model_validate(data)
    except ValidationError as error:
        flat.update(pydantic_errors(error))
        if not usable:  # the placeholder model says nothing about the user's model
            flat = {k: v for k, v in flat.items() if not k.startswith("model")}
    try:
        options = PageOptions.model_validate(page)
    except ValidationError as error:
        flat.update({f"page.{k}": v for k, v in pydantic_errors(error).items()})
    for name, messages in error_mapping.field_errors(flat).items():
        errors.setdefault(name, []).extend(messages)
    return (request, options) if usable else (None, options)
