"""Domain values shared by every part: articles, matches, stances, prices, alerts.

All are frozen. Datetimes are timezone-aware UTC. Alerts round-trip through
plain JSON-able dicts (`to_dict` / `from_dict`) because the outbox stores them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

Lang = Literal["ko", "en"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _from_iso(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Article:
    """One news item as the engine sees it.

    `title`, `summary` and `body` are already normalised text (no tags, no
    entities, NFKC, collapsed whitespace). `title` keeps what the outlet wrote,
    prefixes included; `urgency` lists flags such as "속보" / "단독" found in them.
    `item_id` is stable within its feed (guid, else link, else content hash).
    """

    feed: str
    item_id: str
    title: str
    link: str = ""
    summary: str = ""
    body: str = ""
    lang: Lang = "en"
    published: datetime | None = None
    source: str = ""
    urgency: tuple[str, ...] = ()
    content_hash: str = ""
    seen_at: datetime | None = None

    @property
    def text(self) -> str:
        """The body if there is one, else the summary."""
        return self.body or self.summary


class StanceLabel(StrEnum):
    BULLISH = "bullish"
    BEARISH = "bearish"
    MIXED = "mixed"
    NEUTRAL = "neutral"


@dataclass(frozen=True, slots=True)
class Stance:
    """Which way an article cuts for one target entity, and why."""

    target: str
    label: StanceLabel
    score: float  # in [-1, 1]; < 0 bearish
    confidence: float = 0.0  # in [0, 1]
    evidence: tuple[str, ...] = ()  # the one to three sentences that decided it

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label.value,
            "score": round(self.score, 3),
            "confidence": round(self.confidence, 3),
            "evidence": list(self.evidence),
        }

    @classmethod
    def from_dict(cls, target: str, data: dict[str, Any]) -> Stance:
        return cls(
            target=target,
            label=StanceLabel(data["label"]),
            score=float(data.get("score", 0.0)),
            confidence=float(data.get("confidence", 0.0)),
            evidence=tuple(data.get("evidence", ())),
        )


@dataclass(frozen=True, slots=True)
class Hit:
    """One place where an entity alias matched."""

    entity: str
    alias: str
    field: Literal["title", "body"]
    start: int
    end: int
    sentence: str = ""


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """A rule that fired on an article, with the reasons it did."""

    rule_id: str
    title: str
    severity: str = "info"
    destinations: tuple[str, ...] = ()
    cooldown_s: float = 0.0
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything the engine concluded about one article."""

    article: Article
    entities: tuple[str, ...]
    hits: tuple[Hit, ...] = ()
    rules: tuple[RuleMatch, ...] = ()
    stance: dict[str, Stance] = field(default_factory=dict)


class Session(StrEnum):
    PRE = "pre"
    REGULAR = "regular"
    POST = "post"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class PriceTick:
    """One observed price. `delay_s` is how late the provider says it is."""

    symbol: str
    price: float
    at: datetime
    provider: str
    delay_s: float = 0.0
    volume: float | None = None


@dataclass(frozen=True, slots=True)
class PriceContext:
    """What a symbol was doing around an article; attached to alerts."""

    symbol: str
    price: float
    as_of: datetime
    provider: str
    previous_close: float | None = None
    change_pct: float | None = None  # versus previous close
    session: Session = Session.CLOSED
    price_at_publish: float | None = None
    move_since_publish_pct: float | None = None
    delay_s: float = 0.0
    price_at_alert: float | None = None  # follow-ups: the price the first alert showed
    move_since_alert_pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "price": self.price,
            "as_of": _iso(self.as_of),
            "provider": self.provider,
            "previous_close": self.previous_close,
            "change_pct": self.change_pct,
            "session": self.session.value,
            "price_at_publish": self.price_at_publish,
            "move_since_publish_pct": self.move_since_publish_pct,
            "delay_s": self.delay_s,
            "price_at_alert": self.price_at_alert,
            "move_since_alert_pct": self.move_since_alert_pct,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PriceContext:
        as_of = _from_iso(data["as_of"])
        assert as_of is not None
        return cls(
            symbol=data["symbol"],
            price=float(data["price"]),
            as_of=as_of,
            provider=data["provider"],
            previous_close=data.get("previous_close"),
            change_pct=data.get("change_pct"),
            session=Session(data.get("session", "closed")),
            price_at_publish=data.get("price_at_publish"),
            move_since_publish_pct=data.get("move_since_publish_pct"),
            delay_s=float(data.get("delay_s", 0.0)),
            price_at_alert=data.get("price_at_alert"),
            move_since_alert_pct=data.get("move_since_alert_pct"),
        )


