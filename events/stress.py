"""How one broker's spread on one instrument held up at one release. Pure: no Django, no I/O.

Input: the broker's 1-minute bars from an hour before the release to half an hour after, as offsets
in minutes from the release. Output: the figures of the event report. Definitions (published on the
event page):

* calm: median of the 1-minute mean spreads in the hour before the release;
* window: from ``WINDOW_BEFORE_MIN`` minutes before the release to ``WINDOW_AFTER_MIN`` after;
* peak: the highest spread quoted in the window; p95: 95th percentile of the window's 1-minute means;
* longest gap: the longest run of minutes in the window without a quote (to the minute);
* recovery: seconds from the release until the first minute, at or after the peak, whose mean is
  back within ``RECOVERY_FACTOR`` x calm; 0 when the spread never left that band; None when it did
  not come back inside the window.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

CALM_MIN = 60
WINDOW_BEFORE_MIN = 5
WINDOW_AFTER_MIN = 30
CHART_BEFORE_MIN = 15
RECOVERY_FACTOR = 1.5
# Ranking brokers at a release: each minute without quotes in the window counts as this much stress.
GAP_MINUTE_STRESS = 0.5


@dataclass(frozen=True)
class MinuteBar:
    minute: int  # offset from the release in whole minutes (-60 .. +29)
    mean: float  # time-weighted mean spread, price units
    high: float  # widest spread quoted in the minute


@dataclass(frozen=True)
class Stress:
    calm: float | None
    peak: float | None
    p95: float | None
    longest_gap_s: int
    recovery_s: int | None
    quoted_minutes: int
    window_minutes: int

    @property
    def ratio(self) -> float | None:
        """p95 in the window over calm: 1 means the release did not show in the spread."""
        if self.calm is None or self.p95 is None or self.calm <= 0:
            return None
        return self.p95 / self.calm

    @property
    def missing_minutes(self) -> int:
        return self.window_minutes - self.quoted_minutes


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    if not values:
        raise ValueError("percentile of nothing")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def stress_of(bars: Sequence[MinuteBar]) -> Stress:
    calm_values = [b.mean for b in bars if -CALM_MIN <= b.minute < 0]
    calm = statistics.median(calm_values) if calm_values else None
    window = sorted((b for b in bars if -WINDOW_BEFORE_MIN <= b.minute < WINDOW_AFTER_MIN), key=lambda b: b.minute)
    window_minutes = WINDOW_BEFORE_MIN + WINDOW_AFTER_MIN
    quoted = {b.minute for b in window}
    gap = run = 0
    for m in range(-WINDOW_BEFORE_MIN, WINDOW_AFTER_MIN):
        run = 0 if m in quoted else run + 1
        gap = max(gap, run)
    if not window:
        return Stress(calm, None, None, gap * 60, None, 0, window_minutes)
    peak_bar = max(window, key=lambda b: (b.high, -b.minute))
    p95 = percentile([b.mean for b in window], 95)
    recovery: int | None = None
    if calm is not None:
        band = RECOVERY_FACTOR * calm
        if all(b.mean <= band for b in window if b.minute >= 0):
            recovery = 0
        else:
            for b in window:
                if b.minute >= max(0, peak_bar.minute) and b.mean <= band:
                    recovery = b.minute * 60
                    break
    return Stress(calm, peak_bar.high, p95, gap * 60, recovery, len(quoted), window_minutes)


def stress_rank_key(stresses: Sequence[Stress]) -> float | None:
    """One broker's stress at a release over its instruments: median ratio plus the missing-minute charge.

    Missing minutes are charged, never skipped: a broker that goes dark at the release cannot look calm.
    None when no instrument had both a calm and a window.
    """
    scored = [s.ratio + GAP_MINUTE_STRESS * s.missing_minutes for s in stresses if s.ratio is not None]
    dark = [GAP_MINUTE_STRESS * s.window_minutes + 1.0 for s in stresses if s.ratio is None and s.calm is not None]
    values = scored + dark
    return statistics.median(values) if values else None
