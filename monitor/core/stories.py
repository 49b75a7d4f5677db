"""Story clustering: which articles are rewrites of one story.

Two titles tell the same story when, after stripping wire prefixes
([속보], [종합2보] ...) and Google News " - 매체명" suffixes and normalising,
the character bigrams of the shorter are at least 80 % contained in the longer,
they were seen within the story window, and they do not carry different
figures ("17% 급락" and "5% 급락" are two events). Across languages, where no
bigram is shared, titles stating the same precise percentage ("16.97%")
within six hours are one story. Pure: time is an argument.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain

from monitor.core.models import SourceRef

CONTAINMENT_THRESHOLD = 0.8
CROSS_LANGUAGE_WINDOW_S = 6 * 3600.0

# Bracketed wire tags at the start: [속보], (종합), 【단독】, <1보>, [종합2보], [특징주] ...
_TAG_WORDS = (
    r"(?:속보|단독|종합\d*보?|상보|특징주|공시|\d+보|긴급|업데이트|update|breaking|exclusive)"
)
_LEADING_TAG = re.compile(
    rf"^\s*(?:[\[\(【<〈《]\s*{_TAG_WORDS}\s*[\]\)】>〉》]|{_TAG_WORDS}\s*[:：])\s*", re.IGNORECASE
)
# A Google News copy ends in " - Outlet"; outlets are short and carry no sentence punctuation.
_OUTLET_SUFFIX = re.compile(r"\s+[-–—|]\s+([^-–—|]{1,30})$")
_FIGURE = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:[.,]\d+)*)(\s*(?:%|퍼센트|％))?")
_NOT_WORD = re.compile(r"[^0-9a-z\uac00-\ud7a3\u3131-\u318e\u4e00-\u9fff]+")


@dataclass(frozen=True, slots=True)
class Story:
    """A story alerted on: its key, normalised title, figures and every source seen."""

    key: str
    title_norm: str
    first_seen: datetime
    figures: tuple[str, ...] = ()
    sources: tuple[SourceRef, ...] = ()

    def with_source(self, ref: SourceRef) -> Story:
        """This story with `ref` added, unless that outlet link is already listed."""
        if any(_same_ref(ref, s) for s in self.sources):
            return self
        return Story(self.key, self.title_norm, self.first_seen, self.figures, (*self.sources, ref))


def _same_ref(a: SourceRef, b: SourceRef) -> bool:
    if a.link and b.link:
        return a.link == b.link
    return (a.feed, a.title) == (b.feed, b.title)


def strip_title(title: str) -> str:
    """The title without wire prefixes and a trailing ' - 매체명' outlet suffix."""
    text = unicodedata.normalize("NFKC", title).strip()
    while True:
        stripped = _LEADING_TAG.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    m = _OUTLET_SUFFIX.search(text)
    if m and len(text) - len(m.group(0)) >= 8 and not any(c in m.group(1) for c in ".,!?%…"):
        text = text[: m.start()]
    return text.strip()


def display_title(title: str) -> str:
    """The title as shown on an alert: wire tags off the front (urgency is shown apart)."""
    text = title.strip()
    while True:
        stripped = _LEADING_TAG.sub("", text, count=1)
        if stripped == text:
            return text
        text = stripped


def normalise_title(title: str) -> str:
    """Lower-case letters, digits and Hangul of the stripped title, nothing else."""
    return _NOT_WORD.sub("", strip_title(title).lower())


def extract_figures(title: str) -> tuple[str, ...]:
    """The numbers a stripped title states, sorted: '16.97%', '5.6', '3' ...

    Digits glued to letters on the left (H100, Q3) are names, not figures.
    """
    found = set()
    for m in _FIGURE.finditer(strip_title(title)):
        number = m.group(1).replace(",", "")
        found.add(number + ("%" if m.group(2) else ""))
    return tuple(sorted(found))


def bigrams(text: str) -> frozenset[str]:
    if len(text) < 2:
        return frozenset({text}) if text else frozenset()
    return frozenset(text[i : i + 2] for i in range(len(text) - 1))


def containment(a: str, b: str) -> float:
    """Share of the smaller bigram set found in the other; 0.0 for empty text."""
    ga, gb = bigrams(a), bigrams(b)
    if not ga or not gb:
        return 0.0
    return len(ga & gb) / min(len(ga), len(gb))


def figures_conflict(a: Sequence[str], b: Sequence[str]) -> bool:
    """Both titles state figures and they are not the same ones: different events."""
    return bool(a) and bool(b) and set(a) != set(b)


def same_story(
    title_norm: str,
    figures: Sequence[str],
    story: Story,
    threshold: float = CONTAINMENT_THRESHOLD,
) -> bool:
    if figures_conflict(figures, story.figures):
        return False
    return containment(title_norm, story.title_norm) >= threshold


def story_key(title_norm: str, figures: Sequence[str]) -> str:
    """A stable key for a new story, from its first normalised title and figures."""
    digest = hashlib.sha256(("|".join([title_norm, *figures])).encode("utf-8")).hexdigest()
    return f"story:{digest[:20]}"


def precise_percentages(figures: Iterable[str]) -> set[str]:
    """Percentages with decimals ('16.97%'): specific enough to name one event."""
    return {f for f in figures if f.endswith("%") and "." in f}


class TitleIndex:
    """The title bigrams of many stories, indexed, so that `find_story` over a window
    of thousands of stories counts each story's shared bigrams from posting lists
    instead of building every story's bigram set for every new article.

    Stories are known by key (a key always names the same normalised title). A
    story missing from the index is still compared, the slow way: the index only
    saves work, it never decides a match. Removed stories leave holes in the
    posting lists until they outnumber the live ones; then the lists are rebuilt.
    """

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}  # story key -> slot
        self._norms: list[str | None] = []  # slot -> normalised title, None once removed
        self._sizes = array("I")  # slot -> how many bigrams its title has
        # bigram -> slots, live or not: machine integers, half the bytes of a list's
        # pointers, for the tens of bigrams of each of thousands of titles
        self._postings: dict[str, array[int]] = {}
        self._dead = 0

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def keys(self) -> set[str]:
        return set(self._ids)

    def retain(self, stories: Mapping[str, Story]) -> None:
        """Hold exactly `stories` (by key): index the new ones, drop the rest. Set
        operations on the keys, so that a full window costs little when few change."""
        for key in self._ids.keys() - stories.keys():
            self.discard(key)
        for key in stories.keys() - self._ids.keys():
            self._insert(key, stories[key].title_norm)

    def add(self, story: Story) -> None:
        if story.key not in self._ids:
            self._insert(story.key, story.title_norm)

    def discard(self, key: str) -> None:
        slot = self._ids.pop(key, None)
        if slot is None:
            return
        self._norms[slot] = None
        self._dead += 1
        if self._dead > max(len(self._ids), 1000):
            self._rebuild()

    def shared(self, norm: str) -> tuple[int, dict[str, int], dict[int, int]]:
        """For title `norm`: its bigram count, the slots by story key, and the number
        of its bigrams each slot's title shares (slots sharing none are absent)."""
        grams = bigrams(norm)
        postings = self._postings
        counts = Counter(chain.from_iterable(postings.get(g, ()) for g in grams))
        return len(grams), self._ids, counts

    def size(self, slot: int) -> int:
        return self._sizes[slot]

    def _insert(self, key: str, norm: str) -> None:
        slot = len(self._norms)
        self._ids[key] = slot
        self._norms.append(norm)
        grams = bigrams(norm)
        self._sizes.append(len(grams))
        for g in grams:
            posting = self._postings.get(g)
            if posting is None:
                self._postings[g] = array("I", (slot,))
            else:
                posting.append(slot)

    def _rebuild(self) -> None:
        live = [(key, self._norms[slot]) for key, slot in self._ids.items()]
        self._ids, self._norms, self._postings, self._dead = {}, [], {}, 0
        self._sizes = array("I")
        for key, norm in live:
            assert norm is not None
            self._insert(key, norm)


