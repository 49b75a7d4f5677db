"""Stance toward one target entity: bullish, bearish, mixed or neutral, with evidence.

Contract used by the engine (`monitor.core.engine`):

    assess(article, target, hits, lexicon, thresholds) -> Stance

`hits` are the entity hits of the whole article (any entity); `lexicon` is the
compiled cue lexicon from `rules/lexicon/*.toml` (`compile_lexicon`).

How a stance is reached:
1. The headline is cut into clauses (`A…B`, `A; B`), the body into sentences,
   and both into clauses at boundary words (지만, 반면, but, while).
2. One regex pass per text finds every lexicon term; entity hits are added as
   `@target`, `@driver` (a buyer whose spending is the target's demand) or
   `@company` tokens.
3. Cues are phrases (`어닝 쇼크`, `beat estimates`) and subject x predicate pairs
   in one clause (`{수요} x {증가}`, `{주가, @target} x {급락}`).
4. Each cue is weighed: negation flips it (`줄이지 않겠다`, `did not fall`); a
   clause that declares a claim false flips it (`오해`, `dismissing speculation`);
   hedges, attribution and headline questions weigh it down; the headline weighs
   it up; a sentence only about another company counts less.
5. Debate markers (`"A" vs "B"` headlines, `analysts split`, `엇갈`) and headline
   questions are evidence for `mixed`; with both sides present they decide it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from monitor.core.errors import RuleError
from monitor.core.lexicon import (
    COMPANY_GROUP,
    DRIVER_GROUP,
    TARGET_GROUP,
    CompiledLanguage,
    EntityRoles,
    ScanCache,
    TermMatch,
    Weights,
    compile_language,
    load_documents,
    scan,
)
from monitor.core.models import Article, Hit, Stance, StanceLabel
from monitor.core.sentences import Span, split_headline, split_sentences


@dataclass(frozen=True, slots=True)
class StanceThresholds:
    bullish: float = 0.2
    bearish: float = -0.2
    mixed_min_each: float = 0.25  # with a debate marker: the weaker side's share of evidence


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Compiled cue lexicon: one matcher per language plus the shared weights."""

    languages: Mapping[str, CompiledLanguage] = field(default_factory=dict)
    weights: Weights = field(default_factory=Weights)
    roles: EntityRoles = field(default_factory=EntityRoles)
    cache: ScanCache = field(default_factory=ScanCache, compare=False, repr=False)


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


@dataclass(frozen=True, slots=True)
class Cue:
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
class _Clause:
    start: int
    end: int
    tokens: tuple[TermMatch, ...]
    has_cue: bool  # a phrase or a predicate is in it (most clauses of a long text have none)


@dataclass(frozen=True, slots=True)
class _Sentence:
    span: Span
    clauses: tuple[_Clause, ...]
    markers: frozenset[int]  # marker group ids present anywhere in the sentence


@dataclass(frozen=True, slots=True)
class _Scanned:
    lang: CompiledLanguage
    title: tuple[_Sentence, ...]  # one sentence: the whole headline, clauses per headline part
    body: tuple[_Sentence, ...]


def _choose_language(article: Article, lexicon: Lexicon) -> CompiledLanguage | None:
    langs = lexicon.languages
    if article.lang in langs:
        return langs[article.lang]
    return next(iter(langs.values()), None)


def _clauses(
    lang: CompiledLanguage, text: str, span: Span, tokens: list[TermMatch]
) -> tuple[_Clause, ...]:
    boundary = lang.marker_ids["boundary"]
    cuts = [span.start]
    for t in tokens:
        if boundary in t.groups and t.start > span.start:
            if text[t.start : t.end] == "," and (
                # A comma between digits is a thousands separator, not a clause break;
                # after a short stretch it sets off a topic or a list item
                # ("엔비디아, 장중 7% 반등", "Meta, Microsoft and Google raised capex").
                _between_digits(text, t.start) or t.start - cuts[-1] < _MIN_CLAUSE
            ):
                continue
            cuts.append(t.start)
    cuts.append(span.end)
    out = []
    for a, b in itertools.pairwise(cuts):
        if b > a:
            inside = tuple(t for t in tokens if a <= t.start < b)
            has_cue = any(g in lang.cue_groups for t in inside for g in t.groups)
            out.append(_Clause(a, b, inside, has_cue))
    return tuple(out)


