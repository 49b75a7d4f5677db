"""PriceBook and the US-equities calendar: holidays, sessions, history, bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from monitor.core.models import PriceTick, Session
from monitor.core.pricebook import (
    NEW_YORK,
    PriceBook,
    SessionInfo,
    TradingPeriods,
    UsEquityCalendar,
    us_market_holidays,
)

T0 = datetime(2025, 1, 28, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York


def tick(price: float, seconds: float = 0.0, symbol: str = "NVDA", **kw: float) -> PriceTick:
    return PriceTick(symbol, price, T0 + timedelta(seconds=seconds), "test", **kw)  # type: ignore[arg-type]


def ny(y: int, m: int, d: int, hh: int, mm: int) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=NEW_YORK).astimezone(UTC)


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        (
            2025,
            {
                date(2025, 1, 1), date(2025, 1, 9), date(2025, 1, 20), date(2025, 2, 17),
                date(2025, 4, 18), date(2025, 5, 26), date(2025, 6, 19), date(2025, 7, 4),
                date(2025, 9, 1), date(2025, 11, 27), date(2025, 12, 25),
            },
        ),
        (
            2026,
            {
                date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 4, 3),
                date(2026, 5, 25), date(2026, 6, 19), date(2026, 7, 3), date(2026, 9, 7),
                date(2026, 11, 26), date(2026, 12, 25),
            },
        ),
        (
            2022,  # New Year's Day 2022 was a Saturday: no Friday closure; Christmas on Sunday
            {
                date(2022, 1, 17), date(2022, 2, 21), date(2022, 4, 15), date(2022, 5, 30),
                date(2022, 6, 20), date(2022, 7, 4), date(2022, 9, 5), date(2022, 11, 24),
                date(2022, 12, 26),
            },
        ),
    ],
)  # fmt: skip
def test_us_market_holidays(year: int, expected: set[date]) -> None:
    assert us_market_holidays(year) == expected


@pytest.mark.parametrize(
    ("when", "session"),
    [
        (ny(2025, 1, 27, 3, 59), Session.CLOSED),
        (ny(2025, 1, 27, 4, 0), Session.PRE),
        (ny(2025, 1, 27, 9, 29), Session.PRE),
        (ny(2025, 1, 27, 9, 30), Session.REGULAR),
        (ny(2025, 1, 27, 15, 59), Session.REGULAR),
        (ny(2025, 1, 27, 16, 0), Session.POST),
        (ny(2025, 1, 27, 20, 0), Session.CLOSED),
        (ny(2025, 7, 7, 9, 30), Session.REGULAR),  # daylight saving time: 13:30 UTC
        (datetime(2025, 7, 7, 13, 29, tzinfo=UTC), Session.PRE),
        (ny(2025, 1, 25, 11, 0), Session.CLOSED),  # Saturday
        (ny(2025, 1, 20, 11, 0), Session.CLOSED),  # Martin Luther King Jr. Day
        (ny(2025, 11, 28, 12, 59), Session.REGULAR),  # day after Thanksgiving closes at 13:00
        (ny(2025, 11, 28, 13, 0), Session.POST),
        (ny(2025, 11, 28, 17, 0), Session.CLOSED),
        (ny(2025, 12, 24, 13, 30), Session.POST),
    ],
)
def test_calendar_sessions(when: datetime, session: Session) -> None:
    assert UsEquityCalendar().session_at(when) is session
    assert PriceBook().session("NVDA", when) is session


def test_provider_periods_win_over_the_calendar() -> None:
    book = PriceBook()
    # A half day the calendar does not know about.
    half = TradingPeriods(
        ny(2025, 1, 28, 4, 0),
        ny(2025, 1, 28, 9, 30),
        ny(2025, 1, 28, 12, 0),
        ny(2025, 1, 28, 16, 0),
    )
    book.set_session_info("NVDA", SessionInfo(previous_close=100.0, periods=half))
    assert book.session("NVDA", ny(2025, 1, 28, 12, 30)) is Session.POST
    # Outside the provider's day the calendar answers again.
    assert book.session("NVDA", ny(2025, 1, 29, 12, 30)) is Session.REGULAR
    # Foreign symbols have no calendar here: closed unless the provider said so.
    assert book.session("005930.KS", ny(2025, 1, 28, 12, 30)) is Session.CLOSED
    start, end = book.session_bounds("NVDA", ny(2025, 1, 28, 10, 0))[1:]
    assert (start, end) == (half.regular_start, half.regular_end)


def test_session_info_updates_do_not_erase_what_is_known() -> None:
    book = PriceBook()
    book.set_session_info("NVDA", SessionInfo(previous_close=142.62))
    book.set_session_info("NVDA", SessionInfo())
    assert book.previous_close("NVDA") == 142.62
    book.set_session_info("NVDA", SessionInfo(previous_close=118.42))
    assert book.previous_close("NVDA") == 118.42


def test_price_at_any_past_instant() -> None:
    book = PriceBook()
    book.add_many([tick(100.0, 0), tick(101.0, 60), tick(99.0, 120)])
    assert book.price_at("NVDA", T0 - timedelta(seconds=1)) is None
    at_90 = book.price_at("NVDA", T0 + timedelta(seconds=90))
    assert at_90 is not None and at_90.price == 101.0
    assert book.price_at("NVDA", T0 + timedelta(hours=5), max_gap_s=600) is None
    assert book.price_at("AMD", T0) is None
    latest = book.latest("NVDA")
    assert latest is not None and latest.price == 99.0


def test_change_versus_previous_close() -> None:
    book = PriceBook()
    book.add(tick(118.42))
    assert book.change_pct("NVDA") is None
    book.set_session_info("NVDA", SessionInfo(previous_close=142.62))
    assert round(book.change_pct("NVDA") or 0, 2) == -16.97
    assert book.change_pct("NVDA", 142.62) == 0.0


def test_ticks_in_one_second_are_coalesced_and_late_ticks_slot_in() -> None:
    book = PriceBook(resolution_s=1.0)
    book.add_many([tick(100.0, 0.1), tick(100.5, 0.6), tick(101.0, 2.0)])
    assert [t.price for t in book.history("NVDA")] == [100.5, 101.0]
    book.add(tick(100.7, 1.2))  # a fallback source filling the gap, out of order
    assert [t.price for t in book.history("NVDA")] == [100.5, 100.7, 101.0]


@pytest.mark.parametrize("price", [0.0, -5.0, float("nan"), float("inf")])
def test_unusable_prices_are_refused(price: float) -> None:
    book = PriceBook()
    assert book.add(tick(price)) is False
    assert book.latest("NVDA") is None


def test_history_is_bounded_in_points_and_age() -> None:
    book = PriceBook(max_points=100, max_age_s=3600)
    book.add_many(tick(100.0 + i % 7, i * 10) for i in range(1000))
    assert 90 <= len(book.history("NVDA")) <= 100
    aged = PriceBook(max_points=10_000, max_age_s=600)
    aged.add_many(tick(100.0, i * 10) for i in range(1000))
    history = aged.history("NVDA")
    assert (history[-1].at - history[0].at).total_seconds() <= 600


def test_staleness() -> None:
    book = PriceBook()
    assert book.staleness("NVDA", T0) is None
    book.add(tick(100.0))
    assert book.staleness("NVDA", T0 + timedelta(seconds=95)) == 95.0
