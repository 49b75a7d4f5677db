"""Entity and term matching over Korean and English text.

Owns text normalisation and the one multi-pattern automaton built over every
alias, ticker, exclude form, context word and free rule term. A scan folds case
and drops spaces (so an alias written with a space also matches without one),
runs the automaton once, and then checks each raw hit:

* Hangul on the alias's left edge needs the start of text or a non-Hangul
  character before it; anything may follow a Hangul edge (엔비디아의, 하이닉스株).
* An ASCII letter or digit on an edge needs a character that is not an ASCII
  letter or digit beyond it (H20 is not H200, AGI is not MAGIC, H100을 matches);
  a plural "s" after an ASCII alias is allowed (H100s, GPUs).
* Spaces inside the text may only fall where the alias itself had a space.
* Cased aliases and tickers must match the original case exactly.
* A hit covered by one of its exclude forms (메타버스, Samsung Biologics) is dropped.
* A guarded alias counts only near one of its context words, and never in an
  article that contains one of its avoid words.

The automaton comes from pyahocorasick (chosen by measurement; see
`benchmarks/engine.py`). Everything here is pure and immutable once built.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Literal

import ahocorasick

Field = Literal["title", "body"]
PatternKind = Literal["alias", "ticker", "exclude", "near", "avoid", "term"]

_WS = re.compile(r"\s+")
# A sentence ends at . ! ? or an ellipsis followed by space, but not after an
# initial or a common abbreviation (U.S. export rules, Mr. Kim, vs. rivals).
_SENTENCE_END = re.compile(
    r"(?<![A-Z]\.[A-Z]\.)(?<!\s[A-Z]\.)(?<!\b(?:Mr|Ms|Dr|vs|No|Co|St)\.)"
    r"(?<=[.!?。…])[\"'”’)\]]*\s+"
)


def normalize_text(text: str) -> str:
    """NFKC (full-width to ASCII, compatibility forms), no-break spaces to
    spaces, whitespace runs collapsed to one space, ends stripped."""
    if not text:
        return ""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return _WS.sub(" ", text).strip()


def fold(text: str) -> str:
    """Lower-case `text` without changing its length (spans must stay valid)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    # A few characters (e.g. 'İ') lower to two code points; keep those as they are.
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def compact_key(text: str) -> str:
    """The automaton key of an alias: folded, every space removed."""
    return "".join(fold(normalize_text(text)).split())


def is_hangul(ch: str) -> bool:
    o = ord(ch)
    return 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


@dataclass(frozen=True, slots=True)
class Pattern:
    """One form the automaton looks for, and what a hit on it means.

    `owner` is an entity id (alias, ticker, exclude), a guard group key (near,
    avoid) or a term key; `group` says which guard applies to an alias hit.
    """

    kind: PatternKind
    owner: str
    text: str  # the form as written in the rule file
    cased: bool = False
    group: int = -1  # index into Matcher.groups for alias and ticker patterns
    gaps: frozenset[int] = frozenset()  # compact offsets where a space may fall
    left_hangul: bool = False
    left_alnum: bool = False
    right_alnum: bool = False
    compact: str = ""  # the form without spaces, original case (for cased checks)


@dataclass(frozen=True, slots=True)
class Guard:
    """A context requirement shared by a group of aliases of one entity."""

    entity: str
    near: frozenset[str] = frozenset()  # term keys; empty means "anywhere"
    avoid: frozenset[str] = frozenset()  # term keys; any of them in the article vetoes
    window: int = 80


