"""A1111 prompt-attention syntax; expected pieces worked out by hand from its documented rules."""

from __future__ import annotations

import pytest

from sd_desktop.engine.errors import InvalidRequestError
from sd_desktop.engine.text.prompt_parser import BREAK_MARKER, is_break, parse_prompt_attention

UP = 1.1
DOWN = 1 / 1.1

CASES = [
    # A1111's own documented examples
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", UP), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", UP)]),
    (r"\(literal\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", UP)]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ("a ", 1.0),
            ("house", 1.3 * UP * UP),  # ":1.3)" and ")" close two; one stays open
            (" ", UP),
            ("on", 1.0),
            (" a ", UP),
            ("hill", 0.5 * UP),
            (", sun, ", UP),
            ("sky", UP**4),
            (".", UP),
        ],
    ),
    # single constructs
    ("", [("", 1.0)]),
    ("[word]", [("word", DOWN)]),
    ("((word))", [("word", UP * UP)]),
    ("[[word]]", [("word", DOWN * DOWN)]),
    ("(word:1.3)", [("word", 1.3)]),
    ("(word: 0.5 )", [("word", 0.5)]),
    ("(word:+2)", [("word", 2.0)]),
    ("(word:.5)", [("word", 0.5)]),
    ("(word:0)", [("word", 0.0)]),
    ("a (b:1.5) c", [("a ", 1.0), ("b", 1.5), (" c", 1.0)]),
    # nesting multiplies
    ("((word:1.5))", [("word", 1.5 * UP)]),
    ("[(word:1.5)]", [("word", 1.5 * DOWN)]),
    ("((a:2) b:0.5)", [("a", 1.0), (" b", 0.5)]),
    ("(a [b] c)", [("a ", UP), ("b", 1.0), (" c", UP)]),
    # unbalanced: unclosed openers apply to the end, stray closers vanish
    ("((a) b", [("a", UP * UP), (" b", UP)]),
    ("[a (b", [("a ", DOWN), ("b", 1.0)]),
    ("a) b] c", [("a b c", 1.0)]),
    ("(a:1.2", [("a:1.2", UP)]),
    # colons that are not weights stay text
    ("a:1.5) b", [("a:1.5) b", 1.0)]),
    ("time: 12:30", [("time: 12:30", 1.0)]),
    ("(a:-)", [("a:-", UP)]),
    # ...but ":number)" right before a closer is a weight, a known A1111 surprise
    ("(ratio 16:9)", [("ratio 16", 9.0)]),
    # escapes
    (r"\(x\)", [("(x)", 1.0)]),
    (r"(\(x\):1.2)", [("(x)", 1.2)]),
    (r"\[x\]", [("[x]", 1.0)]),
    (r"a \\ b", [("a \\ b", 1.0)]),
    (r"a\b", [("ab", 1.0)]),
    # merging runs of equal weight
    ("(a)(b)[c][d]", [("ab", UP), ("cd", DOWN)]),
    ("(a:1.1)(b)", [("ab", 1.1)]),
    ("(a:1.2)(b:1.3)", [("a", 1.2), ("b", 1.3)]),
    # BREAK
    ("a BREAK b", [("a", 1.0), BREAK_MARKER, ("b", 1.0)]),
    ("a,BREAK,b", [("a,", 1.0), BREAK_MARKER, (",b", 1.0)]),
    ("BREAK", [("", 1.0), BREAK_MARKER, ("", 1.0)]),
    ("a BREAK BREAK b", [("a", 1.0), BREAK_MARKER, ("", 1.0), BREAK_MARKER, ("b", 1.0)]),
    ("(a BREAK b)", [("a", UP), BREAK_MARKER, ("b", UP)]),
    ("aBREAK b", [("aBREAK b", 1.0)]),
    ("a break b", [("a break b", 1.0)]),
    ("a BREAKING b", [("a BREAKING b", 1.0)]),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_parse(text, expected):
    result = parse_prompt_attention(text)
    assert [piece for piece, _ in result] == [piece for piece, _ in expected]
    assert [w for _, w in result] == pytest.approx([w for _, w in expected], rel=1e-12)


def test_weights_are_multiplied_in_a1111_order():
    # Merging compares floats exactly, so the product order must match A1111's.
    result = dict(parse_prompt_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."))
    assert result["house"] == 1.5730000000000004
    assert result["sky"] == 1.4641000000000006


def test_break_marker_is_recognisable():
    pieces = parse_prompt_attention("x BREAK (y:-1)")
    assert [is_break(p) for p in pieces] == [False, True, False, False]
    assert pieces[-1] == ("y", -1.0)


@pytest.mark.parametrize("text", ["(a:1.2.3)", "(a:.)", "(a:+.)", "(a:1..2)"])
def test_malformed_weight_is_a_clear_error(text):
    with pytest.raises(InvalidRequestError, match="not a valid attention weight"):
        parse_prompt_attention(text)