_MIN_CLAUSE = 16  # characters


def _between_digits(text: str, i: int) -> bool:
    return 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()


def _sentences(
    lang: CompiledLanguage, text: str, spans: list[Span], tokens: list[TermMatch]
) -> tuple[_Sentence, ...]:
    out = []
    i = 0
    for span in spans:
        while i < len(tokens) and tokens[i].start < span.start:
            i += 1
        j = i
        while j < len(tokens) and tokens[j].start < span.end:
            j += 1
        inside = tokens[i:j]
        markers = frozenset(g for t in inside for g in t.groups)
        out.append(_Sentence(span, _clauses(lang, text, span, inside), markers))
        i = j
    return tuple(out)


def _scan_article(article: Article, lang: CompiledLanguage, cache: ScanCache) -> _Scanned:
    body = article.text
    key = (lang.lang, article.title, body)
    cached = cache.get(key)
    if isinstance(cached, _Scanned):
        return cached
    title_tokens = scan(lang, article.title)
    title_spans = split_headline(article.title)
    title_clauses: list[_Clause] = []
    for part in title_spans:
        inside = [t for t in title_tokens if part.start <= t.start < part.end]
        title_clauses.extend(_clauses(lang, article.title, part, inside))
    whole = Span(0, len(article.title), article.title)
    title = (
        (
            _Sentence(
                whole, tuple(title_clauses), frozenset(g for t in title_tokens for g in t.groups)
            ),
        )
        if article.title
        else ()
    )
    body_tokens = scan(lang, body)
    result = _Scanned(lang, title, _sentences(lang, body, split_sentences(body), body_tokens))
    cache.put(key, result)
    return result


# ---------------------------------------------------------------------------
# the target-dependent part


_TARGET, _DRIVER, _COMPANY = 1, 2, 3


@dataclass(frozen=True, slots=True)
class _Mention:
    start: int
    end: int
    kind: int  # _TARGET, _DRIVER or _COMPANY


def _mention_kind(entity: str, target: str, roles: EntityRoles) -> int | None:
    maker = roles.products.get(entity)
    if entity == target or maker == target:
        return _TARGET
    if entity in roles.drivers:
        return _DRIVER
    if maker is not None or entity in roles.companies:
        return _COMPANY
    return None


def _locate(hit: Hit, text: str) -> tuple[int, int] | None:
    if 0 <= hit.start < hit.end <= len(text):
        return hit.start, hit.end
    if hit.alias:
        i = text.lower().find(hit.alias.lower())
        if i >= 0:
            return i, i + len(hit.alias)
    return None


def _mentions(
    article: Article, target: str, hits: Sequence[Hit], roles: EntityRoles
) -> tuple[list[_Mention], list[_Mention]]:
    title: list[_Mention] = []
    body: list[_Mention] = []
    for hit in hits:
        kind = _mention_kind(hit.entity, target, roles)
        if kind is None:
            continue
        text = article.title if hit.field == "title" else article.text
        where = _locate(hit, text)
        if where is None:
            continue
        (title if hit.field == "title" else body).append(_Mention(where[0], where[1], kind))
    return title, body


@dataclass(slots=True)
class _Tally:
    pos: float = 0.0
    neg: float = 0.0
    price: float = 0.0  # signed sum of the target's own share-price moves
    debate: float = 0.0
    cues: list[Cue] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Context:
    lang: CompiledLanguage
    weights: Weights
    field: Literal["title", "body"]
    modifier: float  # article-wide: explainers and supplier stories weigh less
    target_leads: bool  # the target is in the headline or the first sentence


def _kinds_in(mentions: list[_Mention], start: int, end: int) -> set[int]:
    return {m.kind for m in mentions if start <= m.start < end}


def _owner_before(mentions: list[_Mention], pos: int, reach: int) -> int | None:
    """The kind of the nearest mention ending shortly before `pos` (whose shares?)."""
    best: _Mention | None = None
    for m in mentions:
        if m.end <= pos and pos - m.end <= reach and (best is None or m.end > best.end):
            best = m
    return best.kind if best else None


