"""Finnhub's trade websocket: real-time US prices with a free key.

Owns the connection to `{url}?token=KEY`: subscribing with
`{"type":"subscribe","symbol":"NVDA"}`, turning `{"type":"trade","data":[...]}`
frames (several trades each, `t` in epoch milliseconds) into ticks, treating
`{"type":"ping"}` as a sign of life, and noticing when a socket falls silent
(free sockets drop without a close frame): a websocket heartbeat plus a
watchdog on any message, then reconnecting with jittered backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
from yarl import URL

from monitor.core.errors import PriceError
from monitor.core.models import PriceTick
from monitor.core.pricebook import SessionInfo, is_us_symbol
from monitor.core.redact import redact
from monitor.logs import get_logger

log = get_logger(__name__)


def parse_frame(text: str, wanted: set[str] | None = None) -> tuple[str, list[PriceTick]]:
    """The frame's type and the usable trades in it (unknown symbols and junk skipped).

    Raises ValueError when the frame is not a JSON object with a string `type`.
    """
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ValueError("not a Finnhub frame")
    kind: str = data["type"]
    ticks: list[PriceTick] = []
    if kind == "trade" and isinstance(data.get("data"), list):
        for trade in data["data"]:
            tick = _trade_tick(trade)
            if tick is not None and (wanted is None or tick.symbol in wanted):
                ticks.append(tick)
    return kind, ticks


def _trade_tick(trade: Any) -> PriceTick | None:
    if not isinstance(trade, dict):
        return None
    symbol, price, stamp, volume = trade.get("s"), trade.get("p"), trade.get("t"), trade.get("v")
    if not isinstance(symbol, str) or not symbol:
        return None
    if not isinstance(price, int | float) or isinstance(price, bool):
        return None
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        return None
    if not (math.isfinite(price) and price > 0 and math.isfinite(stamp) and stamp > 0):
        return None
    try:
        at = datetime.fromtimestamp(stamp / 1000.0, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    vol = (
        float(volume) if isinstance(volume, int | float) and not isinstance(volume, bool) else None
    )
    return PriceTick(symbol=symbol, price=float(price), at=at, provider="finnhub", volume=vol)


class FinnhubSource:
    """A streaming `PriceSource`: `start()` connects in the background, `fetch`
    drains the trades that arrived since the previous call.

    `healthy` is true while a socket is open and has spoken (trade or ping)
    within `watchdog_s`; when it falls silent the socket is dropped and
    reconnected after `reconnect_min_s` .. `reconnect_max_s` (doubling, with
    jitter). Only US symbols are subscribed. At most `max_buffer` trades wait
    between fetches; beyond that the oldest are dropped.
    """

    name = "finnhub"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        token: str,
        url: str = "wss://ws.finnhub.io",
        symbols: Sequence[str] = (),
        heartbeat_s: float = 20.0,
        watchdog_s: float = 60.0,
        connect_timeout_s: float = 10.0,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        max_buffer: int = 100_000,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._session = session
        self._url = URL(url).update_query(token=token)
        self.heartbeat_s = heartbeat_s
        self.watchdog_s = watchdog_s
        self.connect_timeout_s = connect_timeout_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self._rand = rand
        self._symbols: list[str] = []
        self._buffer: deque[PriceTick] = deque(maxlen=max_buffer)
        self._dropped = 0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._healthy = False
        self.connects = 0  # successful connections so far
        self.last_error: str | None = None
        self.want(symbols)

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="finnhub-websocket")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._healthy = False

    @property
    def healthy(self) -> bool:
        return self._healthy

    def session_info(self) -> dict[str, SessionInfo]:
        return {}  # trades only: no previous close, no trading periods

    def want(self, symbols: Sequence[str]) -> list[str]:
        """Add US symbols to the subscription list; returns the ones that are new.

        They are subscribed on the next connection; `ensure` also subscribes
        them on the open one.
        """
        new = [s for s in symbols if is_us_symbol(s) and s not in self._symbols]
        self._symbols += new
        return new

    async def ensure(self, symbols: Sequence[str]) -> None:
        """Subscribe to any US symbol of `symbols` not subscribed yet."""
        for symbol in self.want(symbols):
            await self._subscribe(symbol)

    # ----------------------------------------------------------------- reading

    def drain(self, symbols: Sequence[str] | None = None) -> list[PriceTick]:
        """Take the buffered trades (of `symbols`, when given), oldest first."""
        if symbols is None:
            everything = list(self._buffer)
            self._buffer.clear()
            return everything
        wanted = set(symbols)
        out: list[PriceTick] = []
        keep: list[PriceTick] = []
        for tick in self._buffer:
            (out if tick.symbol in wanted else keep).append(tick)
        self._buffer.clear()
        self._buffer.extend(keep)
        return out

    async def fetch(self, symbols: Sequence[str]) -> list[PriceTick]:
        """Trades received since the previous call; PriceError when the socket is
        down and nothing arrived."""
        await self.ensure(symbols)
        ticks = self.drain(symbols)
        if not ticks and not self._healthy:
            raise PriceError(f"finnhub: not connected ({self.last_error or 'starting'})")
        return ticks

    async def _subscribe(self, symbol: str) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            try:
                await ws.send_json({"type": "subscribe", "symbol": symbol})
            except (aiohttp.ClientError, ConnectionError) as e:
                # The reader notices the broken socket; the next connection subscribes.
                log.info("price_subscribe_failed", provider=self.name, symbol=symbol, error=str(e))

    # ----------------------------------------------------------------- the socket

    async def _run(self) -> None:
        failures = 0
        while True:
            spoke = False
            try:
                spoke = await self._session_once()
                self.last_error = "closed by server"
            except TimeoutError:
                self.last_error = f"silent for {self.watchdog_s:g}s"
                log.warning("price_stream_silent", provider=self.name, seconds=self.watchdog_s)
            except aiohttp.ClientError as e:
                self.last_error = redact(f"{type(e).__name__}: {e}")
                log.warning("price_stream_failed", provider=self.name, error=self.last_error)
            finally:
                self._healthy = False
                self._ws = None
            failures = 0 if spoke else failures + 1
            cap = min(self.reconnect_max_s, self.reconnect_min_s * 2 ** min(failures, 16))
            delay = cap * (0.5 + 0.5 * self._rand())
            log.info("price_stream_reconnect", provider=self.name, in_s=round(delay, 2))
            await asyncio.sleep(delay)

    async def _session_once(self) -> bool:
        """One connection, until it fails or falls silent; True if it carried data."""
        spoke = False
        timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0)
        async with self._session.ws_connect(
            self._url,
            heartbeat=self.heartbeat_s,
            timeout=timeout,
            autoping=True,
        ) as ws:
            self._ws = ws
            for symbol in self._symbols:
                await ws.send_json({"type": "subscribe", "symbol": symbol})
            self.connects += 1
            self._healthy = True
            log.info("price_stream_connected", provider=self.name, symbols=len(self._symbols))
            while True:
                # The watchdog: free sockets drop without a close frame.
                msg = await ws.receive(timeout=self.watchdog_s)
                if msg.type is aiohttp.WSMsgType.TEXT:
                    spoke = True
                    self._on_text(msg.data)
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    log.info("price_stream_closed", provider=self.name, code=ws.close_code)
                    return spoke

    def _on_text(self, text: str) -> None:
        try:
            kind, ticks = parse_frame(text, set(self._symbols))
        except ValueError:
            log.debug("price_stream_junk", provider=self.name, size=len(text))
            return
        if kind == "error":
            log.warning("price_stream_error", provider=self.name, message=redact(text[:200]))
        if len(self._buffer) + len(ticks) > (self._buffer.maxlen or 0):
            self._dropped += len(ticks)
        self._buffer.extend(ticks)
