"""Regular expressions over module names in time linear in the name, whatever the pattern.

PEFT matches user-supplied patterns with Python's backtracking ``re`` (``re.fullmatch(target_modules,
key)``, ``re.match(rf"(.*\\.)?({key})$", name)`` for rank/alpha patterns, ``re.match(rf"(^|.*\\.){m}($|\\..*)",
key)`` for modules_to_save). A backtracking engine takes exponential time on patterns such as ``(.|.)*x``,
so a server must not run user patterns through it. This module gives the same yes/no answers with a
Thompson automaton: the pattern is parsed by Python's own parser (so the syntax and its errors are
Python's), compiled to an NFA, and run as a lazily built DFA whose states are sets of NFA states. Every
character costs one dictionary lookup once its transition has been built, and building one costs at most
the size of the NFA: matching is O(len(name) x len(pattern)) in the worst case, and the automaton's size is
bounded (`MAX_NFA_STATES`).

Only yes/no answers are needed, so greedy and lazy repetition are the same thing here. Constructs whose
meaning needs backtracking or look-around (backreferences, look-ahead/behind, conditionals, atomic groups,
possessive repeats, ``\\b``/``\\B``) are refused with `UnsupportedPattern`, which callers turn into a 400.
Subjects are module names, which never contain a newline; ``^``/``$`` therefore mean the start and the end.

The DFA also supports resuming from a state (`state_after`), so names that share a prefix
(``model.layers.17.``) share the work: a whole stack of layers usually lands in one or two states.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser as P  # type: ignore[attr-defined]
from typing import Any, TypeVar

MAX_NFA_STATES = 4_000  # a module-name pattern never needs more; x{100000} and friends are refused

ASCII_SPACE = frozenset(" \t\n\r\f\v")

CharTest = Callable[[str], bool]


class UnsupportedPattern(ValueError):
    """The pattern is valid Python syntax but uses a construct this matcher refuses, or is too large."""


@dataclass(slots=True)
class _Nfa:
    """Thompson NFA: per state, character edges (test, target) and epsilon edges (condition, target).
    Conditions: 0 always, 1 only at the start of the subject, 2 only at its end."""

    chars: list[list[tuple[CharTest, int]]] = field(default_factory=list)
    epsilons: list[list[tuple[int, int]]] = field(default_factory=list)

    def state(self) -> int:
        if len(self.chars) >= MAX_NFA_STATES:
            raise UnsupportedPattern("the pattern is too large for module-name matching")
        self.chars.append([])
        self.epsilons.append([])
        return len(self.chars) - 1


ALWAYS, AT_START, AT_END = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Flags:
    ignorecase: bool
    dotall: bool
    ascii: bool

    def apply(self, add: int, remove: int) -> _Flags:
        def flag(current: bool, bit: int) -> bool:
            return (current or bool(add & bit)) and not remove & bit

        return _Flags(flag(self.ignorecase, re.IGNORECASE), flag(self.dotall, re.DOTALL), flag(self.ascii, re.ASCII))


def _category(name: object, flags: _Flags) -> CharTest:
    """The character classes ``\\d \\w \\s`` and their negations, as sre defines them for str patterns."""
    if name in (C.CATEGORY_DIGIT, C.CATEGORY_NOT_DIGIT):
        test: CharTest = (lambda c: "0" <= c <= "9") if flags.ascii else str.isdecimal
    elif name in (C.CATEGORY_WORD, C.CATEGORY_NOT_WORD):
        if flags.ascii:
            test = lambda c: c.isascii() and (c.isalnum() or c == "_")  # noqa: E731
        else:
            test = lambda c: c.isalnum() or c == "_"  # noqa: E731
    elif name in (C.CATEGORY_SPACE, C.CATEGORY_NOT_SPACE):
        test = ASCII_SPACE.__contains__ if flags.ascii else str.isspace
    else:
        raise UnsupportedPattern(f"the character class {name} is not supported")
    if name in (C.CATEGORY_NOT_DIGIT, C.CATEGORY_NOT_WORD, C.CATEGORY_NOT_SPACE):
        return lambda c: not test(c)
    return test


def _literal(code: int, flags: _Flags) -> CharTest:
    char = chr(code)
    if flags.ignorecase:
        folded = char.lower()
        return lambda c: c == char or c.lower() == folded
    return lambda c: c == char


def _char_set(items: list[tuple[Any, Any]], flags: _Flags) -> CharTest:
    """``[...]``: literals, ranges and categories, possibly negated."""
    negate = False
    tests: list[CharTest] = []
    for op, value in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            tests.append(_literal(int(value), flags))
        elif op is C.RANGE:
            tests.append(_range(chr(value[0]), chr(value[1]), flags))
        elif op is C.CATEGORY:
            tests.append(_category(value, flags))
        else:
            raise UnsupportedPattern(f"{op} inside a character set is not supported")
    if negate:
        return lambda c: not any(t(c) for t in tests)
    return lambda c: any(t(c) for t in tests)


def _range(low: str, high: str, flags: _Flags) -> CharTest:
    if flags.ignorecase:
        return lambda c: low <= c <= high or low <= c.lower() <= high or low <= c.upper() <= high
    return lambda c: low <= c <= high


_REFUSED = {
    "GROUPREF": "backreferences",
    "GROUPREF_EXISTS": "conditional groups",
    "ASSERT": "look-ahead and look-behind",
    "ASSERT_NOT": "negative look-ahead and look-behind",
    "ATOMIC_GROUP": "atomic groups",
    "POSSESSIVE_REPEAT": "possessive repeats",
}


def _build(nfa: _Nfa, items: list[tuple[Any, Any]], follow: int, flags: _Flags) -> int:
    """Compile a sequence right to left: returns the state that matches ``items`` then continues at ``follow``."""
    state = follow
    for op, value in reversed(items):
        state = _build_item(nfa, op, value, state, flags)
    return state


def _build_item(nfa: _Nfa, op: Any, value: Any, follow: int, flags: _Flags) -> int:
    name = str(op)
    if name in _REFUSED:
        raise UnsupportedPattern(f"{_REFUSED[name]} are not supported")
    if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
        if op is C.LITERAL:
            test = _literal(int(value), flags)
        elif op is C.NOT_LITERAL:
            same = _literal(int(value), flags)
            test = lambda c: not same(c)  # noqa: E731
        elif op is C.ANY:
            test = (lambda c: True) if flags.dotall else (lambda c: c != "\n")
        else:
            test = _char_set(value, flags)
        state = nfa.state()
        nfa.chars[state].append((test, follow))
        return state
    if op is C.SUBPATTERN:
        _group, add, remove, sub = value
        return _build(nfa, list(sub), follow, flags.apply(add, remove))
    if op is C.BRANCH:
        _, alternatives = value
        state = nfa.state()
        for alternative in alternatives:
            nfa.epsilons[state].append((ALWAYS, _build(nfa, list(alternative), follow, flags)))
        return state
    if op in (C.MAX_REPEAT, C.MIN_REPEAT):
        low, high, sub = value
        items = list(sub)
        state = follow
        if high == C.MAXREPEAT:
            loop = nfa.state()
            nfa.epsilons[loop].append((ALWAYS, _build(nfa, items, loop, flags)))
            nfa.epsilons[loop].append((ALWAYS, follow))
            state = loop
        else:
            for _ in range(high - low):
                optional = nfa.state()
                nfa.epsilons[optional].append((ALWAYS, _build(nfa, items, state, flags)))
                nfa.epsilons[optional].append((ALWAYS, follow))
                state = optional
        for _ in range(low):
            state = _build(nfa, items, state, flags)
        return state
    if op is C.AT:
        if value in (C.AT_BEGINNING, C.AT_BEGINNING_STRING, C.AT_BEGINNING_LINE):
            condition = AT_START
        elif value in (C.AT_END, C.AT_END_STRING, C.AT_END_LINE):
            condition = AT_END
        else:
            raise UnsupportedPattern("word boundaries (\\b, \\B) are not supported")
        state = nfa.state()
        nfa.epsilons[state].append((condition, follow))
        return state
    raise UnsupportedPattern(f"{name} is not supported")


# The lazy DFA's cache is dropped past these (bounded memory; answers are unaffected).
MAX_CACHED_MOVES = 20_000
MAX_CACHED_STATE_ELEMENTS = 400_000
MAX_CACHED_PREFIXES = 8_192

States = frozenset[int]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the automaton stands after reading a prefix: the set of NFA states, and whether it is still
    at the start of the subject (where ``^`` holds)."""

    states: States
    at_start: bool


