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


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Split `text[start:end]` into sentences; offsets are into `text`."""
    stop = len(text) if end is None else end
    spans: list[Span] = []
    begin = start
    for m in _END.finditer(text, start, stop):
        punct = m.group(0)
        if punct[0] == "." and len(punct.rstrip("\"'”’」』)]")) == 1:
            if _is_abbreviation(text, m.start()):
                continue
            nxt = _next_non_space(text, m.end(), stop)
            # "Nvidia Corp. shares" and "vs. rivals": a lower-case word follows in English.
            if nxt is not None and nxt.islower() and nxt.isascii():
                continue
        _append(spans, text, begin, m.end())
        begin = m.end()
    _append(spans, text, begin, stop)
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


def _next_non_space(text: str, i: int, stop: int) -> str | None:
    while i < stop and text[i].isspace():
        i += 1
    return text[i] if i < stop else None


def _append(spans: list[Span], text: str, begin: int, end: int) -> None:
    while begin < end and text[begin].isspace():
        begin += 1
    while end > begin and text[end - 1].isspace():
        end -= 1
    if end > begin:
        spans.append(Span(begin, end, text[begin:end]))
