"""Entity and rule files: their schema, validation with file:line errors, and rule evaluation.

A rule directory holds TOML files with `[[entity]]` and `[[rule]]` tables (see the
README for the format). `parse_sources` turns the text of those files into
validated `EntitySpec` and `RuleSpec` values, collecting every problem as a
`RuleError` that names the file, line, entity or rule id and field. `compile_rule`
turns a `RuleSpec` into a `CompiledRule`, which `evaluate` checks against what the
matcher found in one article, giving its reasons.

Condition items are strings: a bare id names an entity, `term:words` a free term
(matched with the same boundaries as aliases) and `re:pattern` a case-insensitive
regular expression over the title and text.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from monitor.core.durations import parse_duration
from monitor.core.errors import RuleError
from monitor.core.firing import Plan, check, make_plan, rule_match
from monitor.core.firing import fire as fire  # re-exported: part of this module's API
from monitor.core.matcher import TermHit, term_key
from monitor.core.models import Article, Hit, RuleMatch, Stance
from monitor.core.regexscan import Searcher

Severity = Literal["info", "notice", "warning", "critical"]
Label = Literal["bullish", "bearish", "mixed", "neutral"]

_ID = r"^[a-z][a-z0-9_]*$"
_RULE_ID = r"^[a-z0-9][a-z0-9_\-]*$"


def _duration(value: Any) -> float:
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError(f"not a duration: {value!r}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Aliases(_Model):
    ko: list[str] = Field(default_factory=list)
    en: list[str] = Field(default_factory=list)

    def all(self) -> list[str]:
        return [*self.ko, *self.en]


class Context(_Model):
    """Where an alias counts: only within `window` characters of a `near` word
    (in the same title or text), and never in an article with an `avoid` word."""

    near: list[str] = Field(default_factory=list)
    avoid: list[str] = Field(default_factory=list)
    window: int = Field(default=80, ge=1, le=5000)


class AliasForm(Context):
    """Extra aliases of an entity with their own case rule and context."""

    aliases: Aliases
    cased: bool = False

    @model_validator(mode="after")
    def _some(self) -> AliasForm:
        if not self.aliases.all():
            raise ValueError("a form needs at least one alias")
        return self


def _no_blank(values: list[str]) -> list[str]:
    for v in values:
        if not v.strip():
            raise ValueError("empty alias")
    return values


class EntitySpec(_Model):
    id: str = Field(pattern=_ID)
    name: str = ""
    stance_target: bool = False
    aliases: Aliases = Field(default_factory=Aliases)
    cased: bool = False
    tickers: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    context: Context | None = None
    forms: list[AliasForm] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> EntitySpec:
        if not (self.aliases.all() or self.tickers or self.forms):
            raise ValueError("an entity needs at least one alias, ticker or form")
        for form in [self.aliases.all(), self.tickers, self.exclude]:
            _no_blank(form)
        for f in self.forms:
            _no_blank(f.aliases.all())
        return self


Item = str  # "entity_id" | "term:words" | "re:pattern"


class When(_Model):
    all: list[Item] = Field(default_factory=list)
    any: list[Item] | list[list[Item]] = Field(default_factory=list)
    none: list[Item] = Field(default_factory=list)
    min_mentions: int | dict[str, int] = 0
    langs: list[Literal["ko", "en"]] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    stance: dict[str, list[Label]] = Field(default_factory=dict)

    def any_groups(self) -> list[list[Item]]:
        if not self.any:
            return []
        groups: list[list[Item]] = []
        flat: list[Item] = []
        for x in self.any:
            if isinstance(x, str):
                flat.append(x)
            else:
                groups.append(list(x))
        return [flat] if flat else groups

    @model_validator(mode="after")
    def _some(self) -> When:
        if not (self.all or self.any_groups()):
            raise ValueError("a rule needs at least one item in `all` or `any`")
        if any(not g for g in self.any_groups()):
            raise ValueError("an `any` group is empty")
        return self


class RuleSpec(_Model):
    id: str = Field(pattern=_RULE_ID)
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    severity: Severity = "info"
    destinations: list[str] = Field(default_factory=list)
    cooldown: Annotated[float, BeforeValidator(_duration)] = 0.0
    enabled: bool = True
    when: When


class _File(_Model):
    entity: list[dict[str, Any]] = Field(default_factory=list)
    rule: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Located:
    """A parsed entity or rule with where it came from."""

    path: str
    line: int | None
    index: int = 0  # position among the file's tables of its kind


class RuleFileErrors(RuleError):
    """Several rule-file problems at once; `errors` holds each of them."""

    def __init__(self, errors: Sequence[RuleError]) -> None:
        self.errors = tuple(errors)
        lines = [str(e) for e in self.errors]
        super().__init__(
            f"{len(lines)} problem(s) in rule files:\n  " + "\n  ".join(lines),
            path=None,
        )


# --- locating things in TOML text -------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[\s*(entity|rule)\s*\]\]\s*(#.*)?$")


def _blocks(text: str, table: str) -> list[tuple[int, int]]:
    """0-based (first, last+1) line ranges of each `[[table]]` element in `text`."""
    lines = text.splitlines()
    starts: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m:
            starts.append((i, m.group(1)))
    out: list[tuple[int, int]] = []
    for k, (i, name) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(lines)
        if name == table:
            out.append((i, end))
    return out


def locate(text: str, table: str, index: int, keys: Sequence[str | int] = ()) -> int | None:
    """Best-effort 1-based line of `keys` inside element `index` of `[[table]]`."""
    blocks = _blocks(text, table)
    if index >= len(blocks):
        return None
    first, end = blocks[index]
    lines = text.splitlines()
    names = [k for k in keys if isinstance(k, str)]
    for name in reversed(names):
        pat = re.compile(
            rf"^\s*(?:[\w.]+\.)?{re.escape(name)}\s*=|^\s*\[\[?[\w.]*\b{re.escape(name)}\]\]?"
        )
        for i in range(first, end):
            if pat.match(lines[i]):
                return i + 1
        inline = re.compile(rf"\b{re.escape(name)}\s*=")
        for i in range(first, end):
            if inline.search(lines[i]):
                return i + 1
    return first + 1


def _toml_line(e: tomllib.TOMLDecodeError, text: str) -> int | None:
    m = re.search(r"line (\d+)", str(e))
    if m:
        return int(m.group(1))
    return max(1, len(text.splitlines())) if "end of document" in str(e) else None


# --- parsing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    """Validated contents of a rule directory, in file order."""

    entities: tuple[tuple[EntitySpec, Located], ...]
    rules: tuple[tuple[RuleSpec, Located], ...]
    # ids of entity tables that failed validation: rules may name them without a
    # second, misleading "unknown entity" error
    broken: frozenset[str] = frozenset()


def _field_path(loc: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in loc)


def _validate_items(
    cls: type[EntitySpec] | type[RuleSpec],
    table: str,
    items: list[dict[str, Any]],
    path: str,
    text: str,
    errors: list[RuleError],
) -> list[tuple[Any, Located]]:
    out: list[tuple[Any, Located]] = []
    for i, raw in enumerate(items):
        ident = raw.get("id") if isinstance(raw, dict) else None
        ident = ident if isinstance(ident, str) else None
        try:
            spec = cls.model_validate(raw)
        except ValidationError as e:
            for err in e.errors():
                loc = tuple(err["loc"])
                errors.append(
                    RuleError(
                        err["msg"],
                        path=path,
                        line=locate(text, table, i, loc),
                        rule=ident or f"{table} #{i + 1}",
                        field=_field_path(loc) or None,
                    )
                )
            continue
        out.append((spec, Located(path, locate(text, table, i), i)))
    return out


def parse_sources(sources: Mapping[str, str]) -> tuple[Sources, list[RuleError]]:
    """Parse and validate rule-file texts keyed by path. Returns what was valid and
    every problem found (syntax, schema, duplicate ids)."""
    errors: list[RuleError] = []
    entities: list[tuple[EntitySpec, Located]] = []
    rules: list[tuple[RuleSpec, Located]] = []
    named: set[str] = set()
    for path, text in sources.items():
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(e))
            errors.append(
                RuleError(f"TOML syntax error: {msg}", path=path, line=_toml_line(e, text))
            )
            continue
        try:
            doc = _File.model_validate(data)
        except ValidationError as e:
            for err in e.errors():
                loc = tuple(err["loc"])
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    msg = "unknown top-level table (expected [[entity]] or [[rule]])"
                errors.append(RuleError(msg, path=path, field=_field_path(loc) or None))
            continue
        named |= {str(raw.get("id")) for raw in doc.entity if isinstance(raw, dict)}
        entities += _validate_items(EntitySpec, "entity", doc.entity, path, text, errors)
        rules += _validate_items(RuleSpec, "rule", doc.rule, path, text, errors)
    for kind, pairs in (("entity", entities), ("rule", rules)):
        seen: dict[str, Located] = {}
        for spec, where in pairs:
            if spec.id in seen:
                first = seen[spec.id]
                errors.append(
                    RuleError(
                        f"duplicate {kind} id (first defined at {first.path}:{first.line})",
                        path=where.path,
                        line=where.line,
                        rule=spec.id,
                        field="id",
                    )
                )
            else:
                seen[spec.id] = where
    broken = frozenset(named - {spec.id for spec, _ in entities})
    return Sources(tuple(entities), tuple(rules), broken), errors


# --- compiled rules -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cond:
    """One condition item: an entity, a free term or a regular expression."""

    kind: Literal["entity", "term", "regex"]
    value: str  # entity id, term key or pattern source
    label: str  # as written in the rule file
    regex: re.Pattern[str] | None = None
    searcher: Searcher | None = None  # `regex` with a skip to where a match can start


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    title: str
    description: str
    severity: str
    destinations: tuple[str, ...]
    cooldown_s: float
    all: tuple[Cond, ...]
    any: tuple[tuple[Cond, ...], ...]
    none: tuple[Cond, ...]
    min_total: int
    min_each: tuple[tuple[str, int], ...]
    langs: frozenset[str]
    sources: frozenset[str]
    stance: tuple[tuple[str, frozenset[str]], ...]
    path: str = ""
    line: int | None = None
    # the rule as monitor/core/firing.py evaluates it, built once here
    plan: Plan = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "plan", make_plan(self))  # frozen: set once, here

    def anchors(self) -> tuple[str, ...] | None:
        """Index keys one of which must be present for the rule to hold;
        None when the rule must be tried on every article."""
        for c in self.all:
            if c.kind != "regex":
                return (_key(c),)
        for group in self.any:
            if all(c.kind != "regex" for c in group):
                return tuple(_key(c) for c in group)
        return None

    def terms(self) -> set[str]:
        words = {c.label[5:] for c in (*self.all, *self.none) if c.kind == "term"}
        for group in self.any:
            words |= {c.label[5:] for c in group if c.kind == "term"}
        return words


def _key(c: Cond) -> str:
    return ("e:" if c.kind == "entity" else "t:") + c.value


def parse_item(item: str, entity_ids: set[str]) -> Cond:
    """Read one condition item; ValueError for an unknown entity or a bad regex."""
    if item.startswith("term:"):
        words = item[5:].strip()
        if not words:
            raise ValueError("empty term")
        return Cond("term", term_key(words), item)
    if item.startswith("re:"):
        try:
            rx = re.compile(item[3:], re.IGNORECASE)
        except re.error as e:
            raise ValueError(f"bad regular expression {item[3:]!r}: {e}") from e
        return Cond("regex", item[3:], item, rx, Searcher.of(rx))
    if item not in entity_ids:
        raise ValueError(
            f"unknown entity {item!r} (write term:{item} for a free term, re:... for a regex)"
        )
    return Cond("entity", item, item)


def compile_rule(
    spec: RuleSpec,
    where: Located,
    text: str | None,
    entity_ids: set[str],
    stance_targets: set[str],
    notifiers: set[str] | None,
) -> tuple[CompiledRule | None, list[RuleError]]:
    """Resolve a RuleSpec's references; errors name the field of each bad reference."""
    errors: list[RuleError] = []

    def err(msg: str, *loc: str | int) -> None:
        line = locate(text, "rule", where.index, loc) if text else where.line
        errors.append(
            RuleError(msg, path=where.path, line=line, rule=spec.id, field=_field_path(loc))
        )

    def items(values: Sequence[str], *loc: str | int) -> tuple[Cond, ...]:
        out: list[Cond] = []
        for i, v in enumerate(values):
            try:
                out.append(parse_item(v, entity_ids))
            except ValueError as e:
                err(str(e), "when", *loc, i)
        return tuple(out)

    w = spec.when
    all_ = items(w.all, "all")
    groups = tuple(items(g, "any") for g in w.any_groups())
    none = items(w.none, "none")
    min_total = w.min_mentions if isinstance(w.min_mentions, int) else 0
    min_each = w.min_mentions if isinstance(w.min_mentions, dict) else {}
    for name in min_each:
        if name not in entity_ids:
            err(f"unknown entity {name!r}", "when", "min_mentions", name)
    for target in w.stance:
        if target not in entity_ids:
            err(f"unknown entity {target!r}", "when", "stance", target)
        elif target not in stance_targets:
            err(f"{target!r} is not a stance target", "when", "stance", target)
    if notifiers is not None:
        for d in spec.destinations:
            if d not in notifiers:
                err(f"unknown destination {d!r} (no notifier of that name)", "destinations")
    if errors:
        return None, errors
    return (
        CompiledRule(
            id=spec.id,
            title=spec.title,
            description=spec.description,
            severity=spec.severity,
            destinations=tuple(spec.destinations),
            cooldown_s=spec.cooldown,
            all=all_,
            any=groups,
            none=none,
            min_total=min_total,
            min_each=tuple(sorted(min_each.items())),
            langs=frozenset(w.langs),
            sources=frozenset(s.casefold() for s in w.sources),
            stance=tuple((t, frozenset(v)) for t, v in sorted(w.stance.items())),
            path=where.path,
            line=where.line,
        ),
        [],
    )


# --- evaluation ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Facts:
    """What the engine knows about one article when it evaluates rules."""

    article: Article
    title: str
    text: str
    hits_by_entity: Mapping[str, Sequence[Hit]]
    terms: Mapping[str, Sequence[TermHit]]
    stance: Mapping[str, Stance]
    # condition label -> reason or None: many rules share a condition (an entity,
    # a term, a pattern), so each is looked up and worded once per article
    seen: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A rule's outcome on one article: matched or not, and why."""

    rule: CompiledRule
    matched: bool
    reasons: tuple[str, ...]

    def to_match(self) -> RuleMatch:
        return rule_match(self.rule, self.reasons)


# `check` and `fire` live in monitor/core/firing.py, which setup.py can compile.


def evaluate(rule: CompiledRule, f: Facts) -> Verdict:
    """Check every clause of `rule`; the first failing clause is the reason it did not hold."""
    reasons, failed = check(rule, f)
    if failed is not None:
        return Verdict(rule, False, (*reasons, failed))
    return Verdict(rule, True, tuple(reasons))
