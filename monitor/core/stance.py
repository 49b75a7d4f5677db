"""Stance toward one target entity: bullish, bearish, mixed or neutral, with evidence.

Contract used by the engine (`monitor.core.engine`):

    assess_all(article, targets, hits, lexicon, thresholds, sentences) -> {target: Stance}

`hits` are the entity hits of the whole article (any entity); `lexicon` is the
compiled cue lexicon from `rules/lexicon/*.toml` (`compile_lexicon`); `sentences`
(optional) are the body's sentences if the caller has split it already.
`assess` and `assess_detailed` (with the weighed cues) judge one target.

How a stance is reached:
1. The headline is cut into clauses (`A…B`, `A; B`), the body into sentences,
   and both into clauses at boundary words (지만, 반면, but, while, as).
2. One Aho-Corasick pass per text finds every lexicon term; the engine's entity
   hits become mention tokens in the clauses they fall in.
3. Cues are phrases (`어닝 쇼크`, `beat estimates`) and subject x predicate pairs
   in one clause (`{수요} x {증가}`, `{주가, @target} x {급락}`).
4. Each cue is weighed: negation flips it (`줄이지 않겠다`, `did not fall`); a
   clause that declares a claim false flips it (`오해`, `dismissing speculation`);
   hedges, attribution and headline questions weigh it down; the headline weighs
   it up.
5. Steps 1-4 do not depend on the target, so they run once per article for all
   of its targets; for each target only attribution remains: a cue about
   the target (or its products, or its buyers' spending) counts fully, one only
   about another company counts less.
6. Debate markers (`"A" vs "B"` headlines, `analysts split`, `엇갈`) and headline
   questions are evidence for `mixed`; with both sides present they decide it. A
   report of the target's own share-price move decides the direction otherwise.

Where setup.py could compile it, the typed kernel `_stance_native.pyx` does the scan,
the clause cuts and records (steps 1-4) and the weighing of step 5 on flat integer
arrays; the Python below (`_python_records`, `_tally`) is the reference it must match
exactly (tests/test_compiled_stance.py) and runs wherever the kernel is not built.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal, NamedTuple

from monitor.core.errors import RuleError
from monitor.core.lexicon import (
    COMPANY_GROUP,
    DRIVER_GROUP,
    MENTION_GROUP,
    TARGET_GROUP,
    ClauseIds,
    CompiledLanguage,
    EntityRoles,
    TermMatch,
    Weights,
    compile_language,
    load_documents,
    scan_text,
)
from monitor.core.models import Article, Hit, Stance, StanceLabel
from monitor.core.sentences import Span, split_headline, split_sentences
from monitor.core.slots import fast_maker as maker

try:  # the typed kernel of the clause analysis, where setup.py could compile it
    from monitor.core import _stance_native as _native
except ImportError:  # pragma: no cover - the Python below does the same
    _native = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class StanceThresholds:
    """Score cut-offs (config `[rules]` bullish_threshold, bearish_threshold, mixed_min_each)."""

    bullish: float = 0.2
    bearish: float = -0.2
    mixed_min_each: float = 0.25  # with a debate marker: the weaker side's share of evidence


# What an entity mention is to a target: the target itself (or one of its products),
# a driver of its demand (a hyperscaler), or another company.
_TARGET, _DRIVER, _COMPANY = 1, 2, 3


@dataclass(frozen=True, slots=True)
class _RoleIndex:
    """The entity roles as the per-target step reads them."""

    base: Mapping[str, int]  # entity -> _DRIVER or _COMPANY, unless it is the target's own
    products: Mapping[str, str]  # product id -> maker id
    known: frozenset[str]  # entities whose mentions can be someone's news
    owned: dict[str, frozenset[str]]  # memo: target -> the target and its products

    @classmethod
    def of(cls, roles: EntityRoles) -> _RoleIndex:
        base = dict.fromkeys((*roles.companies, *roles.products), _COMPANY)
        base.update(dict.fromkeys(roles.drivers, _DRIVER))
        known = frozenset((*roles.products, *roles.drivers, *roles.companies))
        return cls(base, dict(roles.products), known, {})

    def own(self, target: str) -> frozenset[str]:
        """`target` and the products it makes: mentions that are the target's news."""
        found = self.owned.get(target)
        if found is None:
            found = frozenset((target, *(p for p, m in self.products.items() if m == target)))
            self.owned[target] = found
        return found


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Compiled cue lexicon: one matcher per language plus the shared weights."""

    languages: Mapping[str, CompiledLanguage] = field(default_factory=dict)
    weights: Weights = field(default_factory=Weights)
    roles: EntityRoles = field(default_factory=EntityRoles)
    index: _RoleIndex = field(init=False, compare=False, repr=False)
    # language -> its typed form for the native kernel (where it is built)
    plans: Mapping[str, Any] = field(init=False, compare=False, repr=False)
    weighing: Any = field(init=False, compare=False, repr=False)  # the kernel's, for _judge

    def __post_init__(self) -> None:
        index = _RoleIndex.of(self.roles)
        object.__setattr__(self, "index", index)
        plans = {}
        weighing = None
        if _native is not None:
            for code, lang in self.languages.items():
                plans[code] = _native.Plan(lang, self.weights, _Record, _COMPANY, _DRIVER)
            weighing = _native.Weighing(
                index,
                self.weights,
                Cue,
                (_TARGET, _DRIVER, _COMPANY),
                (TARGET_GROUP, DRIVER_GROUP, COMPANY_GROUP),
            )
        object.__setattr__(self, "plans", plans)
        object.__setattr__(self, "weighing", weighing)


def compile_lexicon(docs: Mapping[str, Mapping[str, Any]]) -> Lexicon:
    """Build a Lexicon from parsed lexicon TOML documents keyed by their file path.

    Raises RuleError naming the file (and cue) for anything invalid.
    """
    common, langs = load_documents(docs)
    compiled = {lang: compile_language(lang, files) for lang, files in langs.items()}
    for lang, files in langs.items():
        if not compiled[lang].pairs_by_predicate and not compiled[lang].phrases:
            raise RuleError(f"the {lang!r} lexicon defines no cues", path=files[0][0])
    return Lexicon(languages=compiled, weights=common.weights, roles=common.entities)


class Cue(NamedTuple):
    """One piece of evidence, as weighed."""

    cue_id: str
    field: Literal["title", "body"]
    sentence: int  # index into the field's sentences (title: 0)
    value: float  # signed contribution; > 0 bullish
    negated: bool = False
    refuted: bool = False


@dataclass(frozen=True, slots=True)
class StanceReport:
    """A stance with the cues and debate evidence behind it (for `monitor explain`)."""

    stance: Stance
    cues: tuple[Cue, ...]
    debate: float


# ---------------------------------------------------------------------------
# the target-independent part of the analysis, shared by every target


@dataclass(frozen=True, slots=True)
class _Text:
    """One scanned field (headline or body): its terms, sentences and clause cuts."""

    text: str
    tokens: tuple[TermMatch, ...]
    sentences: tuple[Span, ...]
    sentence_starts: tuple[int, ...]
    cuts: tuple[int, ...]  # clause starts (every sentence start among them), then len(text)
    cue_tokens: tuple[int, ...]  # indexes of tokens that can complete a cue
    specials: tuple[int, ...]  # indexes of tokens of the article-level markers
    questions: tuple[Span, ...] = ()  # headline parts that ask a question


_new_text = maker(_Text)


@dataclass(frozen=True, slots=True)
class _Scanned:
    lang: CompiledLanguage
    title: _Text
    body: _Text


_MIN_CLAUSE = 16  # characters: a comma sooner than this sets off a topic or a list item


def _between_digits(text: str, i: int) -> bool:
    return 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()


def _scan_text(
    lang: CompiledLanguage,
    text: str,
    spans: Sequence[Span],
    parts: Sequence[Span] = (),
    questions: tuple[Span, ...] = (),
) -> _Text:
    """Scan `text`; `spans` are its sentences, `parts` extra clause starts (headline parts)."""
    found = scan_text(lang, text)
    tokens = found.tokens
    sentence_starts = tuple([s.start for s in spans])
    cut_set = set(sentence_starts)
    for p in parts:
        cut_set.add(p.start)
    last_cut = 0
    si = 0
    n_sentences = len(sentence_starts)
    for t in found.boundaries:
        at = t.start
        while si < n_sentences and sentence_starts[si] <= at:
            last_cut = max(last_cut, sentence_starts[si])
            si += 1
        if (
            text[at] == ","
            and t.end == at + 1
            and (
                # "1,000" is a number; "엔비디아, 장중 7% 반등" and "Meta, Microsoft and
                # Google" set off a topic or a list item, not a clause.
                _between_digits(text, at) or at - last_cut < _MIN_CLAUSE
            )
        ):
            continue
        cut_set.add(at)
        last_cut = at
    cut_set.discard(len(text))
    cut_set.add(0)
    cuts = sorted(cut_set)
    cuts.append(len(text))
    return _new_text(
        text,
        tuple(tokens),
        tuple(spans),
        sentence_starts,
        tuple(cuts),
        tuple(found.cues),
        tuple(found.specials),
        questions,
    )


_CLOSERS = "\"'”’」』)]. "


def _asks(part: str, endings: tuple[str, ...]) -> bool:
    """Whether a headline part is a question: a `?`, or a question ending (`~일까`)."""
    if "?" in part:
        return True
    # str.endswith takes a tuple; "?" among the endings was answered above
    return part.rstrip(_CLOSERS).lower().endswith(endings)


def _choose_language(article: Article, lexicon: Lexicon) -> CompiledLanguage | None:
    langs = lexicon.languages
    if article.lang in langs:
        return langs[article.lang]
    return next(iter(langs.values()), None)


def _split_article(
    article: Article, lang: CompiledLanguage, sentences: Sequence[Span] | None
) -> tuple[str, list[Span], list[Span], tuple[Span, ...], str, Sequence[Span]]:
    """The headline (whole, in parts, and the parts that ask a question) and the body
    with its sentences (`sentences` if the caller has them already)."""
    title = article.title
    title_spans = [Span(0, len(title), title)] if title else []
    parts = split_headline(title)
    questions = tuple([p for p in parts if _asks(p.text, lang.question_endings)])
    text = article.text
    if sentences is None:
        sentences = split_sentences(text)
    return title, title_spans, parts, questions, text, sentences


def _scan_article(
    article: Article, lang: CompiledLanguage, sentences: Sequence[Span] | None
) -> _Scanned:
    """`sentences` are those of `article.text` if the caller has them already."""
    title, title_spans, parts, questions, text, sentences = _split_article(article, lang, sentences)
    return _Scanned(
        lang,
        _scan_text(lang, title, title_spans, parts, questions),
        _scan_text(lang, text, sentences),
    )


def _sentence_marks(t: _Text, ids: ClauseIds) -> tuple[frozenset[int], frozenset[int]]:
    """The sentences that attribute a claim, and those about supplying."""
    attributed: set[int] = set()
    supplied: set[int] = set()
    for k in t.specials:
        groups = t.tokens[k].groups
        if ids.attribution in groups:
            attributed.add(_sentence_index(t, t.tokens[k].start))
        if ids.supplier in groups:
            supplied.add(_sentence_index(t, t.tokens[k].start))
    return frozenset(attributed), frozenset(supplied)


def _sentence_index(t: _Text, pos: int) -> int:
    return max(0, bisect_right(t.sentence_starts, pos) - 1)


# ---------------------------------------------------------------------------
# the target-dependent part
# ---------------------------------------------------------------------------
# cues found once per article; only "whose news is it" depends on the target


_KIND_NAME = {_TARGET: TARGET_GROUP, _DRIVER: DRIVER_GROUP, _COMPANY: COMPANY_GROUP}
_MENTION = MENTION_GROUP
_MENTION_GROUPS = (MENTION_GROUP,)


def _locate(hit: Hit, text: str) -> tuple[int, int] | None:
    if 0 <= hit.start < hit.end <= len(text):
        return hit.start, hit.end
    if hit.alias:
        i = text.lower().find(hit.alias.lower())
        if i >= 0:
            return i, i + len(hit.alias)
    return None


# One entity mention in a field: (start, end, entity). A plain tuple, not a NamedTuple:
# indexing a tuple subclass goes through its __getitem__, several times the cost.
_Mention = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class _Mentions:
    items: tuple[_Mention, ...]  # sorted by start
    starts: tuple[int, ...]

    def between(self, start: int, end: int) -> tuple[_Mention, ...]:
        return self.items[bisect_left(self.starts, start) : bisect_left(self.starts, end)]


_new_mentions = maker(_Mentions)
_start_of = itemgetter(0)  # a _Mention's start


def _mentions(article: Article, hits: Sequence[Hit], known: frozenset[str]) -> dict[str, _Mentions]:
    """Mentions of entities that can be someone's news (companies, their products)."""
    title, text = article.title, article.text
    n_title, n_text = len(title), len(text)
    in_title: list[_Mention] = []
    in_body: list[_Mention] = []
    for hit in hits:
        entity = hit.entity
        if entity not in known:
            continue
        start, end = hit.start, hit.end
        if hit.field == "title":
            if not 0 <= start < end <= n_title:
                where = _locate(hit, title)
                if where is None:
                    continue
                start, end = where
            in_title.append((start, end, entity))
        else:
            if not 0 <= start < end <= n_text:
                where = _locate(hit, text)
                if where is None:
                    continue
                start, end = where
            in_body.append((start, end, entity))
    return _by_field(in_title, in_body)


