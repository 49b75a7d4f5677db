"""Dates as feeds write them, read into aware UTC datetimes.

Handles RFC 822 (with numeric offsets and common zone abbreviations such as
KST, JST, EST), ISO 8601, and the forms Korean outlets use:
`2025-01-30 18:22`, `2025.01.30 18:22`, `2025/01/30`, `2025년 01월 30일 18:22:00`,
`2025년 1월 30일 오후 6:22`. A date without an offset is read in the feed's
default zone, never silently as UTC.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

_ZONES: dict[str, int] = {  # minutes east of UTC
    "UT": 0,
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "KST": 540,
    "JST": 540,
    "HKT": 480,
    "SGT": 480,
    "CST": -360,
    "CDT": -300,
    "EST": -300,
    "EDT": -240,
    "MST": -420,
    "MDT": -360,
    "PST": -480,
    "PDT": -420,
    "BST": 60,
    "CET": 60,
    "CEST": 120,
}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}

_TIME = (
    r"(?:(오전|오후|AM|PM)\s*)?(\d{1,2})\s*[:시]\s*(\d{1,2})\s*분?"
    r"(?:\s*[:]?\s*(\d{1,2})(?:\.\d+)?\s*초?)?\s*(오전|오후|AM|PM)?"
)
_ZONE = r"(Z|[+-]\d{2}:?\d{2}|[A-Za-z]{1,5})?"
# 30 Jan 2025 18:22:00 +0900 (the weekday is optional and ignored)
_RFC822 = re.compile(
    r"^(?:[A-Za-z]{3,9},?\s*)?(\d{1,2})\s+([A-Za-z]{3,9})\.?\s+(\d{2,4})"
    rf"(?:\s+{_TIME})?\s*{_ZONE}\s*$",
    re.I,
)
# 2025-01-30T18:22:00+09:00, 2025.01.30 18:22, 2025/1/30, 2025년 01월 30일 18:22:00
_NUMERIC = re.compile(
    r"^(\d{4})\s*[-./년]\s*(\d{1,2})\s*[-./월]\s*(\d{1,2})\s*[일.]?\s*(?:\([^)]*\))?"
    rf"(?:\s*(?:T|\s)?\s*{_TIME})?\s*{_ZONE}\s*$",
    re.I,
)


def _offset(zone: str | None) -> tzinfo | None:
    if not zone:
        return None
    z = zone.upper()
    if z in _ZONES:
        return timezone(timedelta(minutes=_ZONES[z]))
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", z)
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3))
        if z == "-0000":
            return None  # RFC 5322: "no zone information"
        return timezone(timedelta(minutes=minutes if m.group(1) == "+" else -minutes))
    return None


def _clock(
    ampm: str | None, hour: str | None, minute: str | None, second: str | None, ampm2: str | None
) -> tuple[int, int, int]:
    if hour is None:
        return 0, 0, 0
    h, mi, s = int(hour), int(minute or 0), int(second or 0)
    marker = (ampm or ampm2 or "").upper()
    if marker in ("오후", "PM") and h < 12:
        h += 12
    elif marker in ("오전", "AM") and h == 12:
        h = 0
    return h, mi, s


def _build(
    y: int, mo: int, d: int, hms: tuple[int, int, int], zone: str | None, default_tz: tzinfo
) -> datetime | None:
    try:
        naive = datetime(y, mo, d, *hms)
    except ValueError:
        return None
    tz = _offset(zone) or default_tz
    return naive.replace(tzinfo=tz).astimezone(UTC)


@functools.lru_cache(maxsize=8192)
def parse_date(text: str | None, default_tz: tzinfo = UTC) -> datetime | None:
    """Aware UTC datetime from a feed's date text, or None if it cannot be read.

    Cached: feeds repeat the same dates on every poll.

    >>> from zoneinfo import ZoneInfo
    >>> parse_date("2025.01.30 18:22", ZoneInfo("Asia/Seoul")).isoformat()
    '2025-01-30T09:22:00+00:00'
    """
    if not text:
        return None
    s = " ".join(text.split())
    if not s:
        return None
    m = _NUMERIC.match(s)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        return _build(y, mo, d, _clock(*m.group(4, 5, 6, 7, 8)), m.group(9), default_tz)
    m = _RFC822.match(s)
    if m:
        month = _MONTHS.get(m.group(2)[:3].lower())
        if month is None:
            return None
        year = int(m.group(3))
        if year < 100:
            year += 2000 if year < 70 else 1900
        hms = _clock(*m.group(4, 5, 6, 7, 8))
        return _build(year, month, int(m.group(1)), hms, m.group(9), default_tz)
    return None


def to_utc_z(value: datetime) -> str:
    """`2025-01-30T09:22:00Z`: UTC ISO 8601 with a Z."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
