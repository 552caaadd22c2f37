"""The live layer's process-local counters, added to the shared ones (common.metrics, in Redis) off the
event loop every few seconds by the hub (live/hub.py's tick).

Anything that runs on a web process's event loop counts here, never with a Redis call of its own: a
synchronous Redis round trip there holds every client of the process. (It did: during bench.live's NFP
burst, each of a storm's clients that left before its handshake finished was counted straight into Redis
by live/transport.py, and those calls held the event loop for 350-690 ms at a time.)
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class Counters:
    NAMES = (
        "live_bad_upstream",
        "live_superseded_upstream",
        "ws_refused",
        "ws_malformed",
        "ws_oversized",
        "ws_dropped_slow",
        "ws_conflated",
        "ws_rate_limited",
        "live_hub_redis_lost",
        "live_hub_stuck",
        "live_hub_healed",
        "live_transport_instance_fallback",
        "live_transport_unwatched",
    )

    def __init__(self) -> None:
        self.values: dict[str, int] = dict.fromkeys(self.NAMES, 0)
        self.unflushed: dict[str, int] = dict.fromkeys(self.NAMES, 0)

    def incr(self, name: str, amount: int = 1) -> None:
        self.values[name] += amount
        self.unflushed[name] += amount

    def take_unflushed(self) -> dict[str, int]:
        out = {k: v for k, v in self.unflushed.items() if v}
        self.unflushed = dict.fromkeys(self.NAMES, 0)
        return out


COUNTERS = Counters()


def _stats_flush(values: dict[str, int]) -> None:
    from common import metrics

    for name, amount in values.items():
        metrics.incr(name, amount)


async def counters_flush() -> None:
    """Add what was counted since the last flush to the shared counters, in a thread."""
    values = COUNTERS.take_unflushed()
    if values:
        from asgiref.sync import sync_to_async

        try:
            await sync_to_async(_stats_flush, thread_sensitive=False)(values)
        except Exception:  # counters must never take the fan-out down
            logger.exception("could not flush live counters")
