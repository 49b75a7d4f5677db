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


# The end of a sentence: terminal punctuation, optional closers, then whitespace or the end.
_END = re.compile(r"[.!?…]+[\"'”’」』)\]]*(?=\s|$)")
_CLOSE_QUOTES = "\"'”’」』)]"
_ABBREVIATIONS = frozenset(
    {
        "u.s",
        "u.k",
        "u.n",
        "e.u",
        "inc",
        "corp",
        "co",
        "ltd",
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "jr",
        "sr",
        "no",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "approx",
        "est",
        "fig",
    }
)
_INITIALS = re.compile(r"^(?:[a-z]\.)+[a-z]$")
_HEADLINE_BREAK = re.compile(r"\s*(?:…+|\.{3,}|;|\s-\s|\s\|\s)\s*")


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the period at `dot` closes an abbreviation rather than a sentence."""
    if dot == 0 or not text[dot - 1].isascii() or not text[dot - 1].isalpha():
        return False  # "다.", "17%.", "$5." end sentences
    begin = max(text.rfind(" ", 0, dot), text.rfind("(", 0, dot)) + 1
    word = text[begin:dot]
    if not word[:1].isalpha():
        return False
    lowered = word.lower()
    if lowered in _ABBREVIATIONS:
        return True
    # Initials ("C.C. Wei", "J. Smith", "U.A.E."), but not the pronoun "I".
    if len(word) == 1:
        return word.isupper() and word != "I"
    return _INITIALS.match(lowered) is not None


def split_sentences(text: str) -> list[Span]:
    """Split `text` into sentences; offsets are into `text`."""
    spans: list[Span] = []
    begin = 0
    for m in _END.finditer(text):
        end = m.end()
        after = m.start() + 1  # a lone period, perhaps with closing quotes, may not end one
        if (
            text[m.start()] == "."
            and (after == end or text[after] in _CLOSE_QUOTES)
            and _continues(text, end)
        ):
            continue
        _append(spans, text, begin, end)
        begin = end
    _append(spans, text, begin, len(text))
    return spans


def _continues(text: str, end: int) -> bool:
    """Whether the sentence-like piece ending at `end` goes on: a period after an
    abbreviation ("U.S."), or a lower-case English word next ("Corp. shares")."""
    dot = end - 1
    while dot > 0 and text[dot] in _CLOSE_QUOTES:
        dot -= 1
    if text[dot] != "." or (dot > 0 and text[dot - 1] in ".!?…"):
        return False
    if _is_abbreviation(text, dot):
        return True
    i = end
    n = len(text)
    while i < n and text[i].isspace():
        i += 1
    return i < n and text[i].isascii() and text[i].islower()


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
    while begin < end and text[begin].isspace():
        begin += 1
    while end > begin and text[end - 1].isspace():
        end -= 1
    if end > begin:
        spans.append(Span(begin, end, text[begin:end]))