def _by_field(in_title: list[_Mention], in_body: list[_Mention]) -> dict[str, _Mentions]:
    """Each field's mentions ordered by start (stable: mentions at one start keep the
    hits' order)."""
    in_title.sort(key=_start_of)
    in_body.sort(key=_start_of)
    return {
        "title": _new_mentions(tuple(in_title), tuple([m[0] for m in in_title])),
        "body": _new_mentions(tuple(in_body), tuple([m[0] for m in in_body])),
    }


# The matcher's accepted hits of the headline and of the body, each in position order:
# (start, end, entity, ...) tuples, as `Matcher.find_by_field` gives them.
Matched = tuple[Sequence[tuple[Any, ...]], Sequence[tuple[Any, ...]]]


def _matched_mentions(matched: Matched, known: frozenset[str]) -> dict[str, _Mentions]:
    """`_mentions` read from the matcher's hits (the engine has them): the same
    mentions, without going through Hit values."""
    in_title = [(c[0], c[1], c[2]) for c in matched[0] if c[2] in known]
    in_body = [(c[0], c[1], c[2]) for c in matched[1] if c[2] in known]
    return _by_field(in_title, in_body)  # in order already; sorted as `_mentions` sorts


_new_tuple = tuple.__new__  # builds a NamedTuple without its Python-level __new__


