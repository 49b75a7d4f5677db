"""A local stand-in for Yahoo's chart API that replays recorded-style sessions.

Owns the wire format of `GET /v8/finance/chart/{symbol}?range=1d&interval=1m
&includePrePost=true` as Yahoo serves it (meta, timestamp[], quote arrays with
nulls, 404 with chart.error for unknown symbols, plain-text 429 for clients
without a browser-like User-Agent), replaying minute bars against an injected
clock so that a whole trading day runs in milliseconds. Used by the tests and
by `monitor demo`. Also builds an NVDA session shaped like 2025-01-27.
"""

from __future__ import annotations

import bisect
import json
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from itertools import pairwise
from typing import Any, Literal

from aiohttp import web

from monitor.core.clock import Clock
from monitor.core.pricebook import NEW_YORK, TradingPeriods

Fault = Literal["429", "429-retry-after", "500", "malformed", "truncated", "empty-result"]


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute bar starting at `start`; all-None fields make a null bar."""

    start: datetime
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: int | None


@dataclass(frozen=True)
class SessionReplay:
    """One symbol's trading day to replay."""

    symbol: str
    previous_close: float
    periods: TradingPeriods
    bars: tuple[Bar, ...]
    exchange_timezone: str = "America/New_York"
    timezone_abbr: str = "EST"
    gmtoffset: int = -18000
    currency: str = "USD"
    exchange_name: str = "NMS"
    full_exchange_name: str = "NasdaqGS"
    long_name: str = ""
    granularity_s: int = 60

    def visible_bars(self, now: datetime) -> list[Bar]:
        """Bars a client sees at `now`: complete ones, plus the current one so far.

        The bar in progress shows only its open (the replay has no finer data),
        so a client never sees a price before its minute.
        """
        count = bisect.bisect_right(self._starts, now.timestamp())
        out = list(self.bars[:count])
        if out:
            last = out[-1]
            if last.start + timedelta(seconds=self.granularity_s) > now and last.open is not None:
                out[-1] = Bar(last.start, last.open, last.open, last.open, last.open, 0)
        return out

    @cached_property
    def _starts(self) -> list[float]:
        return [b.start.timestamp() for b in self.bars]

    def last_price(
        self, when: datetime, *, regular_only: bool = False, bars: list[Bar] | None = None
    ) -> tuple[float, datetime]:
        """The last traded price a client could know at `when`, and its time."""
        price, at = self.previous_close, self.periods.regular_start - timedelta(days=1)
        for bar in reversed(self.visible_bars(when) if bars is None else bars):
            if regular_only and not (
                self.periods.regular_start <= bar.start < self.periods.regular_end
            ):
                continue
            if bar.close is not None:
                end = bar.start + timedelta(seconds=self.granularity_s)
                return bar.close, min(end, when)
        return price, at


def _period(start: datetime, end: datetime, abbr: str, offset: int) -> dict[str, Any]:
    return {
        "timezone": abbr,
        "start": int(start.timestamp()),
        "end": int(end.timestamp()),
        "gmtoffset": offset,
    }


