"""Entity and term matching over Korean and English text.

Owns text normalisation and the one multi-pattern automaton built over every
alias, ticker, exclude form, context word and free rule term. A scan folds case,
runs the automaton once per field, and then checks each raw hit:

* Hangul on the alias's left edge needs the start of text or a non-Hangul
  character before it; anything may follow a Hangul edge (엔비디아의, 하이닉스株).
* An ASCII letter or digit on an edge needs a character that is not an ASCII
  letter or digit beyond it (H20 is not H200, AGI is not MAGIC, H100을 matches);
  a plural "s" after an ASCII alias is allowed (H100s, GPUs).
* A space inside an alias is optional in the text (범용 인공지능 / 범용인공지능):
  the automaton holds every spacing variant, so no space may appear elsewhere.
* Cased aliases and tickers must match the original case exactly.
* A hit covered by one of its entity's exclude forms (메타버스, Samsung
  Biologics) is dropped.
* A guarded alias counts only near one of its context words, and never in an
  article that contains one of its avoid words.

Texts must be normalised first (`normalize_text`: NFKC, single spaces); the
engine does that. The automaton comes from ahocorasick_rs, chosen by measurement
(see `benchmarks/engine.py`). Everything here is pure and immutable once built.

Where setup.py could compile it, the typed kernel `_matcher_native.pyx` walks the
automaton's matches and applies these checks (`Matcher.find_by_field` and
`Matcher.entities`); the Python below is its reference and runs otherwise.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import ahocorasick_rs

from monitor.core.models import Hit

try:  # the typed kernel of the scan, where setup.py could compile it
    from monitor.core import _matcher_native as _native
except ImportError:  # pragma: no cover - the Python below does the same
    _native = None  # type: ignore[assignment]

Field = Literal["title", "body"]
TermHit = tuple[Field, int, int]  # (field, start, end)

_WS = re.compile(r"\s+")
_PRINTABLE = bytes(range(0x20, 0x7F))  # the printable ASCII characters
_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_MAX_VARIANT_SPACES = 3  # aliases with more spaces get only the spaced and unspaced forms

# Pattern kinds and edge flags, packed into tuples: the scan loop is the hot path.
# A Hangul edge here means a precomposed syllable (가-힣); NFKC text has no others.
# _SURE is an alias hit that no exclude form can cover and no guard can reject;
# _WORD is a term that some guard needs (a near or avoid word), _TERM one only rules use.
_ALIAS, _TERM, _EXCLUDE, _SURE, _WORD = 0, 1, 2, 3, 4
_TERM_KINDS = frozenset((_TERM, _WORD))
_LEFT_HANGUL, _LEFT_ALNUM, _RIGHT_ALNUM = 1, 2, 4


def normalize_text(text: str) -> str:
    """NFKC (full-width to ASCII, compatibility forms), no-break spaces to
    spaces, whitespace runs collapsed to one space, ends stripped."""
    if not text:
        return ""
    # Cheap C-level tests first: most texts are already normal, single-spaced and
    # printable. str.isprintable has no ASCII fast path; deleting the printable bytes
    # from the encoded text and finding nothing left is several times quicker.
    if text.isascii():
        irregular = "  " in text or bool(text.encode("ascii").translate(None, _PRINTABLE))
    else:
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        irregular = "  " in text or not text.isprintable()
    if irregular:
        text = _WS.sub(" ", text)
    if text[0] == " " or text[-1] == " ":
        text = text.strip()
    return text


# The last two texts folded, each followed by its fold: the matcher and then the stance
# scan fold the same headline and body of an article. One tuple, replaced whole, so
# that threads sharing it find a text with its own fold or miss.
_folded: tuple[str, str, str, str] = ("", "", "", "")


def fold(text: str) -> str:
    """Lower-case `text` without changing its length (spans must stay valid)."""
    global _folded
    memo = _folded
    if text is memo[0]:
        return memo[1]
    if text is memo[2]:
        return memo[3]
    low = text.lower() if _native is None else _native.lower(text)
    if len(low) != len(text):
        # A few characters (e.g. 'İ') lower to two code points; keep those as they are.
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    _folded = (text, low, memo[0], memo[1])
    return low


def compact_key(text: str) -> str:
    """An alias folded with every space removed: the key free terms are known by."""
    return "".join(fold(normalize_text(text)).split())


def term_key(text: str) -> str:
    """The id of a free term or guard word."""
    return compact_key(text)


def is_hangul(ch: str) -> bool:
    o = ord(ch)
    return 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F


def spacing_variants(form: str) -> list[str]:
    """`form` with each of its spaces kept or dropped ("SK 하이닉스" -> both spellings)."""
    parts = form.split(" ")
    if len(parts) == 1:
        return [form]
    if len(parts) - 1 > _MAX_VARIANT_SPACES:
        return [form, "".join(parts)]
    out = []
    for seps in itertools.product((" ", ""), repeat=len(parts) - 1):
        out.append(parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=True)))
    return out


@dataclass(frozen=True, slots=True)
class Guard:
    """A context requirement shared by a group of aliases of one entity."""

    entity: str
    near: frozenset[str] = frozenset()  # term keys; empty means "anywhere"
    avoid: frozenset[str] = frozenset()  # term keys; any of them in the article vetoes
    window: int = 80

    @property
    def trivial(self) -> bool:
        return not (self.near or self.avoid)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What one article held: entity hits (after guards and excludes) and term hits."""

    hits: tuple[Hit, ...]  # without sentences; the engine adds those
    terms: Mapping[str, Sequence[TermHit]]

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