class _Record(NamedTuple):
    """One cue as found, weighed for everything except whose news it is."""

    field: Literal["title", "body"]
    sentence: int
    cue_id: str
    base: float  # signed value before attribution to the target
    scope: str
    subject_entity: str | None  # the pair's subject is this entity's mention
    subject_actor: int  # the subject is a lexicon company / driver name (or 0)
    subject_kinds: frozenset[str]  # @target / @company / @driver: what an entity subject may be
    owner: str | None  # a share-price subject: the entity named just before it
    clause_entities: frozenset[str]
    clause_kinds: frozenset[int]  # roles of the clause's entities and actor names
    sentence_entities: frozenset[str]
    negated: bool
    refuted: bool
    start: int = 0  # where the cue is in its field
    background: bool = False  # an earlier event told as context


@dataclass(frozen=True, slots=True)
class _Analysis:
    """The target-independent analysis of one article (shared by its targets)."""

    title_sentences: Sequence[Span]
    body_sentences: Sequence[Span]
    records: tuple[_Record, ...]
    debate: float
    debate_in_title: bool
    title_entities: frozenset[str]
    lead_entities: frozenset[str]  # named in the headline or the first body sentence
    first_sentence: Mapping[str, str]  # entity -> first sentence naming it
    weighed: Any = None  # `records` prepared for the native kernel's weighing, if built


_new_analysis = maker(_Analysis)


@dataclass(frozen=True, slots=True)
class _Context:
    lang: CompiledLanguage
    weights: Weights
    part: Literal["title", "body"]
    text: _Text
    mentions: _Mentions
    modifier: float  # article-wide: explainers and supplier stories weigh less
    roles: Mapping[str, int]  # entity -> _DRIVER / _COMPANY (`_RoleIndex.base`)
    merged: list[TermMatch]  # the field's terms and entity mentions, by start
    merged_starts: list[int]
    attributed: frozenset[int]  # sentences (by index) that attribute a claim to someone
    supplied: frozenset[int]  # sentences about supplying (qualification news)
    sentence_entities: dict[int, frozenset[str]] = field(default_factory=dict)  # memo


def _merge(t: _Text, mentions: _Mentions) -> list[TermMatch]:
    """The field's terms and its entity mentions (as MENTION_GROUP tokens), by start."""
    tokens = list(t.tokens)
    if mentions.items:
        tokens.extend(TermMatch(m[0], m[1], _MENTION_GROUPS) for m in mentions.items)
        tokens.sort()  # by start: tuples compare their first field first
    return tokens


def _clause_tokens(ctx: _Context, start: int, end: int) -> list[TermMatch]:
    starts = ctx.merged_starts
    return ctx.merged[bisect_left(starts, start) : bisect_left(starts, end)]


def _negated(cue: TermMatch, lang: CompiledLanguage, marks: _ClauseMarks) -> bool:
    """Whether a negator of the clause governs `cue`."""
    for end in marks.neg_before:
        if end <= cue.start and cue.start - end <= lang.negation_before_window:
            return True
    for pos in marks.neg_after:
        if pos >= cue.end:
            # Only the first negator after the cue can govern it, and only if no other
            # cue comes first: "수요가 커 몫이 줄지는 않을" negates 줄지, not 커.
            return pos - cue.end <= lang.negation_after_window and not any(
                cue.end <= q < pos for q in marks.blockers
            )
    return False


