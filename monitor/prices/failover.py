"""Failover: Finnhub's websocket while it is alive, Yahoo polling while it is not.

Owns the choice of source per fetch. US symbols come from the websocket when
it is healthy; otherwise, and always for non-US symbols, from Yahoo. Yahoo is
also asked now and then for what the websocket cannot tell (previous close,
trading periods) and for the day's earlier history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from monitor.core.clock import Clock
from monitor.core.errors import PriceError
from monitor.core.models import PriceTick
from monitor.core.pricebook import SessionInfo, is_us_symbol
from monitor.logs import get_logger
from monitor.prices.finnhub import FinnhubSource
from monitor.prices.yahoo import YahooChartSource

log = get_logger(__name__)

Active = Literal["finnhub", "yahoo"]


class FailoverSource:
    """A `PriceSource` over a streaming primary and a polling fallback.

    `active` says which one serves US symbols right now. While the primary is
    healthy, the fallback is polled every `meta_refresh_s` only for session
    info and for history older than the first streamed trade.
    """

    name = "finnhub+yahoo"

    def __init__(
        self,
        primary: FinnhubSource,
        fallback: YahooChartSource,
        clock: Clock,
        *,
        meta_refresh_s: float = 600.0,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self._clock = clock
        self.meta_refresh_s = meta_refresh_s
        self._active: Active = "yahoo"
        self._next_meta: float | None = None
        self._first_streamed: dict[str, datetime] = {}
        self.switches = 0

    @property
    def active(self) -> Active:
        return self._active

    async def start(self) -> None:
        await self.primary.start()
        await self.fallback.start()

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.fallback.aclose()

    def session_info(self) -> dict[str, SessionInfo]:
        return {**self.fallback.session_info(), **self.primary.session_info()}

    def _switch(self, to: Active) -> None:
        if to != self._active:
            self.switches += 1
            log.warning(
                "price_source_switched",
                to=to,
                previous=self._active,
                reason=self.primary.last_error if to == "yahoo" else "stream back",
            )
            self._active = to

    async def fetch(self, symbols: Sequence[str]) -> list[PriceTick]:
        us = [s for s in symbols if is_us_symbol(s)]
        others = [s for s in symbols if not is_us_symbol(s)]
        await self.primary.ensure(us)
        if self.primary.healthy:
            self._switch("finnhub")
            streamed = self.primary.drain(us)
            for tick in streamed:
                self._first_streamed.setdefault(tick.symbol, tick.at)
            polling, meta_only = others, (us if self._meta_due() else [])
        else:
            self._switch("yahoo")
            streamed = self.primary.drain(us)  # what arrived before the socket died
            polling, meta_only = [*us, *others], []
        try:
            polled = await self._poll(polling, meta_only)
        except PriceError as e:
            if not streamed:
                raise
            # Keep the streamed trades (already drained) and report the rest.
            log.warning("price_fetch_failed", provider=self.fallback.name, error=str(e))
            polled = []
        return streamed + polled

    def _meta_due(self) -> bool:
        now = self._clock.monotonic()
        if self._next_meta is None or now >= self._next_meta:
            self._next_meta = now + self.meta_refresh_s
            return True
        return False

    async def _poll(self, symbols: list[str], meta_only: list[str]) -> list[PriceTick]:
        """Poll the fallback for `symbols`; for `meta_only` keep only older history."""
        wanted = symbols + [s for s in meta_only if s not in symbols]
        if not wanted:
            return []
        try:
            ticks = await self.fallback.fetch(wanted)
        except PriceError as e:
            if not symbols:
                log.info("price_meta_refresh_failed", provider=self.fallback.name, error=str(e))
                return []
            raise
        meta = set(meta_only) - set(symbols)
        out: list[PriceTick] = []
        for tick in ticks:
            if tick.symbol in meta:
                first = self._first_streamed.get(tick.symbol)
                if first is not None and tick.at >= first:
                    continue  # the stream has this period at full resolution
            out.append(tick)
        return out
