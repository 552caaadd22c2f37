"""Economic calendar: recurring high-impact releases, and how much they stir a given instrument.

Pure: the Django model EconomicEvent stores the (admin-editable) calendar; this module generates the
usual recurring events and turns a list of events into a volatility/spread intensity over time.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

IMPACT_WEIGHT = {"low": 0.2, "medium": 0.5, "high": 1.0}
BEFORE_US = 2 * 60_000_000  # markets get nervous a couple of minutes before a release
DECAY_US = 5 * 60_000_000  # and calm down over the following minutes
AFTER_US = 30 * 60_000_000  # ignored beyond this


@dataclass(frozen=True, order=True)
class CalendarEvent:
    at_us: int
    currency: str
    impact: str  # low / medium / high
    name: str


def _us(d: date, hour: int, minute: int) -> int:
    return int(datetime(d.year, d.month, d.day, hour, minute, tzinfo=UTC).timestamp()) * 1_000_000


def _first_weekday(year: int, month: int, weekday: int) -> date:
    d = date(year, month, 1)
    return d + timedelta(days=(weekday - d.weekday()) % 7)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    return _first_weekday(year, month, weekday) + timedelta(weeks=n - 1)


def _first_business_day(year: int, month: int) -> date:
    d = date(year, month, 1)
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d


def recurring_events(start: date, end: date) -> list[CalendarEvent]:
    """The usual scheduled releases between start and end (inclusive), times in UTC. Deterministic."""
    out: list[CalendarEvent] = []

    def add(d: date, hh: int, mm: int, ccy: str, impact: str, name: str) -> None:
        if start <= d <= end:
            out.append(CalendarEvent(_us(d, hh, mm), ccy, impact, name))

    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        fri1 = _first_weekday(y, m, 4)
        add(fri1, 12, 30, "USD", "high", "US Non-Farm Payrolls")
        add(fri1, 12, 30, "CAD", "high", "Canada Employment Change")
        add(_nth_weekday(y, m, 2, 2), 12, 30, "USD", "high", "US CPI")
        add(_nth_weekday(y, m, 2, 3), 12, 30, "USD", "medium", "US Retail Sales")
        add(_first_business_day(y, m), 14, 0, "USD", "medium", "US ISM Manufacturing PMI")
        add(_nth_weekday(y, m, 2, 3), 6, 0, "GBP", "high", "UK CPI")
        add(_nth_weekday(y, m, 3, 3), 0, 30, "AUD", "high", "Australia Employment Change")
        add(_nth_weekday(y, m, 1, 3), 9, 0, "EUR", "medium", "German ZEW Economic Sentiment")
        add(_nth_weekday(y, m, 3, 2), 7, 0, "ZAR", "medium", "South Africa Mining Production")
        if m % 3 == 0:
            add(_nth_weekday(y, m, 3, 2), 12, 0, "GBP", "high", "Bank of England Rate Decision")
            add(_nth_weekday(y, m, 3, 3), 8, 30, "CHF", "high", "SNB Rate Decision")
            add(_nth_weekday(y, m, 2, 1), 4, 30, "AUD", "medium", "RBA Rate Decision")
            add(_nth_weekday(y, m, 3, 1), 2, 0, "NZD", "high", "RBNZ Rate Decision")
            add(_nth_weekday(y, m, 4, 3), 11, 0, "TRY", "high", "CBRT Rate Decision")
        if m % 2 == 1:
            add(_nth_weekday(y, m, 2, 3), 18, 0, "USD", "high", "FOMC Rate Decision")
            add(_nth_weekday(y, m, 3, 2), 12, 15, "EUR", "high", "ECB Rate Decision")
            add(_nth_weekday(y, m, 1, 4), 3, 0, "JPY", "high", "BoJ Rate Decision")
            add(_nth_weekday(y, m, 2, 2), 14, 0, "CAD", "high", "BoC Rate Decision")
        m += 1
        if m == 13:
            y, m = y + 1, 1
    d = start
    while d <= end:
        if d.weekday() == 3:
            add(d, 12, 30, "USD", "medium", "US Initial Jobless Claims")
        d += timedelta(days=1)
    return sorted(out)


class EventIntensity:
    """intensity(t) in [0, 1]: how strongly scheduled news is moving one instrument at time t."""

    def __init__(self, events: list[CalendarEvent], currencies: tuple[str, ...]) -> None:
        relevant = sorted(e for e in events if e.currency in currencies)
        self._at = [e.at_us for e in relevant]
        self._w = [IMPACT_WEIGHT.get(e.impact, 0.0) for e in relevant]

    def __call__(self, t_us: int) -> float:
        # Only events within [t - AFTER, t + BEFORE] matter; they are few, so scan them.
        lo = bisect.bisect_left(self._at, t_us - AFTER_US)
        hi = bisect.bisect_right(self._at, t_us + BEFORE_US)
        best = 0.0
        for i in range(lo, hi):
            dt = t_us - self._at[i]
            w = self._w[i]
            level = w * 0.5 if dt < 0 else w * math.exp(-dt / DECAY_US)
            if level > best:
                best = level
        return best

    def releases_between(self, t0_us: int, t1_us: int) -> list[tuple[int, float]]:
        lo = bisect.bisect_left(self._at, t0_us)
        hi = bisect.bisect_left(self._at, t1_us)
        return [(self._at[i], self._w[i]) for i in range(lo, hi)]