# A raw candidate: (start, end, entity, guard group, alias text)
_Cand = tuple[int, int, str, int, str]
Accepted = _Cand  # a candidate that passed every check
_Spans = dict[str, list[tuple[int, int]]]  # entity -> exclude spans in one field
# An accepted hit: (field, start, end, entity, alias)
Found = tuple[Field, int, int, str, str]


@dataclass(frozen=True)
class Matcher:
    """The compiled automaton plus the guards; build with `build_matcher`."""

    automaton: Any = field(repr=False)  # ahocorasick_rs.AhoCorasick over `keys`, or None
    groups: tuple[Guard, ...]
    alias_count: int
    pattern_count: int
    guarded: frozenset[int] = frozenset()  # groups with a context requirement
    keys: tuple[str, ...] = field(default=(), repr=False)  # folded patterns, by index
    payloads: tuple[tuple[Any, ...], ...] = field(default=(), repr=False)  # by pattern index
    # The same scan in the native kernel (where built); None runs the Python below.
    native: _native.Kernel | None = field(default=None, repr=False, compare=False)

    def find(self, title: str, body: str) -> tuple[list[Found], dict[str, list[TermHit]]]:
        """Accepted entity hits (title first, then by position) and term hits of
        normalised `title` and `body`."""
        in_title, in_body, terms = self.find_by_field(title, body)
        found: list[Found] = [("title", c[0], c[1], c[2], c[4]) for c in in_title]
        found += [("body", c[0], c[1], c[2], c[4]) for c in in_body]
        return found, terms

    def find_by_field(
        self, title: str, body: str
    ) -> tuple[list[Accepted], list[Accepted], dict[str, list[TermHit]]]:
        """`find` as two lists, the title's hits and the body's, each by position."""
        if self.native is not None:
            return self.native.find_by_field(title, body)
        terms: dict[str, list[TermHit]] = {}
        x_title: _Spans = {}
        x_body: _Spans = {}
        sure_title: list[_Cand] = []
        sure_body: list[_Cand] = []
        raw_title = self._raw(title, "title", terms, x_title, sure_title)
        raw_body = self._raw(body, "body", terms, x_body, sure_body)
        return (
            self._accept(raw_title, sure_title, "title", terms, x_title),
            self._accept(raw_body, sure_body, "body", terms, x_body),
            terms,
        )

    def scan(self, title: str, body: str) -> ScanResult:
        """`find` as Hit values (without sentences)."""
        found, terms = self.find(title, body)
        hits = tuple(Hit(e, alias, f, s, end) for f, s, end, e, alias in found)
        return ScanResult(hits, terms)

    def entities(self, title: str, body: str) -> tuple[str, ...]:
        """Only the entity ids: the same checks as `find`, without building hits."""
        if self.native is not None:
            return self.native.entities(title, body)
        terms: dict[str, list[TermHit]] = {}
        x_title: _Spans = {}
        x_body: _Spans = {}
        found: set[str] = set()
        raw_title = self._raw(title, "title", terms, x_title, None, found)
        raw_body = self._raw(body, "body", terms, x_body, None, found)
        self._check(raw_title, "title", terms, x_title, found)
        self._check(raw_body, "body", terms, x_body, found)
        return tuple(sorted(found))

    def _raw(  # noqa: C901 - one flat loop on purpose: the hot path (see benchmarks/engine.py)
        self,
        text: str,
        where: Field,
        terms: dict[str, list[TermHit]],
        excluded: _Spans,
        sure: list[_Cand] | None,
        found: set[str] | None = None,
    ) -> list[_Cand]:
        """Entity candidates whose edges and case hold and that a guard or exclude
        form may still reject. Hits that nothing can reject go to `sure` (or, with
        `found`, straight into it as entity ids, and terms that only rules use are
        skipped); term hits go to `terms`, exclude spans to `excluded`."""
        if not text or self.automaton is None:
            return []
        matches = self.automaton.find_matches_as_indexes(fold(text), overlapping=True)
        if not matches:
            return []
        n = len(text)
        alnum = _ASCII_ALNUM
        payloads = self.payloads
        out: list[_Cand] = []
        add = out.append
        add_sure = sure.append if sure is not None else None
        for idx, start, end in matches:
            flags, kind, owner, group, exact, alias, word, more = payloads[idx]
            if add_sure is None and kind == _TERM and not more:
                continue
            # Edge flags are the same for every record of a key: check them once.
            if flags:
                if start and flags & _LEFT_HANGUL and "가" <= text[start - 1] <= "힣":
                    continue
                if start and flags & _LEFT_ALNUM and text[start - 1] in alnum:
                    continue
                if (
                    end < n
                    and flags & _RIGHT_ALNUM
                    and text[end] in alnum
                    and (text[end] != "s" or (end + 1 < n and text[end + 1] in alnum))
                ):
                    continue  # a plural "s" may follow (H100s), other letters not (H200)
            # Most keys carry one record, unpacked in the payload (the common case is
            # written out inline); the others are in `more`.
            if exact is None or text[start:end] == exact:
                if kind == _SURE:
                    if add_sure is not None:
                        add_sure((start, end, owner, group, alias))
                    elif found is not None:
                        found.add(owner)
                elif kind == _ALIAS:
                    if found is None or owner not in found:
                        add((start, end, owner, group, alias))
                elif kind in _TERM_KINDS:
                    occ = terms.get(owner)
                    if occ is None:
                        terms[owner] = [(where, start, end)]
                    else:
                        occ.append((where, start, end))
                elif kind == _EXCLUDE:
                    excluded.setdefault(owner, []).append((start, end))
            if word is not None:  # the key is also a guard word or rule term
                occ = terms.get(word)
                if occ is None:
                    terms[word] = [(where, start, end)]
                else:
                    occ.append((where, start, end))
            if more:
                _more(more, text, where, start, end, out, terms, excluded, add_sure is not None)
        return out

    def _check(
        self,
        cands: list[_Cand],
        where: Field,
        terms: Mapping[str, list[TermHit]],
        excluded: _Spans,
        found: set[str] | None = None,
    ) -> list[_Cand]:
        """The candidates that no exclude form covers and whose guard holds. With
        `found`, only collect entity ids into it: one accepted hit per entity is
        enough, so the rest are not checked."""
        guarded = self.guarded
        groups = self.groups
        near_cache: dict[int, list[tuple[int, int]] | None] = {}
        kept: list[_Cand] = []
        for c in cands:
            start, end, entity, group, _ = c
            if found is not None and entity in found:
                continue
            if excluded:
                spans = excluded.get(entity)
                if spans and any(s <= start and end <= e for s, e in spans):
                    continue
            if group in guarded:
                if group not in near_cache:
                    near_cache[group] = _context(groups[group], where, terms, excluded)
                near = near_cache[group]
                if near is None:
                    continue  # an avoid word is in the article
                if near:
                    # A plain loop: a generator per candidate costs more than the test.
                    window = groups[group].window
                    for s, e in near:
                        if s - end <= window and start - e <= window:
                            break
                    else:
                        continue  # no near word within the window
            if found is not None:
                found.add(entity)
                continue
            kept.append(c)
        return kept

    def _accept(
        self,
        cands: list[_Cand],
        sure: list[_Cand],
        where: Field,
        terms: Mapping[str, list[TermHit]],
        excluded: _Spans,
    ) -> list[_Cand]:
        """The sure hits and the checked candidates, ordered by position, without
        same-entity hits nested in longer ones."""
        kept = self._check(cands, where, terms, excluded) if cands else []
        if sure:
            kept = sure + kept if kept else sure
        if len(kept) < 2:
            return kept
        # The automaton reports by end position: order by start, then drop a hit of
        # an entity nested in a longer hit of the same entity (하이닉스 in SK하이닉스).
        kept.sort()
        out = [kept[0]]
        for c in kept[1:]:
            prev = out[-1]
            if c[2] == prev[2] and c[1] <= prev[1]:
                continue
            if c[2] == prev[2] and c[0] == prev[0]:
                out[-1] = c  # same start, longer form
                continue
            out.append(c)
        return out


