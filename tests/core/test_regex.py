"""The linear-time matcher gives Python's answers, refuses what needs backtracking, and never takes long."""

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calculator.core.regex import MAX_NFA_STATES, UnsupportedPattern, compile_pattern

ALPHABET = "ab._1Q"
ATOMS = ["a", "b", "Q", r"\.", ".", "_", "1", "[ab]", "[^a]", r"\d", r"\w", r"\W", r"\s", "[a-c]", "[._]", "^", "$", ""]


def _patterns() -> st.SearchStrategy[str]:
    atoms = st.sampled_from(ATOMS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map("".join),
            st.tuples(inner, inner).map(lambda p: f"({p[0]}|{p[1]})"),
            inner.map(lambda p: f"(?:{p})"),
            st.tuples(inner, st.sampled_from(["*", "+", "?", "*?", "+?", "??", "{2}", "{0,2}", "{1,3}", "{2,}"])).map(
                lambda p: f"({p[0]}){p[1]}"
            ),
        )

    return st.recursive(atoms, extend, max_leaves=8)


@settings(max_examples=600, deadline=None)
@given(pattern=_patterns(), text=st.text(alphabet=ALPHABET, max_size=12), ignorecase=st.booleans())
def test_answers_equal_pythons_re(pattern, text, ignorecase):
    flagged = f"(?i){pattern}" if ignorecase else pattern
    compiled = compile_pattern(flagged)
    assert compiled.fullmatch(text) == (re.fullmatch(flagged, text) is not None)
    assert compiled.match(text) == (re.match(flagged, text) is not None)


@settings(max_examples=200, deadline=None)
@given(pattern=_patterns(), prefix=st.text(alphabet=ALPHABET, max_size=6), rest=st.text(alphabet=ALPHABET, max_size=6))
def test_resuming_after_a_shared_prefix_is_the_same_as_matching_the_whole_name(pattern, prefix, rest):
    compiled = compile_pattern(pattern)
    cursor = compiled.advance(compiled.start, prefix)
    assert compiled.fullmatch(rest, cursor) == compiled.fullmatch(prefix + rest)


@settings(max_examples=300, deadline=None)
@given(
    pattern=_patterns(), common=st.text(alphabet=ALPHABET, max_size=6), suffix=st.text(alphabet=ALPHABET, max_size=4)
)
def test_a_layer_prefix_signature_is_the_automaton_state_and_pythons_match(pattern, common, suffix):
    """Layers are grouped by this signature: it must be the states after the whole text (so continuations
    decide alike) and Python's ``re.match`` answer on it, asked once or again (remembered)."""
    compiled = compile_pattern(pattern)
    for _ in range(2):
        states, matched = compiled.prefix_signature(common, suffix)
        assert states == compiled.advance(compiled.start, common + suffix).states
        assert matched == (re.match(pattern, common + suffix) is not None)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        (r"model\.layers\.\d+\.self_attn\.(q|v)_proj", "model.layers.31.self_attn.v_proj", True),
        (r".*\.(q|k|v|o)_proj", "model.layers.0.mlp.down_proj", False),
        (r"(.*\.)?(q_proj)$", "model.layers.0.self_attn.q_proj", True),
        (r"(?i)LM_HEAD", "lm_head", True),
        (r"(?s).*", "a\nb", True),
        (r"a.b", "a\nb", False),
        (r"(?a)\w+", "é", False),
        (r"\w+", "é", True),
    ],
)
def test_flags_and_classes_mean_what_python_means(pattern, text, expected):
    assert compile_pattern(pattern).fullmatch(text) is expected
    assert (re.fullmatch(pattern, text) is not None) is expected


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        (r"(a)\1", "backreferences"),
        (r"(?=q)q_proj", "look-ahead"),
        (r"(?<!x)q_proj", "look-ahead and look-behind"),
        (r"\bq_proj", "word boundaries"),
        (r"q*+_proj", "possessive"),
        (r"(?>q)_proj", "atomic"),
        (r"(a)?(?(1)a|b)", "conditional"),
    ],
)
def test_constructs_that_need_backtracking_are_refused_by_name(pattern, construct):
    with pytest.raises(UnsupportedPattern, match=construct):
        compile_pattern(pattern)


def test_patterns_that_expand_beyond_the_automaton_bound_are_refused():
    with pytest.raises(UnsupportedPattern, match="too large"):
        compile_pattern(f"(a{{{MAX_NFA_STATES}}})")


def test_syntax_errors_are_pythons():
    with pytest.raises(re.error):
        compile_pattern("(q_proj")


# Known catastrophic-backtracking shapes (OWASP ReDoS examples and the reports).
REDOS = [
    "(.|.)*x",
    "[^x]*[^x]*[^x]*[^x]*[^x]*[^x]*[^x]*[^x]*[^x]*[^x]*[^x]*[^x]*x",
    "(a+)+x",
    "([a-zA-Z]+)*x",
    "(a|aa)+x",
    "(a|a?)+x",
    "(.*a){12}x",
    "(\\w+\\.?)+x",
    "^(([a-z])+.)+[A-Z]([a-z])+$",
    "(.*)*x",
    "((.*)*)*x",
    "(\\.|[^.])*x",
    "(.|\\s)*x",
    "([^.]*\\.)*[^.]*\\.x",
]


@pytest.mark.parametrize("pattern", REDOS)
def test_known_redos_patterns_match_long_names_in_well_under_100_ms(pattern):
    names = ["model.layers.1023.self_attn.q_proj" * 8, "a" * 300, "model." + "aaaa." * 60]
    compiled = compile_pattern(pattern)
    started = time.perf_counter()
    for name in names:
        compiled.fullmatch(name)
        compiled.match(name)
    assert time.perf_counter() - started < 0.1