@dataclass(frozen=True, slots=True)
class RawHit:
    """A boundary-checked occurrence of a pattern in one field."""

    pattern: Pattern
    field: Field
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class EntityHit:
    entity: str
    alias: str
    field: Field
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What one article held: entity hits (after guards and excludes) and term hits."""

    hits: tuple[EntityHit, ...]
    terms: Mapping[str, tuple[RawHit, ...]]

    def entities(self) -> tuple[str, ...]:
        return tuple(sorted({h.entity for h in self.hits}))


@dataclass(frozen=True, slots=True)
class AliasSpec:
    """Input to the matcher builder: one alias form of one entity."""

    entity: str
    text: str
    kind: Literal["alias", "ticker"] = "alias"
    cased: bool = False
    near: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    window: int = 80


@dataclass(frozen=True)
class Matcher:
    """The compiled automaton plus the guards; build with `build_matcher`."""

    automaton: Any = field(repr=False)
    groups: tuple[Guard, ...]
    alias_count: int
    pattern_count: int

    def scan(self, title: str, body: str) -> ScanResult:
        """Find every entity and term in normalised `title` and `body`."""
        raw = _scan_field(self.automaton, title, "title") + _scan_field(
            self.automaton, body, "body"
        )
        return _resolve(raw, self.groups)


def term_key(text: str) -> str:
    """The owner id of a free term or guard word: its compact form."""
    return compact_key(text)


def _make_pattern(
    kind: PatternKind, owner: str, text: str, *, cased: bool = False, group: int = -1
) -> Pattern:
    norm = normalize_text(text)
    gaps: set[int] = set()
    pos = 0
    for ch in norm:
        if ch == " ":
            gaps.add(pos)
        else:
            pos += 1
    compact = norm.replace(" ", "")
    return Pattern(
        kind=kind,
        owner=owner,
        text=text,
        cased=cased,
        group=group,
        gaps=frozenset(gaps),
        left_hangul=bool(compact) and is_hangul(compact[0]),
        left_alnum=bool(compact) and _is_ascii_alnum(compact[0]),
        right_alnum=bool(compact) and _is_ascii_alnum(compact[-1]),
        compact=compact,
    )


def build_matcher(
    aliases: Sequence[AliasSpec],
    excludes: Mapping[str, Sequence[str]] | None = None,
    terms: Iterable[str] = (),
) -> Matcher:
    """Compile aliases (with their guards), per-entity exclude forms and free terms.

    Raises ValueError for an empty form.
    """
    by_key: dict[str, list[Pattern]] = {}
    guard_index: dict[Guard, int] = {}
    words: set[str] = set(terms)

    def add(key: str, pattern: Pattern) -> None:
        if not key:
            raise ValueError(f"empty form {pattern.text!r} for {pattern.owner!r}")
        bucket = by_key.setdefault(key, [])
        if pattern not in bucket:
            bucket.append(pattern)

    alias_count = 0
    for spec in aliases:
        guard = Guard(
            entity=spec.entity,
            near=frozenset(term_key(w) for w in spec.near),
            avoid=frozenset(term_key(w) for w in spec.avoid),
            window=spec.window,
        )
        words.update(spec.near)
        words.update(spec.avoid)
        group = guard_index.setdefault(guard, len(guard_index))
        cased = spec.cased or spec.kind == "ticker"
        add(
            compact_key(spec.text),
            _make_pattern(spec.kind, spec.entity, spec.text, cased=cased, group=group),
        )
        alias_count += 1
    for entity, forms in (excludes or {}).items():
        for form in forms:
            add(compact_key(form), _make_pattern("exclude", entity, form))
    for word in words:
        add(term_key(word), _make_pattern("term", term_key(word), word))

    automaton = ahocorasick.Automaton()
    for key, patterns in by_key.items():
        automaton.add_word(key, (len(key), tuple(patterns)))
    if by_key:
        automaton.make_automaton()
    groups = tuple(sorted(guard_index, key=guard_index.__getitem__))
    return Matcher(
        automaton=automaton if by_key else None,
        groups=groups,
        alias_count=alias_count,
        pattern_count=sum(len(p) for p in by_key.values()),
    )


def _scan_field(automaton: Any, text: str, where: Field) -> list[RawHit]:
    """Run the automaton over one field and keep the hits whose edges and spacing hold."""
    if not text or automaton is None:
        return []
    folded = fold(text)
    parts = folded.split(" ")
    compact = "".join(parts)
    # ends[i] = compact offset just past part i; part i is preceded by i spaces.
    ends = list(accumulate(map(len, parts)))
    out: list[RawHit] = []
    for last, (length, patterns) in automaton.iter(compact):
        first = last - length + 1
        i0 = bisect.bisect_right(ends, first)
        i1 = bisect.bisect_right(ends, last)
        start = first + i0
        end = last + i1 + 1
        inner = range(i0, i1)
        for p in patterns:
            # Spaces inside the match must each sit where the form had one.
            if (
                i1 != i0
                and p.kind != "exclude"
                and not all(ends[i] - first in p.gaps for i in inner)
            ):
                continue
            if not _edges_ok(p, text, start, end):
                continue
            out.append(RawHit(p, where, start, end))
    return out


def _edges_ok(p: Pattern, text: str, start: int, end: int) -> bool:
    if p.left_hangul and start > 0 and is_hangul(text[start - 1]):
        return False
    if p.left_alnum and start > 0 and _is_ascii_alnum(text[start - 1]):
        return False
    n = len(text)
    # A plural "s" may follow an ASCII edge (H100s, GPUs); other letters or digits not (H200).
    if (
        p.right_alnum
        and end < n
        and _is_ascii_alnum(text[end])
        and (text[end] != "s" or (end + 1 < n and _is_ascii_alnum(text[end + 1])))
    ):
        return False
    return not (p.cased and text[start:end].replace(" ", "") != p.compact)


def _resolve(raw: list[RawHit], groups: tuple[Guard, ...]) -> ScanResult:
    """Apply excludes and guards; split entity hits from term hits."""
    terms: dict[str, list[RawHit]] = {}
    excluded: list[RawHit] = []
    candidates: list[RawHit] = []
    for h in raw:
        kind = h.pattern.kind
        if kind == "term":
            terms.setdefault(h.pattern.owner, []).append(h)
        elif kind == "exclude":
            excluded.append(h)
        else:
            candidates.append(h)
    hits: list[EntityHit] = []
    for h in candidates:
        p = h.pattern
        if excluded and any(
            x.pattern.owner == p.owner
            and x.field == h.field
            and x.start <= h.start
            and h.end <= x.end
            for x in excluded
        ):
            continue
        guard = groups[p.group]
        if guard.avoid and any(k in terms for k in guard.avoid):
            continue
        if guard.near and not _near(h, guard, terms):
            continue
        hits.append(EntityHit(p.owner, p.text, h.field, h.start, h.end))
    hits.sort(key=lambda e: (e.field != "title", e.start, -e.end))
    return ScanResult(
        hits=_dedupe(hits),
        terms={k: tuple(v) for k, v in terms.items()},
    )


def _near(hit: RawHit, guard: Guard, terms: Mapping[str, list[RawHit]]) -> bool:
    for key in guard.near:
        for t in terms.get(key, ()):
            if t.field != hit.field:
                continue
            gap = max(t.start - hit.end, hit.start - t.end, 0)
            if gap <= guard.window:
                return True
    return False


def _dedupe(hits: list[EntityHit]) -> tuple[EntityHit, ...]:
    """Drop a hit of an entity nested inside a longer hit of the same entity."""
    out: list[EntityHit] = []
    for h in hits:
        if out:
            prev = out[-1]
            if (
                prev.entity == h.entity
                and prev.field == h.field
                and prev.start <= h.start
                and h.end <= prev.end
            ):
                continue
        out.append(h)
    return tuple(out)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence boundaries of `text` as (start, end) spans."""
    spans: list[tuple[int, int]] = []
    left = 0
    for m in _SENTENCE_END.finditer(text):
        if m.start() > left:
            spans.append((left, m.start()))
        left = m.end()
    if left < len(text):
        spans.append((left, len(text)))
    return spans