def _about(
    ctx: _Context,
    scope: str,
    subject: TermMatch | None,
    clause: _Clause,
    sentence: _Sentence,
    mentions: list[_Mention],
) -> float:
    """How much a cue in this clause is about the target (1.0) rather than someone else."""
    w = ctx.weights
    lang = ctx.lang
    in_clause = _kinds_in(mentions, clause.start, clause.end)
    for t in clause.tokens:
        if lang.group_ids[COMPANY_GROUP] in t.groups:
            in_clause.add(_COMPANY)
        if lang.group_ids[DRIVER_GROUP] in t.groups:
            in_clause.add(_DRIVER)
    if scope == "price" and subject is not None:
        if _TARGET_TOKEN in subject.groups:
            return 1.0
        if (
            lang.group_ids[COMPANY_GROUP] in subject.groups
            or lang.group_ids[DRIVER_GROUP] in subject.groups
        ):
            return w.other_company_price
        owner = _owner_before(mentions, subject.start, 20)
        if owner == _TARGET:
            return 1.0
        if owner in (_COMPANY, _DRIVER):
            return w.other_company_price
    if _TARGET in in_clause:
        return 1.0
    if scope == "driver" and (_DRIVER in in_clause or not in_clause):
        return 1.0
    if scope == "any":
        return 1.0
    if in_clause:  # only other companies
        return w.other_company_price if scope == "price" else w.other_company
    in_sentence = _kinds_in(mentions, sentence.span.start, sentence.span.end)
    if _TARGET in in_sentence:
        return 1.0
    return w.implicit if ctx.target_leads else w.implicit_elsewhere


_TARGET_TOKEN = -1  # group id given to target mention tokens (never a lexicon group)


def _clause_tokens(
    clause: _Clause, mentions: list[_Mention], lang: CompiledLanguage
) -> list[TermMatch]:
    extra = []
    for m in mentions:
        if clause.start <= m.start < clause.end:
            gid = {
                _TARGET: lang.group_ids[TARGET_GROUP],
                _DRIVER: lang.group_ids[DRIVER_GROUP],
                _COMPANY: lang.group_ids[COMPANY_GROUP],
            }[m.kind]
            groups = (gid, _TARGET_TOKEN) if m.kind == _TARGET else (gid,)
            extra.append(TermMatch(m.start, m.end, groups))
    if not extra:
        return list(clause.tokens)
    return sorted([*clause.tokens, *extra], key=lambda t: t.start)


def _find_subject(
    tokens: list[TermMatch], pred: TermMatch, subjects: frozenset[int], window: int
) -> TermMatch | None:
    best: TermMatch | None = None
    best_gap = window + 1
    for t in tokens:
        if t is pred or not subjects.intersection(t.groups):
            continue
        if t.end <= pred.start:
            gap = pred.start - t.end
        elif t.start >= pred.end:
            gap = (t.start - pred.end) * 2  # a subject after its predicate is rarer
        else:
            continue
        if gap < best_gap:
            best, best_gap = t, gap
    return best


def _negated(tokens: list[TermMatch], cue: TermMatch, lang: CompiledLanguage, start: int) -> bool:
    after = lang.marker_ids["negation_after"]
    before = lang.marker_ids["negation_before"]
    for t in tokens:
        if (
            after in t.groups
            and t.start >= cue.end
            and t.start - cue.end <= lang.negation_after_window
        ):
            return True
        if (
            before in t.groups
            and t.end <= cue.start
            and t.start >= start
            and cue.start - t.end <= lang.negation_before_window
        ):
            return True
    return False


def _best_cue(
    lang: CompiledLanguage, tokens: list[TermMatch], tok: TermMatch, claimed: set[int]
) -> tuple[str, int, float, str, TermMatch | None] | None:
    """The cue `tok` completes: a phrase, or the heaviest pair whose subject is near."""
    for g in tok.groups:
        phrase = lang.phrases.get(g)
        if phrase is not None:
            return phrase.id, phrase.polarity, phrase.weight, phrase.scope, None
    found: tuple[str, int, float, str, TermMatch | None] | None = None
    for g in tok.groups:
        for pair in lang.pairs_by_predicate.get(g, ()):
            subj = _find_subject(tokens, tok, pair.subjects, lang.pair_window)
            if subj is None:
                continue
            # One share-price subject reports one move: "Nvidia rebounds ... after record
            # rout" is a rebound; the rout belongs to the day before.
            if pair.scope == "price" and subj.start in claimed:
                continue
            if found is None or pair.weight > found[2]:
                found = (pair.id, pair.polarity, pair.weight, pair.scope, subj)
    return found


