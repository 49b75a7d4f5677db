"""Rule evaluation: which clauses of a compiled rule hold for one article, and why.

`monitor.core.rules` defines the rules and the facts they are checked against and
re-exports `check` and `fire` from here; the engine calls `fire_all` once per article.
This module holds no types of its own so that setup.py can compile it with Cython
(rules.py, with its pydantic models, cannot be); where no compiler was at hand it runs
as the Python it is. tests/test_compiled_engine.py keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from monitor.core.models import RuleMatch
from monitor.core.slots import fast_maker as maker

if TYPE_CHECKING:
    from monitor.core.rules import CompiledRule, Cond, Facts

_new_rule_match = maker(RuleMatch)


def rule_match(r: CompiledRule, reasons: tuple[str, ...]) -> RuleMatch:
    return _new_rule_match(r.id, r.title, r.severity, r.destinations, r.cooldown_s, reasons)


def _where(field: str, start: int, end: int) -> str:
    return f"{field} {start}-{end}"


def holds(c: Cond, f: Facts) -> str | None:
    """A reason string when the condition holds, else None."""
    seen = f.seen
    label = c.label
    if label in seen:
        return seen[label]
    why: str | None = None
    if c.kind == "entity":
        hits = f.hits_by_entity.get(c.value)
        if hits:
            h = hits[0]
            more = f" (+{len(hits) - 1} more)" if len(hits) > 1 else ""
            why = f'{c.value}: "{h.alias}" at {h.field} {h.start}-{h.end}{more}'
    elif c.kind == "term":
        t = f.terms.get(c.value)
        if t:
            why = f"{label}: at {_where(*t[0])}"
    else:
        assert c.regex is not None
        search = c.searcher.search if c.searcher is not None else c.regex.search
        for name, text in (("title", f.title), ("body", f.text)):
            m = search(text)
            if m:
                why = f'{label}: "{m.group(0)}" at {_where(name, m.start(), m.end())}'
                break
    seen[label] = why
    return why


def check(rule: CompiledRule, f: Facts) -> tuple[list[str], str | None]:  # noqa: C901
    """The reasons of every clause that held, in order, and the reason of the first
    clause that failed (None when the rule holds). One check per clause."""
    reasons: list[str] = []
    if rule.langs and f.article.lang not in rule.langs:
        return reasons, f"langs: {f.article.lang} not in {sorted(rule.langs)}"
    if rule.sources and not (
        f.article.source.casefold() in rule.sources or f.article.feed.casefold() in rule.sources
    ):
        return reasons, f"sources: {f.article.source or f.article.feed or '(none)'} not listed"
    # Looked up inline: most conditions name an entity or term the article lacks, or
    # one already worded for this article.
    seen = f.seen
    present = f.hits_by_entity
    terms = f.terms
    for c in rule.all:
        kind = c.kind
        if (kind == "entity" and c.value not in present) or (
            kind == "term" and c.value not in terms
        ):
            return reasons, f"all: {c.label} not found"
        why = seen[c.label] if c.label in seen else holds(c, f)
        if why is None:
            return reasons, f"all: {c.label} not found"
        reasons.append("all: " + why)
    for group in rule.any:
        for c in group:
            kind = c.kind
            if (kind == "entity" and c.value not in present) or (
                kind == "term" and c.value not in terms
            ):
                continue
            why = seen[c.label] if c.label in seen else holds(c, f)
            if why is not None:
                reasons.append("any: " + why)
                break
        else:
            return reasons, "any: none of " + ", ".join(c.label for c in group) + " found"
    for c in rule.none:
        kind = c.kind
        if (kind == "entity" and c.value not in present) or (
            kind == "term" and c.value not in terms
        ):
            continue
        why = seen[c.label] if c.label in seen else holds(c, f)
        if why is not None:
            return reasons, "none: " + why
    if rule.min_total:
        named = {c.value for c in rule.all if c.kind == "entity"}
        for group in rule.any:
            named |= {c.value for c in group if c.kind == "entity"}
        total = sum(len(f.hits_by_entity.get(e, ())) for e in named)
        if total < rule.min_total:
            return reasons, f"min_mentions: {total} < {rule.min_total}"
        reasons.append(f"min_mentions: {total} >= {rule.min_total}")
    for entity, n in rule.min_each:
        got = len(f.hits_by_entity.get(entity, ()))
        if got < n:
            return reasons, f"min_mentions: {entity} {got} < {n}"
        reasons.append(f"min_mentions: {entity} {got} >= {n}")
    for target, labels in rule.stance:
        s = f.stance.get(target)
        if s is None or s.label.value not in labels:
            got_label = s.label.value if s is not None else "not assessed"
            return reasons, f"stance: {target} is {got_label}, wanted {'/'.join(sorted(labels))}"
        reasons.append(f"stance: {target} {s.label.value} ({s.score:+.2f})")
    return reasons, None


def fire(rule: CompiledRule, f: Facts) -> RuleMatch | None:
    """The rule's match when it holds (as `evaluate(...).to_match()`), else None."""
    reasons, failed = check(rule, f)
    return None if failed is not None else rule_match(rule, tuple(reasons))


def fire_all(
    rules: Sequence[CompiledRule], positions: Sequence[int], f: Facts
) -> tuple[RuleMatch, ...]:
    """The matches, in order, of the rules at `positions` that hold."""
    matches: list[RuleMatch] = []
    for pos in positions:
        m = fire(rules[pos], f)
        if m is not None:
            matches.append(m)
    return tuple(matches)
