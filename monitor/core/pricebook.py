"""The PriceBook: what every watched symbol has done recently.

Owns a bounded, time-ordered history per symbol, the previous close and the
trading periods a provider reported, and the US-equities calendar used when no
provider said anything about the day. Answers: price at a past instant, change
versus previous close, the session (pre / regular / post / closed) at an
instant, and how stale a symbol's data is. Pure: time always comes in as an
argument.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from monitor.core.models import PriceTick, Session

NEW_YORK = ZoneInfo("America/New_York")


def pct_change(reference: float, price: float) -> float:
    """Percent change from `reference` to `price` (positive when price rose)."""
    return (price - reference) / reference * 100.0


@dataclass(frozen=True, slots=True)
class TradingPeriods:
    """One trading day's session boundaries as aware UTC instants.

    pre runs [pre_start, regular_start), regular [regular_start, regular_end),
    post [regular_end, post_end). A market without extended hours has
    pre_start == regular_start and regular_end == post_end.
    """

    pre_start: datetime
    regular_start: datetime
    regular_end: datetime
    post_end: datetime

    def session_at(self, when: datetime) -> Session | None:
        """The session at `when`, or None when `when` is outside this day."""
        if when < self.pre_start or when >= self.post_end:
            return None
        if when < self.regular_start:
            return Session.PRE
        if when < self.regular_end:
            return Session.REGULAR
        return Session.POST

    def bounds(self, session: Session) -> tuple[datetime, datetime]:
        if session is Session.PRE:
            return self.pre_start, self.regular_start
        if session is Session.REGULAR:
            return self.regular_start, self.regular_end
        return self.regular_end, self.post_end


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a provider told us about a symbol's trading day."""

    previous_close: float | None = None
    periods: TradingPeriods | None = None
    timezone: str = "America/New_York"


# --------------------------------------------------------------------------- calendar


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    """Saturday holidays are observed on Friday, Sunday ones on Monday."""
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


# Closures that no rule predicts (national days of mourning and the like).
_SPECIAL_CLOSURES = frozenset({date(2018, 12, 5), date(2025, 1, 9)})


@lru_cache(maxsize=64)
def us_market_holidays(year: int) -> frozenset[date]:
    """NYSE / Nasdaq full-day closures in `year`."""
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, 0),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    # New Year's Day on a Saturday is not moved back into the old year.
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:
        days.add(_observed(new_year))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    days |= {d for d in _SPECIAL_CLOSURES if d.year == year}
    return frozenset(days)


def _early_close(day: date) -> bool:
    """13:00 closes: the day after Thanksgiving, Christmas Eve, and July 3."""
    if day == _nth_weekday(day.year, 11, 3, 4) + timedelta(days=1):
        return True
    if day.month == 12 and day.day == 24 and day.weekday() < 5:
        return True
    return day.month == 7 and day.day == 3 and day.weekday() < 5


class UsEquityCalendar:
    """US equity sessions in New York time: pre 04:00, regular 09:30-16:00, post to 20:00."""

    def is_trading_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in us_market_holidays(day.year)

    def periods_for(self, day: date) -> TradingPeriods | None:
        """The trading periods of `day` (a New York date), or None when closed."""
        if not self.is_trading_day(day):
            return None

        def at(hour: int, minute: int = 0) -> datetime:
            return datetime.combine(day, time(hour, minute), NEW_YORK).astimezone(UTC)

        close = at(13) if _early_close(day) else at(16)
        post_end = at(17) if _early_close(day) else at(20)
        return TradingPeriods(at(4), at(9, 30), close, post_end)

    def session_at(self, when: datetime) -> Session:
        periods = self.periods_for(when.astimezone(NEW_YORK).date())
        found = periods.session_at(when) if periods is not None else None
        return found or Session.CLOSED


_US_CALENDAR = UsEquityCalendar()


def is_us_symbol(symbol: str) -> bool:
    """Yahoo marks foreign listings with an exchange suffix (005930.KS); US ones have none."""
    return "." not in symbol and "=" not in symbol and "^" not in symbol


# --------------------------------------------------------------------------- the book


class _Series:
    """One symbol's ticks, sorted by time, with a parallel list of epoch seconds."""

    __slots__ = ("epochs", "ticks")

    def __init__(self) -> None:
        self.epochs: list[float] = []
        self.ticks: list[PriceTick] = []