def _weigh_clause(
    ctx: _Context,
    tally: _Tally,
    index: int,
    sentence: _Sentence,
    clause: _Clause,
    mentions: list[_Mention],
) -> None:
    if not clause.has_cue:
        return
    lang, w = ctx.lang, ctx.weights
    tokens = _clause_tokens(clause, mentions, lang)
    mk = lang.marker_ids
    groups_here = {g for t in tokens for g in t.groups}
    modifier = ctx.modifier
    if mk["hedge"] in groups_here:
        modifier *= w.hedge
    if mk["attribution"] in sentence.markers:
        modifier *= w.attribution
    if mk["supplier"] in sentence.markers:
        modifier *= w.supplier
    if ctx.field == "title":
        modifier *= w.headline
        if mk["question"] in groups_here:
            modifier *= w.question
    refuted = mk["refute"] in groups_here
    background_from = min(
        (t.start for t in tokens if mk["background"] in t.groups), default=clause.end
    )
    claimed: set[int] = set()
    for tok in tokens:
        found = _best_cue(lang, tokens, tok, claimed)
        if found is None:
            continue
        cue_id, polarity, weight, scope, subject = found
        if subject is not None and scope == "price":
            claimed.add(subject.start)
        about = _about(ctx, scope, subject, clause, sentence, mentions)
        value = polarity * weight * modifier * about
        if tok.start > background_from:
            value *= w.background
        negated = _negated(tokens, tok, lang, clause.start)
        if negated:
            value = -value * w.negated
        if refuted:
            value = -value
        if scope == "price" and about >= 1.0:
            tally.price += value
        if value > 0:
            tally.pos += value
        else:
            tally.neg -= value
        tally.cues.append(Cue(cue_id, ctx.field, index, value, negated, refuted))


def _debate(scanned: _Scanned, w: Weights) -> float:
    mk = scanned.lang.marker_ids
    score = 0.0
    for s in scanned.title:
        if mk["versus"] in s.markers:
            score += w.versus_headline
        if mk["debate"] in s.markers:
            score += w.debate_headline
        if mk["question"] in s.markers:
            score += w.question_headline
    body_debate = sum(1 for s in scanned.body if mk["debate"] in s.markers)
    score += min(body_debate, 2) * w.debate_body
    if any(mk["counter"] in s.markers for s in scanned.body):
        score += w.counter
    return score


def _label(
    tally: _Tally, debate: float, th: StanceThresholds, w: Weights
) -> tuple[StanceLabel, float, float]:
    """Label, score and confidence from the evidence totals."""
    pos, neg = tally.pos, tally.neg
    total = pos + neg
    score = (pos - neg) / (total + w.smoothing)
    strength = 1.0 - math.exp(-total / 1.5)
    if debate < w.debate_body and abs(tally.price) >= w.price_decides:
        # A price-move report follows the move it reports, whatever else it says.
        sign = 1.0 if tally.price > 0 else -1.0
        score = sign * max(abs(score), th.bullish if sign > 0 else -th.bearish)
        label = StanceLabel.BULLISH if sign > 0 else StanceLabel.BEARISH
        return label, score, strength * min(1.0, abs(score) / 0.6)
    share = min(pos, neg) / total if total else 0.0
    mixed = False
    if debate >= w.versus_headline:
        mixed = True  # the headline itself sets two sides against each other
    elif debate >= w.debate_body:
        mixed = total == 0 or share >= th.mixed_min_each * 0.6
    elif debate > 0:
        mixed = share >= th.mixed_min_each * 0.6 and min(pos, neg) >= 0.45
    else:
        mixed = share >= 0.4 and min(pos, neg) >= 1.5
    if mixed:
        return (
            StanceLabel.MIXED,
            score,
            min(1.0, (0.5 + share) * (1.0 - math.exp(-(total + debate) / 2))),
        )
    if abs(pos - neg) < w.min_evidence:
        return StanceLabel.NEUTRAL, score, 0.5 * math.exp(-total)
    if score >= th.bullish:
        return StanceLabel.BULLISH, score, strength * min(1.0, abs(score) / 0.6)
    if score <= th.bearish:
        return StanceLabel.BEARISH, score, strength * min(1.0, abs(score) / 0.6)
    return StanceLabel.NEUTRAL, score, 0.5 * math.exp(-total)


