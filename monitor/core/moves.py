"""Price-move decisions: when a move deserves an alert, and what price context a
news alert carries.

Owns the move detector (thresholds versus previous close and over rolling
windows, per session, with cooldown and hysteresis, never from stale data),
`price_context` for news alerts, follow-up alerts, and the "news explains the
move" merge. Pure: the book and the current instant come in as arguments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from monitor.core.durations import format_duration
from monitor.core.models import Alert, PriceContext, PriceTick, Session, SourceRef
from monitor.core.pricebook import PriceBook, pct_change

Direction = Literal["up", "down"]

# Which entity a symbol stands for, so that move alerts meet the stories about it.
DEFAULT_SYMBOL_ENTITIES: Mapping[str, str] = {
    "NVDA": "nvidia",
    "TSM": "tsmc",
    "2330.TW": "tsmc",
    "005930.KS": "samsung_electronics",
    "000660.KS": "sk_hynix",
}

_MOVE_SESSIONS = frozenset({Session.PRE, Session.REGULAR, Session.POST})


@dataclass(frozen=True, slots=True)
class WindowRule:
    """Alert when the price moves at least `pct` percent within `window_s` seconds."""

    window_s: float
    pct: float

    @property
    def rule_id(self) -> str:
        return f"window:{format_duration(self.window_s)}:{self.pct:g}"


@dataclass(frozen=True, slots=True)
class MoveSettings:
    """Tuning of the move detector.

    `session_windows` replaces `windows` in the sessions it names (e.g. wider
    thresholds for thin pre-market trading). `hysteresis` is the fraction of a
    threshold the move must fall back by before the rule is armed again.
    """

    previous_close_levels: tuple[float, ...] = (3.0, 5.0, 10.0)
    windows: tuple[WindowRule, ...] = (WindowRule(600.0, 2.0), WindowRule(1800.0, 3.0))
    session_windows: tuple[tuple[Session, tuple[WindowRule, ...]], ...] = ()
    sessions: frozenset[Session] = _MOVE_SESSIONS
    cooldown_s: float = 1800.0
    hysteresis: float = 0.5
    stale_after_s: float = 180.0

    def windows_for(self, session: Session) -> tuple[WindowRule, ...]:
        for name, rules in self.session_windows:
            if name is session:
                return rules
        return self.windows


@dataclass(frozen=True, slots=True)
class MoveEvent:
    """A threshold crossing. `rules` lists every rule that crossed on this tick;
    the first is the one the alert leads with."""

    symbol: str
    direction: Direction
    rules: tuple[str, ...]
    pct: float  # the leading rule's measured move, signed
    threshold: float
    window_s: float | None  # None for a move versus previous close
    reference_price: float
    reference_at: datetime | None
    tick: PriceTick
    session: Session
    previous_close: float | None
    change_pct: float | None


@dataclass(slots=True)
class _RuleState:
    armed: bool = True
    last_fired: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Crossing:
    rule: str
    direction: Direction
    pct: float
    threshold: float
    window_s: float | None
    reference_price: float
    reference_at: datetime | None


def _prominence(c: _Crossing) -> tuple[bool, float]:
    """Level crossings lead (the highest level first), then the largest window move."""
    if c.window_s is None:
        return True, c.threshold
    return False, abs(c.pct) / c.threshold


@dataclass(slots=True)
class MoveDetector:
    """Turns price ticks into move alerts.

    Call `observe(book, ticks, now)` after adding `ticks` to `book`. A rule fires
    when its move reaches the threshold while the rule is armed and out of its
    cooldown; firing disarms it, and it is armed again only once the move has
    fallen back out of the band (below threshold x (1 - hysteresis)). A crossing
    suppressed by the cooldown also disarms, so a late alert never fires for an
    old crossing. Several rules crossing on one tick make one alert. Ticks older
    than `stale_after_s` (plus their provider delay) are ignored; window moves
    compare only ticks of the same session.
    """

    settings: MoveSettings = field(default_factory=MoveSettings)
    entities: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SYMBOL_ENTITIES))
    _state: dict[tuple[str, str, Direction], _RuleState] = field(default_factory=dict)
    _close_basis: dict[str, float | None] = field(default_factory=dict)

    def observe(self, book: PriceBook, ticks: Sequence[PriceTick], now: datetime) -> list[Alert]:
        """Move alerts for the new `ticks` (already added to `book`)."""
        return [move_alert(e, now, self.entities) for e in self.observe_events(book, ticks, now)]

    def observe_events(
        self, book: PriceBook, ticks: Sequence[PriceTick], now: datetime
    ) -> list[MoveEvent]:
        # A busy stream sends hundreds of trades a second; the book keeps one per
        # `resolution_s`, and so does the detector: the last tick of each bucket.
        step = book.resolution_s if book.resolution_s > 0 else 1e-6
        last: dict[tuple[str, int], PriceTick] = {}
        for tick in ticks:
            if self._is_stale(tick, now):
                continue
            key = (tick.symbol, math.floor(tick.at.timestamp() / step))
            held = last.get(key)
            if held is None or tick.at >= held.at:
                last[key] = tick
        events: list[MoveEvent] = []
        for tick in sorted(last.values(), key=lambda t: (t.symbol, t.at)):
            event = self._evaluate(book, tick)
            if event is not None:
                events.append(event)
        return events

    def _is_stale(self, tick: PriceTick, now: datetime) -> bool:
        age = (now - tick.at).total_seconds() - tick.delay_s
        return age > self.settings.stale_after_s or age < -60.0

    def _evaluate(self, book: PriceBook, tick: PriceTick) -> MoveEvent | None:
        symbol = tick.symbol
        session, session_start, _ = book.session_bounds(symbol, tick.at)
        if session not in self.settings.sessions:
            return None
        close = book.previous_close(symbol)
        if self._close_basis.get(symbol, close) != close:
            # A new previous close means a new trading day: level alerts start over.
            for k in [k for k in self._state if k[0] == symbol and k[1].startswith("close:")]:
                del self._state[k]
        self._close_basis[symbol] = close
        crossings = self._close_crossings(tick, close)
        crossings += self._window_crossings(book, tick, session, session_start)
        fired = [c for c in crossings if self._fire(symbol, c, tick.at)]
        if not fired:
            return None
        lead = max(fired, key=_prominence)
        return MoveEvent(
            symbol=symbol,
            direction=lead.direction,
            rules=(lead.rule, *(c.rule for c in fired if c is not lead)),
            pct=lead.pct,
            threshold=lead.threshold,
            window_s=lead.window_s,
            reference_price=lead.reference_price,
            reference_at=lead.reference_at,
            tick=tick,
            session=session,
            previous_close=close,
            change_pct=pct_change(close, tick.price) if close else None,
        )

    def _close_crossings(self, tick: PriceTick, close: float | None) -> list[_Crossing]:
        if not close or close <= 0:
            return []
        change = pct_change(close, tick.price)
        out: list[_Crossing] = []
        directions: tuple[Direction, ...] = ("up", "down")
        for level in sorted(self.settings.previous_close_levels):
            for direction in directions:
                rule = f"close:{level:g}"
                signed = change if direction == "up" else -change
                if self._track(tick.symbol, rule, direction, signed, level):
                    out.append(_Crossing(rule, direction, change, level, None, close, None))
        return out

    def _window_crossings(
        self,
        book: PriceBook,
        tick: PriceTick,
        session: Session,
        session_start: datetime | None,
    ) -> list[_Crossing]:
        out: list[_Crossing] = []
        for rule in self.settings.windows_for(session):
            since = tick.at - timedelta(seconds=rule.window_s)
            if session_start is not None and since < session_start:
                since = session_start
            found = book.extremes(tick.symbol, since, tick.at)
            if found is None or found[2] < 2:
                continue
            low, high, _ = found
            sides: tuple[tuple[Direction, PriceTick], ...] = (("up", low), ("down", high))
            for direction, ref in sides:
                move = pct_change(ref.price, tick.price)
                signed = move if direction == "up" else -move
                if self._track(tick.symbol, rule.rule_id, direction, signed, rule.pct):
                    crossing = _Crossing(
                        rule.rule_id, direction, move, rule.pct, rule.window_s, ref.price, ref.at
                    )
                    out.append(crossing)
        return out

    def _track(
        self, symbol: str, rule: str, direction: Direction, signed_move: float, threshold: float
    ) -> bool:
        """Update arming for one rule; True when the move is at or past its threshold."""
        state = self._state.setdefault((symbol, rule, direction), _RuleState())
        if signed_move >= threshold:
            return True
        if signed_move < threshold * (1.0 - self.settings.hysteresis):
            state.armed = True
        return False

    def _fire(self, symbol: str, crossing: _Crossing, at: datetime) -> bool:
        state = self._state[(symbol, crossing.rule, crossing.direction)]
        if not state.armed:
            return False
        state.armed = False
        cooling = (
            state.last_fired is not None
            and (at - state.last_fired).total_seconds() < self.settings.cooldown_s
        )
        if cooling:
            return False
        state.last_fired = at
        return True


# --------------------------------------------------------------------------- alerts


def _fmt_pct(value: float) -> str:
    return f"{value:+.2f}%"


def _severity(event: MoveEvent) -> str:
    size = abs(event.change_pct) if event.change_pct is not None else 0.0
    if size >= 10.0:
        return "critical"
    if size >= 5.0 or abs(event.pct) >= 2 * event.threshold:
        return "warning"
    return "notice"


def delay_note(delay_s: float) -> str:
    """Nothing for real-time data, else e.g. "delayed 20m"."""
    return f"delayed {format_duration(delay_s)}" if delay_s >= 1.0 else ""


def move_alert(
    event: MoveEvent, now: datetime, entities: Mapping[str, str] = DEFAULT_SYMBOL_ENTITIES
) -> Alert:
    """The alert for one move event."""
    tick = event.tick
    if event.window_s is None:
        what = "vs previous close"
    else:
        what = f"in {format_duration(event.window_s)}"
    title = (
        f"{event.symbol} {_fmt_pct(event.pct)} {what} "
        f"({event.reference_price:.2f} → {tick.price:.2f})"
    )
    notes = [f"{event.session.value} session", tick.provider]
    if tick.delay_s >= 1.0:
        notes.append(delay_note(tick.delay_s))
    if event.change_pct is not None and event.window_s is not None:
        notes.insert(0, f"{_fmt_pct(event.change_pct)} vs previous close {event.previous_close}")
    context = PriceContext(
        symbol=event.symbol,
        price=tick.price,
        as_of=tick.at,
        provider=tick.provider,
        previous_close=event.previous_close,
        change_pct=event.change_pct,
        session=event.session,
        delay_s=tick.delay_s,
    )
    entity = entities.get(event.symbol)
    return Alert(
        kind="move",
        key=f"move:{event.symbol}:{tick.at.strftime('%Y%m%dT%H%M%SZ')}:{event.rules[0]}",
        title=title,
        created_at=now,
        published=tick.at,
        summary=" · ".join(notes),
        severity=_severity(event),
        rules=event.rules,
        entities=(entity,) if entity else (),
        prices=(context,),
        source=tick.provider,
    )


def price_context(
    book: PriceBook,
    symbol: str,
    published: datetime | None,
    seen_at: datetime | None,
    now: datetime,
) -> PriceContext | None:
    """The price context of a news alert about `symbol`; None when the book has no price.

    The anchor is the publish time, or the first-seen time when the publish
    time is missing or later than first seen (a feed clock running ahead).
    `price_at_publish` is the last price at or before the anchor.
    """
    latest = book.price_at(symbol, now)
    if latest is None:
        return None
    anchor = published
    if anchor is None or (seen_at is not None and anchor > seen_at):
        anchor = seen_at
    at_publish = book.price_at(symbol, anchor) if anchor is not None else None
    move = pct_change(at_publish.price, latest.price) if at_publish is not None else None
    return PriceContext(
        symbol=symbol,
        price=latest.price,
        as_of=latest.at,
        provider=latest.provider,
        previous_close=book.previous_close(symbol),
        change_pct=book.change_pct(symbol, latest.price),
        session=book.session(symbol, now),
        price_at_publish=at_publish.price if at_publish is not None else None,
        move_since_publish_pct=move,
        delay_s=latest.delay_s,
    )


def followup_alert(
    original: Alert,
    book: PriceBook,
    now: datetime,
    after_s: float,
    reply_to: str | None = None,
) -> Alert | None:
    """A follow-up to `original` `after_s` seconds later: the move since the alert.

    None when the original carried no price or the book has nothing newer.
    """
    contexts: list[PriceContext] = []
    parts: list[str] = []
    for ctx in original.prices:
        latest = book.price_at(ctx.symbol, now)
        if latest is None or latest.at <= ctx.as_of:
            continue
        since_alert = pct_change(ctx.price, latest.price)
        since_publish = (
            pct_change(ctx.price_at_publish, latest.price) if ctx.price_at_publish else None
        )
        contexts.append(
            replace(
                ctx,
                price=latest.price,
                as_of=latest.at,
                provider=latest.provider,
                previous_close=book.previous_close(ctx.symbol),
                change_pct=book.change_pct(ctx.symbol, latest.price),
                session=book.session(ctx.symbol, now),
                move_since_publish_pct=since_publish,
                price_at_alert=ctx.price,
                move_since_alert_pct=since_alert,
                delay_s=latest.delay_s,
            )
        )
        change = f"{ctx.price:.2f} → {latest.price:.2f}"
        parts.append(f"{ctx.symbol} {_fmt_pct(since_alert)} since alert ({change})")
    if not contexts:
        return None
    return Alert(
        kind="followup",
        key=f"{original.key}:followup:{round(after_s)}",
        title=f"+{format_duration(after_s)}: " + "; ".join(parts),
        created_at=now,
        link=original.link,
        lang=original.lang,
        source=original.source,
        published=original.published,
        summary=original.title,
        severity="info",
        rules=original.rules,
        entities=original.entities,
        prices=tuple(contexts),
        reply_to=reply_to,
    )


def _story_time(story: Alert) -> datetime:
    return story.published or story.created_at


def explain_move(move: Alert, stories: Sequence[Alert], window_s: float) -> Alert:
    """Merge a move alert with the news stories that may explain it.

    A story matches when it names one of the move's entities and was published
    (or, lacking a date, alerted) within `window_s` of the move. Returns the
    move alert unchanged when nothing matches, else one alert whose `sources`
    link every matching story, newest first.
    """
    if not move.prices or not move.entities:
        return move
    at = move.prices[0].as_of
    wanted = set(move.entities)
    matches = [
        s
        for s in stories
        if s.kind == "news"
        and wanted & set(s.entities)
        and abs((_story_time(s) - at).total_seconds()) <= window_s
    ]
    if not matches:
        return move
    matches.sort(key=_story_time, reverse=True)
    refs: list[SourceRef] = []
    for story in matches:
        ref = SourceRef(
            feed=story.sources[0].feed if story.sources else story.source,
            source=story.source,
            title=story.title,
            link=story.link,
            lang=story.lang,
        )
        if ref not in refs:
            refs.append(ref)
    stances = tuple(st for s in matches for st in s.stance if st.target in wanted)
    noun = "story" if len(refs) == 1 else "stories"
    return replace(
        move,
        title=f"{move.title} — {len(refs)} matching {noun}",
        summary=f"{move.summary} · news: " + " | ".join(r.title for r in refs[:3]),
        sources=tuple(refs),
        link=refs[0].link or move.link,
        stance=stances[:4],
        urgency=tuple(dict.fromkeys(u for s in matches for u in s.urgency)),
    )