class LinearPattern:
    """A compiled pattern answering ``re.fullmatch``/``re.match`` yes or no in linear time."""

    __slots__ = (
        "_accept",
        "_cached_elements",
        "_canonical",
        "_chars",
        "_ends",
        "_epsilons",
        "_fulls",
        "_moves",
        "_prefixes",
        "pattern",
        "start",
    )

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        parsed = P.parse(pattern, 0)  # raises re.error with Python's own message
        global_flags = parsed.state.flags
        flags = _Flags(
            bool(global_flags & re.IGNORECASE), bool(global_flags & re.DOTALL), bool(global_flags & re.ASCII)
        )
        nfa = _Nfa()
        self._accept = nfa.state()
        entry = _build(nfa, list(parsed), self._accept, flags)
        self._chars = nfa.chars
        self._epsilons = nfa.epsilons
        self._moves: dict[tuple[States, str], States] = {}
        self._canonical: dict[States, States] = {}
        self._cached_elements = 0
        self._prefixes: dict[tuple[str, str | None], tuple[Cursor, bool]] = {}
        self._ends: dict[tuple[States, bool], bool] = {}  # whether the end of the subject accepts there
        self._fulls: dict[tuple[str, str], bool] = {}  # fullmatch_parts' answers
        self.start = Cursor(self._closure({entry}, at_start=True, at_end=False), True)

    def _closure(self, states: set[int] | States, *, at_start: bool, at_end: bool) -> States:
        seen = set(states)
        stack = list(states)
        while stack:
            for condition, target in self._epsilons[stack.pop()]:
                allowed = condition == ALWAYS or (at_start if condition == AT_START else at_end)
                if allowed and target not in seen:
                    seen.add(target)
                    stack.append(target)
        return frozenset(seen)

    def _step(self, states: States, char: str) -> States:
        key = (states, char)
        following = self._moves.get(key)
        if following is None:
            reached = {t for s in states for test, t in self._chars[s] if test(char)}
            following = self._closure(reached, at_start=False, at_end=False)
            if len(self._moves) >= MAX_CACHED_MOVES or self._cached_elements >= MAX_CACHED_STATE_ELEMENTS:
                self._moves.clear()
                self._canonical.clear()
                self._cached_elements = 0
            # One object per distinct set, so later lookups compare by identity.
            known = self._canonical.get(following)
            if known is None:
                self._canonical[following] = following
                self._cached_elements += len(following)
            else:
                following = known
            self._moves[key] = following
        return following

    def advance(self, cursor: Cursor, text: str) -> Cursor:
        """The cursor after reading ``text`` (names sharing a prefix share this work)."""
        if not text:
            return cursor
        states = cursor.states
        for char in text:
            if not states:
                break
            states = self._step(states, char)
        return Cursor(states, False)

    def scan(self, cursor: Cursor, text: str) -> tuple[Cursor, bool]:
        """The cursor after reading ``text``, and whether the accepting state was reached before one of its
        characters (so ``re.match`` on a longer subject already succeeded there). Scans compose: reading
        ``a`` then ``b`` gives the cursor and the flag of reading ``a + b`` (flags or-ed)."""
        states = cursor.states
        accept = self._accept
        reached = False
        for char in text:
            if not states:
                break
            reached = reached or accept in states
            states = self._step(states, char)
        return Cursor(states, cursor.at_start and not text), reached

    def _scan_head(self, head: str) -> tuple[Cursor, bool]:
        """``scan`` from the start over ``head``, remembered: module names share their leading components
        (``model.layers.17.self_attn.``), so each is read once and only the last component is read per name."""
        if not head:
            return self.start, False
        known = self._prefixes.get((head, None))
        if known is None:
            known = _remember(self._prefixes, (head, None), self.scan(self.start, head), MAX_CACHED_PREFIXES)
        return known

    def prefix_signature(self, common: str, suffix: str) -> tuple[States, bool]:
        """What the automaton knows after reading ``common + suffix``: its states, and whether ``re.match``
        on that text succeeds. Names of a stack of layers share ``common`` (read once) and differ in a short
        ``suffix``; answers are remembered per text, as several counts of one request ask the same."""
        known = self._prefixes.get((common, suffix))
        if known is None:
            cursor, matched = self._scan_head(common)
            cursor, reached = self.scan(cursor, suffix)
            matched = matched or reached or self._accepts_at_end(cursor)
            known = _remember(self._prefixes, (common, suffix), (cursor, matched), MAX_CACHED_PREFIXES)
        return known[0].states, known[1]

    def fullmatch_parts(self, common: str, suffix: str) -> bool:
        """``fullmatch(common + suffix)``, with ``common`` read once for many suffixes (a stack's layer names);
        answers are remembered, as every count of a request asks about the same layers."""
        known = self._fulls.get((common, suffix))
        if known is None:
            cursor, _ = self._scan_head(common)
            cursor, _ = self.scan(cursor, suffix)
            known = _remember(self._fulls, (common, suffix), self._accepts_at_end(cursor), MAX_CACHED_PREFIXES)
        return known

    def _accepts_at_end(self, cursor: Cursor) -> bool:
        key = (cursor.states, cursor.at_start)
        known = self._ends.get(key)
        if known is None:
            ends = self._accept in self._closure(cursor.states, at_start=cursor.at_start, at_end=True)
            known = _remember(self._ends, key, ends, MAX_CACHED_MOVES)
        return known

    def fullmatch(self, text: str, cursor: Cursor | None = None) -> bool:
        """``re.fullmatch(pattern, prefix + text) is not None``, where ``cursor`` stands after ``prefix``."""
        if cursor is None:
            head, dot, tail = text.rpartition(".")
            cursor, _ = self._scan_head(head + dot)
            text = tail
        return self._accepts_at_end(self.advance(cursor, text))

    def match(self, text: str) -> bool:
        """``re.match(pattern, text) is not None``: some prefix of ``text`` matches."""
        head, dot, tail = text.rpartition(".")
        cursor, reached = self._scan_head(head + dot)
        if reached:
            return True
        cursor, reached = self.scan(cursor, tail)
        return reached or self._accepts_at_end(cursor)


K = TypeVar("K")
T = TypeVar("T")


def _remember(memo: dict[K, T], key: K, value: T, limit: int) -> T:
    """Store an answer in a bounded memo (emptied when full: answers are recomputed, never wrong)."""
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> LinearPattern:
    """Compile once per pattern (patterns repeat across requests); raises ``re.error`` or `UnsupportedPattern`."""
    return LinearPattern(pattern)
