"""Bars written straight from the simulator's ground-truth broker profiles, without simulating quotes.

For the benchmark (calendar and feed history) and for page/task tests that need a known market fast; the
ranking proof (tests/test_trust_engine.py) runs on the real simulator and pipeline instead. It follows
the same traits the quote simulator uses (mark-up, news widening, off-market rate and size, staleness,
outages from ``outages_for_day``) at bar level, so the scores it produces can be checked against
``quality_rank``. Deterministic for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from simulator.broker import outages_for_day
from simulator.calendar import CalendarEvent, EventIntensity, recurring_events
from simulator.instruments import SPECS
from simulator.market import DAY_US, session_factor
from simulator.profiles import BrokerProfile

HOUR_US = 3_600_000_000
MINUTE_US = 60_000_000
QUOTES_PER_MINUTE = 60


@dataclass(frozen=True)
class Bar:
    slug: str
    symbol: str
    resolution: str
    start_us: int
    mean: float
    low: float
    high: float
    count: int
    dev_min: float
    dev_max: float


def _down_share(outages: list[tuple[int, int]], t0: int, t1: int) -> float:
    down = sum(max(0, min(e, t1) - max(s, t0)) for s, e in outages)
    return down / (t1 - t0)


def _bar(
    profile: BrokerProfile,
    symbol: str,
    resolution: str,
    t0: int,
    t1: int,
    news: float,
    outages: list[tuple[int, int]],
    rng: random.Random,
) -> Bar | None:
    spec = SPECS[symbol]
    up = 1.0 - _down_share(outages, t0, t1)
    count = int(QUOTES_PER_MINUTE * (t1 - t0) / MINUTE_US * up * session_factor(t0))
    if count <= 0:
        return None
    typical = spec.spread_pips * spec.pip
    widen = 1.0 + (profile.news_widening - 1.0) * news
    mean = typical * profile.markup * profile.instrument_markup.get(symbol, 1.0) * widen
    mean *= 1.0 + 0.05 * rng.gauss(0.0, 1.0)
    mean = max(mean, typical * 0.2)
    # Ordinary deviation from the consensus: noise plus lag behind the market.
    base = typical * (0.05 + profile.stale_ms / 1000.0) * (0.8 + 0.4 * rng.random())
    dev_min, dev_max = -base, base
    hit = 1.0 - (1.0 - profile.off_market_rate) ** count
    if profile.off_market_rate and rng.random() < hit:
        off = profile.off_market_spreads * typical * (0.75 + 0.5 * rng.random())
        if rng.random() < 0.5:
            dev_min = -off
        else:
            dev_max = off
    return Bar(profile.slug, symbol, resolution, t0, mean, mean * 0.8, mean * 1.2 * widen, count, dev_min, dev_max)


def calendar(start: datetime, days: int) -> list[CalendarEvent]:
    return recurring_events(start.date(), (start + timedelta(days=days)).date())


def bars(
    profiles: Iterable[BrokerProfile],
    *,
    start: datetime,
    days: int,
    symbols: Iterable[str] | None = None,
    seed: int = 7,
    news_before: timedelta = timedelta(minutes=5),
    news_after: timedelta = timedelta(minutes=15),
    hourly: bool = True,
) -> Iterator[Bar]:
    """Hourly bars for every hour, and 1-minute bars around high-impact news (where scores read them)."""
    events = calendar(start, days)
    t_start = int(start.timestamp() * 1_000_000)
    t_end = t_start + days * DAY_US
    hour_news: dict[str, list[float]] = {}  # the same for every broker: compute once per instrument
    for profile in profiles:
        days_us = range(t_start // DAY_US, t_end // DAY_US + 1)
        outages = [o for day in days_us for o in outages_for_day(profile, seed, day)]
        for symbol in sorted(symbols or profile.instruments):
            if symbol not in profile.instruments:
                continue
            rng = random.Random(f"{seed}:{profile.slug}:{symbol}")
            intensity = EventIntensity(events, SPECS[symbol].currencies)
            if hourly:
                if symbol not in hour_news:
                    hour_news[symbol] = [
                        sum(intensity(m) for m in range(t, t + HOUR_US, MINUTE_US)) / 60
                        for t in range(t_start, t_end, HOUR_US)
                    ]
                for t, news in zip(range(t_start, t_end, HOUR_US), hour_news[symbol], strict=True):
                    bar = _bar(profile, symbol, "1h", t, t + HOUR_US, news, outages, rng)
                    if bar:
                        yield bar
            minutes: set[int] = set()
            for e in events:
                if e.impact != "high" or e.currency not in SPECS[symbol].currencies:
                    continue
                first = e.at_us - int(news_before.total_seconds()) * 1_000_000
                last = e.at_us + int(news_after.total_seconds()) * 1_000_000
                minutes.update(m for m in range(first, last, MINUTE_US) if t_start <= m < t_end)
            for m in sorted(minutes):
                bar = _bar(profile, symbol, "1m", m, m + MINUTE_US, intensity(m), outages, rng)
                if bar:
                    yield bar


def status_changes(
    profiles: Iterable[BrokerProfile], *, start: datetime, days: int, seed: int = 7
) -> Iterator[tuple[str, str, datetime]]:
    """(slug, status, at): up at the start, then down/up around each outage."""
    t_start = int(start.timestamp() * 1_000_000)
    t_end = t_start + days * DAY_US
    for profile in profiles:
        yield profile.slug, "up", start
        for day in range(t_start // DAY_US, t_end // DAY_US + 1):
            for s, e in outages_for_day(profile, seed, day):
                if t_start <= s < t_end:
                    yield profile.slug, "down", datetime.fromtimestamp(s / 1e6, tz=UTC)
                    yield profile.slug, "up", datetime.fromtimestamp(min(e, t_end) / 1e6, tz=UTC)


def as_of_after(start: datetime, days: int) -> datetime:
    """A run time just after the generated history, with every hourly bar closed."""
    return start + timedelta(days=days)