def _more(
    records: tuple[tuple[Any, ...], ...],
    text: str,
    where: Field,
    start: int,
    end: int,
    out: list[_Cand],
    terms: dict[str, list[TermHit]],
    excluded: _Spans,
    rule_terms: bool,
) -> None:
    """The second and later records of one automaton key."""
    for kind, owner, group, exact, alias in records:
        if exact is not None and text[start:end] != exact:
            continue
        if kind in (_ALIAS, _SURE):
            out.append((start, end, owner, group, alias))  # checked: cheap and rare
        elif kind == _WORD or (kind == _TERM and rule_terms):
            terms.setdefault(owner, []).append((where, start, end))
        elif kind == _EXCLUDE:
            excluded.setdefault(owner, []).append((start, end))


def _context(
    guard: Guard, where: Field, terms: Mapping[str, list[TermHit]], excluded: _Spans
) -> list[tuple[int, int]] | None:
    """Spans of the guard's near words in this field (empty list: no near words
    required); None when one of its avoid words is anywhere in the article. A near
    word inside one of the entity's exclude forms does not count ("invest in AI
    infrastructure stocks" is not spending on infrastructure)."""
    if guard.avoid and any(k in terms for k in guard.avoid):
        return None
    if not guard.near:
        return []
    spans = [
        (s, e)
        for key in (terms.keys() & guard.near if len(terms) < len(guard.near) else guard.near)
        for f, s, e in terms.get(key, ())
        if f == where
    ]
    cancelled = excluded.get(guard.entity)
    if cancelled:
        spans = [(s, e) for s, e in spans if not any(x <= s and e <= y for x, y in cancelled)]
    return spans or [(-(10**9), -(10**9))]  # required but absent: nothing is near


