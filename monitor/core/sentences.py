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
# An abbreviation right before a period, at a word start ("U.S." but not "bus.").
_ABBREVIATION_AT_END = re.compile(
    "(?i)\\b(?:"
    + "|".join(re.escape(a) for a in sorted(_ABBREVIATIONS, key=len, reverse=True))
    + ")\\Z"
)
_LONGEST_ABBREVIATION = max(len(a) for a in _ABBREVIATIONS)
_TERMINALS = ".!?…"
_CLOSER_CHARS = "\"'”’」』)]"
_INITIALS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"  # not "I": "... as I." ends a sentence


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _period_ends(text: str, i: int) -> bool:
    """Whether the lone period at `i` ends a sentence: not after a common abbreviation
    (`U.S.`, `Inc.`), a single capital initial (`C.C. Wei`), or before a lower-case word
    (`Corp. shares`)."""
    j = i + 1
    n = len(text)
    if j < n and text[j].isspace():
        while j < n and text[j].isspace():
            j += 1
        if j < n and "a" <= text[j] <= "z":
            return False
    prev = text[i - 1] if i else ""
    if not (prev.isascii() and prev.isalpha()):
        return True
    if prev in _INITIALS and (i < 2 or not _word_char(text[i - 2])):
        return False
    # One character more than the longest abbreviation, so that `\b` sees what precedes it.
    return _ABBREVIATION_AT_END.search(text[max(0, i - _LONGEST_ABBREVIATION - 1) : i]) is None


def _terminal_positions(text: str) -> list[int]:
    # str.find runs in C at memchr speed; a regex would step through every character.
    found: list[int] = []
    for ch in _TERMINALS:
        i = text.find(ch)
        while i >= 0:
            found.append(i)
            i = text.find(ch, i + 1)
    found.sort()
    return found


_HEADLINE_BREAK = re.compile(r"\s*(?:…+|\.{3,}|;|\s-\s|\s\|\s)\s*")


def split_sentences(text: str) -> list[Span]:
    """Split `text` into sentences; offsets are into `text`.

    A sentence ends after a run of terminal punctuation and any closers when whitespace
    or the end of the text follows; a lone period must also pass `_period_ends`."""
    spans: list[Span] = []
    begin = 0
    n = len(text)
    consumed = 0
    for i in _terminal_positions(text):
        if i < consumed:
            continue  # inside a run already looked at ("?!", "...")
        j = i + 1
        while j < n and text[j] in _TERMINALS:
            j += 1
        consumed = j
        k = j
        while k < n and text[k] in _CLOSER_CHARS:
            k += 1
        if k < n and not text[k].isspace():
            continue
        if j == i + 1 and text[i] == "." and not _period_ends(text, i):
            continue
        # The piece ends in punctuation, so only its start can hold whitespace.
        piece = text[begin:k].lstrip()
        if piece:
            spans.append(Span(k - len(piece), k, piece))
        begin = k
    _append(spans, text, begin, n)
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
