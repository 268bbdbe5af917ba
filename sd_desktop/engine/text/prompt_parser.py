"""AUTOMATIC1111's prompt-attention syntax, so prompts copied from the web mean the same here.

    (text)        weight x 1.1            [text]    weight / 1.1
    (text:1.3)    weight x 1.3            nesting multiplies
    \\( \\) \\[ \\]   literal brackets        \\\\        a literal backslash
    BREAK         (upper case, a whole word) starts a new 75-token chunk

Brackets that are never closed still apply, up to the end of the prompt; closers
without an opener are dropped. A lone backslash vanishes. A ':number)' with no open
'(' stays literal text. Adjacent pieces of equal weight are merged.
"""

from __future__ import annotations

import re

from sd_desktop.engine.errors import InvalidRequestError

ROUND_FACTOR = 1.1
SQUARE_FACTOR = 1 / 1.1
# A BREAK is reported as this pair, as A1111 does. Whole-word "BREAK" never stays
# text, so only a contrived prompt (pieces glued into "BREAK" at weight -1) mimics it.
BREAK_MARKER: tuple[str, float] = ("BREAK", -1.0)

_SYNTAX = re.compile(
    r"""
      (?P<escape>\\[()\[\]\\])          # escaped bracket or backslash
    | (?P<lone_backslash>\\)
    | (?P<weight>:\s*(?P<number>[+-]?[.\d]+)\s*\))
    | (?P<open_round>\()
    | (?P<open_square>\[)
    | (?P<close_round>\))
    | (?P<close_square>\])
    | (?P<text>[^\\()\[\]:]+|:)
    """,
    re.VERBOSE,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def is_break(piece: tuple[str, float]) -> bool:
    return piece == BREAK_MARKER


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split a prompt into (text, weight) pieces; BREAK_MARKER entries separate chunks."""
    pieces: list[list] = []  # [text, weight, is_break]
    open_round: list[int] = []
    open_square: list[int] = []

    def scale_from(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            if not piece[2]:
                piece[1] *= factor

    def add_text(fragment: str) -> None:
        for i, part in enumerate(_BREAK.split(fragment)):
            if i:
                pieces.append([BREAK_MARKER[0], BREAK_MARKER[1], True])
            pieces.append([part, 1.0, False])

    for match in _SYNTAX.finditer(text):
        kind = match.lastgroup
        token = match.group(0)
        if kind == "escape":
            pieces.append([token[1], 1.0, False])
        elif kind == "lone_backslash":
            continue
        elif kind == "open_round":
            open_round.append(len(pieces))
        elif kind == "open_square":
            open_square.append(len(pieces))
        elif kind == "weight":
            if open_round:
                scale_from(open_round.pop(), _parse_weight(match.group("number")))
            else:
                add_text(token)
        elif kind == "close_round":
            if open_round:
                scale_from(open_round.pop(), ROUND_FACTOR)
        elif kind == "close_square":
            if open_square:
                scale_from(open_square.pop(), SQUARE_FACTOR)
        else:
            add_text(token)

    # Unclosed brackets act as if closed at the end, innermost last like A1111.
    for start in open_round:
        scale_from(start, ROUND_FACTOR)
    for start in open_square:
        scale_from(start, SQUARE_FACTOR)

    if not pieces:
        return [("", 1.0)]
    merged: list[list] = [pieces[0]]
    for piece in pieces[1:]:
        last = merged[-1]
        if not piece[2] and not last[2] and piece[1] == last[1]:
            last[0] += piece[0]
        else:
            merged.append(piece)
    return [(p[0], p[1]) for p in merged]


def _parse_weight(number: str) -> float:
    try:
        return float(number)
    except ValueError:
        raise InvalidRequestError(
            f"'{number}' in the prompt is not a valid attention weight, e.g. (word:1.2)."
        ) from None
