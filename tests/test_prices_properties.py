"""Properties that must hold for any price path: the book answers like a sorted
list, and no move rule ever alerts twice within its cooldown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.models import PriceTick
from monitor.core.moves import MoveDetector, MoveSettings, WindowRule
from monitor.core.pricebook import PriceBook, SessionInfo

T0 = datetime(2025, 1, 28, 15, 0, tzinfo=UTC)  # Tuesday 10:00 New York, regular session


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 3600), min_size=1, max_size=60, unique=True),
    queries=st.lists(st.integers(-10, 3700), min_size=1, max_size=20),
)
def test_price_at_matches_a_sorted_list_whatever_the_arrival_order(
    offsets: list[int], queries: list[int]
) -> None:
    book = PriceBook(resolution_s=0)
    for i, off in enumerate(offsets):  # arrival order is the generated order
        book.add(PriceTick("NVDA", 100.0 + i, T0 + timedelta(seconds=off), "test"))
    ordered = sorted((off, 100.0 + i) for i, off in enumerate(offsets))
    for q in queries:
        expected = [p for off, p in ordered if off <= q]
        got = book.price_at("NVDA", T0 + timedelta(seconds=q))
        assert (got.price if got else None) == (expected[-1] if expected else None)


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.floats(-1.5, 1.5), min_size=10, max_size=200))
def test_no_rule_alerts_twice_within_its_cooldown(steps: list[float]) -> None:
    cooldown = 1800.0
    rules = MoveSettings(
        previous_close_levels=(3.0, 5.0),
        windows=(WindowRule(600, 2.0), WindowRule(1800, 3.0)),
        cooldown_s=cooldown,
    )
    book = PriceBook()
    book.set_session_info("NVDA", SessionInfo(previous_close=100.0))
    detector = MoveDetector(rules)
    price = 100.0
    fired: dict[tuple[str, str], list[datetime]] = {}
    for minute, step in enumerate(steps):
        price = max(1.0, price * (1 + step / 100))
        tick = PriceTick("NVDA", price, T0 + timedelta(minutes=minute), "test")
        book.add(tick)
        for event in detector.observe_events(book, [tick], tick.at):
            for rule in event.rules:
                fired.setdefault((rule, event.direction), []).append(tick.at)
    for times in fired.values():
        gaps = [(b - a).total_seconds() for a, b in pairwise(times)]
        assert all(gap >= cooldown for gap in gaps)
