"""Spread history figures of one broker and instrument. Pure: no Django, no I/O.

Sessions are UTC hours [first, last) and match the profile's session table.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime

from events.stress import percentile

SESSIONS: tuple[tuple[str, str, int, int], ...] = (
    ("asian", "Asian", 0, 8),
    ("london", "London", 8, 13),
    ("overlap", "London/New York overlap", 13, 17),
    ("newyork", "New York", 17, 22),
)


def bucket_means(points: Sequence[tuple[datetime, float]], *, bucket_s: int) -> list[tuple[float, float]]:
    """(bucket start as unix seconds, mean of the values in it), oldest first: coarser series for long spans."""
    buckets: dict[int, list[float]] = {}
    for at, value in points:
        t = int(at.timestamp())
        buckets.setdefault(t - t % bucket_s, []).append(value)
    return [(float(t), statistics.fmean(v)) for t, v in sorted(buckets.items())]


def hour_profile(points: Sequence[tuple[datetime, float]]) -> list[float | None]:
    """Mean spread per UTC hour of day (24 values; None for hours without data)."""
    by_hour: list[list[float]] = [[] for _ in range(24)]
    for at, value in points:
        by_hour[at.hour].append(value)
    return [statistics.fmean(v) if v else None for v in by_hour]


def peer_hour_profile(profiles: Sequence[Sequence[float | None]]) -> list[float | None]:
    """Per hour of day, the median of the other brokers' hour-of-day means."""
    out: list[float | None] = []
    for hour in range(24):
        values = [p[hour] for p in profiles if p[hour] is not None]
        out.append(statistics.median(v for v in values if v is not None) if values else None)
    return out


def session_percentiles(points: Sequence[tuple[datetime, float]]) -> dict[str, dict[str, float | None]]:
    """p50, p95 and p99 of the 1-minute mean spreads in each trading session, and how many minutes back them."""
    out: dict[str, dict[str, float | None]] = {}
    for key, _, first, last in SESSIONS:
        values = [v for at, v in points if first <= at.hour < last]
        out[key] = {
            "p50": percentile(values, 50) if values else None,
            "p95": percentile(values, 95) if values else None,
            "p99": percentile(values, 99) if values else None,
            "n": float(len(values)),
        }
    return out
