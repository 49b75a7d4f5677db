"""When to poll a feed next: pure decisions from times, headers and failures.

* Interval: the feed's configured interval, stretched for feeds that publish
  rarely (half the median gap between their recent items), clamped to
  [min_interval, max_interval]. A busy feed is never polled faster than its
  operator asked.
* Servers are obeyed within caps: `Cache-Control: max-age` delays the next poll
  up to `max_interval`; `Retry-After` (seconds or an HTTP date) up to
  `max_retry_after`.
* Errors back off exponentially with full jitter (uniform in [0, cap], floored
  at `min_interval` so a broken feed is never hammered), up to `max_backoff`,
  and polling never stops for good. The random source is injected.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol


class RandomSource(Protocol):
    """What the jitter needs: `random.Random` satisfies it; tests pass a fixed one."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class ScheduleLimits:
    min_interval: float = 60.0
    max_interval: float = 3600.0
    max_backoff: float = 6 * 3600.0
    max_retry_after: float = 6 * 3600.0


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def rhythm_gap(
    published: Sequence[datetime | None], now: datetime, recent: int = 20
) -> float | None:
    """Median seconds between the feed's most recent publish times; None if under 3 dates."""
    times = sorted({p for p in published if p is not None and p <= now}, reverse=True)[:recent]
    if len(times) < 3:
        return None
    gaps = [(a - b).total_seconds() for a, b in itertools.pairwise(times)]
    return float(statistics.median(gaps))


def poll_interval(
    configured: float, gap: float | None, limits: ScheduleLimits, adaptive: bool = True
) -> float:
    """Seconds between successful polls of a feed."""
    interval = configured
    if adaptive and gap is not None:
        interval = max(configured, gap / 2)
    return clamp(interval, limits.min_interval, limits.max_interval)


def parse_max_age(cache_control: str | None) -> float | None:
    """`max-age` (or `s-maxage`) seconds from a Cache-Control header, if any."""
    if not cache_control:
        return None
    m = re.search(r"(?:^|[,\s])(?:s-)?max-age\s*=\s*\"?(\d+)", cache_control, re.I)
    return float(m.group(1)) if m else None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def next_after_success(
    now: datetime, interval: float, max_age: float | None, limits: ScheduleLimits
) -> datetime:
    """The next poll after a 200 or 304: the interval, or longer if the server's cache says so."""
    wait = interval
    if max_age is not None:
        wait = max(wait, min(max_age, limits.max_interval))
    return now + timedelta(seconds=wait)


def backoff_delay(failures: int, base: float, limits: ScheduleLimits, rng: RandomSource) -> float:
    """Full-jitter exponential backoff after `failures` consecutive failures (>= 1)."""
    exponent = min(max(failures - 1, 0), 30)
    cap = min(limits.max_backoff, max(base, limits.min_interval) * float(1 << exponent))
    return max(limits.min_interval, float(rng.random()) * cap)


def next_after_failure(
    now: datetime,
    failures: int,
    base: float,
    retry_after: float | None,
    limits: ScheduleLimits,
    rng: RandomSource,
) -> datetime:
    """The next poll after an error; a server's Retry-After (capped) is a lower bound."""
    wait = backoff_delay(failures, base, limits, rng)
    if retry_after is not None:
        wait = max(wait, min(retry_after, limits.max_retry_after))
    return now + timedelta(seconds=wait)
