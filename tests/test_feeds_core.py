"""Pure feed decisions: text normalisation, title prefixes, dates, identity, schedule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.core.dates import parse_date, to_utc_z
from monitor.core.identity import content_hash, item_identity
from monitor.core.schedule import (
    ScheduleLimits,
    backoff_delay,
    next_after_failure,
    next_after_success,
    parse_max_age,
    parse_retry_after,
    poll_interval,
    rhythm_gap,
)
from monitor.core.text import (
    normalize_text,
    split_title_prefixes,
    strip_source_suffix,
    strip_title_prefixes,
    urgency_flags,
)

SEOUL = ZoneInfo("Asia/Seoul")
T0 = datetime(2025, 1, 30, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<p>엔비디아 <b>급락</b></p>", "엔비디아 급락"),
        ("&lt;p&gt;doubly &amp;amp; escaped&lt;/p&gt;", "doubly & escaped"),
        ("&amp;amp;lt;", "&lt;"),  # a third level of escaping stays literal
        ("Ｈ１００ and ＨＢＭ３Ｅ", "H100 and HBM3E"),
        ("a\xa0b\u200bc\n\t  d", "a bc d"),
        ("<script>alert(1)</script>text<style>p{}</style>", "text"),
        ("line<br>break</p><p>para", "line break para"),
        ("a < b and c > d", "a < b and c > d"),
        ("<!-- note -->kept", "kept"),
        # every Unicode space becomes one space, whatever else the text holds
        ("엔비디아\u3000급락\u2028HBM\x85수요", "엔비디아 급락 HBM 수요"),
        ("a\u2009b\u202fc\u205fd\x1fe", "a b c d e"),
        # unprintable characters that are not spaces are left alone, single spaces kept
        ("a\x07 b \ue000c ", "a\x07 b \ue000c"),
        ("  padded  text  ", "padded text"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_text(raw: str | None, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    ("title", "headline", "flags"),
    [
        ("[속보] 엔비디아 17% 급락", "엔비디아 17% 급락", ("속보",)),
        ("[단독][속보] 딥시크 충격", "딥시크 충격", ("단독", "속보")),
        ("[종합2보] 딥시크 쇼크", "딥시크 쇼크", ()),
        ("[종합] SK하이닉스 최대 실적", "SK하이닉스 최대 실적", ()),
        ("(특징주) 삼성전자 강세", "삼성전자 강세", ()),
        ("【공시】 TSMC 증설", "TSMC 증설", ()),
        ("[상보] 엔비디아", "엔비디아", ()),
        ("[1보] 엔비디아", "엔비디아", ()),
        ("<긴급> 수출 통제 발표", "수출 통제 발표", ("속보",)),
        ("BREAKING: Nvidia falls", "Nvidia falls", ("breaking",)),
        ("엔비디아 [속보] 중간의 괄호는 그대로", "엔비디아 [속보] 중간의 괄호는 그대로", ()),
        ("[속보]", "[속보]", ()),  # nothing left: keep the title as is
        ("[반도체] 섹션명은 접두어가 아니다", "[반도체] 섹션명은 접두어가 아니다", ()),
    ],
)
def test_title_prefixes(title: str, headline: str, flags: tuple[str, ...]) -> None:
    assert strip_title_prefixes(title) == headline
    assert urgency_flags(title) == flags
    assert split_title_prefixes(title)[0] == headline


def test_source_suffix_only_when_it_names_the_source() -> None:
    assert strip_source_suffix("딥시크 쇼크 - 매일경제", "매일경제") == "딥시크 쇼크"
    assert strip_source_suffix("A - B - 연합뉴스", "연합뉴스") == "A - B"
    assert strip_source_suffix("딥시크 쇼크 - 분석", "매일경제") == "딥시크 쇼크 - 분석"
    assert strip_source_suffix(" - 매일경제", "매일경제") == " - 매일경제"


@pytest.mark.parametrize(
    "text",
    [
        "Thu, 30 Jan 2025 18:22:00 KST",
        "2025-01-30 18:22",
        "2025.01.30 18:22",
        "2025년 01월 30일 18:22:00",
        "2025년 1월 30일 오후 6:22",
        "2025/01/30 18:22:00",
        "2025-01-30T18:22:00+09:00",
        "2025-01-30T09:22:00Z",
        "Thu, 30 Jan 2025 09:22:00 GMT",
        "Thu, 30 Jan 2025 04:22:00 EST",
        "Thu, 30 Jan 2025 04:22:00 -0500",
        "30 Jan 2025 18:22 +0900",
        "Thu, 30 Jan 2025 18:22:00",
        "2025-01-30T18:22:00.123+09:00",
    ],
)
def test_dates_on_a_seoul_feed(text: str) -> None:
    assert to_utc_z(parse_date(text, SEOUL)) == "2025-01-30T09:22:00Z"  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "   ", "yesterday", "2025-13-45 10:00", "Thu, 30 Foo 2025"])
def test_unreadable_dates_are_none(text: str) -> None:
    assert parse_date(text, SEOUL) is None


def test_offset_less_dates_follow_the_default_zone() -> None:
    assert parse_date("2025-01-30 18:22", UTC) == datetime(2025, 1, 30, 18, 22, tzinfo=UTC)
    ny = parse_date("2025-01-30 18:22", ZoneInfo("America/New_York"))
    assert ny == datetime(2025, 1, 30, 23, 22, tzinfo=UTC)


def test_identity_prefers_guid_then_link_then_content() -> None:
    assert item_identity(" g1 ", "https://a/1", "t", "s") == "g1"
    assert item_identity("", "https://a/1", "t", "s") == "https://a/1"
    by_content = item_identity("", "", "title", "summary")
    assert by_content.startswith("h:")
    assert by_content == item_identity("", "", "title", "summary")
    assert by_content != item_identity("", "", "title", "other")
    assert len(item_identity("x" * 5000, "", "t", "s")) < 100


def test_content_hash_changes_with_the_content() -> None:
    base = content_hash("t", "s", "b", "l")
    assert base == content_hash("t", "s", "b", "l")
    assert {base} != {content_hash("t2", "s", "b", "l"), content_hash("t", "s", "b", "l2")}
    assert content_hash("ab", "c", "", "") != content_hash("a", "bc", "", "")


LIMITS = ScheduleLimits(
    min_interval=60, max_interval=3600, max_backoff=6 * 3600, max_retry_after=7200
)


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_rhythm_of_a_feed() -> None:
    hourly = [T0 - timedelta(hours=h) for h in range(10)]
    assert rhythm_gap(hourly, T0) == 3600
    assert rhythm_gap(hourly[:2], T0) is None
    assert rhythm_gap([*hourly, None, T0 + timedelta(days=1)], T0) == 3600  # future ignored


@pytest.mark.parametrize(
    ("configured", "gap", "adaptive", "expected"),
    [
        (300, None, True, 300),  # no rhythm: the configured interval
        (300, 3600, True, 1800),  # an hourly feed: every half hour
        (300, 60, True, 300),  # a busy feed: never faster than configured
        (300, 86400, True, 3600),  # a daily feed: clamped to max
        (10, None, True, 60),  # clamped to min
        (300, 3600, False, 300),  # adaptive off
    ],
)
def test_poll_interval(
    configured: float, gap: float | None, adaptive: bool, expected: float
) -> None:
    assert poll_interval(configured, gap, LIMITS, adaptive) == expected


def test_cache_control_and_retry_after_are_obeyed_within_caps() -> None:
    assert parse_max_age("public, max-age=900") == 900
    assert parse_max_age("no-cache") is None
    assert next_after_success(T0, 300, 900, LIMITS) == T0 + timedelta(seconds=900)
    assert next_after_success(T0, 300, 10**6, LIMITS) == T0 + timedelta(seconds=3600)
    assert next_after_success(T0, 300, 10, LIMITS) == T0 + timedelta(seconds=300)
    assert parse_retry_after("120", T0) == 120
    assert parse_retry_after("Thu, 30 Jan 2025 09:10:00 GMT", T0) == 600
    assert parse_retry_after("soon", T0) is None
    low = FixedRandom(0.0)
    assert next_after_failure(T0, 1, 300, 120, LIMITS, low) >= T0 + timedelta(seconds=120)
    capped = next_after_failure(T0, 1, 300, 10**7, LIMITS, low)
    assert capped == T0 + timedelta(seconds=7200)


def test_backoff_grows_with_full_jitter_and_never_stops() -> None:
    top = FixedRandom(0.999999)
    caps = [backoff_delay(n, 300, LIMITS, top) for n in range(1, 12)]
    assert caps == sorted(caps)
    assert caps[0] == pytest.approx(300, rel=1e-3)
    assert caps[-1] == pytest.approx(6 * 3600, rel=1e-3)
    assert backoff_delay(1000, 300, LIMITS, top) <= 6 * 3600
    assert backoff_delay(5, 300, LIMITS, FixedRandom(0.0)) == 60  # floored, never a hammer
    rng = random.Random(7)
    spread = {round(backoff_delay(6, 300, LIMITS, rng)) for _ in range(50)}
    assert len(spread) > 40  # jittered: polls of many feeds do not line up
