"""Counters shared by every process (Redis), for cache behaviour and rejected input."""

from __future__ import annotations

from django.core.cache import cache

STATS_KEY = "stats:{name}"


def incr(name: str, amount: int = 1) -> None:
    key = STATS_KEY.format(name=name)
    try:
        cache.incr(key, amount)
    except ValueError:
        # First use: add() avoids overwriting a concurrent first increment.
        if not cache.add(key, amount, None):
            cache.incr(key, amount)


def get(name: str) -> int:
    return int(cache.get(STATS_KEY.format(name=name)) or 0)


def get_many(names: list[str]) -> dict[str, int]:
    found = cache.get_many([STATS_KEY.format(name=n) for n in names])
    return {n: int(found.get(STATS_KEY.format(name=n)) or 0) for n in names}
