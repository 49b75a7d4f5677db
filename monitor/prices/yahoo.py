"""Yahoo chart polling: the no-key default price source.

Owns `GET {base}/v8/finance/chart/{symbol}?range=1d&interval=1m&includePrePost=true`:
turning its minute bars into ticks (skipping null bars), its meta into the
previous close and trading periods, its 404 / 429 / junk answers into
`PriceError`s, and backing off after throttling.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp

from monitor.core.clock import Clock
from monitor.core.errors import PriceError
from monitor.core.models import PriceTick
from monitor.core.pricebook import SessionInfo, TradingPeriods
from monitor.logs import get_logger

log = get_logger(__name__)

# Yahoo throttles clients that do not look like a browser.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)

# Exchanges whose quotes Yahoo serves late, by symbol suffix, in seconds.
DELAY_BY_SUFFIX: dict[str, float] = {".KS": 1200.0, ".KQ": 1200.0}

MAX_BODY_BYTES = 4 * 1024 * 1024


class UnknownSymbolError(PriceError, LookupError):
    """The provider does not know the symbol (Yahoo: 404 with chart.error)."""


class RateLimitedError(PriceError):
    """The provider throttled us (HTTP 429). `retry_after` is when to try again, in seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def delay_for(symbol: str) -> float:
    """How many seconds late Yahoo's quotes for `symbol` are."""
    for suffix, delay in DELAY_BY_SUFFIX.items():
        if symbol.upper().endswith(suffix):
            return delay
    return 0.0


