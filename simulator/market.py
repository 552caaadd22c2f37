"""Reference market per instrument: a seeded random walk with volatility regimes, jumps and news.

The mid at any instant is a pure function of (seed, symbol, calendar, time), so independent ingestor
processes (one per broker) and the fast backfill all see the same market without talking to each
other. Each UTC day is generated on a fixed grid as a Brownian bridge between daily anchors.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import OrderedDict

from simulator.calendar import CalendarEvent, EventIntensity
from simulator.instruments import SPECS, InstrumentSpec

DAY_US = 86_400_000_000
ORIGIN_DAY = 18_262  # 2020-01-01: daily anchors are walked forward from here
REGIMES = (0.6, 1.0, 2.4)  # calm, normal, volatile multipliers of the base volatility
REGIME_DWELL_S = 3 * 3600  # mean time spent in one regime
JUMPS_PER_DAY = 3.0


def session_factor(t_us: int) -> float:
    """Intraday activity: busiest in the London/New York overlap, quietest after the New York close."""
    hour = (t_us // 3_600_000_000) % 24
    if 12 <= hour < 16:
        return 1.4
    if 7 <= hour < 12 or 16 <= hour < 20:
        return 1.1
    if 20 <= hour < 23:
        return 0.6
    return 0.8


class ReferenceMarket:
    def __init__(self, symbol: str, *, seed: int, events: list[CalendarEvent] | None = None, step_s: int = 5) -> None:
        self.spec: InstrumentSpec = SPECS[symbol]
        self.symbol = symbol
        self.seed = seed
        self.step_us = step_s * 1_000_000
        self.steps = DAY_US // self.step_us
        self.intensity = EventIntensity(events or [], self.spec.currencies)
        self._anchors: list[float] = [math.log(self.spec.price)]
        self._days: OrderedDict[int, array[float]] = OrderedDict()
        self._last_day = -1
        self._last_path: array[float] = array("d")

    def _rng(self, *parts: object) -> random.Random:
        # String seeds hash with SHA-512, so they are stable across processes and PYTHONHASHSEED.
        return random.Random(":".join(str(p) for p in (self.seed, self.symbol, *parts)))

    def _anchor(self, day: int) -> float:
        """Log mid at 00:00 UTC of `day`: a slowly mean-reverting daily walk from the origin."""
        idx = max(0, day - ORIGIN_DAY)
        base = math.log(self.spec.price)
        daily = self.spec.annual_vol / math.sqrt(365.0)
        while len(self._anchors) <= idx:
            n = len(self._anchors)
            x = self._anchors[-1]
            x = base + (x - base) * 0.995 + daily * self._rng("anchor", ORIGIN_DAY + n).gauss(0.0, 1.0)
            self._anchors.append(x)
        return self._anchors[idx]

    def _start_regime(self, day: int) -> int:
        return self._rng("regime", day).randrange(len(REGIMES))

    def _day(self, day: int) -> array[float]:
        if day == self._last_day:
            return self._last_path
        path = self._days.get(day)
        if path is not None:
            self._days.move_to_end(day)
            self._last_day, self._last_path = day, path
            return path
        rng = self._rng("day", day)
        n = self.steps
        step_s = self.step_us / 1_000_000
        base = self.spec.annual_vol * math.sqrt(step_s / (365.0 * 86400.0))
        switch_p = step_s / REGIME_DWELL_S
        jump_p = JUMPS_PER_DAY * step_s / 86400.0
        regime = self._start_regime(day)
        day_start = day * DAY_US
        releases = dict(self.intensity.releases_between(day_start, day_start + DAY_US))
        gauss, rand = rng.gauss, rng.random
        incs = array("d", bytes(8 * n))
        total = 0.0
        for i in range(n):
            t = day_start + i * self.step_us
            if rand() < switch_p:
                regime = rng.randrange(len(REGIMES))
            news = self.intensity(t)
            vol = base * REGIMES[regime] * session_factor(t) * (1.0 + 3.0 * news)
            inc = vol * gauss(0.0, 1.0)
            if rand() < jump_p:
                inc += gauss(0.0, 8.0 * base)
            for at, weight in releases.items():
                if t <= at < t + self.step_us:
                    inc += gauss(0.0, 25.0 * base * weight)  # the release itself gaps the price
            incs[i] = inc
            total += inc
        # Brownian bridge: bend the day so it ends exactly on tomorrow's anchor.
        start, end = self._anchor(day), self._anchor(day + 1)
        correction = (end - start - total) / n
        path = array("d", bytes(8 * (n + 1)))
        x = start
        path[0] = x
        for i in range(n):
            x += incs[i] + correction
            path[i + 1] = x
        self._days[day] = path
        self._last_day, self._last_path = day, path
        while len(self._days) > 3:
            self._days.popitem(last=False)
        return path

    def mid_at(self, t_us: int) -> float:
        day, offset = divmod(t_us, DAY_US)
        path = self._day(day)
        i, frac = divmod(offset, self.step_us)
        lo = path[i]
        return math.exp(lo + (path[i + 1] - lo) * (frac / self.step_us))