def chart_payload(replay: SessionReplay, now: datetime) -> dict[str, Any]:
    """The JSON body Yahoo returns for this replay at `now`."""
    p = replay.periods
    bars = replay.visible_bars(now)
    price, price_at = replay.last_price(now, regular_only=True, bars=bars)
    regular_bars = [b for b in bars if p.regular_start <= b.start < p.regular_end]
    highs = [b.high for b in regular_bars if b.high is not None]
    lows = [b.low for b in regular_bars if b.low is not None]
    current = {
        "pre": _period(p.pre_start, p.regular_start, replay.timezone_abbr, replay.gmtoffset),
        "regular": _period(p.regular_start, p.regular_end, replay.timezone_abbr, replay.gmtoffset),
        "post": _period(p.regular_end, p.post_end, replay.timezone_abbr, replay.gmtoffset),
    }
    meta: dict[str, Any] = {
        "currency": replay.currency,
        "symbol": replay.symbol,
        "exchangeName": replay.exchange_name,
        "fullExchangeName": replay.full_exchange_name,
        "instrumentType": "EQUITY",
        "firstTradeDate": 917015400,
        "regularMarketTime": int(price_at.timestamp()),
        "hasPrePostMarketData": True,
        "gmtoffset": replay.gmtoffset,
        "timezone": replay.timezone_abbr,
        "exchangeTimezoneName": replay.exchange_timezone,
        "regularMarketPrice": price,
        "regularMarketDayHigh": max(highs) if highs else None,
        "regularMarketDayLow": min(lows) if lows else None,
        "regularMarketVolume": sum(b.volume or 0 for b in regular_bars),
        "longName": replay.long_name or replay.symbol,
        "shortName": replay.long_name or replay.symbol,
        "chartPreviousClose": replay.previous_close,
        "previousClose": replay.previous_close,
        "scale": 3,
        "priceHint": 2,
        "currentTradingPeriod": current,
        "tradingPeriods": {k: [[v]] for k, v in current.items()},
        "dataGranularity": "1m",
        "range": "1d",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    result: dict[str, Any] = {"meta": meta}
    if bars:
        result["timestamp"] = [int(b.start.timestamp()) for b in bars]
        result["indicators"] = {
            "quote": [
                {
                    "volume": [b.volume for b in bars],
                    "open": [b.open for b in bars],
                    "close": [b.close for b in bars],
                    "high": [b.high for b in bars],
                    "low": [b.low for b in bars],
                }
            ]
        }
    else:
        result["indicators"] = {"quote": [{}]}
    return {"chart": {"result": [result], "error": None}}


def _chart_error(status: int, code: str, description: str) -> web.Response:
    body = {"chart": {"result": None, "error": {"code": code, "description": description}}}
    return web.json_response(body, status=status)


@dataclass(slots=True)
class ChartReplay:
    """The replay server's state: sessions by symbol, the clock, queued faults.

    `faults` are served one per request, in order, before normal answers
    resume. `requests` counts requests per symbol; `user_agents` records them.
    """

    sessions: Mapping[str, SessionReplay]
    clock: Clock
    require_browser_agent: bool = True
    faults: deque[Fault] = field(default_factory=deque)
    requests: dict[str, int] = field(default_factory=dict)
    user_agents: list[str] = field(default_factory=list)

    def inject(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    async def handle_chart(self, request: web.Request) -> web.StreamResponse:
        symbol = request.match_info["symbol"].upper()
        self.requests[symbol] = self.requests.get(symbol, 0) + 1
        agent = request.headers.get("User-Agent", "")
        self.user_agents.append(agent)
        if self.require_browser_agent and not agent.startswith("Mozilla/"):
            return web.Response(status=429, text="Too Many Requests\r\n")
        fault = self.faults.popleft() if self.faults else None
        if fault is not None:
            if fault == "429":
                return web.Response(status=429, text="Too Many Requests\r\n")
            if fault == "429-retry-after":
                return web.Response(
                    status=429, text="Too Many Requests\r\n", headers={"Retry-After": "120"}
                )
            if fault == "500":
                return web.Response(status=500, text="Internal Server Error")
            if fault == "malformed":
                return web.Response(text='{"chart": {"result": [', content_type="application/json")
            if fault == "empty-result":
                return web.json_response({"chart": {"result": [], "error": None}})
        query = request.query
        interval, range_ = query.get("interval", "1m"), query.get("range", "1d")
        if interval != "1m" or range_ != "1d":
            return _chart_error(
                422,
                "Unprocessable Entity",
                f"Invalid input - interval={interval} range={range_} is not supported",
            )
        replay = self.sessions.get(symbol)
        if replay is None:
            return _chart_error(404, "Not Found", "No data found, symbol may be delisted")
        payload = chart_payload(replay, self.clock.now())
        if query.get("includePrePost", "false").lower() != "true":
            _drop_extended_hours(payload, replay.periods)
        text = json.dumps(payload, separators=(",", ":"))
        if fault == "truncated":
            text = text[: len(text) // 2]
        return web.Response(text=text, content_type="application/json")

    def app(self) -> web.Application:
        app = web.Application()
        app[REPLAY_KEY] = self
        app.router.add_get("/v8/finance/chart/{symbol}", self.handle_chart)
        return app


REPLAY_KEY = web.AppKey("chart_replay", ChartReplay)


def _drop_extended_hours(payload: dict[str, Any], periods: TradingPeriods) -> None:
    result = payload["chart"]["result"][0]
    stamps: list[int] = result.get("timestamp", [])
    keep = [
        i
        for i, ts in enumerate(stamps)
        if periods.regular_start.timestamp() <= ts < periods.regular_end.timestamp()
    ]
    if not stamps:
        return
    result["timestamp"] = [stamps[i] for i in keep]
    quote = result["indicators"]["quote"][0]
    for key in list(quote):
        quote[key] = [quote[key][i] for i in keep]


def make_yahoo_app(
    sessions: Iterable[SessionReplay], clock: Clock, *, require_browser_agent: bool = True
) -> web.Application:
    """An aiohttp app serving Yahoo's chart API for `sessions` at `clock`'s time.

    The `ChartReplay` behind it is `app[REPLAY_KEY]` (inject faults there).
    """
    replay = ChartReplay(
        sessions={s.symbol.upper(): s for s in sessions},
        clock=clock,
        require_browser_agent=require_browser_agent,
    )
    return replay.app()


# --------------------------------------------------------------------------- NVDA, 2025-01-27

NVDA_PREVIOUS_CLOSE = 142.62
NVDA_CLOSE = 118.42

# (New York time, price) knots of the path; minutes between are interpolated.
_NVDA_KNOTS: tuple[tuple[str, float], ...] = (
    ("04:00", 130.50),
    ("06:00", 129.60),
    ("07:30", 128.00),
    ("09:00", 126.10),
    ("09:30", 124.80),
    ("10:00", 128.40),
    ("10:30", 126.90),
    ("11:00", 126.00),
    ("11:08", 123.20),
    ("11:30", 121.60),
    ("12:30", 120.80),
    ("13:30", 122.00),
    ("14:30", 119.90),
    ("15:00", 117.30),
    ("15:20", 116.70),
    ("15:31", 117.40),
    ("16:00", 118.42),
    ("17:00", 118.90),
    ("20:00", 119.40),
)


def _at(day: date, hhmm: str) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), NEW_YORK).astimezone(UTC)


def _path(knots: list[tuple[datetime, float]], when: datetime) -> float:
    for (t0, p0), (t1, p1) in pairwise(knots):
        if t0 <= when <= t1:
            span = (t1 - t0).total_seconds()
            return p0 + (p1 - p0) * (when - t0).total_seconds() / span
    return knots[-1][1] if when > knots[-1][0] else knots[0][1]


def nvda_2025_01_27(*, day: date = date(2025, 1, 27)) -> SessionReplay:
    """NVDA's DeepSeek day, minute by minute: previous close 142.62, close 118.42
    (-16.97%), a steep pre-market gap, a morning bounce, an 11:00 slide and a
    15:20 low. Deterministic; a few thin extended-hours minutes are null bars.
    """
    knots = [(_at(day, hhmm), price) for hhmm, price in _NVDA_KNOTS]
    periods = TradingPeriods(
        _at(day, "04:00"), _at(day, "09:30"), _at(day, "16:00"), _at(day, "20:00")
    )
    bars: list[Bar] = []
    minute = timedelta(minutes=1)
    start = periods.pre_start
    i = 0
    while start < periods.post_end:
        end = start + minute
        extended = not (periods.regular_start <= start < periods.regular_end)
        if extended and i % 37 == 11:
            bars.append(Bar(start, None, None, None, None, None))
        else:
            # A small deterministic wiggle that vanishes at the session edges.
            wiggle = 0.04 * math.sin(i * 0.7) + 0.03 * math.sin(i * 1.9)
            o = _path(knots, start) + (wiggle if i else 0.0)
            c = _path(knots, end) + 0.04 * math.sin((i + 1) * 0.7) + 0.03 * math.sin((i + 1) * 1.9)
            if end == periods.regular_end:
                c = NVDA_CLOSE
            if start == periods.regular_start:
                o = 124.80
            hi, lo = max(o, c) + 0.02, min(o, c) - 0.02
            volume = 2_500_000 if not extended else 40_000
            bars.append(Bar(start, round(o, 4), round(hi, 4), round(lo, 4), round(c, 4), volume))
        start = end
        i += 1
    return SessionReplay(
        symbol="NVDA",
        previous_close=NVDA_PREVIOUS_CLOSE,
        periods=periods,
        bars=tuple(bars),
        long_name="NVIDIA Corporation",
    )