@dataclass(frozen=True, slots=True)
class SourceRef:
    """One outlet that carried a story."""

    feed: str
    source: str
    title: str
    link: str
    lang: Lang = "en"

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "source": self.source,
            "title": self.title,
            "link": self.link,
            "lang": self.lang,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceRef:
        # Thousands of these are held for the story window; feed and outlet names
        # repeat across them, so each is kept once.
        return cls(
            feed=sys.intern(data["feed"]),
            source=sys.intern(data.get("source", "")),
            title=data.get("title", ""),
            link=data.get("link", ""),
            lang=data.get("lang", "en"),
        )


AlertKind = Literal["news", "move", "digest", "followup", "system"]


@dataclass(frozen=True, slots=True)
class Alert:
    """A message to be delivered. Notifiers render it; the outbox stores it as JSON.

    `key` identifies the story (or move event) so that one story gives one
    alert per destination. `children` holds the folded alerts of a digest.
    """

    kind: AlertKind
    key: str
    title: str
    created_at: datetime
    link: str = ""
    lang: Lang = "en"
    source: str = ""
    published: datetime | None = None
    summary: str = ""
    severity: str = "info"
    rules: tuple[str, ...] = ()
    rule_titles: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    stance: tuple[Stance, ...] = ()
    prices: tuple[PriceContext, ...] = ()
    urgency: tuple[str, ...] = ()
    sources: tuple[SourceRef, ...] = ()
    children: tuple[Alert, ...] = ()
    reply_to: str | None = None  # message reference of an earlier alert (follow-ups)
    # An update, not a new message: the dedupe key of the alert whose message it
    # replaces (a story that gained sources). Destinations that cannot edit skip it.
    edit_of: str | None = None
    chart_png: str = ""  # base64 PNG of the price chart, for destinations that take files

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "title": self.title,
            "created_at": _iso(self.created_at),
            "link": self.link,
            "lang": self.lang,
            "source": self.source,
            "published": _iso(self.published),
            "summary": self.summary,
            "severity": self.severity,
            "rules": list(self.rules),
            "rule_titles": list(self.rule_titles),
            "entities": list(self.entities),
            "stance": {s.target: s.to_dict() for s in self.stance},
            "prices": [p.to_dict() for p in self.prices],
            "urgency": list(self.urgency),
            "sources": [s.to_dict() for s in self.sources],
            "children": [c.to_dict() for c in self.children],
            "reply_to": self.reply_to,
            "edit_of": self.edit_of,
            "chart_png": self.chart_png,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        created = _from_iso(data["created_at"])
        assert created is not None
        return cls(
            kind=data["kind"],
            key=data["key"],
            title=data["title"],
            created_at=created,
            link=data.get("link", ""),
            lang=data.get("lang", "en"),
            source=data.get("source", ""),
            published=_from_iso(data.get("published")),
            summary=data.get("summary", ""),
            severity=data.get("severity", "info"),
            rules=tuple(data.get("rules", ())),
            rule_titles=tuple(data.get("rule_titles", ())),
            entities=tuple(data.get("entities", ())),
            stance=tuple(Stance.from_dict(t, s) for t, s in data.get("stance", {}).items()),
            prices=tuple(PriceContext.from_dict(p) for p in data.get("prices", ())),
            urgency=tuple(data.get("urgency", ())),
            sources=tuple(SourceRef.from_dict(s) for s in data.get("sources", ())),
            children=tuple(cls.from_dict(c) for c in data.get("children", ())),
            reply_to=data.get("reply_to"),
            edit_of=data.get("edit_of"),
            chart_png=data.get("chart_png", ""),
        )
