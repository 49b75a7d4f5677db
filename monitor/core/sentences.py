"""Sentence splitting for Korean and English news text.

`split_sentences` returns `Span`s that keep their offsets into the text, so that
entity hits (which carry offsets) can be placed in the sentence they fall in.

Rules, and why:
- A sentence ends at `.`, `!`, `?`, `…` or `。` (and any closing quotes or brackets
  right after them) when whitespace or the end of the text follows.
- A period between digits never ends one (`16.97%`, `$1.5`), and neither does a
  period after a common English abbreviation (`U.S.`, `Inc.`, `Dr.`, `No. 1`) or a
  single capital initial (`C.C. Wei`).
- Korean declarative endings (`다.`) are handled by the general rule; Korean
  headlines use `…` and `·` between clauses, so `split_headline` also splits on
  `…`, `;` and ` - ` to give each headline clause its own span.

Where setup.py could compile it, `_sentences_native.pyx` does the same cuts in C;
`_split_python` and `_headline_python` below are the reference it must match exactly
(tests/test_compiled_sentences.py) and run wherever the extension is not built.
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
# A sentence end at a terminal mark: the run of marks, optional closers, then whitespace
# or the end. A lone period does not end one after an abbreviation ("U.S."), after a
# capital initial ("C.C. Wei"), or before a lower-case word ("Corp. shares"). It is only
# tried where `str.find` saw a mark, so the lookbehinds run a few dozen times per article
# instead of at every character.
_NOT_ABBREVIATION = (
    "(?i:"
    + "".join(f"(?<!\\b{re.escape(a)}\\.)" for a in sorted(_ABBREVIATIONS, key=len, reverse=True))
    + ")"
)


def _end_pattern(not_abbreviation: str) -> re.Pattern[str]:
    return re.compile(
        "(?:[!?…。][.!?…。]*|\\.[.!?…。]+|"
        + "\\."
        + not_abbreviation
        + "(?<!\\b[A-HJ-Z]\\.)(?!\\s+[a-z]))"
        + _CLOSERS
        + "(?=\\s|$)"
    )


_END = _end_pattern(_NOT_ABBREVIATION)
# Most periods follow a word that cannot end an abbreviation ("outlook.", "했다.", "5%."):
# their last two characters say so, and the pattern without the lookbehinds will do.
_END_PLAIN = _end_pattern("")
_ABBREVIATION_TAILS = frozenset(a[-2:] for a in _ABBREVIATIONS)
_TERMINALS = ".!?…。"
_HEADLINE_BREAK = re.compile(r"\s*(?:…+|\.{3,}|;|\s-\s|\s\|\s)\s*")


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


def split_sentences(text: str) -> list[Span]:
    """Split `text` into sentences; offsets are into `text`."""
    if _splitter is not None:
        return _splitter.split(text)
    return _split_python(text)


def _split_python(text: str) -> list[Span]:
    spans: list[Span] = []
    begin = 0
    consumed = 0
    full, plain, tails = _END.match, _END_PLAIN.match, _ABBREVIATION_TAILS
    new = tuple.__new__  # a NamedTuple's own __new__ is a Python call: this is not
    for i in _terminal_positions(text):
        if i < consumed:
            continue  # inside a run already taken ("?!", "...")
        m = (full if i > 1 and text[i - 2 : i].lower() in tails else plain)(text, i)
        if m is None:
            continue
        k = consumed = m.end()
        # The piece ends in punctuation, so only its start can hold whitespace.
        piece = text[begin:k]
        if piece[0].isspace():
            piece = piece.lstrip()
        spans.append(new(Span, (k - len(piece), k, piece)))
        begin = k
    _append(spans, text, begin, len(text))
    return spans


try:  # the same cuts in C, where setup.py could compile them
    from monitor.core._sentences_native import Splitter

    _splitter: Splitter | None = Splitter(_ABBREVIATIONS, Span)
except ImportError:  # pragma: no cover - the Python above does the same
    _splitter = None


def split_headline(title: str) -> list[Span]:
    """Split a headline into its clauses (`A…B`, `A; B`, `A - B`), offsets into `title`."""
    if _splitter is not None:
        return _splitter.headline(title)
    return _headline_python(title)


def _headline_python(title: str) -> list[Span]:
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