class PriceBook:
    """Bounded rolling price history per symbol, plus session facts.

    Ticks closer together than `resolution_s` are coalesced (the later one
    wins), so a busy websocket cannot blow the memory bound; at most
    `max_points` ticks and `max_age_s` seconds of history are kept per symbol.
    Ticks may arrive out of order (a fallback source filling a gap).
    """

    def __init__(
        self,
        *,
        max_points: int = 20_000,
        max_age_s: float = 3 * 86400.0,
        resolution_s: float = 1.0,
        calendar: UsEquityCalendar | None = None,
    ) -> None:
        if max_points < 2:
            raise ValueError("max_points must be at least 2")
        self.max_points = max_points
        self.max_age_s = max_age_s
        self.resolution_s = resolution_s
        self.calendar = calendar or _US_CALENDAR
        self._series: dict[str, _Series] = {}
        self._info: dict[str, SessionInfo] = {}

    # ----------------------------------------------------------------- writing

    def add(self, tick: PriceTick) -> bool:
        """Record a tick; False when it is unusable (non-finite or non-positive price)."""
        if not math.isfinite(tick.price) or tick.price <= 0:
            return False
        series = self._series.setdefault(tick.symbol, _Series())
        epoch = tick.at.timestamp()
        epochs, ticks = series.epochs, series.ticks
        if not epochs or epoch >= epochs[-1]:
            if epochs and self._same_bucket(epochs[-1], epoch):
                epochs[-1], ticks[-1] = epoch, tick
            else:
                epochs.append(epoch)
                ticks.append(tick)
        else:
            i = bisect.bisect_left(epochs, epoch)
            if i < len(epochs) and epochs[i] == epoch:
                ticks[i] = tick
            else:
                epochs.insert(i, epoch)
                ticks.insert(i, tick)
        self._trim(series)
        return True

    def add_many(self, ticks: Iterable[PriceTick]) -> int:
        """Record several ticks; returns how many were usable."""
        return sum(self.add(t) for t in ticks)

    def set_session_info(self, symbol: str, info: SessionInfo) -> None:
        """Store the previous close and trading periods a provider reported."""
        old = self._info.get(symbol)
        if old is not None and info.previous_close is None and info.periods is None:
            return
        if old is not None:
            # A provider that knows only part of the picture must not erase the rest.
            info = SessionInfo(
                previous_close=info.previous_close
                if info.previous_close is not None
                else old.previous_close,
                periods=info.periods if info.periods is not None else old.periods,
                timezone=info.timezone,
            )
        self._info[symbol] = info

    def _same_bucket(self, a: float, b: float) -> bool:
        if self.resolution_s <= 0:
            return a == b
        return math.floor(a / self.resolution_s) == math.floor(b / self.resolution_s)

    def _trim(self, series: _Series) -> None:
        horizon = series.epochs[-1] - self.max_age_s
        cut = bisect.bisect_left(series.epochs, horizon)
        # Trim in chunks so that a full book does not shift its lists on every tick.
        excess = len(series.epochs) - self.max_points
        if excess > 0:
            cut = max(cut, excess + self.max_points // 10)
        if cut > 0:
            del series.epochs[:cut]
            del series.ticks[:cut]

    # ----------------------------------------------------------------- reading

    def symbols(self) -> list[str]:
        return sorted(self._series)

    def session_info(self, symbol: str) -> SessionInfo | None:
        return self._info.get(symbol)

    def latest(self, symbol: str) -> PriceTick | None:
        series = self._series.get(symbol)
        return series.ticks[-1] if series and series.ticks else None

    def price_at(
        self, symbol: str, when: datetime, max_gap_s: float | None = None
    ) -> PriceTick | None:
        """The last tick at or before `when`; None if there is none, or it is older
        than `max_gap_s` before `when`."""
        series = self._series.get(symbol)
        if not series:
            return None
        i = bisect.bisect_right(series.epochs, when.timestamp()) - 1
        if i < 0:
            return None
        tick = series.ticks[i]
        if max_gap_s is not None and (when - tick.at).total_seconds() > max_gap_s:
            return None
        return tick

    def history(
        self, symbol: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[PriceTick]:
        """Ticks with since <= at <= until, oldest first."""
        series = self._series.get(symbol)
        if not series:
            return []
        lo = 0 if since is None else bisect.bisect_left(series.epochs, since.timestamp())
        hi = (
            len(series.epochs)
            if until is None
            else bisect.bisect_right(series.epochs, until.timestamp())
        )
        return series.ticks[lo:hi]

    def extremes(
        self, symbol: str, since: datetime, until: datetime
    ) -> tuple[PriceTick, PriceTick, int] | None:
        """(lowest tick, highest tick, number of ticks) in [since, until]; None if empty."""
        window = self.history(symbol, since, until)
        if not window:
            return None
        low = min(window, key=lambda t: t.price)
        high = max(window, key=lambda t: t.price)
        return low, high, len(window)

    def previous_close(self, symbol: str) -> float | None:
        info = self._info.get(symbol)
        return info.previous_close if info is not None else None

    def change_pct(self, symbol: str, price: float | None = None) -> float | None:
        """Percent change of `price` (default: the latest) versus the previous close."""
        close = self.previous_close(symbol)
        if price is None:
            latest = self.latest(symbol)
            price = latest.price if latest is not None else None
        if close is None or price is None or close <= 0:
            return None
        return pct_change(close, price)

    def session_bounds(
        self, symbol: str, when: datetime
    ) -> tuple[Session, datetime | None, datetime | None]:
        """The session at `when` and its [start, end); start/end are None when closed."""
        periods = self._periods_covering(symbol, when)
        if periods is None:
            return Session.CLOSED, None, None
        session = periods.session_at(when)
        if session is None:
            return Session.CLOSED, None, None
        start, end = periods.bounds(session)
        return session, start, end

    def session(self, symbol: str, when: datetime) -> Session:
        """pre, regular, post or closed at `when` for `symbol`'s exchange."""
        return self.session_bounds(symbol, when)[0]

    def _periods_covering(self, symbol: str, when: datetime) -> TradingPeriods | None:
        info = self._info.get(symbol)
        if info is not None and info.periods is not None and info.periods.session_at(when):
            return info.periods
        if is_us_symbol(symbol):
            return self.calendar.periods_for(when.astimezone(NEW_YORK).date())
        return None

    def staleness(self, symbol: str, now: datetime) -> float | None:
        """Seconds since the latest tick of `symbol` (its provider delay included)."""
        latest = self.latest(symbol)
        if latest is None:
            return None
        return max(0.0, (now - latest.at).total_seconds())
