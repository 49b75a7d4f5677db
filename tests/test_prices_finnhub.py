"""Finnhub websocket: batched trades into the book, the silence watchdog, failover
to Yahoo and back, bad tokens. Against local servers speaking both protocols."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from monitor.config import PricesConfig
from monitor.core.errors import ConfigError, PriceError
from monitor.core.pricebook import PriceBook
from monitor.demo.price_server import REPLAY_KEY, ChartReplay, make_yahoo_app, nvda_2025_01_27
from monitor.prices import FailoverSource, make_price_source, poll_prices
from monitor.prices.finnhub import FinnhubSource, parse_frame
from monitor.prices.yahoo import YahooChartSource
from tests.conftest import FakeClock
from tests.fakes.finnhub_server import FakeFinnhub, trade

MARKET = datetime(2025, 1, 27, 16, 0, tzinfo=UTC)  # 11:00 in New York


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


@pytest.fixture
async def finnhub() -> AsyncIterator[tuple[FakeFinnhub, str]]:
    fake = FakeFinnhub()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, f"ws://127.0.0.1:{server.port}/"
    finally:
        await server.close()


@pytest.fixture
async def yahoo_app(clock: FakeClock) -> AsyncIterator[tuple[str, ChartReplay]]:
    clock.set(MARKET)
    app = make_yahoo_app([nvda_2025_01_27()], clock)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), app[REPLAY_KEY]
    finally:
        await server.close()


@pytest.fixture
def yahoo_url(yahoo_app: tuple[str, ChartReplay]) -> str:
    return yahoo_app[0]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def stream(http: aiohttp.ClientSession, url: str, **kw: float) -> FinnhubSource:
    options = {
        "heartbeat_s": 10.0,
        "watchdog_s": 0.4,
        "reconnect_min_s": 0.02,
        "reconnect_max_s": 0.1,
        **kw,
    }
    return FinnhubSource(
        http, token="test-token", url=url, symbols=["NVDA", "005930.KS"], **options
    )


async def until(predicate: object, timeout: float = 3.0) -> float:
    """Wait until `predicate()` is true; returns the seconds it took."""
    start = time.perf_counter()
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)
    return time.perf_counter() - start


async def test_batched_trades_reach_the_book(
    finnhub: tuple[FakeFinnhub, str], http: aiohttp.ClientSession
) -> None:
    fake, url = finnhub
    source = stream(http, url)
    await source.start()
    try:
        await fake.wait_for_subscription("NVDA")
        assert fake.subscriptions == ["NVDA"]  # US symbols only
        await fake.send_trades(
            [
                trade("NVDA", 126.0, ms(MARKET)),
                trade("NVDA", 125.5, ms(MARKET) + 250),
                trade("AAPL", 229.0, ms(MARKET) + 300),  # not subscribed: ignored
                trade("NVDA", 125.2, ms(MARKET) + 1500),
            ]
        )
        await fake.send_trades([trade("NVDA", 124.9, ms(MARKET) + 2100)])
        book = PriceBook()
        got: list[float] = []
        async with asyncio.timeout(3):
            while len(got) < 4:
                got += [t.price for t in await poll_prices(source, book, ["NVDA"])]
                await asyncio.sleep(0.01)
        assert got == [126.0, 125.5, 125.2, 124.9]
        # 126.0 and 125.5 fell in the same second: the book keeps the later one.
        assert [t.price for t in book.history("NVDA")] == [125.5, 125.2, 124.9]
        latest = book.latest("NVDA")
        assert latest is not None and latest.provider == "finnhub" and latest.delay_s == 0
        assert latest.at == datetime(2025, 1, 27, 16, 0, 2, 100000, tzinfo=UTC)
        assert await source.fetch(["NVDA"]) == []  # drained
        await source.fetch(["NVDA", "AMD"])  # a symbol added later: subscribed on this socket
        await fake.wait_for_subscription("AMD")
        assert fake.connections == 1
    finally:
        await source.aclose()


async def test_pings_keep_a_quiet_socket_alive(
    finnhub: tuple[FakeFinnhub, str], http: aiohttp.ClientSession
) -> None:
    fake, url = finnhub
    source = stream(http, url, watchdog_s=0.3)
    await source.start()
    try:
        await fake.wait_for_subscription("NVDA")
        for _ in range(8):  # 0.8 s of pings, no trades: longer than the watchdog
            await fake.send_ping()
            await asyncio.sleep(0.1)
        assert source.healthy
        assert fake.connections == 1
    finally:
        await source.aclose()


async def test_silent_socket_is_detected_within_the_watchdog_bound(
    finnhub: tuple[FakeFinnhub, str], http: aiohttp.ClientSession
) -> None:
    fake, url = finnhub
    source = stream(http, url, watchdog_s=0.4)
    await source.start()
    try:
        await fake.wait_for_subscription("NVDA")
        await fake.send_ping()
        await until(lambda: source.healthy)
        fake.go_silent()
        took = await until(lambda: not source.healthy, timeout=2.0)
        assert took < 0.4 + 0.3
        assert source.last_error == "silent for 0.4s"
        with pytest.raises(PriceError, match="not connected"):
            await source.fetch(["NVDA"])
    finally:
        await source.aclose()


async def test_fails_over_to_yahoo_and_comes_back(
    finnhub: tuple[FakeFinnhub, str],
    yahoo_url: str,
    http: aiohttp.ClientSession,
    clock: FakeClock,
) -> None:
    fake, url = finnhub
    yahoo = YahooChartSource(http, clock, base_url=yahoo_url)
    source = FailoverSource(stream(http, url), yahoo, clock)
    book = PriceBook()
    await source.start()
    try:
        await fake.wait_for_subscription("NVDA")
        await until(lambda: source.primary.healthy)
        first = await poll_prices(source, book, ["NVDA"])
        assert source.active == "finnhub"
        # The first fetch also asked Yahoo for the previous close and the morning.
        assert book.previous_close("NVDA") == 142.62
        assert first and {t.provider for t in first} == {"yahoo"}
        assert max(t.at for t in first) <= MARKET

        await fake.send_trades([trade("NVDA", 126.1, ms(MARKET) + 5000)])
        async with asyncio.timeout(3):
            while not (ticks := await poll_prices(source, book, ["NVDA"])):
                await asyncio.sleep(0.01)
        assert [(t.provider, t.price) for t in ticks] == [("finnhub", 126.1)]

        fake.go_silent()
        await until(lambda: not source.primary.healthy, timeout=2.0)
        clock.advance(180)
        ticks = await poll_prices(source, book, ["NVDA"])
        assert source.active == "yahoo"
        assert ticks and {t.provider for t in ticks} == {"yahoo"}
        assert max(t.at for t in ticks) == clock.now()  # the bar in progress

        await until(lambda: fake.rejected >= 1)  # it keeps trying while the server is down
        fake.come_back()
        await fake.wait_for_subscription("NVDA", count=2)
        await until(lambda: source.primary.healthy)
        await fake.send_trades([trade("NVDA", 123.4, ms(clock.now()) + 1000)])
        async with asyncio.timeout(3):
            while not (ticks := await poll_prices(source, book, ["NVDA"])):
                await asyncio.sleep(0.01)
        assert source.active == "finnhub"
        assert [(t.provider, t.price) for t in ticks] == [("finnhub", 123.4)]
        assert source.switches == 3  # (start) -> finnhub -> yahoo -> finnhub
        assert fake.connections == 2
    finally:
        await source.aclose()


async def test_bad_token_is_an_error_without_leaking_the_token(
    finnhub: tuple[FakeFinnhub, str], http: aiohttp.ClientSession
) -> None:
    fake, url = finnhub
    source = FinnhubSource(
        http, token="s3cr3t-key", url=url, reconnect_min_s=0.05, reconnect_max_s=0.1
    )
    await source.start()
    try:
        await until(lambda: fake.rejected >= 1)
        await until(lambda: source.last_error is not None)
        with pytest.raises(PriceError) as err:
            await source.fetch(["NVDA"])
        assert "401" in str(err.value)
        assert "s3cr3t-key" not in str(err.value)
    finally:
        await source.aclose()


@pytest.mark.parametrize(
    ("frame", "kind", "prices"),
    [
        ('{"type":"ping"}', "ping", []),
        (
            '{"type":"trade","data":[{"s":"NVDA","p":122.1,"t":1672348887195,"v":1,"c":["1"]}]}',
            "trade",
            [122.1],
        ),
        # junk inside a trade frame is skipped, the good trades kept
        (
            '{"type":"trade","data":[{"s":"NVDA","p":null,"t":1},{"s":"NVDA","p":-1,"t":1},'
            '{"s":"NVDA","p":"12","t":1},{"p":5,"t":1},"x",{"s":"NVDA","p":121.9,"t":1672348887300}]}',
            "trade",
            [121.9],
        ),
        ('{"type":"error","msg":"Subscribing to too many symbols"}', "error", []),
    ],
)
def test_frames(frame: str, kind: str, prices: list[float]) -> None:
    got_kind, ticks = parse_frame(frame, {"NVDA"})
    assert got_kind == kind
    assert [t.price for t in ticks] == prices


@pytest.mark.parametrize("frame", ["not json", "[1,2]", '{"data":[]}', '{"type":5}'])
def test_junk_frames_are_refused(frame: str) -> None:
    with pytest.raises(ValueError):
        parse_frame(frame)


async def test_make_price_source(http: aiohttp.ClientSession, clock: FakeClock) -> None:
    assert isinstance(make_price_source(PricesConfig(), http, clock, {}), YahooChartSource)
    config = PricesConfig(provider="finnhub", finnhub_token_env="MY_TOKEN")
    with pytest.raises(ConfigError, match="MY_TOKEN"):
        make_price_source(config, http, clock, {})
    source = make_price_source(config, http, clock, {"MY_TOKEN": "abc"})
    assert isinstance(source, FailoverSource)
    assert source.primary.healthy is False


async def test_streamed_trades_survive_a_failing_fallback(
    finnhub: tuple[FakeFinnhub, str],
    yahoo_app: tuple[str, ChartReplay],
    http: aiohttp.ClientSession,
    clock: FakeClock,
) -> None:
    fake, url = finnhub
    yahoo_url, replay = yahoo_app
    yahoo = YahooChartSource(http, clock, base_url=yahoo_url)
    source = FailoverSource(stream(http, url), yahoo, clock)
    await source.start()
    try:
        await fake.wait_for_subscription("NVDA")
        await until(lambda: source.primary.healthy)
        await fake.send_trades([trade("NVDA", 126.1, ms(MARKET))])
        await until(lambda: bool(source.primary._buffer))
        # Yahoo fails for everything it is asked; the NVDA trade still arrives.
        replay.inject("500", "500")
        ticks = await source.fetch(["NVDA", "005930.KS"])
        assert ("finnhub", 126.1) in [(t.provider, t.price) for t in ticks]
        assert "005930.KS" in yahoo.last_errors
        assert "005930.KS" not in fake.subscriptions  # US symbols only
    finally:
        await source.aclose()
