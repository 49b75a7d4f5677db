"""Stance cue lexicons: the file format, its validation, and the compiled matcher.

A lexicon file (`rules/lexicon/<name>.toml`) is plain TOML that traders can
read and edit. Files with `lang = "ko"` or `lang = "en"` hold the cues of one
language; a file without `lang` holds settings shared by all languages (entity
roles, weights). Everything is validated with pydantic; any error names the
file and the cue (`RuleError`).

Compilation turns every term of a language into one Aho-Corasick automaton
(ahocorasick_rs, leftmost-longest), so that scanning a text for all cues is a
single pass, and maps each matched term back to the groups it belongs to.

Term syntax:
- literal text, matched case-insensitively; a space matches one optional space
  (Korean spacing varies: `못 미쳤다` / `못미쳤다`);
- `{a,b,}` expands to alternatives (`fell`, `rais{e,es,ed,ing}`, `slid{e,es,ing}`);
- a term that starts or ends with a Latin letter or digit only matches at a word
  boundary on that side (`fell` does not match inside `fellow`);
- a leading `|` requires a word boundary on the left for any script (`|안 `, so
  that `방안` and `안정` never read as negation).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import ahocorasick_rs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.core.errors import RuleError
from monitor.core.matcher import fold

Polarity = Literal["bullish", "bearish"]
Scope = Literal["target", "driver", "price", "any"]

# Marker classes a language file may define; each is a group of terms.
MARKERS = (
    "negation_after",  # Korean: a negator after the predicate (지 않, 없, 아니)
    "negation_before",  # a negator before the predicate (not, never, 안, 못)
    "negation_breaker",  # "not only", 못지않: looks like negation, is not
    "hedge",  # could, may, 가능성, 우려: weight down
    "background",  # "a day after", "recovering part of": what follows is past context
    "background_before",  # "~한 지 몇 주 만에": what comes before is an earlier event
    "attribution",  # said, 밝혔다: a claim of someone else
    "refute",  # the clause's claim is declared false: flip it (오해, dismissing)
    "not_price",  # pay, assets, weighting: between a company and a move, not its shares
    "refute_back",  # "Nvidia denied the report.": the sentence before is declared false
    "resolved",  # "the flaw has been fixed": the sentence's earlier bearish cues are old news
    "inverse",  # the clause is about those betting against the target: flip it (short sellers)
    "alternative",  # "or" inside a headline question: "boon or bubble?" sets two sides
    "doubt",  # a headline question that doubts its news: "will China actually buy?", 흔들리나
    "counter",  # someone answers back: weak evidence of a debate
    "debate",  # analysts split, 엇갈, 팽팽: strong evidence of a debate
    "versus",  # "A vs B" in a headline: a two-sided headline
    "question",  # a headline question (?, 일까, 인가)
    "explainer",  # explainers describe rather than judge
    "supplier",  # supplier qualification news: affects the supplier
    "boundary",  # clause boundaries (지만, 반면, but, while)
    "ignore",  # terms to consume so that they match nothing (수요일, 못지않)
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PairCue(_Model):
    """A subject term and a predicate term in one clause: `{수요} x {증가}` is bullish."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    subject: list[str] = Field(min_length=1)  # group names, or "@target" / "@company"
    predicate: list[str] = Field(min_length=1)  # group names
    polarity: Polarity
    weight: float = Field(default=1.0, gt=0, le=5)
    scope: Scope = "target"
    # How much farther a subject after its predicate counts than one before it (default:
    # the language's). Subjects come first ("demand rose"); an object follows its verb
    # ("scraps the rule").
    after_factor: float | None = Field(default=None, ge=1.0, le=10.0)
    note: str = ""


