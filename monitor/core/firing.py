"""Rule evaluation: which clauses of a compiled rule hold for one article, and why.

`monitor.core.rules` defines the rules and the facts they are checked against and
re-exports `check` and `fire` from here; the engine calls `fire_all` once per article.
This module holds no types of its own so that setup.py can compile it with Cython
(rules.py, with its pydantic models, cannot be); where no compiler was at hand it runs
as the Python it is. tests/test_compiled_engine.py keeps the two in step.

Each rule carries a plan (`make_plan`, built once with the rule): its clauses as plain
tuples, conditions with an integer kind and the failure reasons that do not depend
on the article already worded, so that evaluation reads tuples instead of looking
attributes up on the rule and its conditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from monitor.core.models import RuleMatch
from monitor.core.slots import fast_maker as maker

if TYPE_CHECKING:
    from monitor.core.rules import CompiledRule, Cond, Facts

_new_rule_match = maker(RuleMatch)

# A condition's kind in a plan step: compared below as the literals 0 (entity) and
# 1 (term), which the compiled module tests without a lookup
_KINDS = {"entity": 0, "term": 1, "regex": 2}

# (kind, key, label, failure reason in `all`): the key is the entity id or term key
# looked up in the article's facts, or the regex's search function
Step = tuple[int, Any, str, str]
Group = tuple[tuple[Step, ...], str]  # an `any` group and its failure reason
# min_total, the entities it counts, min_each, stance with each target's wanted
# labels worded
Rest = tuple[
    int, tuple[str, ...], tuple[tuple[str, int], ...], tuple[tuple[str, frozenset[str], str], ...]
]
Head = tuple[str, str, str, tuple[str, ...], float]  # the match's fields but the reasons
# (head, langs, sources, all, any, none, rest when the rule counts or reads stances)
Plan = tuple[
    Head,
    frozenset[str],
    frozenset[str],
    tuple[Step, ...],
    tuple[Group, ...],
    tuple[Step, ...],
    Rest | None,
]


def rule_match(r: CompiledRule, reasons: tuple[str, ...]) -> RuleMatch:
    return _new_rule_match(r.id, r.title, r.severity, r.destinations, r.cooldown_s, reasons)


def _step(c: Cond) -> Step:
    key: Any = c.value
    if c.kind == "regex":
        assert c.regex is not None
        key = c.searcher.search if c.searcher is not None else c.regex.search
    return (_KINDS[c.kind], key, c.label, f"all: {c.label} not found")


def make_plan(rule: CompiledRule) -> Plan:
    """`rule` as `check` reads it (see the module's docstring)."""
    rest: Rest | None = None
    if rule.min_total or rule.min_each or rule.stance:
        named = {c.value for c in rule.all if c.kind == "entity"}
        for group in rule.any:
            named |= {c.value for c in group if c.kind == "entity"}
        stance = tuple((target, labels, "/".join(sorted(labels))) for target, labels in rule.stance)
        rest = (rule.min_total, tuple(sorted(named)), rule.min_each, stance)
    return (
        (rule.id, rule.title, rule.severity, rule.destinations, rule.cooldown_s),
        rule.langs,
        rule.sources,
        tuple(_step(c) for c in rule.all),
        tuple(
            (
                tuple(_step(c) for c in group),
                "any: none of " + ", ".join(c.label for c in group) + " found",
            )
            for group in rule.any
        ),
        tuple(_step(c) for c in rule.none),
        rest,
    )


def _why(kind: int, key: Any, label: str, f: Facts) -> str | None:
    """A reason string when the condition holds, else None; remembered in `f.seen`.
    An entity or term condition is only asked about once its key is known present."""
    why: str | None = None
    if kind == 0:  # an entity: the key is the label
        hits = f.hits_by_entity[key]
        n = len(hits)
        if n:
            h = hits[0]
            if n > 1:
                why = f'{key}: "{h.alias}" at {h.field} {h.start}-{h.end} (+{n - 1} more)'
            else:
                why = f'{key}: "{h.alias}" at {h.field} {h.start}-{h.end}'
    elif kind == 1:  # a term
        t = f.terms[key]
        if t:
            field, start, end = t[0]
            why = f"{label}: at {field} {start}-{end}"
    else:  # a regex: the key searches
        m = key(f.title)
        name = "title"
        if m is None:
            m = key(f.text)
            name = "body"
        if m is not None:
            why = f'{label}: "{m.group(0)}" at {name} {m.start()}-{m.end()}'
    f.seen[label] = why
    return why


def _gate(langs: frozenset[str], sources: frozenset[str], f: Facts) -> str | None:
    """The failure reason of the rule's language or source clause, if any."""
    a = f.article
    if langs and a.lang not in langs:
        return f"langs: {a.lang} not in {sorted(langs)}"
    if sources and not (a.source.casefold() in sources or a.feed.casefold() in sources):
        return f"sources: {a.source or a.feed or '(none)'} not listed"
    return None


def _rest(rest: Rest, f: Facts, reasons: list[str]) -> str | None:
    """Mention counts and stances: their reasons appended, or the failing one's."""
    min_total, named, min_each, stance = rest
    present = f.hits_by_entity
    if min_total:
        total = sum(len(present.get(e, ())) for e in named)
        if total < min_total:
            return f"min_mentions: {total} < {min_total}"
        reasons.append(f"min_mentions: {total} >= {min_total}")
    for entity, n in min_each:
        got = len(present.get(entity, ()))
        if got < n:
            return f"min_mentions: {entity} {got} < {n}"
        reasons.append(f"min_mentions: {entity} {got} >= {n}")
    for target, labels, wanted in stance:
        s = f.stance.get(target)
        if s is None or s.label.value not in labels:
            got_label = s.label.value if s is not None else "not assessed"
            return f"stance: {target} is {got_label}, wanted {wanted}"
        reasons.append(f"stance: {target} {s.label.value} ({s.score:+.2f})")
    return None


def _check(p: Plan, f: Facts, reasons: list[str]) -> str | None:
    """Append the reasons of every clause of plan `p` that held, in order; the reason
    of the first clause that failed (None when the rule holds). One check per clause."""
    _, langs, sources, all_, any_, none, rest = p
    if langs or sources:
        failed = _gate(langs, sources, f)
        if failed is not None:
            return failed
    # Looked up inline: most conditions name an entity or term the article lacks, or
    # one already worded for this article.
    seen = f.seen
    present = f.hits_by_entity
    terms = f.terms
    for kind, key, label, missing in all_:
        if (kind == 0 and key not in present) or (kind == 1 and key not in terms):
            return missing
        why = seen[label] if label in seen else _why(kind, key, label, f)
        if why is None:
            return missing
        reasons.append("all: " + why)
    for steps, missing in any_:
        for kind, key, label, _ in steps:
            if (kind == 0 and key not in present) or (kind == 1 and key not in terms):
                continue
            why = seen[label] if label in seen else _why(kind, key, label, f)
            if why is not None:
                reasons.append("any: " + why)
                break
        else:
            return missing
    for kind, key, label, _ in none:
        if (kind == 0 and key not in present) or (kind == 1 and key not in terms):
            continue
        why = seen[label] if label in seen else _why(kind, key, label, f)
        if why is not None:
            return "none: " + why
    if rest is not None:
        return _rest(rest, f, reasons)
    return None


def check(rule: CompiledRule, f: Facts) -> tuple[list[str], str | None]:
    """The reasons of every clause that held, in order, and the reason of the first
    clause that failed (None when the rule holds). One check per clause."""
    reasons: list[str] = []
    return reasons, _check(rule.plan, f, reasons)


def fire(rule: CompiledRule, f: Facts) -> RuleMatch | None:
    """The rule's match when it holds (as `evaluate(...).to_match()`), else None."""
    reasons: list[str] = []
    if _check(rule.plan, f, reasons) is not None:
        return None
    return rule_match(rule, tuple(reasons))


def fire_all(
    rules: Sequence[CompiledRule], positions: Sequence[int], f: Facts
) -> tuple[RuleMatch, ...]:
    """The matches, in order, of the rules at `positions` that hold."""
    matches: list[RuleMatch] = []
    for pos in positions:
        p = rules[pos].plan
        reasons: list[str] = []
        if _check(p, f, reasons) is None:
            rid, title, severity, destinations, cooldown_s = p[0]
            matches.append(
                _new_rule_match(rid, title, severity, destinations, cooldown_s, tuple(reasons))
            )
    return tuple(matches)