_Candidate = tuple[str, int, float, str, TermMatch | None, frozenset[str]]


def _not_a_share_price(
    lang: CompiledLanguage, tokens: list[TermMatch], subject: TermMatch, pred: TermMatch
) -> bool:
    """ "Nvidia CEO pay rises", "엔비디아 ETF 순자산 돌파": a word between the company and
    the move says that what moved is not the share price."""
    marker = lang.ids.not_price
    lo, hi = min(subject.end, pred.end), max(subject.start, pred.start)
    return any(marker in t.groups and lo <= t.start < hi for t in tokens)


def _best_cue(
    lang: CompiledLanguage, tokens: list[TermMatch], tok: TermMatch, claimed: set[int]
) -> _Candidate | None:
    """The cue `tok` completes: a phrase, or the heaviest pair whose subject is near."""
    # A pair whose subject is present is more specific than a phrase on the same term:
    # "the co-founder plans to sell up to 3m shares" is an insider sale, not a sales plan.
    phrase, pairs = lang.cue_table[tok.groups]
    found: _Candidate | None = None
    found_gap = 0.0
    if pairs:
        limit = lang.pair_window + 1
        pred_start, pred_end = tok.start, tok.end
        for pair in pairs:
            # The nearest subject within the window; one after its predicate is rarer and
            # counts `after_factor` times farther (+1: a term may end in a space).
            subjects, after = pair.subjects_with_mentions, pair.after_factor
            subj: TermMatch | None = None
            gap = float(limit)
            for t in tokens:
                if t is tok or subjects.isdisjoint(t.groups):
                    continue
                if t.end <= pred_start:
                    d = float(pred_start - t.end)
                elif t.start >= pred_end:
                    d = (t.start - pred_end + 1) * after
                else:
                    continue
                if d < gap:
                    subj, gap = t, d
            if subj is None:
                continue
            # One subject makes one claim: "Nvidia rebounds ... after record rout" is a
            # rebound (the rout belongs to the day before); "orders kept climbing" is one cue.
            if subj.start in claimed:
                continue
            if pair.scope == "price" and _not_a_share_price(lang, tokens, subj, tok):
                continue
            # The nearest subject is the predicate's own ("Nvidia demand will fall" is
            # about demand, not the share price); the heavier pair breaks a tie.
            if found is None or gap < found_gap or (gap == found_gap and pair.weight > found[2]):
                found = (pair.id, pair.polarity, pair.weight, pair.scope, subj, pair.subject_kinds)
                found_gap = gap
    if phrase is not None and found is None:
        return phrase.id, phrase.polarity, phrase.weight, phrase.scope, None, frozenset()
    return found


class _ClauseMarks(NamedTuple):
    """The markers of one clause, gathered in one pass over its tokens."""

    hedge: bool
    refute: bool
    background_from: int  # cues after this are an earlier event
    background_until: int  # cues before this are an earlier event
    actors: frozenset[int]
    neg_after: tuple[int, ...]  # starts of negators after a verb
    neg_before: tuple[int, ...]  # ends of negators before one
    blockers: tuple[int, ...]  # starts of the clause's cues (not negators themselves)


_NO_MARKS = _ClauseMarks(False, False, 1 << 30, -1, frozenset(), (), (), ())


def _clause_marks(
    lang: CompiledLanguage, tokens: list[TermMatch], cue_starts: Sequence[int]
) -> _ClauseMarks:
    wanted = lang.clause_mark_groups
    marked = [t for t in tokens if not wanted.isdisjoint(t.groups)]
    if not marked:
        return _NO_MARKS
    ids = lang.ids
    hedge = refute = False
    background_from, background_until = 1 << 30, -1
    actors: set[int] = set()
    neg_after: list[int] = []
    neg_before: list[int] = []
    for t in marked:
        groups = t.groups
        if ids.hedge in groups:
            hedge = True
        if ids.refute in groups or ids.inverse in groups:
            refute = True
        if ids.background in groups and t.start < background_from:
            background_from = t.start
        if ids.background_before in groups and t.start > background_until:
            background_until = t.start
        if ids.company in groups:
            actors.add(_COMPANY)
        if ids.driver in groups:
            actors.add(_DRIVER)
        if ids.negation_after in groups:
            neg_after.append(t.start)
        elif ids.negation_before in groups:
            neg_before.append(t.end)
    # a negator that is also a cue (철회) does not stand between a cue and itself
    blockers = tuple(q for q in cue_starts if q not in neg_after) if neg_after else ()
    return _ClauseMarks(
        hedge,
        refute,
        background_from,
        background_until,
        frozenset(actors),
        tuple(neg_after),
        tuple(neg_before),
        blockers,
    )


def _clause_modifier(ctx: _Context, marks: _ClauseMarks, start: int, sentence: int) -> float:
    """What every cue of a clause is multiplied by: hedges, attribution, headline, ..."""
    w = ctx.weights
    modifier = ctx.modifier
    if marks.hedge:
        modifier *= w.hedge
    if sentence in ctx.attributed:
        modifier *= w.attribution
    if sentence in ctx.supplied:
        modifier *= w.supplier
    if ctx.part == "title":
        modifier *= w.headline
        for q in ctx.text.questions:
            if q.start <= start < q.end:
                modifier *= w.question
                break
    return modifier


def _entity_at(ctx: _Context, tok: TermMatch) -> str | None:
    for m in ctx.mentions.between(tok.start, tok.start + 1):
        return m[2]
    return None


def _owner(ctx: _Context, pos: int, clause_start: int) -> str | None:
    """The entity named just before a share-price word ("Nvidia shares", "삼성전자 주가")."""
    best: _Mention | None = None
    for m in ctx.mentions.between(max(clause_start, pos - 40), pos):
        if m[1] <= pos and pos - m[1] <= 20 and (best is None or m[1] > best[1]):
            best = m
    return best[2] if best else None


