"""Sentence splitting for Korean and English news text.

`split_sentences` returns `Span`s that keep their offsets into the text, so that
entity hits (which carry offsets) can be placed in the sentence they fall in.

Rules, and why:
- A sentence ends at `.`, `!`, `?` or `…` (and any closing quotes or brackets
  right after them) when whitespace or the end of the text follows.
- A period between digits never ends one (`16.97%`, `$1.5`), and neither does a
  period after a common English abbreviation (`U.S.`, `Inc.`, `Dr.`, `No. 1`) or a
  single capital initial (`C.C. Wei`).
- Korean declarative endings (`다.`) are handled by the general rule; Korean
  headlines use `…` and `·` between clauses, so `split_headline` also splits on
  `…`, `;` and ` - ` to give each headline clause its own span.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Span(NamedTuple):
    """A piece of text with its half-open offsets in the text it came from."""

    start: int
    end: int
    text: str


_ABBREVIATIONS = (
    "u.s", "u.k", "u.n", "e.u", "inc", "corp", "co", "ltd", "mr", "mrs", "ms", "dr", "st",
    "jr", "sr", "no", "vs", "etc", "e.g", "i.e", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec", "approx", "est", "fig",
)  # fmt: skip
_CLOSERS = "[\"'”’」』)\\]]*"
# The end of a sentence: terminal punctuation, optional closers, then whitespace or the
# end. A lone period does not end one after an abbreviation ("U.S."), after a capital
# initial ("C.C. Wei"), or before a lower-case word ("Corp. shares"). All of it is in the
# pattern so that splitting is one C-level pass.
_NOT_ABBREVIATION = (
    "(?i:"
    + "".join(f"(?<!\\b{re.escape(a)}\\.)" for a in sorted(_ABBREVIATIONS, key=len, reverse=True))
    + ")"
)
_END = re.compile(
    "(?:[!?…][.!?…]*|\\.[.!?…]+|"
    + "\\."
    + _NOT_ABBREVIATION
    + "(?<!\\b[A-HJ-Z]\\.)(?!\\s+[a-z]))"
    + _CLOSERS
    + "(?=\\s|$)"
)
_HEADLINE_BREAK = re.compile(r"\s*(?:…+|\.{3,}|;|\s-\s|\s\|\s)\s*")


def split_sentences(text: str) -> list[Span]:
    """Split `text` into sentences; offsets are into `text`."""
    spans: list[Span] = []
    begin = 0
    for m in _END.finditer(text):
        _append(spans, text, begin, m.end())
        begin = m.end()
    _append(spans, text, begin, len(text))
    return spans


def split_headline(title: str) -> list[Span]:
    """Split a headline into its clauses (`A…B`, `A; B`, `A - B`), offsets into `title`."""
    spans: list[Span] = []
    begin = 0
    for m in _HEADLINE_BREAK.finditer(title):
        _append(spans, title, begin, m.start())
        begin = m.end()
    _append(spans, title, begin, len(title))
    return spans


def _append(spans: list[Span], text: str, begin: int, end: int) -> None:
    piece = text[begin:end]
    left = piece.lstrip()
    stripped = left.rstrip()
    if stripped:
        start = begin + len(piece) - len(left)
        spans.append(Span(start, start + len(stripped), stripped))
