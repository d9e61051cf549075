"""The URL-state codec: the calculator's query string (API field names, flat) <-> typed values.

The URL is the state: reload, back/forward and a pasted link restore it. ``read_*`` turns the text of
one field into its value (or says what is wrong with it); ``encode`` writes the canonical query, the
shortest that means the same state (the model's source, edited dimensions, then every field that
differs from its default, in the form's order). Nothing here computes: `query_of_request` turns an API
request into the same canonical query without an estimate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from django.conf import settings
from django.http import QueryDict

from calculator import services
from calculator.web.fields import BY_NAME, DIM_FIELDS, SCALAR_FIELDS, Field

TRUE = frozenset({"true", "on", "1", "yes"})
FALSE = frozenset({"false", "off", "0", "no", ""})
MAX_CONFIG_CHARS = 200_000
MAX_RANGE = 4096
MAX_TOKEN_RANGE = 1024  # trainable_token_indices: a range of new tokens (the schema bounds the list too)
ALL_LINEAR = "all-linear"

NOT_A_WHOLE_NUMBER = "Enter a whole number (digits only)."
NOT_A_NUMBER = "Enter a number."
NOT_A_BOOLEAN = "Enter true or false."
NOT_LAYERS = "Use layer indexes like 0,1,2 or ranges like 0-7."
NOT_TOKENS = "Use token ids like 128000,128001 or ranges like 128000-128015."


def read_int(text: str) -> int | None:
    text = text.strip().replace(",", "").replace("_", "")
    return int(text) if re.fullmatch(r"[+-]?\d{1,12}", text) else None


def read_float(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def read_bool(text: str) -> bool | None:
    low = text.strip().lower()
    return True if low in TRUE else False if low in FALSE else None


def read_layers(text: str, *, digits: int = 4, widest: int = MAX_RANGE) -> list[int] | None:
    """``0,1,2`` or ``0-7, 12`` -> indexes; None when unreadable."""
    out: list[int] = []
    number = rf"(\d{{1,{digits}}})"
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        m = re.fullmatch(rf"{number}(?:-{number})?", part)
        if not m:
            return None
        a, b = int(m[1]), int(m[2] or m[1])
        if b < a or b - a > widest:
            return None
        out.extend(range(a, b + 1))
    return out


def write_layers(layers: Iterable[int]) -> str:
    """Indexes -> ``0-3,8,10-11``."""
    runs: list[list[int]] = []
    for i in sorted(set(layers)):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def read_names(text: str) -> list[str] | None:
    return [n for n in re.split(r"[,\s]+", text) if n] or None


def read_field(field: Field, text: str, default: object = None) -> tuple[Any, str]:
    """(value, "") or (None, what is wrong). Empty text means the default (``default``, else the field's;
    for lists: none)."""
    stripped = text.strip()
    if field.kind in ("names", "layers", "tokens"):
        if not stripped:
            return None, ""
        if field.kind == "names":
            return read_names(stripped), ""
        if field.kind == "tokens":
            tokens = read_layers(stripped, digits=7, widest=MAX_TOKEN_RANGE)
            return (tokens, "") if tokens is not None else (None, NOT_TOKENS)
        layers = read_layers(stripped)
        return (layers, "") if layers is not None else (None, NOT_LAYERS)
    if not stripped:
        return field.default if default is None else default, ""
    if field.kind == "int":
        number = read_int(stripped)
        return (number, "") if number is not None else (None, NOT_A_WHOLE_NUMBER)
    if field.kind == "float":
        real = read_float(stripped)
        return (real, "") if real is not None else (None, NOT_A_NUMBER)
    if field.kind == "bool":
        flag = read_bool(stripped)
        return (flag, "") if flag is not None else (None, NOT_A_BOOLEAN)
    return stripped, ""


def read_dimension(name: str, text: str) -> tuple[Any, str]:
    if name == "tie_word_embeddings":
        flag = read_bool(text)
        return (flag, "") if flag is not None else (None, NOT_A_BOOLEAN)
    number = read_int(text)
    return (number, "") if number is not None else (None, NOT_A_WHOLE_NUMBER)


def write(value: object) -> str:
    """A value as the query writes it: ``true``, ``8`` (not ``8.0``), ``0.05``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def write_field(field: Field, value: object) -> str:
    if field.kind == "names" and isinstance(value, (list, tuple)):
        return ",".join(value)
    if field.kind in ("layers", "tokens") and isinstance(value, (list, tuple)):
        return write_layers(value)
    if field.kind == "layers" and isinstance(value, int):
        return write_layers([value])
    return write(value)


def compact(config: Mapping[str, Any]) -> str:
    return json.dumps(config, separators=(",", ":"), ensure_ascii=False)


