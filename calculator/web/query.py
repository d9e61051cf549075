"""The calculator's query string (API field names, flat) -> the API's `EstimateRequest`, and back.

One validation path: the flat query is turned into the nested request and validated by
`EstimateRequest.model_validate`, then computed by `services.run_estimate`; every error (pydantic's or
the core's, as dotted paths like ``lora.r``) is mapped back to the form field that caused it.

The model comes from a preset, a pasted ``config.json`` (``hf_config``) or custom dimensions. The
dimension fields stay editable: values that differ from the source's are overrides. The hidden
``src`` field says which source the dimension fields were filled from; when the source changes
(another preset picked, a config pasted), the stale dimensions are ignored and refilled.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

from django.http import QueryDict
from pydantic import ValidationError

from calculator.core import (
    Architecture,
    Estimate,
    Gpu,
    InputError,
    LoraSettings,
    TrainingSettings,
    architecture_from_config,
    estimate,
)
from calculator.core.config_keys import relevant_config
from calculator.schemas import EstimateRequest, ModelChoice, pydantic_errors
from calculator.services import PresetEntry, catalog, resolve_model, run_estimate
from calculator.web import fields as F
from calculator.web.targets import ALL_LINEAR, carry_over, quick_picks

MAX_CONFIG_CHARS = 200_000
TRUE = frozenset({"true", "on", "1", "yes"})
FALSE = frozenset({"false", "off", "0", "no", ""})


@dataclass(frozen=True)
class Source:
    kind: str  # preset | config | custom
    id: str  # what the hidden "src" field holds
    preset: PresetEntry | None = None
    config: dict[str, Any] | None = None  # the numbers-relevant keys of a pasted config.json
    config_text: str = ""  # that, as compact JSON (what the URL carries)
    arch: Architecture | None = None


@dataclass
class Parsed:
    values: dict[str, Any]  # what the form shows (strings, booleans, the ticked module names)
    errors: dict[str, list[str]]  # form field -> messages
    source: Source
    module_names: tuple[str, ...] = ()
    picks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    applicable: frozenset[str] = F.MOE_DIMS
    source_changed: bool = False  # the dimension fields must be refilled
    names_changed: bool = False  # the module checkboxes must be redrawn
    clear_config: bool = False  # a preset replaced a pasted config: empty the textarea
    select_stale: bool = False  # a pasted config won over the preset the select still shows
    request: EstimateRequest | None = None
    result: Estimate | None = None
    gpu: Gpu | None = None
    adapters: int = F.DEFAULT_ADAPTERS
    canonical: str = ""  # the minimal query string for this state (the URL to share)

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.errors

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


@lru_cache(maxsize=256)
def reduce_config(text: str) -> tuple[dict[str, Any] | None, str]:
    """Parse a pasted config.json and keep only the keys that change the numbers: (config, error)."""
    if len(text) > MAX_CONFIG_CHARS:
        return None, f"That is over {MAX_CONFIG_CHARS:,} characters; paste the model's config.json."
    try:
        data = json.loads(text)
    except ValueError as error:
        return None, f"Not valid JSON: {error}."
    if not isinstance(data, dict):
        return None, "Expected a JSON object: the contents of config.json."
    return relevant_config(data), ""


def compact(config: dict[str, Any]) -> str:
    return json.dumps(config, separators=(",", ":"), ensure_ascii=False)


def _last(query: QueryDict, name: str) -> str | None:
    values = query.getlist(name)
    return values[-1] if values else None


def _int(text: str) -> int | None:
    text = text.strip().replace(",", "").replace("_", "")
    return int(text) if re.fullmatch(r"[+-]?\d{1,12}", text) else None


def _float(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _bool(text: str) -> bool | None:
    low = text.strip().lower()
    return True if low in TRUE else False if low in FALSE else None


def fmt(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _layers(text: str) -> list[int] | None:
    """``0,1,2`` or ``0-7, 12`` -> indexes; None when unreadable."""
    out: list[int] = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d{1,4})(?:-(\d{1,4}))?", part)
        if not m:
            return None
        a, b = int(m[1]), int(m[2] or m[1])
        if b < a or b - a > 4096:
            return None
        out.extend(range(a, b + 1))
    return out


def _layers_text(layers: list[int]) -> str:
    runs: list[str] = []
    for i in sorted(set(layers)):
        if runs and "-" in runs[-1] and int(runs[-1].split("-")[1]) == i - 1:
            runs[-1] = f"{runs[-1].split('-')[0]}-{i}"
        elif runs and "-" not in runs[-1] and int(runs[-1]) == i - 1:
            runs[-1] = f"{runs[-1]}-{i}"
        else:
            runs.append(str(i))
    return ",".join(runs)


def default_gpu(gpus: tuple[Gpu, ...]) -> Gpu:
    return next((g for g in gpus if F.DEFAULT_GPU_HINT in g.name), gpus[len(gpus) // 2])


def _source(query: QueryDict, parsed_errors: dict[str, list[str]]) -> tuple[Source, bool]:
    """Which model the query means, and whether a pasted config was just replaced by a preset."""
    presets = catalog.presets
    text = (_last(query, "hf_config") or "").strip()
    preset = _last(query, "preset")
    src = _last(query, "src")
    if text:
        config, problem = reduce_config(text)
        if config is None:
            parsed_errors.setdefault("hf_config", []).append(problem)
            return Source("config", "config:?"), False
        config_text = compact(config)
        config_id = "config:" + hashlib.sha1(config_text.encode()).hexdigest()[:12]
        if not (preset and src == config_id):
            try:
                arch = architecture_from_config(config)
            except InputError:
                arch = None  # reported when the request is computed
            return Source("config", config_id, config=config, config_text=config_text, arch=arch), False
    cleared = bool(text)
    if preset:
        entry = presets.get(preset)
        if entry is None:
            parsed_errors.setdefault("preset", []).append(f"Unknown preset {preset!r}; pick one from the list.")
            return Source("preset", "preset:?"), cleared
        return Source("preset", f"preset:{entry.slug}", preset=entry, arch=entry.architecture), cleared
    if preset == "" or any(_last(query, d) for d in F.DIM_FIELDS):
        return Source("custom", "custom"), cleared
    slug = F.DEFAULT_PRESET if F.DEFAULT_PRESET in presets else next(iter(presets), "")
    entry = presets.get(slug)
    if entry is None:
        return Source("custom", "custom"), cleared
    return Source("preset", f"preset:{slug}", preset=entry, arch=entry.architecture), cleared


def dims_of(arch: Architecture) -> dict[str, Any]:
    d = arch.dims
    return {
        "hidden_size": d.hidden_size,
        "intermediate_size": d.intermediate_size,
        "num_hidden_layers": d.num_hidden_layers,
        "num_attention_heads": d.num_attention_heads,
        "num_key_value_heads": d.num_key_value_heads,
        "head_dim": d.head_dim,
        "vocab_size": d.vocab_size,
        "tie_word_embeddings": d.tie_word_embeddings,
        "num_local_experts": d.num_local_experts or None,
        "num_experts_per_tok": d.num_experts_per_tok or None,
    }


def parse(query: QueryDict, *, htmx: bool = False) -> Parsed:
    """``htmx``: the request came from the live form, where quick picks set the fields in the browser
    (htmx may still send a focused quick-pick button's name and value: they are ignored)."""
    catalog.refresh()
    if htmx and ("set_r" in query or "pick" in query):
        query = query.copy()
        query.pop("set_r", None)
        query.pop("pick", None)
    elif "set_r" in query:  # a rank chip pressed without JavaScript
        query = query.copy()
        query.setlist("r", query.getlist("set_r")[-1:])
    errors: dict[str, list[str]] = {}
    source, cleared = _source(query, errors)
    src = _last(query, "src")
    p = Parsed(values={}, errors=errors, source=source, clear_config=cleared)
    p.source_changed = src is not None and src != source.id
    p.select_stale = source.kind == "config" and bool(_last(query, "preset"))
    model = _model(query, p)
    _lora_training(query, p, model)
    p.canonical = canonical_query(p)
    return p


def _model(query: QueryDict, p: Parsed) -> dict[str, Any] | None:
    """Fill the dimension values and return the request's ``model`` group (None when unusable)."""
    source, values = p.source, p.values
    values["preset"] = source.preset.slug if source.preset else ""
    values["hf_config"] = source.config_text if source.kind == "config" else ""
    if source.kind == "config" and source.config is None:
        values["hf_config"] = (_last(query, "hf_config") or "").strip()
    values["src"] = source.id
    base = dims_of(source.arch) if source.arch else {}
    model_type = source.arch.model_type if source.arch else None
    p.applicable = F.applicable_dims(model_type if source.kind != "custom" else None)
    use_submitted = source.kind == "custom" or not p.source_changed
    dims: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    for name in F.DIM_FIELDS:
        raw = _last(query, name) if use_submitted and name in p.applicable else None
        value: Any = base.get(name)
        if raw is not None and raw.strip() != "":
            parsed: Any = _bool(raw) if name == "tie_word_embeddings" else _int(raw)
            if parsed is None:
                p.error(name, "Enter true or false." if name == "tie_word_embeddings" else "Enter a whole number.")
                values[name] = raw
                continue
            value = parsed
            if source.kind != "custom" and parsed != base.get(name):
                overrides[name] = parsed
        values[name] = value
        if value is not None:
            dims[name] = value
    if source.kind == "custom":
        if not p.errors:
            values["preset"] = ""
        return {"custom": dims}
    if source.arch is None and source.kind == "preset":
        return None
    if source.kind == "config" and source.config is None:
        return None
    if not overrides:
        if source.kind == "preset":
            assert source.preset is not None
            return {"preset": source.preset.slug}
        return {"hf_config": source.config}
    keys = F.CONFIG_KEYS.get(model_type or "", {})
    if source.kind == "preset":
        assert source.preset is not None
        config = {**source.preset.config, "_name_or_path": f"{source.preset.name} (edited)"}
    else:
        config = dict(source.config or {})
    for name, value in overrides.items():
        config[keys.get(name, name)] = value
    p.values["_overrides"] = tuple(overrides)
    return {"hf_config": config}


def _lora_training(query: QueryDict, p: Parsed, model: dict[str, Any] | None) -> None:
    values = p.values
    lora: dict[str, Any] = {}
    training: dict[str, Any] = {}
    for f in F.SCALAR_FIELDS:
        raw = _last(query, f.name)
        value: Any = f.default
        if (raw is not None and raw.strip() != "") or (raw is not None and f.kind in ("names", "layers")):
            text = raw.strip()
            if f.kind == "int":
                value = _int(text)
            elif f.kind == "float":
                value = _float(text)
            elif f.kind == "bool":
                value = _bool(text)
            elif f.kind == "names":
                value = [n for n in re.split(r"[,\s]+", text) if n] or None
            elif f.kind == "layers":
                value = _layers(text) if text else None
                if text and value is None:
                    p.error(f.name, "Use layer indexes like 0,1,2 or ranges like 0-7.")
                    values[f.name] = text
                    continue
            else:
                value = text
            if value is None and f.kind in ("int", "float", "bool"):
                p.error(
                    f.name,
                    {"int": "Enter a whole number.", "float": "Enter a number."}.get(f.kind, "Enter true or false."),
                )
                values[f.name] = raw
                continue
        values[f.name] = value
        if f.group == "lora" and value is not None:
            lora[f.name] = value
        elif f.group == "training":
            training[f.name] = value
    # The page's own fields: the GPU the advice is for, the adapters the serving panel loads.
    gpus = catalog.gpus
    by_name = {g.name: g for g in gpus}
    p.gpu = by_name.get(values.get("gpu") or "") or default_gpu(gpus)
    if values.get("gpu") and values["gpu"] not in by_name:
        p.error("gpu", "Unknown GPU; pick one from the list.")
    values["gpu"] = p.gpu.name
    adapters = values.get("adapters")
    if isinstance(adapters, int) and 1 <= adapters <= F.MAX_ADAPTERS:
        p.adapters = adapters
    elif "adapters" not in p.errors:
        p.error("adapters", f"Must be between 1 and {F.MAX_ADAPTERS:,}.")
    # Which modules the model has, then the ticked ones (carried over when the model changed).
    arch = _final_arch(model)
    names = arch.lora_module_names if arch else ()
    p.module_names = names
    p.picks = quick_picks(names) if names else {}
    submitted_names = _last(query, "names")
    p.names_changed = submitted_names is not None and submitted_names != " ".join(names)
    selected = [t.strip() for t in query.getlist("target_modules") if t.strip()]
    pick = _last(query, "pick")
    targets: list[str] | str | None
    if pick in p.picks:
        targets = list(p.picks[pick])
        p.names_changed = True
    elif selected and names and (p.source_changed or p.names_changed):
        targets = carry_over(selected, names)
    else:
        targets = selected or None
    if targets == [ALL_LINEAR]:
        targets = ALL_LINEAR
    values["target_modules"] = targets
    if targets is None and arch is not None and arch.default_target_modules is not None:
        values["target_modules_shown"] = list(arch.default_target_modules)
    elif targets == ALL_LINEAR:
        values["target_modules_shown"] = list(names)
    else:
        values["target_modules_shown"] = list(targets or ())
    if targets is not None:
        lora["target_modules"] = targets
    # Validate everything even when some fields already failed, so every wrong field shows at once.
    _compute(p, {"model": model or {"preset": "-"}, "lora": lora, "training": training}, compute=model is not None)


def _final_arch(model: dict[str, Any] | None) -> Architecture | None:
    if model is None:
        return None
    try:
        return resolve_model(ModelChoice.model_validate(model))[0]
    except (ValidationError, InputError):
        return None


def _compute(p: Parsed, data: dict[str, Any], *, compute: bool) -> None:
    try:
        request = EstimateRequest.model_validate(data)
        if not compute:
            return
        result = run_estimate(request)
    except ValidationError as error:
        flat = pydantic_errors(error)
        if not compute:  # the placeholder model says nothing about the user's model
            flat = {k: v for k, v in flat.items() if not k.startswith("model")}
        _map_errors(p, flat)
        return
    except InputError as error:
        _map_errors(p, error.errors)
        return
    if not p.errors:
        p.result, p.request = result, request


def form_field(path: str, overrides: tuple[str, ...] = ()) -> tuple[str, str]:
    """A dotted error path -> (form field, prefix for the message)."""
    parts = path.split(".")
    if parts[0] == "model":
        if len(parts) >= 3 and parts[1] in ("hf_config", "custom"):
            key = parts[2]
            dim = next((d for d in F.DIM_FIELDS if key == d or F.CONFIG_KEYS.get("gpt2", {}).get(d) == key), None)
            if parts[1] == "custom" or (dim and overrides):
                return dim or "preset", ""
            return "hf_config", f"{key}: "
        if len(parts) >= 2 and parts[1] == "hf_config":
            return "hf_config", ""
        return "preset", ""
    if parts[0] in ("lora", "training") and len(parts) >= 2:
        return parts[1], ""
    return "form", ""


def _map_errors(p: Parsed, flat: dict[str, list[str]]) -> None:
    overrides = p.values.get("_overrides", ())
    for path, messages in flat.items():
        name, prefix = form_field(path, overrides)
        for message in messages:
            p.error(name, prefix + _friendly(message))


def _friendly(message: str) -> str:
    message = message.replace("Input should be ", "Must be ")
    return message[:1].upper() + message[1:]


def canonical_query(p: Parsed, changes: dict[str, object] | None = None) -> str:
    """The shortest query string for this state: the source, overrides, then non-default fields."""
    values = {**p.values, **(changes or {})}
    pairs: list[tuple[str, str]] = []
    source = p.source
    if source.kind == "preset" and source.preset is not None:
        pairs.append(("preset", source.preset.slug))
    elif source.kind == "config":
        pairs.append(("hf_config", values["hf_config"]))
    base = dims_of(source.arch) if source.arch and source.kind != "custom" else {}
    for name in F.DIM_FIELDS:
        value = values.get(name)
        if value is not None and name in p.applicable and value != base.get(name):
            pairs.append((name, fmt(value)))
    targets = values.get("target_modules")
    if isinstance(targets, str):
        pairs.append(("target_modules", targets))
    elif targets:
        pairs.extend(("target_modules", t) for t in targets)
    for f in F.SCALAR_FIELDS:
        value = values.get(f.name)
        if f.name == "gpu" and p.gpu is not None and value == default_gpu(catalog.gpus).name:
            continue
        if value is None or value == f.default:
            continue
        if f.kind == "names" and isinstance(value, list):
            value = ",".join(value)
        elif f.kind == "layers" and isinstance(value, list):
            value = _layers_text(value)
        pairs.append((f.name, fmt(value)))
    return urlencode(pairs, quote_via=quote, safe=",:")


def query_from_request(data: dict[str, Any]) -> str:
    """A nested API request (``model``/``lora``/``training``) -> the calculator's canonical query string."""
    pairs: list[tuple[str, str]] = []
    model = data.get("model") or {}
    if model.get("preset"):
        pairs.append(("preset", str(model["preset"])))
    elif model.get("hf_config") is not None:
        pairs.append(("hf_config", compact(model["hf_config"])))
    elif model.get("custom"):
        pairs.extend((k, fmt(v)) for k, v in model["custom"].items() if v is not None and k in F.DIM_FIELDS)
    for group in ("lora", "training"):
        for key, value in (data.get(group) or {}).items():
            if value is None:
                continue
            if key == "target_modules":
                pairs.extend(("target_modules", t) for t in ([value] if isinstance(value, str) else value))
            elif key == "modules_to_save" and isinstance(value, list):
                pairs.append((key, ",".join(value)))
            elif key == "layers_to_transform":
                pairs.append((key, _layers_text([value] if isinstance(value, int) else list(value))))
            elif key in F.BY_NAME:
                pairs.append((key, fmt(value)))
    query = QueryDict(mutable=True)
    for key, value in pairs:
        query.appendlist(key, value)
    return parse(query).canonical


def request_query(entry: PresetEntry) -> str:
    """The calculator URL of a preset; models without PEFT defaults get the q,v-equivalent modules."""
    pairs = [("preset", entry.slug)]
    arch = entry.architecture
    try:
        estimate(arch, LoraSettings(), TrainingSettings(), catalog.gpus, entry.name)
    except InputError:  # e.g. phi3 has no PEFT defaults; Mixtral's default is converted to nothing
        pairs += [("target_modules", n) for n in quick_picks(arch.lora_module_names)["qv"]]
    return urlencode(pairs)