def _candidates(
    lang: CompiledLanguage, tokens: list[TermMatch], cue_tokens: list[TermMatch]
) -> list[tuple[TermMatch, _Candidate]]:
    """The cues of a clause; `cue_tokens` (in order) are its terms that can complete one."""
    claimed: set[int] = set()
    out: list[tuple[TermMatch, _Candidate]] = []
    for tok in cue_tokens:
        # A term already taken as a cue's subject ("slow new orders") is not a cue itself.
        if tok.start not in claimed:
            cand = _best_cue(lang, tokens, tok, claimed)
            if cand is not None:
                out.append((tok, cand))
                if cand[4] is not None:
                    claimed.add(cand[4].start)
    return out


def _subject_of(
    ctx: _Context, subject: TermMatch | None, scope: str, clause_start: int
) -> tuple[str | None, int, str | None]:
    """Whose is the subject: an entity mention, a lexicon company name, or (for share
    prices) the entity named just before it."""
    if subject is None:
        return None, 0, None
    ids = ctx.lang.ids
    if _MENTION in subject.groups:
        return _entity_at(ctx, subject), 0, None
    if ids.company in subject.groups:
        return None, _COMPANY, None
    if ids.driver in subject.groups:
        return None, _DRIVER, None
    return None, 0, _owner(ctx, subject.start, clause_start) if scope == "price" else None


def _clause_records(
    ctx: _Context, start: int, end: int, cue_tokens: list[TermMatch], out: list[_Record]
) -> None:
    lang, w = ctx.lang, ctx.weights
    tokens = _clause_tokens(ctx, start, end)
    # Most clauses with a predicate have no subject for it: find the cues first, and do
    # the rest of the work only for clauses that have one.
    cands = _candidates(lang, tokens, cue_tokens)
    if not cands:
        return
    index = _sentence_index(ctx.text, start)
    sentence = ctx.text.sentences[index]
    cue_starts = [tok.start for tok, _ in cands]
    marks = _clause_marks(lang, tokens, cue_starts)
    modifier = _clause_modifier(ctx, marks, start, index)
    refuted, background_from, actors = marks.refute, marks.background_from, marks.actors
    clause_entities = frozenset(m[2] for m in ctx.mentions.between(start, end))
    roles = ctx.roles
    clause_kinds = actors.union(roles[e] for e in clause_entities if e in roles)
    sentence_entities = ctx.sentence_entities.get(sentence.start)
    if sentence_entities is None:
        sentence_entities = frozenset(
            m[2] for m in ctx.mentions.between(sentence.start, sentence.end)
        )
        ctx.sentence_entities[sentence.start] = sentence_entities
    found: list[tuple[int, int, _Record]] = []
    for tok, cand in cands:
        cue_id, polarity, weight, scope, subject, subject_kinds = cand
        subject_entity, subject_actor, owner = _subject_of(ctx, subject, scope, start)
        value = polarity * weight * modifier
        background = tok.start > background_from or tok.start < marks.background_until
        if background:
            value *= w.background
        negated = bool(marks.neg_after or marks.neg_before) and _negated(tok, lang, marks)
        if negated:
            value = -value * w.negated
        if refuted:
            value = -value
        record = _new_tuple(
            _Record,
            (
                ctx.part,
                index,
                cue_id,
                value,
                scope,
                subject_entity,
                subject_actor,
                subject_kinds,
                owner,
                clause_entities,
                clause_kinds,
                sentence_entities,
                negated,
                refuted,
                tok.start,
                background,
            ),
        )
        found.append((tok.start, polarity if not negated else 2 * polarity, record))
    # "TPUs are no threat to Nvidia", "싼 칩이 엔비디아를 대체하지 못한다": a cue before a
    # negated cue of the same direction is part of the negated claim, not a claim of its own.
    negated_at = [(p, t) for p, t, _ in found if t in (2, -2)]
    for pos, tagged, record in found:
        if (
            negated_at
            and not record.negated
            and any(p2 > pos and t2 == 2 * tagged for p2, t2 in negated_at)
        ):
            continue
        out.append(record)


def _text_records(ctx: _Context, out: list[_Record]) -> None:
    """Records of every clause that holds a cue; clauses without one cost nothing."""
    t = ctx.text
    first = len(out)
    cuts, tokens = t.cuts, t.tokens
    clause = -1
    pending: list[TermMatch] = []
    for k in t.cue_tokens:
        tok = tokens[k]
        ci = bisect_right(cuts, tok.start) - 1
        if ci != clause:
            if pending:
                _clause_records(ctx, cuts[clause], cuts[clause + 1], pending, out)
            clause, pending = ci, []
        pending.append(tok)
    if pending:
        _clause_records(ctx, cuts[clause], cuts[clause + 1], pending, out)
    if t.specials:
        _refute_back(ctx, out, first)
        _resolved(ctx, out, first)


def _refute_back(ctx: _Context, out: list[_Record], first: int) -> None:
    """ "A report said shipments would slip. Nvidia denied the report.": a sentence that
    refers back to a claim and declares it false flips the sentence before it."""
    marker = ctx.lang.marker_ids["refute_back"]
    t = ctx.text
    for k in t.specials:
        tok = t.tokens[k]
        if marker not in tok.groups:
            continue
        index = _sentence_index(t, tok.start)
        for i in range(first, len(out)):
            r = out[i]
            if index > 0 and r.sentence == index - 1 and not r.refuted:
                out[i] = r._replace(base=-r.base, refuted=True)


def _resolved(ctx: _Context, out: list[_Record], first: int) -> None:
    """ "The design flaw was fixed", "결함은 이미 해결됐다": a problem reported as solved is
    old news, so the sentence's bearish cues before the word that solves it turn over."""
    marker = ctx.lang.marker_ids["resolved"]
    t = ctx.text
    for k in t.specials:
        tok = t.tokens[k]
        if marker not in tok.groups:
            continue
        index = _sentence_index(t, tok.start)
        for i in range(first, len(out)):
            r = out[i]
            if r.sentence == index and r.start < tok.start and r.base < 0 and not r.refuted:
                out[i] = r._replace(base=-r.base, refuted=True)