def _epoch(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(value, UTC)
    return None


def _price(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        f = float(value)
        if math.isfinite(f) and f > 0:
            return f
    return None


def parse_session_info(meta: dict[str, Any]) -> SessionInfo:
    """Previous close and today's trading periods from a chart `meta` object."""
    close = _price(meta.get("previousClose")) or _price(meta.get("chartPreviousClose"))
    periods: TradingPeriods | None = None
    current = meta.get("currentTradingPeriod")
    if isinstance(current, dict):
        try:
            pre, reg, post = current["pre"], current["regular"], current["post"]
            bounds = [_epoch(pre["start"]), _epoch(reg["start"]), _epoch(reg["end"])]
            bounds.append(_epoch(post["end"]))
        except (KeyError, TypeError):
            bounds = []
        if len(bounds) == 4 and all(b is not None for b in bounds):
            b0, b1, b2, b3 = (b for b in bounds if b is not None)
            if b0 <= b1 <= b2 <= b3:
                periods = TradingPeriods(b0, b1, b2, b3)
    timezone = meta.get("exchangeTimezoneName")
    return SessionInfo(
        previous_close=close,
        periods=periods,
        timezone=timezone if isinstance(timezone, str) and timezone else "America/New_York",
    )


def parse_chart(
    symbol: str,
    body: bytes,
    now: datetime,
    *,
    provider: str = "yahoo",
    after: datetime | None = None,
) -> tuple[list[PriceTick], SessionInfo]:
    """Ticks (later than `after`) and session info from one chart response body;
    PriceError if unusable.

    A complete bar becomes a tick at its end (its close is the price then);
    the bar still in progress becomes a tick at `now` minus the provider delay.
    """
    try:
        data = json.loads(body)
        result = data["chart"]["result"][0]
        meta = result["meta"]
        if not isinstance(meta, dict):
            raise TypeError("meta is not an object")
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise PriceError(f"yahoo: {symbol}: malformed chart response ({e!r})") from e
    delay = delay_for(symbol)
    info = parse_session_info(meta)
    stamps = result.get("timestamp") or []
    closes: Any = []
    volumes: Any = []
    if stamps:
        try:
            quote_ = result["indicators"]["quote"][0]
            closes = quote_.get("close") or []
            volumes = quote_.get("volume") or []
        except (KeyError, IndexError, TypeError, AttributeError) as e:
            raise PriceError(f"yahoo: {symbol}: malformed chart indicators ({e!r})") from e
    if not isinstance(stamps, list) or not isinstance(closes, list):
        raise PriceError(f"yahoo: {symbol}: malformed chart arrays")
    if not isinstance(volumes, list):
        volumes = []
    if len(closes) != len(stamps):
        raise PriceError(
            f"yahoo: {symbol}: {len(stamps)} timestamps but {len(closes)} closes in chart"
        )
    granularity = _granularity(meta)
    latest_known = now - timedelta(seconds=delay)
    ticks: list[PriceTick] = []
    # Bars that ended before `after` were returned by an earlier call.
    skip_below = (after - granularity).timestamp() if after is not None else -math.inf
    for i, stamp in enumerate(stamps):
        if isinstance(stamp, int | float) and stamp < skip_below:
            continue
        start, price = _epoch(stamp), _price(closes[i])
        if start is None or price is None:
            continue  # Yahoo leaves minutes without trades as null bars
        at = min(start + granularity, latest_known)
        if at < start:
            continue  # a bar from the future: the provider's clock is ahead of ours
        volume = volumes[i] if i < len(volumes) else None
        ticks.append(
            PriceTick(
                symbol=symbol,
                price=price,
                at=at,
                provider=provider,
                delay_s=delay,
                volume=float(volume) if isinstance(volume, int | float) else None,
            )
        )
    return ticks, info


def _granularity(meta: dict[str, Any]) -> timedelta:
    text = meta.get("dataGranularity")
    units = {"m": 60, "h": 3600, "d": 86400}
    if isinstance(text, str) and text[:-1].isdigit() and text[-1:] in units:
        return timedelta(seconds=int(text[:-1]) * units[text[-1]])
    return timedelta(minutes=1)


def _chart_error(body: bytes) -> str:
    try:
        err = json.loads(body)["chart"]["error"]
        return f"{err.get('code', '?')}: {err.get('description', '')}".strip()
    except (ValueError, KeyError, TypeError, AttributeError):
        return body[:200].decode("utf-8", "replace").strip()


class YahooChartSource:
    """Polls Yahoo's chart API; `fetch` returns the ticks newer than the last call's.

    Symbols are fetched one after another (gentle on a throttling host). One
    symbol failing does not hide the others: its error is logged and kept in
    `last_errors`; `fetch` raises only when every symbol failed. After a 429
    the source sleeps (Retry-After, else exponential backoff with
    jitter) and `fetch` returns nothing until the backoff is over.
    """

    name = "yahoo"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        clock: Clock,
        *,
        base_url: str = "https://query2.finance.yahoo.com",
        user_agent: str = BROWSER_USER_AGENT,
        timeout_s: float = 15.0,
        backoff_base_s: float = 30.0,
        backoff_max_s: float = 900.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._session = session
        self._clock = clock
        self.base_url = base_url.rstrip("/")
        self.user_agent = user_agent
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(5.0, timeout_s))
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._rand = rand
        self._last_at: dict[str, datetime] = {}
        self._info: dict[str, SessionInfo] = {}
        self._throttled = 0
        self._resume_at: float | None = None  # monotonic
        self.last_errors: dict[str, str] = {}

    async def start(self) -> None:
        """Nothing to open: each fetch is one request per symbol."""

    async def aclose(self) -> None:
        """Nothing to close: the HTTP session belongs to the caller."""

    def session_info(self) -> dict[str, SessionInfo]:
        return dict(self._info)

    def backing_off(self) -> float:
        """Seconds left in the current backoff, 0 when none."""
        if self._resume_at is None:
            return 0.0
        return max(0.0, self._resume_at - self._clock.monotonic())

    async def fetch(self, symbols: Sequence[str]) -> list[PriceTick]:
        if self.backing_off() > 0:
            log.debug("price_backoff", provider=self.name, seconds=round(self.backing_off(), 1))
            return []
        ticks: list[PriceTick] = []
        errors: list[PriceError] = []
        for symbol in symbols:
            try:
                ticks += await self._fetch_one(symbol)
            except RateLimitedError as e:
                self.last_errors[symbol] = str(e)
                raise
            except PriceError as e:
                self.last_errors[symbol] = str(e)
                errors.append(e)
                log.warning("price_fetch_failed", provider=self.name, symbol=symbol, error=str(e))
            else:
                self.last_errors.pop(symbol, None)
        if errors and len(errors) == len(symbols):
            raise errors[0]
        return ticks

    async def _fetch_one(self, symbol: str) -> list[PriceTick]:
        url = f"{self.base_url}/v8/finance/chart/{quote(symbol, safe='')}"
        params = {"range": "1d", "interval": "1m", "includePrePost": "true"}
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        try:
            async with self._session.get(
                url, params=params, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as resp:
                body = await _read_capped(resp, MAX_BODY_BYTES)
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise PriceError(f"yahoo: {symbol}: request failed ({type(e).__name__}: {e})") from e
        if status == 429:
            raise self._throttle(symbol, retry_after)
        if status == 404:
            raise UnknownSymbolError(f"yahoo: unknown symbol {symbol} ({_chart_error(body)})")
        if status != 200:
            raise PriceError(f"yahoo: {symbol}: HTTP {status} ({_chart_error(body)})")
        self._throttled = 0
        self._resume_at = None
        last = self._last_at.get(symbol)
        ticks, info = parse_chart(symbol, body, self._clock.now(), provider=self.name, after=last)
        self._info[symbol] = info
        fresh = [t for t in ticks if last is None or t.at > last]
        if fresh:
            self._last_at[symbol] = fresh[-1].at
        return fresh

    def _throttle(self, symbol: str, retry_after: str | None) -> RateLimitedError:
        self._throttled += 1
        wait: float | None = None
        if retry_after is not None:
            try:
                wait = min(float(retry_after), self.backoff_max_s)
            except ValueError:
                wait = None
        if wait is None or wait < 0:
            cap = min(self.backoff_max_s, self.backoff_base_s * 2 ** (self._throttled - 1))
            wait = cap * (0.5 + 0.5 * self._rand())
        self._resume_at = self._clock.monotonic() + wait
        log.warning("price_throttled", provider=self.name, symbol=symbol, backoff_s=round(wait, 1))
        return RateLimitedError(
            f"yahoo: {symbol}: throttled (HTTP 429); backing off {wait:.0f}s", retry_after=wait
        )


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > cap:
            raise PriceError(f"yahoo: response larger than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
