"""Yahoo chart polling against the local replay of NVDA on 2025-01-27: move alerts
through the day, session labels around the open, price context for a 15:31 ET
story, and every way the endpoint misbehaves."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.core.errors import PriceError
from monitor.core.models import Alert, Session
from monitor.core.moves import MoveDetector, MoveSettings, price_context
from monitor.core.pricebook import NEW_YORK, PriceBook, pct_change
from monitor.demo.price_server import (
    NVDA_CLOSE,
    NVDA_PREVIOUS_CLOSE,
    REPLAY_KEY,
    ChartReplay,
    make_yahoo_app,
    nvda_2025_01_27,
)
from monitor.prices import poll_prices
from monitor.prices.yahoo import (
    RateLimitedError,
    UnknownSymbolError,
    YahooChartSource,
    parse_chart,
)
from tests.conftest import FakeClock

REPLAY = nvda_2025_01_27()


def ny(hhmm: str, second: int = 0) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime(2025, 1, 27, hour, minute, second, tzinfo=NEW_YORK).astimezone(UTC)


class Yahoo:
    """The replay server, a client source on it, and a book fed by both."""

    def __init__(self, app: web.Application, source: YahooChartSource, clock: FakeClock) -> None:
        self.replay: ChartReplay = app[REPLAY_KEY]
        self.source = source
        self.clock = clock
        self.book = PriceBook()
        self.detector = MoveDetector(MoveSettings())
        self.alerts: list[Alert] = []
        self.errors: list[str] = []

    async def poll(self) -> None:
        try:
            ticks = await poll_prices(self.source, self.book, ["NVDA"])
        except PriceError as e:
            self.errors.append(str(e))
            return
        self.alerts += self.detector.observe(self.book, ticks, self.clock.now())

    async def run_until(self, end: datetime, step_s: float = 60.0) -> None:
        while self.clock.now() < end:
            await self.poll()
            self.clock.advance(step_s)


@pytest.fixture
async def yahoo(clock: FakeClock) -> AsyncIterator[Yahoo]:
    clock.set(ny("04:00", 30))
    app = make_yahoo_app([REPLAY], clock)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        source = YahooChartSource(http, clock, base_url=str(server.make_url("")), rand=lambda: 1.0)
        yield Yahoo(app, source, clock)
    await server.close()


def test_the_replayed_session_is_the_one_from_the_story() -> None:
    last_regular = [b for b in REPLAY.bars if b.start < REPLAY.periods.regular_end][-1]
    assert last_regular.close == NVDA_CLOSE
    assert round(pct_change(NVDA_PREVIOUS_CLOSE, NVDA_CLOSE), 2) == -16.97
    assert REPLAY.periods.regular_start == ny("09:30")
    assert any(b.close is None for b in REPLAY.bars)  # thin minutes are null bars


async def test_one_move_alert_per_threshold_crossing_through_the_day(yahoo: Yahoo) -> None:
    # Throttling, junk and an outage just before the 11:00 slide change nothing.
    await yahoo.run_until(ny("11:04"))
    yahoo.replay.inject("malformed", "429", "truncated", "500")
    await yahoo.run_until(ny("12:00"))
    assert len(yahoo.errors) == 4

    got = [(a.published, a.rules, a.prices[0].session) for a in yahoo.alerts]
    assert got == [
        (ny("04:00", 30), ("close:5", "close:3"), Session.PRE),
        (ny("07:08"), ("close:10",), Session.PRE),
        (ny("11:07"), ("window:10m:2",), Session.REGULAR),
        (ny("11:16"), ("window:30m:3",), Session.REGULAR),
    ]
    first = yahoo.alerts[0]
    assert first.kind == "move" and first.entities == ("nvidia",)
    assert first.title == "NVDA -8.50% vs previous close (142.62 → 130.50)"
    assert yahoo.alerts[1].severity == "critical"
    slide = yahoo.alerts[2]
    assert slide.title.startswith("NVDA -2.")
    assert "in 10m" in slide.title
    assert len({a.key for a in yahoo.alerts}) == 4


async def test_session_labels_around_the_open(yahoo: Yahoo) -> None:
    yahoo.clock.set(ny("09:29", 10))
    await yahoo.poll()
    book = yahoo.book
    info = book.session_info("NVDA")
    assert info is not None and info.periods == REPLAY.periods
    assert info.timezone == "America/New_York"
    labels = {
        "03:59": Session.CLOSED,
        "04:00": Session.PRE,
        "09:29": Session.PRE,
        "09:30": Session.REGULAR,
        "15:59": Session.REGULAR,
        "16:00": Session.POST,
        "19:59": Session.POST,
        "20:00": Session.CLOSED,
    }
    assert {hhmm: book.session("NVDA", ny(hhmm)) for hhmm in labels} == labels
    latest = book.latest("NVDA")
    assert latest is not None and latest.at == ny("09:29", 10) and latest.provider == "yahoo"


async def test_a_story_at_15_31_carries_the_price_at_publish_and_the_move_since(
    yahoo: Yahoo,
) -> None:
    yahoo.clock.set(ny("15:45"))
    await yahoo.poll()
    published, seen = ny("15:31"), ny("15:33")
    ctx = price_context(yahoo.book, "NVDA", published, seen, yahoo.clock.now())
    assert ctx is not None
    # The price at 15:31:00 is the close of the 15:30 minute; "now" is the open of 15:45.
    bar_1530 = next(b for b in REPLAY.bars if b.start == ny("15:30"))
    bar_1545 = next(b for b in REPLAY.bars if b.start == ny("15:45"))
    assert bar_1530.close is not None and bar_1545.open is not None
    assert ctx.price_at_publish == bar_1530.close
    assert ctx.price == bar_1545.open
    assert ctx.move_since_publish_pct == pytest.approx(pct_change(bar_1530.close, bar_1545.open))
    assert ctx.change_pct == pytest.approx(pct_change(NVDA_PREVIOUS_CLOSE, bar_1545.open))
    assert ctx.previous_close == NVDA_PREVIOUS_CLOSE
    assert ctx.session is Session.REGULAR
    assert ctx.provider == "yahoo" and ctx.delay_s == 0


async def test_after_the_close_the_book_shows_minus_16_97(yahoo: Yahoo) -> None:
    yahoo.clock.set(ny("16:00", 30))
    await yahoo.poll()
    close = yahoo.book.price_at("NVDA", ny("16:00"))
    assert close is not None and close.price == NVDA_CLOSE
    assert round(yahoo.book.change_pct("NVDA", close.price) or 0, 2) == -16.97


async def test_null_bars_never_become_ticks(yahoo: Yahoo) -> None:
    yahoo.clock.set(ny("09:00", 30))
    await yahoo.poll()
    history = yahoo.book.history("NVDA")
    visible = [b for b in REPLAY.visible_bars(yahoo.clock.now()) if b.close is not None]
    assert len(history) == len(visible) and len(visible) < len(REPLAY.visible_bars(ny("09:00")))
    assert all(t.price > 0 for t in history)


async def test_unknown_symbol_is_a_clear_error(yahoo: Yahoo) -> None:
    with pytest.raises(UnknownSymbolError, match=r"NOPE.*No data found"):
        await yahoo.source.fetch(["NOPE"])
    # One bad symbol does not hide the good one.
    ticks = await yahoo.source.fetch(["NVDA", "NOPE"])
    assert ticks and {t.symbol for t in ticks} == {"NVDA"}
    assert "unknown symbol NOPE" in yahoo.source.last_errors["NOPE"]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("malformed", "malformed chart response"),
        ("truncated", "malformed chart response"),
        ("empty-result", "malformed chart response"),
        ("500", "HTTP 500"),
    ],
)
async def test_bad_answers_are_errors_and_the_next_poll_recovers(
    yahoo: Yahoo, fault: str, message: str
) -> None:
    yahoo.replay.inject(fault)  # type: ignore[arg-type]
    with pytest.raises(PriceError, match=message):
        await yahoo.source.fetch(["NVDA"])
    assert await yahoo.source.fetch(["NVDA"])


async def test_429_backs_off_and_then_resumes(yahoo: Yahoo) -> None:
    yahoo.replay.inject("429", "429")
    with pytest.raises(RateLimitedError) as first:
        await yahoo.source.fetch(["NVDA"])
    assert first.value.retry_after == 30.0
    asked = yahoo.replay.requests["NVDA"]
    assert await yahoo.source.fetch(["NVDA"]) == []  # backing off: no request at all
    assert yahoo.replay.requests["NVDA"] == asked
    yahoo.clock.advance(30)
    with pytest.raises(RateLimitedError) as second:
        await yahoo.source.fetch(["NVDA"])
    assert second.value.retry_after == 60.0  # doubled
    yahoo.clock.advance(60)
    assert await yahoo.source.fetch(["NVDA"])
    assert yahoo.source.backing_off() == 0


async def test_a_client_without_a_browser_user_agent_is_throttled(
    yahoo: Yahoo, clock: FakeClock
) -> None:
    async with aiohttp.ClientSession() as http:
        plain = YahooChartSource(
            http, clock, base_url=yahoo.source.base_url, user_agent="python-aiohttp"
        )
        with pytest.raises(RateLimitedError, match="429"):
            await plain.fetch(["NVDA"])
    assert await yahoo.source.fetch(["NVDA"])
    assert yahoo.replay.user_agents[-1].startswith("Mozilla/5.0")


async def test_each_poll_returns_only_what_is_new(yahoo: Yahoo) -> None:
    first = await yahoo.source.fetch(["NVDA"])
    assert [t.at for t in first] == [ny("04:00", 30)]  # the minute in progress
    yahoo.clock.advance(120)
    second = await yahoo.source.fetch(["NVDA"])
    assert [t.at for t in second] == [ny("04:01"), ny("04:02"), ny("04:02", 30)]
    assert await yahoo.source.fetch(["NVDA"]) == []
    yahoo.clock.advance(timedelta(minutes=1).total_seconds())
    assert len(await yahoo.source.fetch(["NVDA"])) == 2


async def test_retry_after_is_honoured(yahoo: Yahoo) -> None:
    yahoo.replay.inject("429-retry-after")
    with pytest.raises(RateLimitedError) as err:
        await yahoo.source.fetch(["NVDA"])
    assert err.value.retry_after == 120.0
    yahoo.clock.advance(119)
    assert await yahoo.source.fetch(["NVDA"]) == []
    yahoo.clock.advance(1)
    assert await yahoo.source.fetch(["NVDA"])


async def test_an_unreachable_endpoint_is_a_price_error(clock: FakeClock) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with aiohttp.ClientSession() as http:
        source = YahooChartSource(http, clock, base_url=f"http://127.0.0.1:{port}", timeout_s=2)
        with pytest.raises(PriceError, match="request failed"):
            await source.fetch(["NVDA"])


def _body(meta: dict[str, object], **result: object) -> bytes:
    return json.dumps({"chart": {"result": [{"meta": meta, **result}], "error": None}}).encode()


NOW = datetime(2025, 1, 27, 15, 0, tzinfo=UTC)
STAMP = int(NOW.timestamp()) - 600


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "malformed chart response"),
        (b'{"chart": {"result": null, "error": null}}', "malformed chart response"),
        (_body("meta"), "malformed chart response"),  # type: ignore[arg-type]
        (_body({}, timestamp=[STAMP], indicators={}), "malformed chart indicators"),
        (
            _body({}, timestamp=[STAMP, STAMP + 60], indicators={"quote": [{"close": [1.0]}]}),
            "2 timestamps but 1 closes",
        ),
        (_body({}, timestamp=[STAMP], indicators={"quote": [{"close": 5}]}), "malformed chart"),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(PriceError, match=message):
        parse_chart("NVDA", body, NOW)


def test_parse_chart_skips_junk_and_reads_meta() -> None:
    closes = [120.0, None, "x", -1, True, 121.5, 122.0]
    stamps = [STAMP + 60 * i for i in range(6)] + [int(NOW.timestamp()) + 3600]  # last: future
    meta = {"chartPreviousClose": 142.62, "exchangeTimezoneName": "America/New_York"}
    body = _body(meta, timestamp=stamps, indicators={"quote": [{"close": closes}]})
    ticks, info = parse_chart("NVDA", body, NOW)
    assert [(t.price, t.at) for t in ticks] == [
        (120.0, datetime.fromtimestamp(STAMP + 60, UTC)),
        (121.5, datetime.fromtimestamp(STAMP + 360, UTC)),
    ]
    assert info.previous_close == 142.62  # previousClose missing: chartPreviousClose
    assert info.periods is None  # no currentTradingPeriod
    # Korean listings are 20 minutes late: nothing newer than now - 20 min is believed.
    ks, _ = parse_chart("005930.KS", body, NOW)
    assert ks == []
    late, _ = parse_chart("005930.KS", body, NOW + timedelta(minutes=20))
    assert [t.delay_s for t in late] == [1200.0, 1200.0]
