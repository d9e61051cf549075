"""Small arithmetic expressions over config keys, for the declarative model-family descriptions.

A family description writes a shape or a default as ``"num_attention_heads * head_dim"`` or
``"hidden_size // num_attention_heads"``, and a layer rule as ``"i >= first_k_dense_replace"``. These
are parsed with Python's own ``ast`` and evaluated by a whitelist: names (config keys, and ``i`` for the
layer index), numbers, strings, lists, arithmetic, comparisons, ``and``/``or``/``not``, ``x if c else y``,
subscripts, and the functions ``int``, ``bool``, ``min``, ``max``, ``len``. Nothing else can run: there is no
attribute access and no call of anything outside that list. Descriptions are written by us, not users, but
keeping them inert keeps them data.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

Expr = int | float | bool | str | None  # a literal, or a string expression


class ExpressionError(ValueError):
    pass


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"int": int, "bool": bool, "min": min, "max": max, "len": len}


@lru_cache(maxsize=4096)
def _parse(text: str) -> ast.expr:
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError as error:
        raise ExpressionError(f"bad expression {text!r}: {error}") from None


def evaluate(expression: Expr, names: Callable[[str], Any]) -> Any:
    """The value of ``expression``; ``names`` resolves a name (a config key, or ``i``)."""
    if not isinstance(expression, str):
        return expression
    return _eval(_parse(expression), names)


def names_in(expression: Expr) -> frozenset[str]:
    """The names an expression reads (which config keys a default depends on)."""
    if not isinstance(expression, str):
        return frozenset()
    found = {n.id for n in ast.walk(_parse(expression)) if isinstance(n, ast.Name)}
    return frozenset(found - set(_FUNCTIONS))


def _eval(node: ast.expr, names: Callable[[str], Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return names(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_eval(node.left, names), _eval(node.right, names))
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, names)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.Not):
            return not value
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for item in node.values:
                result = _eval(item, names)
                if not result:
                    return result
            return result
        for item in node.values:
            result = _eval(item, names)
            if result:
                return result
        return result
    if isinstance(node, ast.Compare):
        left = _eval(node.left, names)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, names)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body, names) if _eval(node.test, names) else _eval(node.orelse, names)
    if isinstance(node, ast.Subscript):
        return _eval(node.value, names)[_eval(node.slice, names)]
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(item, names) for item in node.elts]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        return _FUNCTIONS[node.func.id](*(_eval(a, names) for a in node.args))
    raise ExpressionError(f"unsupported expression: {ast.unparse(node)}")


class Scope(Mapping[str, Any]):
    """Names visible to an expression: the resolved config values, plus extra bindings such as ``i``."""

    def __init__(self, base: Callable[[str], Any], **extra: Any) -> None:
        self._base = base
        self._extra = extra

    def __call__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        return self._base(name)

    def __getitem__(self, name: str) -> Any:
        return self(name)

    def __iter__(self) -> Any:
        return iter(self._extra)

    def __len__(self) -> int:
        return len(self._extra)


def num(value: Expr) -> int:
    """A resolved size as an int (descriptions hold ``Expr``; after `resolve` they hold numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"expected a number, got {value!r}")
    return int(value)