def read_config(text: str) -> tuple[dict[str, Any] | None, str]:
    """A pasted config.json -> (the keys that change the numbers, "") or (None, what is wrong)."""
    if len(text) > MAX_CONFIG_CHARS:
        return None, f"That is over {MAX_CONFIG_CHARS:,} characters; paste the model's config.json."
    try:
        data = json.loads(text)
    except ValueError as error:
        return None, f"Not valid JSON: {error}."
    if not isinstance(data, dict):
        return None, "Expected a JSON object: the contents of config.json."
    return services.relevant_config(config=data), ""


class Links:
    """The canonical query of a state: ``source`` (``("preset", slug)`` or ``("hf_config", compact json)``),
    the dimension fields given (custom) or edited (overrides), the targets, then every field that differs
    from its default (``defaults``: the chosen framework's, for the training fields). ``links(changes)`` is
    the query of the state with those fields changed (``links({})``: the state's own): a results panel draws
    about twenty such links, so the state is encoded once and each link re-encodes only the fields it changes
    (a change of targets or framework, which moves other fields' defaults, is encoded whole)."""

    def __init__(
        self,
        *,
        source: tuple[str, str] | None,
        dims: Mapping[str, Any],
        targets: Sequence[str] | str | None,
        values: Mapping[str, Any],
        default_gpu: str,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self._source, self._dims, self._targets, self._values = source, dims, targets, values
        self._default_gpu, self._defaults = default_gpu, defaults or {}
        pairs: list[tuple[str, str]] = [source] if source else []
        pairs += [(name, write(dims[name])) for name in DIM_FIELDS if dims.get(name) is not None]
        if isinstance(targets, str):
            pairs.append(("target_modules", targets))
        elif targets:
            pairs += [("target_modules", t) for t in targets]
        self._head = [_urlencode(pairs)] if pairs else []
        self._pieces = {field.name: self._piece(field, values.get(field.name)) for field in SCALAR_FIELDS}

    def _piece(self, field: Field, value: Any) -> str:
        default = self._defaults.get(field.name, field.default)
        if value is None or value == default or (field.kind == "gpu" and value == self._default_gpu):
            return ""
        return _urlencode([(field.name, write_field(field, value))])

    def __call__(self, changes: Mapping[str, Any]) -> str:
        if any(name not in BY_NAME or name == "framework" for name in changes):
            targets = changes.get("target_modules", self._targets)
            whole = Links(
                source=self._source,
                dims=self._dims,
                targets=list(targets) if isinstance(targets, tuple) else targets,
                values={**self._values, **changes},
                default_gpu=self._default_gpu,
                defaults=self._defaults,
            )
            return whole({})
        pieces = self._pieces
        if changes:
            pieces = {**pieces, **{name: self._piece(BY_NAME[name], value) for name, value in changes.items()}}
        return "&".join([*self._head, *(p for p in pieces.values() if p)])


def _urlencode(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs, quote_via=quote, safe=",:")


def query_of_request(data: Mapping[str, Any]) -> str:
    """A nested API request (``model``/``lora``/``training``, as saved) -> the calculator's canonical query."""
    model = data.get("model") or {}
    source: tuple[str, str] | None = None
    dims: dict[str, Any] = {}
    if model.get("preset"):
        source = ("preset", str(model["preset"]))
    elif model.get("hf_config") is not None:
        source = ("hf_config", compact(services.relevant_config(config=model["hf_config"])))
    elif model.get("custom"):
        dims = {k: v for k, v in model["custom"].items() if k in DIM_FIELDS}
    values = {
        key: value for group in ("lora", "training") for key, value in (data.get(group) or {}).items() if key in BY_NAME
    }
    targets = (data.get("lora") or {}).get("target_modules")
    framework = values.get("framework")
    defaults = services.training_defaults(framework=framework) if framework in services.FRAMEWORKS else None
    return Links(source=source, dims=dims, targets=targets, values=values, default_gpu="", defaults=defaults)({})


def parse(query: str) -> QueryDict:
    """A calculator state the server wrote (a saved configuration's) as a QueryDict, however many fields it has:
    one per module name, so a 1,024-layer configuration with named targets has thousands. A request's own
    query stays bounded by Django's ``DATA_UPLOAD_MAX_NUMBER_FIELDS``; this state is bounded by what a save
    may store."""
    parsed = QueryDict(mutable=True)
    for key, value in parse_qsl(query, keep_blank_values=True, max_num_fields=None):
        parsed.appendlist(key, value)
    parsed._mutable = False
    return parsed


# gunicorn refuses a request line over 8,190 bytes (lorasite/gunicorn.conf.py); keep room for the method and path.
MAX_LINK_QUERY = 8_000


def fits_in_a_link(query: str) -> bool:
    """Whether a calculator link with this state can be opened: short enough for the server's request line and
    with no more fields than Django parses from a request."""
    fields = query.count("&") + 1 if query else 0
    return len(query) <= MAX_LINK_QUERY and fields <= settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