def _evidence(
    label: StanceLabel, cues: list[Cue], scanned: _Scanned, debate_in_title: bool, fallback: str
) -> tuple[str, ...]:
    def text(c: Cue) -> str:
        return (scanned.title if c.field == "title" else scanned.body)[c.sentence].span.text

    per: dict[tuple[str, int], float] = {}
    for c in cues:
        per[(c.field, c.sentence)] = per.get((c.field, c.sentence), 0.0) + c.value
    keyed: dict[tuple[str, int], Cue] = {(c.field, c.sentence): c for c in cues}
    chosen: list[str] = []

    def add(s: str) -> None:
        if s and s not in chosen and len(chosen) < 3:
            chosen.append(s)

    if label is StanceLabel.MIXED:
        if debate_in_title and scanned.title:
            add(scanned.title[0].span.text)
        best_pos = max(per.items(), key=lambda kv: kv[1], default=None)
        best_neg = min(per.items(), key=lambda kv: kv[1], default=None)
        if best_pos is not None and best_pos[1] > 0:
            add(text(keyed[best_pos[0]]))
        if best_neg is not None and best_neg[1] < 0:
            add(text(keyed[best_neg[0]]))
    elif label in (StanceLabel.BULLISH, StanceLabel.BEARISH):
        sign = 1.0 if label is StanceLabel.BULLISH else -1.0
        for k, v in sorted(per.items(), key=lambda kv: -sign * kv[1]):
            if v * sign > 0:
                add(text(keyed[k]))
    if not chosen:
        add(fallback)
    return tuple(chosen)


def assess_detailed(
    article: Article,
    target: str,
    hits: Sequence[Hit],
    lexicon: Lexicon,
    thresholds: StanceThresholds = StanceThresholds(),
) -> StanceReport:
    """`assess` plus the weighed cues behind it."""
    lang = _choose_language(article, lexicon)
    if lang is None:
        return StanceReport(Stance(target=target, label=StanceLabel.NEUTRAL, score=0.0), (), 0.0)
    scanned = _scan_article(article, lang, lexicon.cache)
    w = lexicon.weights
    title_m, body_m = _mentions(article, target, hits, lexicon.roles)
    modifier = 1.0
    for marker, weight in (("explainer", w.explainer), ("supplier", w.supplier)):
        if any(lang.marker_ids[marker] in s.markers for s in scanned.title):
            modifier *= weight
    first_body = scanned.body[0].span if scanned.body else None
    target_leads = any(m.kind == _TARGET for m in title_m) or (
        first_body is not None
        and any(m.kind == _TARGET and first_body.start <= m.start < first_body.end for m in body_m)
    )
    tally = _Tally()
    for fld, sentences, mentions in (
        ("title", scanned.title, title_m),
        ("body", scanned.body, body_m),
    ):
        ctx = _Context(lang, w, fld, modifier, target_leads)  # type: ignore[arg-type]
        for i, sentence in enumerate(sentences):
            for clause in sentence.clauses:
                _weigh_clause(ctx, tally, i, sentence, clause, mentions)
    debate = _debate(scanned, w)
    label, score, confidence = _label(tally, debate, thresholds, w)
    mk = lang.marker_ids
    debate_in_title = any(
        g in s.markers for s in scanned.title for g in (mk["versus"], mk["debate"], mk["question"])
    )
    fallback = _first_target_sentence(scanned, title_m, body_m)
    evidence = _evidence(label, tally.cues, scanned, debate_in_title, fallback)
    stance = Stance(
        target=target,
        label=label,
        score=max(-1.0, min(1.0, score)),
        confidence=max(0.0, min(1.0, confidence)),
        evidence=evidence,
    )
    return StanceReport(stance, tuple(tally.cues), debate)


def _first_target_sentence(
    scanned: _Scanned, title_m: list[_Mention], body_m: list[_Mention]
) -> str:
    if scanned.title and any(m.kind == _TARGET for m in title_m):
        return scanned.title[0].span.text
    for s in scanned.body:
        if any(m.kind == _TARGET and s.span.start <= m.start < s.span.end for m in body_m):
            return s.span.text
    return ""


def assess(
    article: Article,
    target: str,
    hits: Sequence[Hit],
    lexicon: Lexicon,
    thresholds: StanceThresholds = StanceThresholds(),
) -> Stance:
    """The stance of `article` toward `target`, with one to three evidence sentences."""
    return assess_detailed(article, target, hits, lexicon, thresholds).stance
