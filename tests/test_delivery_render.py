"""Text pieces shared by notifiers: truncation, times, prices, stances."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.core.models import PriceContext, Session, Stance, StanceLabel
from monitor.core.render import (
    alert_colour,
    format_times,
    plain_text,
    price_line,
    stance_label,
    truncate,
    truncate_lines,
)
from tests.fakes.alerts import T0, news_alert


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly10!", 10, "exactly10!"),
        ("엔비디아 주가 급락 딥시크 충격", 10, "엔비디아 주가 급…"),
        ("Nvidia shares plunge as DeepSeek rattles", 26, "Nvidia shares plunge as…"),  # whole words
        ("abcdefghijklmnop", 5, "abcd…"),
        ("anything", 1, "…"),
        ("anything", 0, ""),
    ],
)
def test_truncate_respects_the_limit_and_says_so(text: str, limit: int, expected: str) -> None:
    out = truncate(text, limit)
    assert out == expected and len(out) <= max(limit, 0)


def test_truncate_lines_keeps_whole_lines_and_counts_the_rest() -> None:
    lines = [f"line {i:02d}" for i in range(20)]
    out = truncate_lines(lines, 50)
    assert len(out) <= 50
    assert out.splitlines()[0] == "line 00" and out.endswith("more")
    kept = len(out.splitlines()) - 1
    assert out.splitlines()[-1] == f"… +{20 - kept} more"
    assert truncate_lines(["one", "two"], 100) == "one\ntwo"


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2025, 1, 27, 14, 30, tzinfo=UTC), "2025-01-27 23:30 KST · 01-27 09:30 ET"),
        (datetime(2025, 7, 1, 13, 0, tzinfo=UTC), "2025-07-01 22:00 KST · 07-01 09:00 ET"),  # EDT
        (datetime(2025, 1, 27, 20, 0, tzinfo=UTC), "2025-01-28 05:00 KST · 01-27 15:00 ET"),
        (None, ""),
    ],
)
def test_times_in_seoul_and_new_york(when: datetime | None, expected: str) -> None:
    assert format_times(when) == expected


@pytest.mark.parametrize(
    ("ctx", "expected"),
    [
        (
            PriceContext("NVDA", 118.42, T0, "yahoo", 142.62, -16.97, Session.REGULAR),
            "NVDA $118.42 (-16.97% vs prev close) · regular",
        ),
        (
            PriceContext("000660.KS", 191000.0, T0, "yahoo", change_pct=2.5, delay_s=1200),
            "000660.KS $191,000.00 (+2.50% vs prev close) · market closed · delayed 20 min",
        ),
        (
            PriceContext(
                "NVDA", 121.0, T0, "finnhub", session=Session.PRE, move_since_publish_pct=1.234
            ),
            "NVDA $121.00 · since publish +1.23% · pre",
        ),
    ],
)
def test_price_line(ctx: PriceContext, expected: str) -> None:
    assert price_line(ctx) == expected


@pytest.mark.parametrize(
    ("label", "colour", "emoji"),
    [
        (StanceLabel.BULLISH, 0x2ECC71, "🟢"),
        (StanceLabel.BEARISH, 0xE74C3C, "🔴"),
        (StanceLabel.MIXED, 0xF1C40F, "🟡"),
        (StanceLabel.NEUTRAL, 0x95A5A6, "⚪"),
    ],
)
def test_stance_colours(label: StanceLabel, colour: int, emoji: str) -> None:
    stance = Stance("nvidia", label, 0.5)
    alert = news_alert(1, stance=(Stance("tsmc", StanceLabel.BULLISH, 0.9), stance))
    assert alert_colour(alert) == colour  # nvidia decides even when another is stronger
    assert stance_label(stance).startswith(f"{emoji} nvidia: {label.value}")


def test_plain_text_has_everything_in_reading_order() -> None:
    lines = plain_text(news_alert(3)).splitlines()
    assert lines[0] == "[속보] 딥시크 충격에 엔비디아 주가 급락 3"
    assert lines[1] == "연합뉴스 · Korean · 2025-01-27 23:27 KST · 01-27 09:27 ET"
    assert lines[2].startswith("https://")
    assert any(line.startswith("🔴 nvidia: bearish") for line in lines)
    assert len(plain_text(news_alert(3), limit=40)) <= 40
