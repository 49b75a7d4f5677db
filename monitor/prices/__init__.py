"""Price adapter: Yahoo chart polling and the Finnhub websocket with failover.

`make_price_source` builds the configured `PriceSource`; `poll_prices` runs one
fetch into a `PriceBook`; `move_settings` turns the `[prices]` table into the
move detector's settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aiohttp

from monitor.config import MoveThreshold, PricesConfig
from monitor.core.clock import Clock
from monitor.core.errors import ConfigError
from monitor.core.models import PriceTick, Session
from monitor.core.moves import MoveSettings, WindowRule
from monitor.core.pricebook import PriceBook, is_us_symbol
from monitor.ports import PriceSource
from monitor.prices.failover import FailoverSource
from monitor.prices.finnhub import FinnhubSource
from monitor.prices.yahoo import YahooChartSource

__all__ = [
    "FailoverSource",
    "FinnhubSource",
    "YahooChartSource",
    "make_price_source",
    "move_settings",
    "poll_prices",
]


def make_price_source(
    prices_config: PricesConfig,
    session: aiohttp.ClientSession,
    clock: Clock,
    environ: Mapping[str, str],
) -> PriceSource:
    """The configured source: Yahoo polling, or Finnhub with Yahoo as fallback.

    Raises ConfigError when provider = "finnhub" and the token variable is unset.
    Call `await source.start()` before the first fetch and `aclose()` at the end.
    """
    yahoo = YahooChartSource(session, clock, base_url=prices_config.yahoo_base_url)
    if prices_config.provider == "yahoo":
        return yahoo
    token = environ.get(prices_config.finnhub_token_env, "").strip()
    if not token:
        raise ConfigError(
            f"prices: provider is finnhub but environment variable "
            f"{prices_config.finnhub_token_env} is not set"
        )
    stream = FinnhubSource(
        session,
        token=token,
        url=prices_config.finnhub_url,
        symbols=[s for s in prices_config.symbols if is_us_symbol(s)],
        watchdog_s=prices_config.finnhub_watchdog,
        heartbeat_s=min(20.0, max(1.0, prices_config.finnhub_watchdog / 2)),
    )
    return FailoverSource(stream, yahoo, clock)


async def poll_prices(
    source: PriceSource, book: PriceBook, symbols: Sequence[str]
) -> list[PriceTick]:
    """Fetch once, record session info and ticks in `book`; returns the ticks recorded.

    Raises PriceError as `source.fetch` does; session info learnt before the
    error is still recorded.
    """
    try:
        ticks = await source.fetch(symbols)
    finally:
        for symbol, info in source.session_info().items():
            book.set_session_info(symbol, info)
    return [t for t in ticks if book.add(t)]


def move_settings(prices_config: PricesConfig) -> MoveSettings:
    """The move detector's settings from the `[prices]` table."""

    def rules(items: Sequence[MoveThreshold]) -> tuple[WindowRule, ...]:
        return tuple(WindowRule(m.window, m.pct) for m in items)

    return MoveSettings(
        previous_close_levels=tuple(prices_config.move_vs_previous_close_pct),
        windows=rules(prices_config.move_windows),
        session_windows=tuple(
            (Session(name), rules(items))
            for name, items in prices_config.move_session_windows.items()
        ),
        sessions=frozenset(Session(s) for s in prices_config.move_sessions),
        cooldown_s=prices_config.move_cooldown,
        hysteresis=prices_config.move_hysteresis,
        stale_after_s=prices_config.stale_after,
    )
