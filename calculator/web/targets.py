"""Target-module checkboxes: quick picks per architecture, and carrying a choice across architectures.

Module names differ between families (q_proj/k_proj/v_proj vs Phi-3's fused qkv_proj vs GPT-2's
c_attn), so each name gets the roles it plays; switching models keeps the roles that were chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

ROLES: dict[str, frozenset[str]] = {
    "q_proj": frozenset({"q"}),
    "k_proj": frozenset({"k"}),
    "v_proj": frozenset({"v"}),
    "o_proj": frozenset({"o"}),
    "qkv_proj": frozenset({"q", "k", "v"}),
    "c_attn": frozenset({"q", "k", "v"}),
    "c_proj": frozenset({"o", "mlp"}),  # GPT-2: attn.c_proj and mlp.c_proj share the name
    "gate_proj": frozenset({"mlp"}),
    "up_proj": frozenset({"mlp"}),
    "down_proj": frozenset({"mlp"}),
    "gate_up_proj": frozenset({"mlp"}),
    "c_fc": frozenset({"mlp"}),
}
ATTENTION = frozenset({"q", "k", "v", "o"})
PICKS: tuple[tuple[str, str], ...] = (("qv", "q,v"), ("attention", "attention"), ("all", "all linear"))
ALL_LINEAR = "all-linear"


def quick_picks(names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    qv = tuple(n for n in names if ROLES.get(n, frozenset()) & {"q", "v"})
    attention = tuple(n for n in names if ROLES.get(n, frozenset()) & ATTENTION)
    return {"qv": qv or tuple(names[:1]), "attention": attention or tuple(names), "all": tuple(names)}


def carry_over(selected: Sequence[str], names: Sequence[str]) -> list[str]:
    """The new model's names playing the roles of ``selected`` (names it has are kept as they are)."""
    if all(n in names or n == ALL_LINEAR for n in selected):
        return list(selected)
    roles: set[str] = set()
    for n in selected:
        roles |= ROLES.get(n, frozenset())
    if ALL_LINEAR in selected:
        return [ALL_LINEAR]
    chosen = [n for n in names if ROLES.get(n, frozenset()) & roles]
    return chosen or list(quick_picks(names)["qv"])