class PhraseCue(_Model):
    """A phrase that carries a direction on its own: `어닝 쇼크`, `beat estimates`."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    terms: list[str] = Field(min_length=1)
    polarity: Polarity
    weight: float = Field(default=1.0, gt=0, le=5)
    scope: Scope = "target"
    note: str = ""


class Actors(_Model):
    """Names that tell whose news a sentence is, besides the engine's entity hits."""

    drivers: list[str] = Field(default_factory=list)  # buyers whose spending is demand
    companies: list[str] = Field(default_factory=list)  # other companies


class LanguageFile(_Model):
    lang: Literal["ko", "en"]
    pair_window: int = Field(default=30, ge=1, le=200)  # chars between subject and predicate
    negation_after_window: int = Field(default=14, ge=0, le=60)
    negation_before_window: int = Field(default=20, ge=0, le=60)
    # A subject after its predicate counts this much farther away (Korean puts the
    # subject first; English objects follow their verbs).
    after_factor: float = Field(default=2.0, ge=1.0, le=10.0)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    pairs: list[PairCue] = Field(default_factory=list)
    phrases: list[PhraseCue] = Field(default_factory=list)
    markers: dict[str, list[str]] = Field(default_factory=dict)
    actors: Actors = Field(default_factory=Actors)

    @field_validator("markers")
    @classmethod
    def _known_markers(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(v) - set(MARKERS))
        if unknown:
            raise ValueError(f"unknown marker class(es) {unknown}; known: {list(MARKERS)}")
        return v


class Weights(_Model):
    """How much each kind of evidence counts. Shared by all languages."""

    headline: float = Field(default=1.5, ge=0)
    hedge: float = Field(default=0.6, ge=0)
    attribution: float = Field(default=0.9, ge=0)
    negated: float = Field(default=0.8, ge=0)
    question: float = Field(default=0.6, ge=0)  # cues inside a headline question
    explainer: float = Field(default=0.3, ge=0)
    supplier: float = Field(default=0.2, ge=0)
    background: float = Field(default=0.3, ge=0)  # cues after "a day after", "recovering"
    other_company: float = Field(default=0.35, ge=0)  # sentence only about another company
    other_company_price: float = Field(default=0.15, ge=0)  # another company's share price
    implicit: float = Field(default=0.8, ge=0)  # no company named; the article is the target's
    implicit_elsewhere: float = Field(default=0.5, ge=0)  # no company named; target is not lead
    debate_headline: float = Field(default=2.0, ge=0)
    debate_body: float = Field(default=1.0, ge=0)
    versus_headline: float = Field(default=3.0, ge=0)
    question_headline: float = Field(default=0.5, ge=0)
    counter: float = Field(default=0.5, ge=0)
    smoothing: float = Field(default=1.0, gt=0)  # score = net / (total + smoothing)
    min_evidence: float = Field(default=0.5, ge=0)  # |bullish - bearish| needed for a direction
    price_decides: float = Field(default=1.5, ge=0)  # the target's own price move decides


class EntityRoles(_Model):
    """What the engine's entity ids are, for attributing sentences to a target."""

    products: dict[str, str] = Field(default_factory=dict)  # product id -> maker id
    drivers: list[str] = Field(default_factory=list)
    companies: list[str] = Field(default_factory=list)


class CommonFile(_Model):
    weights: Weights = Field(default_factory=Weights)
    entities: EntityRoles = Field(default_factory=EntityRoles)


# ---------------------------------------------------------------------------
# compiled form


@dataclass(frozen=True, slots=True)
class Pair:
    id: str
    subjects: frozenset[int]  # lexicon groups (including @company / @driver names)
    subject_kinds: frozenset[str]  # which entity mentions may be the subject: @target, ...
    subjects_with_mentions: frozenset[int]  # `subjects` plus MENTION_GROUP if any kind
    polarity: int  # +1 bullish, -1 bearish
    weight: float
    scope: Scope
    after_factor: float = 2.0


@dataclass(frozen=True, slots=True)
class Phrase:
    id: str
    polarity: int
    weight: float
    scope: Scope


