"""Leftmost regex search that skips ahead to where a match can start.

Python's `re` tries a match at every position unless the pattern begins with a
literal or a plain character set; a rule pattern such as `\\b\\d+%` or
`(?<![\\d.])[1-9]\\d?%` begins with an assertion, so the engine steps through
every character of a 2 KB article. `Searcher` works out from the parsed pattern
which characters a match can start with, jumps between those with a one-class
pattern (which `re` scans at C speed), and tries the full pattern only there,
anchored with `match` (which still sees the text before the position, so
lookbehinds and `\\b` behave as in `search`). The result is the same match
`search` returns. Patterns it cannot reason about (ones that can match the empty
string, start with `.`, a negated set, a back-reference or scoped flags) are
searched plainly.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any


def _load(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - private to `re`; without it, plain search
        return None


# The parser behind `re` (private to it): if a later Python moves or reshapes it,
# every pattern is simply searched plainly.
_sre: Any = _load("re._parser")
_c: Any = _load("re._constants")
_CATEGORIES: dict[Any, str] = {}
_ZERO_WIDTH: tuple[Any, ...] = ()
_REPEATS: tuple[Any, ...] = ()
if _sre is not None and _c is not None:
    _CATEGORIES = {
        _c.CATEGORY_DIGIT: r"\d",
        _c.CATEGORY_WORD: r"\w",
        _c.CATEGORY_SPACE: r"\s",
    }
    _ZERO_WIDTH = (_c.AT, _c.ASSERT, _c.ASSERT_NOT)
    _REPEATS = tuple(
        getattr(_c, name)
        for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
        if hasattr(_c, name)
    )

# (class fragments a match may start with, whether the piece can match empty),
# or None when the piece is beyond this analysis
_First = tuple[list[str], bool] | None


def _class_item(op: Any, av: Any) -> str | None:
    if op is _c.LITERAL:
        return re.escape(chr(av))
    if op is _c.RANGE:
        return re.escape(chr(av[0])) + "-" + re.escape(chr(av[1]))
    if op is _c.CATEGORY:
        return _CATEGORIES.get(av)
    return None  # a negation or a negated category


def _one(op: Any, av: Any) -> _First:
    if op is _c.LITERAL:
        return [re.escape(chr(av))], False
    if op is _c.IN:
        items = [_class_item(iop, iav) for iop, iav in av]
        known = [i for i in items if i is not None]
        return (known, False) if len(known) == len(items) else None
    if op in _ZERO_WIDTH:
        return [], True
    if op is _c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        return None if add_flags or del_flags else _seq(sub)
    if op is _c.BRANCH:
        frags: list[str] = []
        nullable = False
        for alt in av[1]:
            got = _seq(alt)
            if got is None:
                return None
            frags += got[0]
            nullable = nullable or got[1]
        return frags, nullable
    if op in _REPEATS:
        low, _high, sub = av
        got = _seq(sub)
        return None if got is None else (got[0], got[1] or low == 0)
    if op is getattr(_c, "ATOMIC_GROUP", None):
        return _seq(av)
    return None


def _seq(items: Any) -> _First:
    frags: list[str] = []
    for op, av in items:
        got = _one(op, av)
        if got is None:
            return None
        frags += got[0]
        if not got[1]:
            return frags, False
    return frags, True


def first_chars(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """A one-class pattern matching every character a match of `pattern` can start
    with; None when that cannot be worked out or the pattern can match empty."""
    if _sre is None or not _ZERO_WIDTH:
        return None  # pragma: no cover - see _load
    try:
        got = _seq(_sre.parse(pattern.pattern, pattern.flags))
    except (re.error, AttributeError, TypeError, ValueError):  # pragma: no cover
        return None  # a parse tree of a shape this analysis does not know
    if got is None or got[1] or not got[0]:
        return None
    flags = pattern.flags & (re.IGNORECASE | re.ASCII | re.UNICODE)
    return re.compile("[" + "".join(dict.fromkeys(got[0])) + "]", flags)


@dataclass(frozen=True, slots=True)
class Searcher:
    """`search(text)` gives the same match as `pattern.search(text)`."""

    pattern: re.Pattern[str]
    first: re.Pattern[str] | None = field(default=None)

    @classmethod
    def of(cls, pattern: re.Pattern[str]) -> Searcher:
        return cls(pattern, first_chars(pattern))

    def search(self, text: str) -> re.Match[str] | None:
        first = self.first
        if first is None:
            return self.pattern.search(text)
        match = self.pattern.match
        for start in first.finditer(text):
            m = match(text, start.start())
            if m is not None:
                return m
        return None