def _weigh_debate(
    w: Weights,
    versus: bool,
    debate: bool,
    questions: bool,
    alternative: bool,
    doubt: bool,
    body_debates: int,
    counter: bool,
) -> tuple[float, bool]:
    """Evidence that the article sets out a debate, and whether its headline does, from
    what the headline shows (a versus or debate marker, questions, and within them an
    alternative or a doubt), the body's sentences with a debate marker and any counter."""
    score = 0.0
    if versus:
        score += w.versus_headline
    if debate:
        score += w.debate_headline
    if questions:
        score += w.question_headline
        if alternative:
            # "Boon or bubble?", "방패인가 부담인가": the headline names both sides.
            score += w.versus_headline
        elif doubt:
            # "Will China actually buy?", "독주 흔들리나": the news itself is in doubt.
            score += w.debate_headline
    score += min(body_debates, 2) * w.debate_body
    if counter:
        score += w.counter
    return score, questions or versus or debate


def _debate(scanned: _Scanned, w: Weights, title: set[int]) -> tuple[float, bool]:
    """`_weigh_debate` for a scanned article; `title` holds the headline's groups."""
    mk = scanned.lang.marker_ids
    questions = scanned.title.questions
    asked: set[int] = set()
    if questions and scanned.title.specials:
        asked = {
            g
            for tok in scanned.title.tokens
            if any(q.start <= tok.start < q.end for q in questions)
            for g in tok.groups
        }
    body = scanned.body
    debate, counter = mk["debate"], mk["counter"]
    specials = [body.tokens[k] for k in body.specials]
    debate_sentences = {
        _sentence_index(body, tok.start) for tok in specials if debate in tok.groups
    }
    return _weigh_debate(
        w,
        mk["versus"] in title,
        debate in title,
        bool(questions),
        mk["alternative"] in asked,
        mk["doubt"] in asked,
        len(debate_sentences),
        counter in title or any(counter in tok.groups for tok in specials),
    )


_Found = tuple[Sequence[Span], Sequence[Span], list[_Record], float, bool]


def _python_records(
    article: Article,
    lang: CompiledLanguage,
    lexicon: Lexicon,
    mentions: dict[str, _Mentions],
    sentences: Sequence[Span] | None,
) -> _Found:
    """The headline's and the body's sentences, the records of their cues, the debate
    evidence and whether the headline sets out a debate."""
    scanned = _scan_article(article, lang, sentences)
    w = lexicon.weights
    mk = lang.marker_ids
    title_groups = {g for tok in scanned.title.tokens for g in tok.groups}
    modifier = 1.0
    for marker, weight in (("explainer", w.explainer), ("supplier", w.supplier)):
        if mk[marker] in title_groups:
            modifier *= weight
    records: list[_Record] = []
    roles = lexicon.index.base
    parts: tuple[tuple[Literal["title", "body"], _Text], ...] = (
        ("title", scanned.title),
        ("body", scanned.body),
    )
    for part, t in parts:
        if not t.cue_tokens:
            continue  # no cue: no record, and nothing for the markers to act on
        found = mentions[part]
        merged = _merge(t, found)
        starts = [m.start for m in merged]
        attributed, supplied = _sentence_marks(t, lang.ids)
        ctx = _Context(
            lang, w, part, t, found, modifier, roles, merged, starts, attributed, supplied
        )
        _text_records(ctx, records)
    debate, debate_in_title = _debate(scanned, w, title_groups)
    return scanned.title.sentences, scanned.body.sentences, records, debate, debate_in_title


def _native_records(
    plan: Any,
    article: Article,
    lang: CompiledLanguage,
    lexicon: Lexicon,
    mentions: dict[str, _Mentions],
    sentences: Sequence[Span] | None,
) -> _Found:
    """`_python_records` with the scan and the clause analysis in the native kernel."""
    native = _native
    title, title_spans, parts, questions, text, sentences = _split_article(article, lang, sentences)
    tf = native.scan(plan, title, [0] if title else [], [p.start for p in parts])
    bf = native.scan(plan, text, [s.start for s in sentences], ())
    w = lexicon.weights
    flags = tf.flags
    modifier = 1.0
    if flags & native.EXPLAINER:
        modifier *= w.explainer
    if flags & native.SUPPLIER:
        modifier *= w.supplier
    records: list[_Record] = []
    roles = lexicon.index.base
    native.records(
        plan, tf, "title", mentions["title"], title_spans, questions, modifier, roles, records
    )
    native.records(plan, bf, "body", mentions["body"], sentences, (), modifier, roles, records)
    asked = tf.flags_within(questions) if questions and tf.has_specials else 0
    debate, debate_in_title = _weigh_debate(
        w,
        bool(flags & native.VERSUS),
        bool(flags & native.DEBATE),
        bool(questions),
        bool(asked & native.ALTERNATIVE),
        bool(asked & native.DOUBT),
        bf.debate_sentences(),
        bool((flags | bf.special_flags) & native.COUNTER),
    )
    return title_spans, sentences, records, debate, debate_in_title


def _analyse(
    article: Article,
    lang: CompiledLanguage,
    lexicon: Lexicon,
    hits: Sequence[Hit],
    known: frozenset[str],
    sentences: Sequence[Span] | None,
    matched: Matched | None = None,
) -> _Analysis:
    """Everything that does not depend on the target; `known` are the entities whose
    mentions count (the lexicon's roles plus the target)."""
    mentions = (
        _mentions(article, hits, known) if matched is None else _matched_mentions(matched, known)
    )
    plan = lexicon.plans.get(lang.lang) if _native is not None else None
    if plan is not None:
        found = _native_records(plan, article, lang, lexicon, mentions, sentences)
    else:
        found = _python_records(article, lang, lexicon, mentions, sentences)
    title_sentences, body_sentences, records, debate, debate_in_title = found
    first_end = body_sentences[0].end if body_sentences else 0
    title_items = mentions["title"].items
    body = mentions["body"]
    title_entities = frozenset([m[2] for m in title_items])
    first_sentence: dict[str, str] = {}
    if title_sentences:
        first_sentence.update(dict.fromkeys(title_entities, title_sentences[0].text))
    if body.items:
        starts = [s.start for s in body_sentences]
        for m in body.items:
            if m[2] not in first_sentence:
                index = max(0, bisect_right(starts, m[0]) - 1)
                first_sentence[m[2]] = body_sentences[index].text
    recorded = tuple(records)
    weighing = lexicon.weighing if _native is not None else None
    return _new_analysis(
        title_sentences,
        body_sentences,
        recorded,
        debate,
        debate_in_title,
        title_entities,
        title_entities | frozenset([m[2] for m in body.between(0, first_end)]),
        first_sentence,
        _native.prepare(weighing, recorded) if weighing is not None else None,
    )


