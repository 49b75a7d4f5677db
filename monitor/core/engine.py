"""The engine: entities -> rules -> stance, over one article at a time.

`compile_ruleset` turns validated entity and rule specs into a `RuleSet`: one
matcher automaton, the compiled rules with an index from entity or term to the
rules that need it, and the stance lexicon. A RuleSet is immutable; hot reload
builds a new one and swaps the reference. `analyze(ruleset, article)` returns an
`Analysis`; `explain_rules` gives every rule's verdict, matched or not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from monitor.core.errors import RuleError
from monitor.core.firing import fire_all
from monitor.core.matcher import (
    Accepted,
    AliasSpec,
    Field,
    Matcher,
    build_matcher,
    normalize_text,
)
from monitor.core.models import Analysis, Article, Hit, Stance
from monitor.core.rules import (
    CompiledRule,
    EntitySpec,
    Facts,
    RuleFileErrors,
    Sources,
    Verdict,
    compile_rule,
    evaluate,
)
from monitor.core.sentences import Span, split_sentences
from monitor.core.slots import fast_maker as maker
from monitor.core.stance import Lexicon, StanceThresholds, assess_all

BROKEN_ENTITY = "entity failed validation"


@dataclass(frozen=True)
class RuleSet:
    """Everything needed to analyse articles; built once, shared, never mutated."""

    matcher: Matcher
    entities: Mapping[str, EntitySpec]
    rules: tuple[CompiledRule, ...]
    index: Mapping[str, tuple[int, ...]]  # "e:<entity>" / "t:<term>" -> rule positions
    always: tuple[int, ...]  # rules with no indexable anchor
    stance_targets: tuple[str, ...]
    lexicon: Lexicon
    thresholds: StanceThresholds = field(default_factory=StanceThresholds)
    files: tuple[str, ...] = ()
    # `index` split by kind, keyed without the prefix: no string building per article
    by_entity: Mapping[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)
    by_term: Mapping[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        split = {
            kind: {k[2:]: v for k, v in self.index.items() if k.startswith(kind)}
            for kind in ("e:", "t:")
        }
        object.__setattr__(self, "by_entity", split["e:"])  # frozen: set once, here
        object.__setattr__(self, "by_term", split["t:"])

    @property
    def alias_count(self) -> int:
        return self.matcher.alias_count

    def summary(self) -> str:
        return (
            f"{len(self.entities)} entities, {self.alias_count} aliases, "
            f"{len(self.rules)} rules, {len(self.stance_targets)} stance targets"
        )


def _entity_aliases(e: EntitySpec) -> list[AliasSpec]:
    ctx = e.context
    near = tuple(ctx.near) if ctx else ()
    avoid = tuple(ctx.avoid) if ctx else ()
    window = ctx.window if ctx else 80
    out = [AliasSpec(e.id, a, "alias", e.cased, near, avoid, window) for a in e.aliases.all()]
    out += [AliasSpec(e.id, t, "ticker", True, near, avoid, window) for t in e.tickers]
    for f in e.forms:
        out += [
            AliasSpec(e.id, a, "alias", f.cased, tuple(f.near), tuple(f.avoid), f.window)
            for a in f.aliases.all()
        ]
    return out


def compile_ruleset(
    sources: Sources,
    *,
    texts: Mapping[str, str] | None = None,
    lexicon: Lexicon,
    stance_targets: Sequence[str] | None = None,
    thresholds: StanceThresholds | None = None,
    notifiers: Iterable[str] | None = None,
) -> RuleSet:
    """Resolve references and build the matcher; RuleFileErrors lists every problem.

    `stance_targets` None means the entities marked `stance_target`; `notifiers`
    None skips the check that rule destinations name configured notifiers.
    """
    errors: list[RuleError] = []
    entities = {spec.id: spec for spec, _ in sources.entities}
    ids = set(entities)
    if stance_targets is None:
        targets = tuple(e.id for e in entities.values() if e.stance_target)
    else:
        targets = tuple(stance_targets)
        for t in targets:
            if t not in ids:
                errors.append(
                    RuleError(f"stance target {t!r} is not a known entity", field="stance_targets")
                )
    names = set(notifiers) if notifiers is not None else None
    compiled: list[CompiledRule] = []
    for spec, where in sources.rules:
        text = texts.get(where.path) if texts else None
        rule, errs = compile_rule(spec, where, text, ids | sources.broken, set(targets), names)
        errors += errs
        if rule is not None and spec.enabled:
            compiled.append(rule)
    if errors:
        raise RuleFileErrors(errors)
    if sources.broken:
        raise RuleFileErrors([RuleError(BROKEN_ENTITY, rule=i) for i in sorted(sources.broken)])
    return build_ruleset(
        list(entities.values()),
        compiled,
        lexicon=lexicon,
        stance_targets=targets,
        thresholds=thresholds or StanceThresholds(),
        files=tuple(dict.fromkeys(w.path for _, w in (*sources.entities, *sources.rules))),
    )


def build_ruleset(
    entities: Sequence[EntitySpec],
    rules: Sequence[CompiledRule],
    *,
    lexicon: Lexicon,
    stance_targets: Sequence[str],
    thresholds: StanceThresholds | None = None,
    files: tuple[str, ...] = (),
) -> RuleSet:
    """Assemble a RuleSet from already validated parts (also used by benchmarks)."""
    aliases = [a for e in entities for a in _entity_aliases(e)]
    excludes = {e.id: list(e.exclude) for e in entities if e.exclude}
    terms: set[str] = set()
    for r in rules:
        terms |= r.terms()
    matcher = build_matcher(aliases, excludes, sorted(terms))
    index: dict[str, list[int]] = {}
    always: list[int] = []
    for pos, r in enumerate(rules):
        anchors = r.anchors()
        if anchors is None:
            always.append(pos)
        else:
            for key in dict.fromkeys(anchors):
                index.setdefault(key, []).append(pos)
    return RuleSet(
        matcher=matcher,
        entities={e.id: e for e in entities},
        rules=tuple(rules),
        index={k: tuple(v) for k, v in index.items()},
        always=tuple(always),
        stance_targets=tuple(stance_targets),
        lexicon=lexicon,
        thresholds=thresholds or StanceThresholds(),
        files=files,
    )


def normalized(article: Article) -> Article:
    """The article with NFKC, single-spaced title, summary and body (spans refer to these)."""
    title = normalize_text(article.title)
    summary = normalize_text(article.summary)
    body = normalize_text(article.body)
    if title == article.title and summary == article.summary and body == article.body:
        return article
    return replace(article, title=title, summary=summary, body=body)


_new_hit = maker(Hit)


def _hits(
    where: Field,
    found: Sequence[Accepted],
    spans: Sequence[Span],
    by_entity: dict[str, list[Hit]],
    out: list[Hit],
) -> None:
    """Hit values of one field, with the sentence each one sits in (`spans`, the
    field's sentences), appended to `out` and grouped into `by_entity`. `found` is
    ordered by position, so one forward walk over the sentences suffices."""
    if not found:
        return
    add = out.append
    last = len(spans) - 1
    k = 0
    sentence = spans[0].text if spans else ""
    following = spans[1].start if last > 0 else 1 << 62  # start of sentence k + 1
    for start, end, entity, _, alias in found:
        if following <= start:
            while k < last and spans[k + 1].start <= start:
                k += 1
            following = spans[k + 1].start if k < last else 1 << 62
            sentence = spans[k].text
        hit = _new_hit(entity, alias, where, start, end, sentence)
        add(hit)
        group = by_entity.get(entity)
        if group is None:
            by_entity[entity] = [hit]
        else:
            group.append(hit)


@dataclass(frozen=True, slots=True)
class _Scan:
    article: Article
    hits: tuple[Hit, ...]
    facts: Facts
    entities: tuple[str, ...]


# One of each per article: built without the dataclass __init__ (see monitor/core/slots.py).
_new_scan = maker(_Scan)
_new_facts = maker(Facts)
_new_analysis = maker(Analysis)


def _scan(rs: RuleSet, article: Article, *, with_stance: bool = True) -> _Scan:
    article = normalized(article)
    title, text = article.title, article.text
    in_title, in_body, terms = rs.matcher.find_by_field(title, text)
    by_entity: dict[str, list[Hit]] = {}
    found: list[Hit] = []
    if in_title:  # a headline is one sentence, as the stance step reads it
        _hits("title", in_title, (Span(0, len(title), title),), by_entity, found)
    # The body's sentences serve its hits and the stance (any target in the title).
    stance_wanted = with_stance and any(t in by_entity for t in rs.stance_targets)
    sentences = split_sentences(text) if in_body or stance_wanted else []
    _hits("body", in_body, sentences, by_entity, found)
    hits = tuple(found)
    entities = tuple(sorted(by_entity))
    stance: dict[str, Stance] = {}
    if with_stance:
        targets = [t for t in rs.stance_targets if t in by_entity]
        if targets:
            stance = assess_all(
                article,
                targets,
                hits,
                rs.lexicon,
                rs.thresholds,
                sentences,
                (in_title, in_body),
            )
    facts = _new_facts(article, title, text, by_entity, terms, stance, {})
    return _new_scan(article, hits, facts, entities)


def _candidates(rs: RuleSet, facts: Facts) -> list[int]:
    """Positions, in rule order, of the rules whose anchor the article holds."""
    found: set[int] = set(rs.always)
    by_entity, by_term = rs.by_entity, rs.by_term
    for e in facts.hits_by_entity:
        if e in by_entity:
            found.update(by_entity[e])
    for t in facts.terms:
        if t in by_term:
            found.update(by_term[t])
    return sorted(found)


def analyze(rs: RuleSet, article: Article, *, with_stance: bool = True) -> Analysis:
    """Find entities, judge stance for each stance target mentioned, and fire rules.

    `with_stance=False` skips stance (rules with a stance clause then never fire)."""
    s = _scan(rs, article, with_stance=with_stance)
    matches = fire_all(rs.rules, _candidates(rs, s.facts), s.facts)
    return _new_analysis(s.article, s.entities, s.hits, matches, dict(s.facts.stance))


def match_only(rs: RuleSet, article: Article) -> tuple[str, ...]:
    """Entities of an article without stance or rules (benchmarks, quick filters)."""
    a = normalized(article)
    return rs.matcher.entities(a.title, a.text)


def explain_rules(rs: RuleSet, analysis: Analysis) -> list[Verdict]:
    """Every rule's verdict on an analysed article, in rule-file order."""
    by_entity: dict[str, list[Hit]] = {}
    for h in analysis.hits:
        by_entity.setdefault(h.entity, []).append(h)
    a = analysis.article
    _, terms = rs.matcher.find(a.title, a.text)
    facts = Facts(a, a.title, a.text, by_entity, terms, analysis.stance)
    return [evaluate(r, facts) for r in rs.rules]