def find_story(
    title: str,
    stories: Iterable[Story],
    now: datetime,
    window_s: float,
    threshold: float = CONTAINMENT_THRESHOLD,
    lang: str | None = None,
    index: TitleIndex | None = None,
) -> Story | None:
    """The best-matching story first seen within `window_s` before `now`, if any.

    Titles in another language share no bigrams, so with `lang` given a story
    carried only in other languages also matches when both titles state the
    same precise percentage ('16.97%') within CROSS_LANGUAGE_WINDOW_S.

    `index`, if given, should hold the stories (see TitleIndex); the result is the
    same with or without it, in the same order of preference.
    """
    norm = normalise_title(title)
    if not norm:
        return None
    figures = extract_figures(title)
    since = now - timedelta(seconds=window_s)
    pool = [s for s in stories if s.first_seen >= since]
    best = _best_match(norm, figures, pool, threshold, index)
    if best is not None:
        return best
    precise = precise_percentages(figures)
    if lang is None or not precise:
        return None
    recent = now - timedelta(seconds=min(window_s, CROSS_LANGUAGE_WINDOW_S))
    for story in pool:
        other_language = story.sources and all(ref.lang != lang for ref in story.sources)
        if other_language and story.first_seen >= recent and precise & set(story.figures):
            return story
    return None


def _best_match(
    norm: str,
    figures: Sequence[str],
    pool: Sequence[Story],
    threshold: float,
    index: TitleIndex | None,
) -> Story | None:
    """The story of `pool` whose title contains most of `norm` (at least
    `threshold`), the first of equals; None if none does."""
    if index is None or threshold <= 0:
        # Nothing indexed: every story is compared the slow way. (With no threshold a
        # story sharing no bigram can match, which the index cannot show.)
        index = TitleIndex()
    best: tuple[float, Story] | None = None
    size, slots, counts = index.shared(norm)
    for story in pool:
        slot = slots.get(story.key)
        if slot is None:  # not indexed: compare it the slow way
            if not same_story(norm, figures, story, threshold):
                continue
            score = containment(norm, story.title_norm)
        else:
            n = counts.get(slot)
            if not n or figures_conflict(figures, story.figures):
                continue
            score = n / min(size, index.size(slot))
            if score < threshold:
                continue
        if best is None or score > best[0]:
            best = (score, story)
    return best[1] if best else None


def new_story(title: str, now: datetime, source: SourceRef) -> Story:
    norm = normalise_title(title)
    figures = extract_figures(title)
    return Story(
        key=story_key(norm, figures),
        title_norm=norm,
        first_seen=now,
        figures=figures,
        sources=(source,),
    )