# ---------------------------------------------------------------------------
# the target-dependent part: whose news each cue is, then the label


def _about(r: _Record, own: frozenset[str], index: _RoleIndex, w: Weights, leads: bool) -> float:
    """How much a cue is about the target (1.0) rather than someone else; `own` is the
    target and its products, `leads` whether the target is named in the lead."""
    if r.scope == "price":
        subject = r.subject_entity
        if subject is not None:
            # A product has no share price: "Blackwell costs rise" is no stock move.
            if subject in index.products:
                return 0.0
            k = _TARGET if subject in own else index.base.get(subject)
            if k is None or _KIND_NAME[k] not in r.subject_kinds:
                return 0.0
            return 1.0 if k == _TARGET else w.other_company_price
        if r.subject_actor:
            return w.other_company_price
        if r.owner is not None:
            return 1.0 if r.owner in own else w.other_company_price
    if not own.isdisjoint(r.clause_entities):
        return 1.0
    kinds = r.clause_kinds  # the clause names no one of the target's own
    if r.scope == "any" or (r.scope == "driver" and (_DRIVER in kinds or not kinds)):
        return 1.0
    if kinds:  # only other companies
        return w.other_company_price if r.scope == "price" else w.other_company
    if not own.isdisjoint(r.sentence_entities):
        return 1.0
    return w.implicit if leads else w.implicit_elsewhere


# The labels as module constants: an attribute of an Enum class is looked up through
# its metaclass, which costs more than the rest of a label decision.
_BULLISH, _BEARISH = StanceLabel.BULLISH, StanceLabel.BEARISH
_MIXED, _NEUTRAL = StanceLabel.MIXED, StanceLabel.NEUTRAL

_DEBATE_DISCOUNT = 0.6
_HINTED_MIN_SIDE = 0.45  # evidence the weaker side needs under a headline question
_UNMARKED_SHARE = 0.4
_UNMARKED_MIN_SIDE = 1.5


def _label(
    tally: _Totals, debate: float, th: StanceThresholds, w: Weights
) -> tuple[StanceLabel, float, float]:
    """Label, score and confidence from the evidence totals (`_tally`'s)."""
    pos, neg, price, context_pos, context_neg, _ = tally
    total = pos + neg
    score = (pos - neg) / (total + w.smoothing)
    strength = 1.0 - math.exp(-total / 1.5)
    if debate < w.debate_body and abs(price) >= w.price_decides:
        # A price-move report follows the move it reports, whatever else it says.
        sign = 1.0 if price > 0 else -1.0
        score = sign * max(abs(score), th.bullish if sign > 0 else -th.bearish)
        label = _BULLISH if sign > 0 else _BEARISH
        return label, score, strength * min(1.0, abs(score) / 0.6)
    # Earlier events told as context are no argument of this story's debate.
    arg_pos, arg_neg = pos - context_pos, neg - context_neg
    share = min(arg_pos, arg_neg) / (arg_pos + arg_neg) if arg_pos + arg_neg > 0 else 0.0
    # The cues we can read are a sample of an article's arguments: when the article
    # itself says there is a debate, less balance among them is needed to call it mixed.
    needed = th.mixed_min_each * _DEBATE_DISCOUNT
    if debate >= w.versus_headline:
        mixed = True  # the headline itself sets two sides against each other
    elif debate >= w.debate_body:
        # With no cue at all, a debate somewhere in the body may be about something else
        # (a CEO's remark on schooling); only a headline debate stands on its own.
        mixed = share >= needed if total else debate >= w.debate_headline
    elif debate > 0:  # only a hint, such as a headline question
        mixed = share >= needed and min(arg_pos, arg_neg) >= _HINTED_MIN_SIDE
    else:  # no marker: both sides must be substantial and close
        mixed = share >= _UNMARKED_SHARE and min(arg_pos, arg_neg) >= _UNMARKED_MIN_SIDE
    if mixed:
        return (
            _MIXED,
            score,
            min(1.0, (0.5 + share) * (1.0 - math.exp(-(total + debate) / 2))),
        )
    if abs(pos - neg) < w.min_evidence:
        return _NEUTRAL, score, 0.5 * math.exp(-total)
    if score >= th.bullish:
        return _BULLISH, score, strength * min(1.0, abs(score) / 0.6)
    if score <= th.bearish:
        return _BEARISH, score, strength * min(1.0, abs(score) / 0.6)
    return _NEUTRAL, score, 0.5 * math.exp(-total)


def _add(chosen: list[str], s: str) -> None:
    if s and s not in chosen and len(chosen) < 3:
        chosen.append(s)


def _sentence_text(analysis: _Analysis, key: tuple[str, int]) -> str:
    sentences = analysis.title_sentences if key[0] == "title" else analysis.body_sentences
    return sentences[key[1]].text


_value_of = itemgetter(1)  # of a (key, value) item


