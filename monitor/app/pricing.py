"""Price pipeline: polls the price source into the PriceBook, runs the move detector,
and answers "what was NVDA doing around this article?" for news alerts.

It decides nothing itself: the book, the detector, the price context and the
move-explaining merge are the pure core's (`monitor.core.pricebook`, `.moves`).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp

from monitor.app.metrics import Metrics
from monitor.config import PricesConfig
from monitor.core.chart import ChartBase, finish_chart, symbol_chart_base
from monitor.core.clock import Clock
from monitor.core.errors import PriceError
from monitor.core.models import Alert, Article, PriceContext, PriceTick
from monitor.core.moves import MoveDetector, explain_move, followup_alert, price_context
from monitor.core.pricebook import PriceBook
from monitor.logs import get_logger
from monitor.ports import PriceSource
from monitor.prices import make_price_source, move_settings, poll_prices

log = get_logger(__name__)


class PriceTracker:
    """Owns the price source, the PriceBook and the move detector of one daemon."""

    def __init__(
        self,
        config: PricesConfig,
        session: aiohttp.ClientSession,
        clock: Clock,
        environ: Mapping[str, str],
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.book = PriceBook()
        self.detector = MoveDetector(settings=move_settings(config))
        self.source: PriceSource | None = (
            make_price_source(config, session, clock, environ)
            if config.enabled and config.symbols
            else None
        )
        self.last_error: str | None = None
        # News alerts of the last hours, so a move can name the stories that explain it.
        self._recent_news: deque[Alert] = deque(maxlen=200)
        # The chart's picture, with what it was drawn from (minute, latest tick, previous
        # close), and the finished PNGs of that picture by publish minute.
        self._chart_base: tuple[_Drawn, ChartBase | None] | None = None
        self._charts: OrderedDict[str, bytes] = OrderedDict()

    async def start(self) -> None:
        if self.source is not None:
            await self.source.start()

    async def aclose(self) -> None:
        if self.source is not None:
            await self.source.aclose()

    async def tick(self) -> list[Alert]:
        """Fetch once; return move alerts (merged with the news that explains them)."""
        if self.source is None:
            return []
        now = self.clock.now()
        try:
            ticks = await poll_prices(self.source, self.book, self.config.symbols)
        except PriceError as e:
            self.last_error = str(e)
            self.metrics.price_errors.inc(provider=self.source.name)
            log.warning("price_fetch_failed", provider=self.source.name, error=str(e))
            ticks = []
        else:
            self.last_error = None
        for t in ticks:
            self.metrics.price_ticks.inc(provider=t.provider)
        for symbol in self.config.symbols:
            stale = self.book.staleness(symbol, now)
            if stale is not None:
                self.metrics.price_staleness.set(stale, symbol=symbol)
        if not ticks:
            return []
        moves = self.detector.observe(self.book, ticks, now)
        horizon = now - timedelta(seconds=self.config.explain_window * 4)
        recent = [a for a in self._recent_news if (a.published or a.created_at) >= horizon]
        return [explain_move(m, recent, self.config.explain_window) for m in moves]

    def context_for(self, article: Article) -> tuple[PriceContext, ...]:
        """Price context of every watched symbol the book knows, for a news alert."""
        now = self.clock.now()
        out = []
        for symbol in self.config.symbols:
            ctx = price_context(self.book, symbol, article.published, article.seen_at, now)
            if ctx is not None:
                out.append(ctx)
        return tuple(out)

    def prepare_chart(self) -> None:
        """Draw the chart's picture ahead of the alerts that need it: again each minute
        and after each new price, so that an alert only adds its publish-time marker
        (about a millisecond, against several for the whole picture). The daemon
        calls this every second; `chart_for` calls it too, in case it has not run."""
        if not self.config.symbols:
            return
        symbol = self.config.symbols[0]
        now = self.clock.now()
        latest = self.book.latest(symbol)
        drawn = (_minute(now), latest, self.book.previous_close(symbol))
        if self._chart_base is not None and self._chart_base[0] == drawn:
            return
        base = symbol_chart_base(self.book, symbol, now, tz=_NEW_YORK)
        self._chart_base = (drawn, base)
        self._charts.clear()

    def chart_for(self, article: Article) -> bytes | None:
        """A PNG of the first symbol's last hours with the publish time marked,
        cached per publish minute until the picture is drawn again."""
        self.prepare_chart()
        if self._chart_base is None or self._chart_base[1] is None:
            return None
        mark = article.published or article.seen_at
        key = _minute(mark) if mark else ""
        if key not in self._charts:
            self._charts[key] = finish_chart(self._chart_base[1], mark)
            while len(self._charts) > 32:
                self._charts.popitem(last=False)
        return self._charts[key]

    def note_news(self, alert: Alert) -> None:
        """Remember a news alert so that a move soon after can link it: only what
        `explain_move` reads of it (no chart, summary or prices)."""
        self._recent_news.append(
            replace(
                alert,
                summary="",
                rule_titles=(),
                prices=(),
                sources=alert.sources[:1],
                children=(),
                chart_png="",
            )
        )

    def followup(self, original: Alert, after_s: float, reply_to: str | None) -> Alert | None:
        return followup_alert(original, self.book, self.clock.now(), after_s, reply_to)

    def freshness(self) -> tuple[bool, str]:
        """(fresh, detail) for readiness: every symbol ticked within `stale_after`."""
        now = self.clock.now()
        worst: list[str] = []
        for symbol in self.config.symbols:
            age = self.book.staleness(symbol, now)
            if age is None:
                worst.append(f"{symbol}: no price yet")
            elif age > self.config.stale_after and not self._market_quiet(symbol):
                worst.append(f"{symbol}: {age:.0f}s old")
        if self.last_error:
            worst.append(f"last error: {self.last_error}")
        return (not worst, "; ".join(worst) or "fresh")

    def _market_quiet(self, symbol: str) -> bool:
        """Outside trading sessions no new ticks come; an old price is not stale then."""
        return self.book.session(symbol, self.clock.now()).value == "closed"


_NEW_YORK = ZoneInfo("America/New_York")
_Drawn = tuple[str, PriceTick | None, float | None]  # what a chart's picture shows


def _minute(when: datetime) -> str:
    return when.strftime("%Y%m%d%H%M")
