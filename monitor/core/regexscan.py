"""Leftmost regex search that skips ahead to where a match can start.

Python's `re` tries a match at every position unless the pattern begins with a
literal or a plain character set; a rule pattern such as `\\b\\d+%` or
`(?<![\\d.])[1-9]\\d?%` begins with an assertion, so the engine steps through
every character of a 2 KB article. `Searcher` works out from the parsed pattern
which characters a match can start with and searches one derived pattern, that
class followed by a lookbehind over the whole pattern looked ahead from the
character (`[\\d](?<=(?=PATTERN)(?s:.))`): `re` scans for the class at C speed and
tries the pattern only there, without returning to Python between tries. The
lookbehind still sees the text before the position, so lookbehinds and `\\b` behave
as in `search`; the full pattern is then matched once where the derived one
starts. The result is the same match `search` returns. Patterns it cannot reason
about (ones that can match the empty string, start with `.`, a negated set, a
back-reference or scoped flags) are searched plainly; one that cannot be wrapped
(a back-reference, inline global flags, verbose mode) steps through the class's
characters from Python instead.

Most rule patterns also hold a character without other cases that every match
contains (the `%` of `\\d+%`): a text without it is answered at once (`str.find`),
and when what a match consumes before it is known (digits, `.`, spaces), the search
starts at the run of such characters that ends at its first occurrence, as no match
can start earlier.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
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

# The C module behind `re`: which characters have other cases (as `re` decides it)
_sre_c: Any = _load("_sre")

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


def _consumed(op: Any, av: Any) -> list[str] | None:
    """The pieces (each a literal or a class, as written) that consume characters in
    this one; None when unknown. Each is kept whole: under IGNORECASE `re` treats a
    class as a unit, so one merged class need not match what its parts match."""
    if op is _c.LITERAL:
        return [re.escape(chr(av))]
    if op is _c.IN:
        items = [_class_item(iop, iav) for iop, iav in av]
        known = [i for i in items if i is not None]
        return ["[" + "".join(known) + "]"] if len(known) == len(items) else None
    if op in _ZERO_WIDTH:
        return []  # lookarounds read characters but consume none
    if op is _c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        return None if add_flags or del_flags else _consumed_seq(sub)
    if op is _c.BRANCH:
        frags: list[str] = []
        for alt in av[1]:
            got = _consumed_seq(alt)
            if got is None:
                return None
            frags += got
        return frags
    if op in _REPEATS:
        return _consumed_seq(av[2])
    if op is getattr(_c, "ATOMIC_GROUP", None):
        return _consumed_seq(av)
    return None


def _consumed_seq(items: Any) -> list[str] | None:
    frags: list[str] = []
    for op, av in items:
        got = _consumed(op, av)
        if got is None:
            return None
        frags += got
    return frags


def anchor(pattern: re.Pattern[str]) -> tuple[str, re.Pattern[str] | None] | None:
    """A character every match of `pattern` contains (a literal of its top level
    without other cases) and a one-character pattern matching every character a
    match can consume before it (one that never matches when there are none, None
    when that cannot be worked out); None when there is no such character."""
    if _sre is None or _sre_c is None or pattern.flags & re.LOCALE:
        return None  # pragma: no cover - see _load
    iscased = _sre_c.ascii_iscased if pattern.flags & re.ASCII else _sre_c.unicode_iscased
    try:
        items = list(_sre.parse(pattern.pattern, pattern.flags))
    except (re.error, AttributeError, TypeError, ValueError):  # pragma: no cover
        return None
    for k, (op, av) in enumerate(items):
        if op is _c.LITERAL and not (pattern.flags & re.IGNORECASE and iscased(av)):
            before = _consumed_seq(items[:k])
            if before is None:
                return chr(av), None
            flags = pattern.flags & (re.IGNORECASE | re.ASCII | re.UNICODE)
            source = "|".join(dict.fromkeys(before)) if before else "(?!)"
            return chr(av), re.compile(source, flags)
    return None


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


def skip_to_match(pattern: re.Pattern[str], first: re.Pattern[str]) -> re.Pattern[str] | None:
    """A pattern whose leftmost match, one character long, starts where the leftmost
    match of `pattern` starts; `first` is `first_chars(pattern)`. None when `pattern`
    cannot be wrapped so."""
    if pattern.flags & re.VERBOSE:
        return None  # a comment at the end of the source would swallow the wrapper
    # The lookbehind's body is one character wide: the lookahead inside it is
    # zero-width, so `re` accepts it, and the lookahead is free to run past it.
    source = first.pattern + "(?<=(?=" + pattern.pattern + ")(?s:.))"
    try:
        skip = re.compile(source, pattern.flags & ~re.DEBUG)
    except (re.error, ValueError):
        return None  # a back-reference in the lookbehind, inline global flags, ...
    return skip if skip.groups == pattern.groups else None


# How far `Searcher` walks back from the anchor over characters a match can consume
# before it; a longer run is searched from the start of the text.
_WALK = 64


@dataclass(frozen=True, slots=True)
class Searcher:
    """`search(text)` gives the same match as `pattern.search(text)`."""

    pattern: re.Pattern[str]
    first: re.Pattern[str] | None = field(default=None)
    skip: re.Pattern[str] | None = field(default=None)
    # `anchor(pattern)`, split: the character and the match of its run
    anchor: str | None = field(default=None)
    before: Callable[[str, int], re.Match[str] | None] | None = field(default=None)

    @classmethod
    def of(cls, pattern: re.Pattern[str]) -> Searcher:
        first = first_chars(pattern)
        skip = None if first is None else skip_to_match(pattern, first)
        got = anchor(pattern)
        char, before = got if got is not None else (None, None)
        return cls(pattern, first, skip, char, None if before is None else before.match)

    def search(self, text: str) -> re.Match[str] | None:
        pos = 0
        char = self.anchor
        if char is not None:
            # Every match contains `char`, and a match that starts before the first
            # one consumes only characters of `before` up to it: no match can start
            # before the run of those that ends there.
            at = text.find(char)
            if at < 0:
                return None
            before = self.before
            if before is not None:
                stop = max(0, at - _WALK)
                pos = at
                while pos > stop and before(text, pos - 1) is not None:
                    pos -= 1
                if pos == stop and pos > 0 and before(text, pos - 1) is not None:
                    pos = 0
        skip = self.skip
        if skip is not None:
            at_match = skip.search(text, pos)
            return None if at_match is None else self.pattern.match(text, at_match.start())
        first = self.first
        if first is None:
            return self.pattern.search(text, pos)
        match = self.pattern.match
        for start in first.finditer(text, pos):
            m = match(text, start.start())
            if m is not None:
                return m
        return None