def _evidence(
    label: StanceLabel,
    per: dict[tuple[str, int], float],
    analysis: _Analysis,
    fallback: str,
) -> tuple[str, ...]:
    """One to three sentences behind `label`; `per` sums the cues of each (field,
    sentence) in the order they were first seen."""
    chosen: list[str] = []
    if label is _MIXED:
        if analysis.debate_in_title and analysis.title_sentences:
            _add(chosen, analysis.title_sentences[0].text)
        if per:
            # the first of the largest and of the smallest, as max() and min() pick them
            best_pos = best_neg = None
            high = low = 0.0
            for key, v in per.items():
                if best_pos is None or v > high:
                    best_pos, high = key, v
                if best_neg is None or v < low:
                    best_neg, low = key, v
            if best_pos is not None and high > 0:
                _add(chosen, _sentence_text(analysis, best_pos))
            if best_neg is not None and low < 0:
                _add(chosen, _sentence_text(analysis, best_neg))
    elif label is _BULLISH:
        # largest first; a stable sort keeps first-seen order among equal sums
        for key, _ in sorted([kv for kv in per.items() if kv[1] > 0], key=_value_of, reverse=True):
            _add(chosen, _sentence_text(analysis, key))
    elif label is _BEARISH:
        for key, _ in sorted([kv for kv in per.items() if kv[1] < 0], key=_value_of):
            _add(chosen, _sentence_text(analysis, key))
    if not chosen:
        _add(chosen, fallback)
    return tuple(chosen)


_Totals = tuple[float, float, float, float, float, dict[tuple[str, int], float]]


def _tally(
    analysis: _Analysis,
    own: frozenset[str],
    index: _RoleIndex,
    w: Weights,
    leads: bool,
    cues: list[Cue] | None,
) -> _Totals:
    """The evidence totals for the target whose own entities are `own`: pos, neg, price,
    context_pos, context_neg and the sum per (field, sentence) in first-seen order."""
    pos = neg = price = context_pos = context_neg = 0.0
    per: dict[tuple[str, int], float] = {}
    for r in analysis.records:
        value = r.base * _about(r, own, index, w, leads)
        if value == 0.0:
            continue
        if r.scope == "price" and abs(value) >= abs(r.base):
            price += value
        if value > 0:
            pos += value
            if r.background:
                context_pos += value
        else:
            neg -= value
            if r.background:
                context_neg -= value
        key = (r.field, r.sentence)
        per[key] = per.get(key, 0.0) + value
        if cues is not None:
            cues.append(Cue(r.cue_id, r.field, r.sentence, value, r.negated, r.refuted))
    return pos, neg, price, context_pos, context_neg, per


_new_stance = maker(Stance)


def _judge(
    analysis: _Analysis,
    target: str,
    lexicon: Lexicon,
    thresholds: StanceThresholds,
    cues: list[Cue] | None = None,
) -> Stance:
    """The target-dependent step: whose news each cue is, then the label. The weighed
    cues are appended to `cues` when it is given."""
    w, index = lexicon.weights, lexicon.index
    own = index.own(target)
    leads = not own.isdisjoint(analysis.lead_entities)
    if analysis.weighed is not None:
        totals = _native.tally_prepared(analysis.weighed, own, leads, cues)
    elif _native is not None and lexicon.weighing is not None:
        totals = _native.tally(lexicon.weighing, analysis.records, own, leads, cues)
    else:
        totals = _tally(analysis, own, index, w, leads, cues)
    label, score, confidence = _label(totals, analysis.debate, thresholds, w)
    first = analysis.first_sentence
    fallback = first.get(target) or next((first[e] for e in first if e in own), "")
    return _new_stance(
        target,
        label,
        max(-1.0, min(1.0, score)),
        max(0.0, min(1.0, confidence)),
        _evidence(label, totals[5], analysis, fallback),
    )


_Assessed = tuple[Stance, tuple[Cue, ...], float]  # a StanceReport's fields


def _assess(
    article: Article,
    targets: Iterable[str],
    hits: Sequence[Hit],
    lexicon: Lexicon,
    thresholds: StanceThresholds,
    detailed: bool,
    sentences: Sequence[Span] | None = None,
    matched: Matched | None = None,
) -> dict[str, _Assessed]:
    lang = _choose_language(article, lexicon)
    out: dict[str, _Assessed] = {}
    shared: _Analysis | None = None
    known = lexicon.index.known
    for target in targets:
        if lang is None:
            neutral = Stance(target=target, label=_NEUTRAL, score=0.0)
            out[target] = (neutral, (), 0.0)
            continue
        if target in known:
            if shared is None:
                shared = _analyse(article, lang, lexicon, hits, known, sentences, matched)
            analysis = shared
        else:
            analysis = _analyse(article, lang, lexicon, hits, known | {target}, sentences, matched)
        if detailed:
            cues: list[Cue] = []
            stance = _judge(analysis, target, lexicon, thresholds, cues)
            out[target] = (stance, tuple(cues), analysis.debate)
        else:
            out[target] = (_judge(analysis, target, lexicon, thresholds), (), analysis.debate)
    return out


def assess_all(
    article: Article,
    targets: Iterable[str],
    hits: Sequence[Hit],
    lexicon: Lexicon,
    thresholds: StanceThresholds = StanceThresholds(),
    sentences: Sequence[Span] | None = None,
    matched: Matched | None = None,
) -> dict[str, Stance]:
    """The stance of `article` toward each of `targets`; `sentences` are those of
    `article.text` (`split_sentences`) and `matched` the matcher's hits behind `hits`
    (`Matcher.find_by_field`'s headline and body lists), if the caller has them.

    The analysis that does not depend on the target is done once for all of them
    (once more for a target that the lexicon's roles do not name)."""
    reports = _assess(article, targets, hits, lexicon, thresholds, False, sentences, matched)
    return {t: r[0] for t, r in reports.items()}


def assess_detailed(
    article: Article,
    target: str,
    hits: Sequence[Hit],
    lexicon: Lexicon,
    thresholds: StanceThresholds = StanceThresholds(),
) -> StanceReport:
    """`assess` plus the weighed cues behind it."""
    stance, cues, debate = _assess(article, (target,), hits, lexicon, thresholds, True)[target]
    return StanceReport(stance, cues, debate)


def assess(
    article: Article,
    target: str,
    hits: Sequence[Hit],
    lexicon: Lexicon,
    thresholds: StanceThresholds = StanceThresholds(),
) -> Stance:
    """The stance of `article` toward `target`, with one to three evidence sentences."""
    return _assess(article, (target,), hits, lexicon, thresholds, detailed=False)[target][0]