class ClauseIds(NamedTuple):
    """Group ids that clause analysis tests for, looked up once per language."""

    hedge: int
    refute: int
    inverse: int
    background: int
    background_before: int
    negation_after: int
    negation_before: int
    attribution: int
    supplier: int
    not_price: int
    company: int
    driver: int


@dataclass(frozen=True, slots=True)
class CompiledLanguage:
    """Everything needed to scan one language's text in a single automaton pass."""

    lang: str
    automaton: Any  # ahocorasick_rs.AhoCorasick over lower-cased surface forms
    entries: tuple[tuple[tuple[int, ...], int, int], ...]  # pattern -> groups, checks, kind
    group_ids: Mapping[str, int]
    pairs_by_predicate: Mapping[int, tuple[Pair, ...]]
    phrases: Mapping[int, Phrase]
    marker_ids: Mapping[str, int]
    cue_groups: frozenset[int]  # groups that can complete a cue: phrases and predicates
    clause_mark_groups: frozenset[int]  # groups `_clause_marks` looks at (hedge, actors, ...)
    # a cue term's groups -> the phrase it is (if any) and the pairs it is a predicate of
    cue_table: Mapping[tuple[int, ...], tuple[Phrase | None, tuple[Pair, ...]]]
    question_endings: tuple[str, ...]  # a headline part ending so asks a question
    ids: ClauseIds
    pair_window: int
    negation_after_window: int
    negation_before_window: int


TARGET_GROUP = "@target"
COMPANY_GROUP = "@company"
DRIVER_GROUP = "@driver"
_RESERVED = (TARGET_GROUP, COMPANY_GROUP, DRIVER_GROUP)
MENTION_GROUP = -1  # group id of the engine's entity mentions inside a clause
_BRACES = re.compile(r"\{([^{}]*)\}")


def expand_term(term: str) -> list[str]:
    """`rais{e,ed}` -> [`raise`, `raised`]; several brace groups multiply."""
    m = _BRACES.search(term)
    if m is None:
        if "{" in term or "}" in term:
            raise ValueError(f"unbalanced braces in term {term!r}")
        return [term]
    out: list[str] = []
    for choice in m.group(1).split(","):
        out.extend(expand_term(term[: m.start()] + choice + term[m.end() :]))
    return out


def normalise_key(text: str) -> str:
    """A term's canonical form: lower case, inner whitespace collapsed to one space.

    A leading or trailing space is kept: `안 ` (a negator before a verb) is not `안`.
    """
    core = " ".join(text.lower().split())
    if text[:1].isspace():
        core = " " + core
    if text[-1:].isspace():
        core += " "
    return core


def _spacing_variants(form: str) -> set[str]:
    """Korean spacing varies: each inner space of a term may also be absent."""
    if form.isascii():
        return {form}
    lead = " " if form.startswith(" ") else ""
    trail = " " if form.endswith(" ") and form.strip() else ""
    words = form.split()
    if len(words) > 5:
        return {form}
    out: set[str] = set()
    for mask in range(1 << (len(words) - 1)):
        joined = words[0]
        for i, word in enumerate(words[1:]):
            joined += ("" if mask >> i & 1 else " ") + word
        out.add(lead + joined + trail)
    return out


