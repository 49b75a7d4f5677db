"""The move detector, price context, follow-ups and the news-explains-move merge."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from monitor.config import PricesConfig, parse_config
from monitor.core.models import Alert, PriceTick, Session, SourceRef, Stance, StanceLabel
from monitor.core.moves import (
    MoveDetector,
    MoveSettings,
    WindowRule,
    explain_move,
    followup_alert,
    price_context,
)
from monitor.core.pricebook import NEW_YORK, PriceBook, SessionInfo
from monitor.prices import move_settings

OPEN = datetime(2025, 1, 28, 10, 0, tzinfo=NEW_YORK).astimezone(UTC)  # a Tuesday, regular session


def at(minutes: float) -> datetime:
    return OPEN + timedelta(minutes=minutes)


def run(
    path: Sequence[tuple[float, float]],
    settings: MoveSettings | None = None,
    *,
    previous_close: float | None = None,
    symbol: str = "NVDA",
    delay_s: float = 0.0,
    observe_lag_s: float = 0.0,
) -> list[Alert]:
    """Feed (minute, price) ticks one by one, as a daemon would; returns the alerts."""
    book = PriceBook()
    if previous_close is not None:
        book.set_session_info(symbol, SessionInfo(previous_close=previous_close))
    detector = MoveDetector(settings or MoveSettings(previous_close_levels=()))
    alerts: list[Alert] = []
    for minute, price in path:
        t = PriceTick(symbol, price, at(minute), "test", delay_s=delay_s)
        book.add(t)
        now = t.at + timedelta(seconds=delay_s + observe_lag_s)
        alerts += detector.observe(book, [t], now)
    return alerts


def minutes(alerts: list[Alert]) -> list[float]:
    return [(a.prices[0].as_of - OPEN).total_seconds() / 60 for a in alerts]


def ramp(
    start: float, end: float, p0: float, p1: float, step: float = 1.0
) -> list[tuple[float, float]]:
    n = round((end - start) / step)
    return [(start + i * step, p0 + (p1 - p0) * i / n) for i in range(n + 1)]


WINDOW_ONLY = MoveSettings(previous_close_levels=(), windows=(WindowRule(600, 2.0),))


@pytest.mark.parametrize(
    ("name", "path", "expected_minutes"),
    [
        ("flat", [(m, 100.0) for m in range(60)], []),
        ("slow drift never fires", ramp(0, 60, 100.0, 97.0), []),
        ("2% in 10 minutes fires once", ramp(0, 10, 100.0, 97.9), [10]),
        ("a crash keeps going: still one alert", ramp(0, 30, 100.0, 90.0), [6]),
        (
            "back inside the band, then again after the cooldown",
            ramp(0, 10, 100.0, 97.9) + ramp(11, 60, 97.9, 97.9) + ramp(61, 71, 97.9, 95.8),
            [10, 71],
        ),
        (
            "re-crossing within the cooldown is swallowed",
            ramp(0, 10, 100.0, 97.9) + ramp(11, 25, 97.9, 97.9) + ramp(26, 36, 97.9, 95.8),
            [10],
        ),
        ("upward moves too", ramp(0, 8, 100.0, 102.5), [7]),
    ],
)  # fmt: skip
def test_window_rule(
    name: str, path: list[tuple[float, float]], expected_minutes: list[float]
) -> None:
    assert minutes(run(path, WINDOW_ONLY)) == pytest.approx(expected_minutes), name


NO_COOLDOWN = MoveSettings(previous_close_levels=(), windows=WINDOW_ONLY.windows, cooldown_s=0)


def test_hysteresis_re_arms_only_once_the_price_leaves_the_band() -> None:
    # Hovering around the threshold (1.9% .. 2.1% down) fires once, even with no cooldown.
    hover = [(m, 100.0) for m in range(10)] + [(10, 97.9), (11, 98.1), (12, 97.9), (13, 97.85)]
    assert minutes(run(hover, NO_COOLDOWN)) == [10]
    # Ten quiet minutes take the window move back under 1%: the next drop alerts again.
    again = hover + ramp(14, 30, 97.85, 97.85) + ramp(31, 34, 97.85, 95.8)
    assert minutes(run(again, NO_COOLDOWN)) == [10, 34]


def test_hysteresis_on_previous_close_levels() -> None:
    settings = MoveSettings(previous_close_levels=(3.0,), windows=(), cooldown_s=0)
    path = [(0, 96.9), (1, 97.2), (2, 96.8), (3, 97.6), (4, 96.5), (5, 98.6), (6, 96.9)]
    alerts = run(path, settings, previous_close=100.0)
    assert minutes(alerts) == [0, 6]  # 97.6 (-2.4%) is still in the band; 98.6 (-1.4%) is out


def test_alert_content() -> None:
    (alert,) = run(ramp(0, 10, 100.0, 97.9), WINDOW_ONLY, previous_close=101.0)
    assert alert.kind == "move"
    assert alert.title == "NVDA -2.10% in 10m (100.00 → 97.90)"
    assert alert.key == "move:NVDA:20250128T151000Z:window:10m:2"
    assert alert.entities == ("nvidia",)
    assert alert.rules == ("window:10m:2",)
    ctx = alert.prices[0]
    assert (ctx.symbol, ctx.price, ctx.session) == ("NVDA", 97.9, Session.REGULAR)
    assert ctx.change_pct == pytest.approx(-3.0693, abs=1e-3)
    assert "regular session" in alert.summary
    assert Alert.from_dict(alert.to_dict()) == alert


def test_previous_close_levels_fire_once_each_and_start_over_on_a_new_day() -> None:
    settings = MoveSettings(previous_close_levels=(3.0, 5.0, 10.0), windows=())
    path = [(0, 99.0), (1, 96.9), (2, 96.0), (3, 94.9), (4, 93.0), (5, 96.8), (6, 89.9)]
    alerts = run(path, settings, previous_close=100.0)
    assert [a.rules for a in alerts] == [("close:3",), ("close:5",), ("close:10",)]
    assert [a.severity for a in alerts] == ["notice", "warning", "critical"]

    book = PriceBook()
    book.set_session_info("NVDA", SessionInfo(previous_close=100.0))
    detector = MoveDetector(settings)
    first = PriceTick("NVDA", 94.0, at(0), "test")
    book.add(first)
    assert [a.rules for a in detector.observe(book, [first], first.at)] == [("close:5", "close:3")]
    book.set_session_info("NVDA", SessionInfo(previous_close=94.0))  # the next trading day
    nxt = PriceTick("NVDA", 90.0, at(24 * 60), "test")
    book.add(nxt)
    assert [a.rules for a in detector.observe(book, [nxt], nxt.at)] == [("close:3",)]


def test_several_rules_on_one_tick_make_one_alert() -> None:
    settings = MoveSettings(previous_close_levels=(3.0,))
    alerts = run([(0, 100.0), (5, 96.5)], settings, previous_close=100.0)
    assert len(alerts) == 1
    assert alerts[0].rules[0] == "close:3"
    assert set(alerts[0].rules) == {"close:3", "window:10m:2", "window:30m:3"}


def test_nothing_from_stale_data() -> None:
    path = ramp(0, 10, 100.0, 97.0)
    assert run(path, WINDOW_ONLY, observe_lag_s=181) == []
    assert len(run(path, WINDOW_ONLY, observe_lag_s=179)) == 1


def test_delayed_providers_are_not_stale_and_the_alert_says_so() -> None:
    (alert,) = run(ramp(0, 10, 100.0, 97.9), WINDOW_ONLY, symbol="NVDA", delay_s=1200)
    assert "delayed 20m" in alert.summary
    assert alert.prices[0].delay_s == 1200


def test_no_moves_outside_the_chosen_sessions() -> None:
    weekend = [(m + 4 * 24 * 60, p) for m, p in ramp(0, 10, 100.0, 97.0)]  # Saturday
    assert run(weekend, WINDOW_ONLY) == []
    regular_off = MoveSettings(
        previous_close_levels=(), windows=WINDOW_ONLY.windows, sessions=frozenset({Session.PRE})
    )
    assert run(ramp(0, 10, 100.0, 97.0), regular_off) == []


def test_windows_do_not_reach_across_the_open() -> None:
    # 09:25-09:29 pre-market at 100, then the regular session opens at 97.
    pre = [(-35 + i, 100.0) for i in range(5)]
    opening = [(-30 + i, 97.0) for i in range(5)]
    assert run(pre + opening, WINDOW_ONLY) == []


def test_per_session_windows() -> None:
    wide_pre = MoveSettings(
        previous_close_levels=(),
        windows=(WindowRule(600, 2.0),),
        session_windows=((Session.PRE, (WindowRule(600, 4.0),)),),
    )
    pre_path = [(-120 + m, p) for m, p in ramp(0, 10, 100.0, 97.5)]  # 08:00 ET
    assert run(pre_path, wide_pre) == []
    assert len(run(ramp(0, 10, 100.0, 97.5), wide_pre)) == 1


# --------------------------------------------------------------------------- price context


def book_with(path: Sequence[tuple[float, float]], previous_close: float = 100.0) -> PriceBook:
    book = PriceBook()
    book.set_session_info("NVDA", SessionInfo(previous_close=previous_close))
    book.add_many(PriceTick("NVDA", p, at(m), "yahoo") for m, p in path)
    return book


BOOK_PATH = [(0, 100.0), (10, 98.0), (20, 96.0), (30, 97.0)]


@pytest.mark.parametrize(
    ("published", "seen", "at_publish"),
    [
        (at(12), at(14), 98.0),  # the price at publish, not at first sight
        (None, at(21), 96.0),  # no publish date: first seen
        (at(25), at(12), 98.0),  # a publish date after first sight is not believed
        (at(-5), at(1), None),  # published before the book's history
    ],
)
def test_price_context(
    published: datetime | None, seen: datetime, at_publish: float | None
) -> None:
    ctx = price_context(book_with(BOOK_PATH), "NVDA", published, seen, at(35))
    assert ctx is not None
    assert ctx.price == 97.0 and ctx.as_of == at(30)
    assert ctx.previous_close == 100.0 and ctx.change_pct == pytest.approx(-3.0)
    assert ctx.price_at_publish == at_publish
    if at_publish is None:
        assert ctx.move_since_publish_pct is None
    else:
        assert ctx.move_since_publish_pct == pytest.approx((97.0 - at_publish) / at_publish * 100)
    assert ctx.session is Session.REGULAR


def test_no_price_no_context() -> None:
    assert price_context(PriceBook(), "NVDA", at(0), at(1), at(2)) is None


def news(title: str, minute: float, entities: tuple[str, ...] = ("nvidia",), **kw: object) -> Alert:
    return Alert(
        kind="news",
        key=f"story:{title}",
        title=title,
        created_at=at(minute + 1),
        published=at(minute),
        link=f"https://example.com/{minute}",
        source="Example Wire",
        entities=entities,
        **kw,  # type: ignore[arg-type]
    )


def test_follow_up_reports_the_move_since_the_alert() -> None:
    book = book_with(BOOK_PATH[:2])
    ctx = price_context(book, "NVDA", at(9), at(10), at(10))
    assert ctx is not None
    original = news("DeepSeek trained on H800s", 9, prices=(ctx,))
    assert followup_alert(original, book, at(10), 900) is None  # nothing newer yet
    book.add_many(PriceTick("NVDA", p, at(m), "yahoo") for m, p in BOOK_PATH[2:])
    follow = followup_alert(original, book, at(25), 900, reply_to="msg-123")
    assert follow is not None
    assert follow.kind == "followup" and follow.reply_to == "msg-123"
    assert follow.key == "story:DeepSeek trained on H800s:followup:900"
    p = follow.prices[0]
    assert p.price_at_alert == 98.0 and p.price == 96.0
    assert p.move_since_alert_pct == pytest.approx(-2.0408, abs=1e-3)
    assert follow.title == "+15m: NVDA -2.04% since alert (98.00 → 96.00)"
    assert Alert.from_dict(follow.to_dict()) == follow


def test_news_explains_the_move() -> None:
    (move,) = run(ramp(0, 10, 100.0, 97.9), WINDOW_ONLY)
    bearish = Stance("nvidia", StanceLabel.BEARISH, -0.6)
    stories = [
        news("DeepSeek says it trained for $5.6M", 4, stance=(bearish,), urgency=("속보",)),
        news(
            "엔비디아 급락", 8, lang="ko", sources=(SourceRef("hankyung-it", "한국경제", "t", "l"),)
        ),
        news("Old story", -60),  # too early
        news("Samsung HBM", 5, entities=("samsung_electronics",)),  # another company
        Alert(kind="move", key="m", title="other move", created_at=at(9), entities=("nvidia",)),
    ]
    merged = explain_move(move, stories, window_s=900)
    assert [s.title for s in merged.sources] == [
        "엔비디아 급락",
        "DeepSeek says it trained for $5.6M",
    ]
    assert merged.sources[0].feed == "hankyung-it"
    assert merged.kind == "move" and merged.key == move.key
    assert merged.title.endswith("— 2 matching stories")
    assert merged.stance == (bearish,)
    assert merged.urgency == ("속보",)
    assert explain_move(move, stories[2:], window_s=900) == move


def test_move_settings_from_the_prices_table() -> None:
    config = parse_config(
        """
[prices]
move_vs_previous_close_pct = [4, 8]
move_windows = [{ window = "5m", pct = 1.5 }]
move_session_windows = { pre = [{ window = "15m", pct = 4 }] }
move_sessions = ["regular"]
move_cooldown = "20m"
move_hysteresis = 0.25
stale_after = "2m"
"""
    )
    assert move_settings(config.prices) == MoveSettings(
        previous_close_levels=(4.0, 8.0),
        windows=(WindowRule(300.0, 1.5),),
        session_windows=((Session.PRE, (WindowRule(900.0, 4.0),)),),
        sessions=frozenset({Session.REGULAR}),
        cooldown_s=1200.0,
        hysteresis=0.25,
        stale_after_s=120.0,
    )
    assert move_settings(PricesConfig()) == MoveSettings()  # the defaults agree