def _payload(key: str, records: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """What the matcher keeps for a key: (edge flags, first record...,
    term key, other records). An uncased term that shares its key with an alias
    rides along as the term key, so the common pair needs no second record."""
    word = None
    rest = list(records)
    terms = [r for r in rest if r[0] in _TERM_KINDS and r[3] is None]
    if terms and len(terms) < len(rest):
        word = terms[0][1]
        rest.remove(terms[0])
    first, *more = rest
    return (_edge_flags(key), *first, word, tuple(more))


def _edge_flags(form: str) -> int:
    flags = 0
    if form and "가" <= form[0] <= "힣":
        flags |= _LEFT_HANGUL
    if form and form[0] in _ASCII_ALNUM:
        flags |= _LEFT_ALNUM
    if form and form[-1] in _ASCII_ALNUM:
        flags |= _RIGHT_ALNUM
    return flags


def build_matcher(
    aliases: Sequence[AliasSpec],
    excludes: Mapping[str, Sequence[str]] | None = None,
    terms: Iterable[str] = (),
) -> Matcher:
    """Compile aliases (with their guards), per-entity exclude forms and free terms.

    Raises ValueError for an empty form.
    """
    by_key: dict[str, list[tuple[Any, ...]]] = {}
    guard_index: dict[Guard, int] = {}
    words: set[str] = set(terms)

    def add(kind: int, owner: str, form: str, cased: bool, group: int) -> None:
        norm = normalize_text(form)
        if not norm:
            raise ValueError(f"empty form {form!r} for {owner!r}")
        for variant in spacing_variants(norm):
            record = (kind, owner, group, variant if cased else None, variant)
            bucket = by_key.setdefault(fold(variant), [])
            if record not in bucket:
                bucket.append(record)

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
        add(_ALIAS, spec.entity, spec.text, spec.cased or spec.kind == "ticker", group)
        alias_count += 1
    for entity, forms in (excludes or {}).items():
        for form in forms:
            add(_EXCLUDE, entity, form, False, -1)
    guard_words = {k for g in guard_index for k in (*g.near, *g.avoid)}
    for word in words:
        key = term_key(word)
        add(_WORD if key in guard_words else _TERM, key, word, False, -1)

    groups = tuple(sorted(guard_index, key=guard_index.__getitem__))
    guarded = frozenset(i for i, g in enumerate(groups) if not g.trivial)
    folded_excludes = {
        e: [fold(normalize_text(f)) for f in fs] for e, fs in (excludes or {}).items()
    }
    for key, records in by_key.items():
        for i, (kind, owner, group, exact, form) in enumerate(records):
            if (
                kind == _ALIAS
                and group not in guarded
                and not any(key in x for x in folded_excludes.get(owner, ()))
            ):
                records[i] = (_SURE, owner, group, exact, form)

    keys = tuple(by_key)
    automaton = ahocorasick_rs.AhoCorasick(list(keys)) if keys else None
    payloads = tuple(_payload(key, by_key[key]) for key in keys)
    native = None
    if _native is not None:
        native = _native.Kernel(
            automaton,
            keys,
            payloads,
            groups,
            guarded,
            fold,
            (_ALIAS, _TERM, _EXCLUDE, _SURE, _WORD),
            (_LEFT_HANGUL, _LEFT_ALNUM, _RIGHT_ALNUM),
        )
    return Matcher(
        automaton=automaton,
        keys=keys,
        payloads=payloads,
        groups=groups,
        guarded=guarded,
        alias_count=alias_count,
        pattern_count=sum(len(r) for r in by_key.values()),
        native=native,
    )