def _validate(model: type[_Model], path: str, doc: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        cue = None
        if len(loc) >= 2 and loc[0] in ("pairs", "phrases") and isinstance(loc[1], int):
            items = doc.get(str(loc[0]), [])
            if isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
                cue = str(items[loc[1]].get("id", f"{loc[0]}[{loc[1]}]"))
        raise RuleError(
            err["msg"],
            path=path,
            rule=cue,
            field=".".join(str(p) for p in loc) or None,
        ) from e


def load_documents(
    docs: Mapping[str, Mapping[str, Any]],
) -> tuple[CommonFile, dict[str, list[tuple[str, LanguageFile]]]]:
    """Validate every document; return the shared settings and the files per language."""
    common: CommonFile | None = None
    common_path = ""
    langs: dict[str, list[tuple[str, LanguageFile]]] = {}
    for path in sorted(docs):
        doc = docs[path]
        if "lang" in doc:
            lf: LanguageFile = _validate(LanguageFile, path, doc)
            langs.setdefault(lf.lang, []).append((path, lf))
        else:
            if common is not None:
                raise RuleError(
                    f"shared lexicon settings are already given in {common_path}; "
                    "a language file needs lang = 'ko' or 'en'",
                    path=path,
                )
            common = _validate(CommonFile, path, doc)
            common_path = path
    return (common or CommonFile()), langs


class _Builder:
    """Collects the terms and cues of one language's files into a CompiledLanguage."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.group_ids: dict[str, int] = {}
        self.term_groups: dict[str, set[int]] = {}
        self.term_forms: dict[str, str] = {}  # key -> a surface form, for the regex
        self.left_bounded: set[str] = set()
        self.pairs: dict[int, list[Pair]] = {}
        self.phrases: dict[int, Phrase] = {}
        self.cue_ids: set[str] = set()
        self.question_endings: set[str] = set()
        self.windows = (30, 14, 20)

    def gid(self, name: str) -> int:
        return self.group_ids.setdefault(name, len(self.group_ids))

    def add_terms(self, group: str, terms: Iterable[str], path: str, cue: str | None) -> None:
        g = self.gid(group)
        for raw in terms:
            left = raw.startswith("|")
            body = raw[1:] if left else raw
            try:
                forms = expand_term(body)
            except ValueError as e:
                raise RuleError(str(e), path=path, rule=cue, field=group) from e
            for form in forms:
                key = normalise_key(form)
                if not key.strip():
                    raise RuleError(f"empty term {raw!r}", path=path, rule=cue, field=group)
                self.term_groups.setdefault(key, set()).add(g)
                self.term_forms.setdefault(key, key)
                if left:
                    self.left_bounded.add(key)

    def add_file(self, path: str, lf: LanguageFile) -> None:
        self.windows = (lf.pair_window, lf.negation_after_window, lf.negation_before_window)
        for name, terms in lf.groups.items():
            if name.startswith("@"):
                raise RuleError(f"group names may not start with '@': {name!r}", path=path)
            self.add_terms(name, terms, path, None)
        for marker, terms in lf.markers.items():
            # Questions are told by how a headline part ends, not by a term inside it.
            if marker != "question":
                self.add_terms("!" + marker, terms, path, None)
        for term in lf.markers.get("question", ()):
            self.question_endings.update(
                normalise_key(f).strip() for f in expand_term(term.lstrip("|"))
            )
        self.add_terms(DRIVER_GROUP, lf.actors.drivers, path, None)
        self.add_terms(COMPANY_GROUP, lf.actors.companies, path, None)
        for phrase in lf.phrases:
            self._claim(phrase.id, path)
            group = "=" + phrase.id
            self.add_terms(group, phrase.terms, path, phrase.id)
            self.phrases[self.gid(group)] = Phrase(
                phrase.id, 1 if phrase.polarity == "bullish" else -1, phrase.weight, phrase.scope
            )

    def add_pairs(self, path: str, lf: LanguageFile, known: set[str]) -> None:
        for pair in lf.pairs:
            self._claim(pair.id, path)
            for name in (*pair.subject, *pair.predicate):
                if name not in known and name not in _RESERVED:
                    raise RuleError(
                        f"unknown group {name!r} (define it under [groups])",
                        path=path,
                        rule=pair.id,
                    )
            subjects = frozenset(self.gid(s) for s in pair.subject)
            kinds = frozenset(s for s in pair.subject if s in _RESERVED)
            compiled = Pair(
                pair.id,
                subjects,
                kinds,
                subjects | {MENTION_GROUP} if kinds else subjects,
                1 if pair.polarity == "bullish" else -1,
                pair.weight,
                pair.scope,
                pair.after_factor or lf.after_factor,
            )
            for pred in pair.predicate:
                self.pairs.setdefault(self.gid(pred), []).append(compiled)

    def _claim(self, cue_id: str, path: str) -> None:
        if cue_id in self.cue_ids:
            raise RuleError("duplicate cue id", path=path, rule=cue_id)
        self.cue_ids.add(cue_id)

    def build(self) -> CompiledLanguage:
        for name in _RESERVED:
            self.gid(name)
        for m in MARKERS:
            self.gid("!" + m)
        patterns: dict[str, _Entry] = {}
        special = {self.group_ids["!" + m] for m in SPECIAL_MARKERS}
        hidden = {self.group_ids["!boundary"], self.group_ids["!ignore"]}
        for key, form in self.term_forms.items():
            groups = tuple(sorted(self.term_groups[key]))
            left, right = _latin(form[0]), _latin(form[-1])
            bounded = key in self.left_bounded
            if any(g in self.pairs or g in self.phrases for g in groups):
                kind = _CUE
            elif self.group_ids["!boundary"] in groups:
                kind = _BOUNDARY
            else:
                kind = _PLAIN
            if not special.isdisjoint(groups):
                kind |= _SPECIAL
            if set(groups) <= hidden:
                kind |= _HIDDEN  # only cuts a clause, or only consumes text

            entry = _Entry(groups, bounded, left, right, bounded or left or right, kind)
            for variant in _spacing_variants(form):
                patterns.setdefault(variant, entry)
        cue_table: dict[tuple[int, ...], tuple[Phrase | None, tuple[Pair, ...]]] = {}
        for entry in patterns.values():
            if entry.kind & _CUE and entry.groups not in cue_table:
                phrase = next((self.phrases[g] for g in entry.groups if g in self.phrases), None)
                pairs = tuple(p for g in entry.groups for p in self.pairs.get(g, ()))
                cue_table[entry.groups] = (phrase, pairs)
        # A lexicon is small (about a thousand forms): the dense DFA costs little memory
        # and scans a 2 KB article in about three quarters of the time the default takes.
        automaton = ahocorasick_rs.AhoCorasick(
            list(patterns),
            matchkind=ahocorasick_rs.MatchKind.LeftmostLongest,
            implementation=ahocorasick_rs.Implementation.DFA,
        )
        return CompiledLanguage(
            lang=self.lang,
            automaton=automaton,
            entries=tuple(
                (
                    e.groups,
                    (_LEFT_LATIN if e.latin_left else 0)
                    | (_LEFT_ANY if e.left_bounded else 0)
                    | (_RIGHT_LATIN if e.latin_right else 0),
                    e.kind,
                )
                for e in patterns.values()
            ),
            group_ids=dict(self.group_ids),
            pairs_by_predicate={k: tuple(v) for k, v in self.pairs.items()},
            phrases=dict(self.phrases),
            marker_ids={m: self.group_ids["!" + m] for m in MARKERS},
            cue_groups=frozenset(self.pairs) | frozenset(self.phrases),
            cue_table=cue_table,
            clause_mark_groups=frozenset(
                self.group_ids[name]
                for name in (
                    "!hedge",
                    "!refute",
                    "!inverse",
                    "!background",
                    "!background_before",
                    "!negation_after",
                    "!negation_before",
                    COMPANY_GROUP,
                    DRIVER_GROUP,
                )
            ),
            question_endings=tuple(sorted(self.question_endings)),
            ids=ClauseIds._make(
                [self.group_ids["!" + name] for name in ClauseIds._fields[:-2]]
                + [self.group_ids[COMPANY_GROUP], self.group_ids[DRIVER_GROUP]]
            ),
            pair_window=self.windows[0],
            negation_after_window=self.windows[1],
            negation_before_window=self.windows[2],
        )


def compile_language(lang: str, files: list[tuple[str, LanguageFile]]) -> CompiledLanguage:
    """Compile every file of one language into one matcher."""
    builder = _Builder(lang)
    known: set[str] = set()
    for path, lf in files:
        builder.add_file(path, lf)
        known.update(lf.groups)
    for path, lf in files:
        builder.add_pairs(path, lf, known)
    return builder.build()


@dataclass(frozen=True, slots=True)
class _Entry:
    groups: tuple[int, ...]
    left_bounded: bool
    latin_left: bool
    latin_right: bool
    checked: bool  # any boundary to check at all
    kind: int  # _PLAIN, _CUE (can complete a cue) or _BOUNDARY, plus the _SPECIAL bit


_PLAIN, _CUE, _BOUNDARY, _SPECIAL, _HIDDEN = 0, 1, 2, 4, 8
# which word boundaries a term checks: a Latin letter or digit on its left, any letter or
# digit on its left (`|안 `), a Latin letter or digit on its right
_LEFT_LATIN, _LEFT_ANY, _RIGHT_LATIN = 1, 2, 4
# Markers looked for once per article rather than per clause; the scan lists their tokens.
SPECIAL_MARKERS = (
    "attribution",
    "refute_back",
    "resolved",
    "debate",
    "counter",
    "versus",
    "alternative",
    "doubt",
    "explainer",
    "supplier",
)


class TermMatch(NamedTuple):
    """One lexicon term found in a text (a tuple: scanning makes many of them)."""

    start: int
    end: int
    groups: tuple[int, ...]


def _latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


_lower = fold  # lower case with offsets kept, as the matcher folds (and memoises) it


class Scan(NamedTuple):
    """The terms found in a text, with the indexes of the ones the stance code looks for."""

    tokens: list[TermMatch]
    cues: list[int]  # tokens that can complete a cue (a phrase or a predicate)
    boundaries: list[TermMatch]  # clause boundaries (not among the tokens)
    specials: list[int]  # tokens of a SPECIAL_MARKERS class


def scan_text(lang: CompiledLanguage, text: str) -> Scan:
    """Every term of `lang` in `text`: leftmost-longest, non-overlapping, boundaries checked.

    The automaton picks the longest term at each place; a term that fails its word
    boundary (`fell` in `fellow`) is dropped.
    """
    out: list[TermMatch] = []
    cues: list[int] = []
    boundaries: list[TermMatch] = []
    specials: list[int] = []
    n = len(text)
    entries = lang.entries
    append = out.append
    new = tuple.__new__  # a NamedTuple's own __new__ is a Python call: this is not
    for index, start, end in lang.automaton.find_matches_as_indexes(_lower(text)):
        groups, checks, kind = entries[index]
        if checks:
            if start and checks & 3:
                prev = text[start - 1]
                if prev.isalnum() and (checks & _LEFT_ANY or prev.isascii()):
                    continue
            if end < n and checks & _RIGHT_LATIN:
                nxt = text[end]
                if nxt.isascii() and nxt.isalnum():
                    continue
        if kind:
            if kind & _HIDDEN:
                # Boundaries only cut clauses and ignored terms only consume text: neither
                # is a token the clause analysis needs to step over.
                if kind & _BOUNDARY:
                    boundaries.append(new(TermMatch, (start, end, groups)))
                continue
            if kind & _CUE:
                cues.append(len(out))
            elif kind & _BOUNDARY:
                boundaries.append(new(TermMatch, (start, end, groups)))
            if kind & _SPECIAL:
                specials.append(len(out))
        append(new(TermMatch, (start, end, groups)))
    return Scan(out, cues, boundaries, specials)


def scan(lang: CompiledLanguage, text: str) -> list[TermMatch]:
    """Every term of `lang` in `text` (see `scan_text`), boundaries included."""
    found = scan_text(lang, text)
    return sorted(found.tokens + [b for b in found.boundaries if b not in found.tokens])
