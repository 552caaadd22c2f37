"""Connection test of a feed configuration (admin action): connect, log on, wait for one quote."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from common.ticks import FeedEventKind, Quote, StatusEvent
from marketdata.feeds.base import FeedDisconnected, adapter_create


@dataclass
class ProbeResult:
    ok: bool
    summary: str
    seconds: float
    rejects: dict[str, int] = field(default_factory=dict)


async def feed_probe(*, adapter: str, broker: str, params: dict[str, Any], timeout_s: float = 15.0) -> ProbeResult:
    rejects: dict[str, int] = {}

    def on_reject(reason: str, detail: str) -> None:
        rejects[reason] = rejects.get(reason, 0) + 1

    started = time.monotonic()
    connected = False
    try:
        feed = adapter_create(adapter, broker=broker, params={**params, "on_reject": on_reject})
        items = feed.connect()
        async with asyncio.timeout(timeout_s):
            async for item in items:
                if isinstance(item, StatusEvent):
                    connected = connected or item.kind == FeedEventKind.CONNECTED
                    continue
                if isinstance(item, Quote):
                    took = time.monotonic() - started
                    await items.aclose()  # type: ignore[attr-defined]
                    return ProbeResult(
                        True,
                        f"connected, first quote {item.instrument} {item.bid}/{item.ask} after {took:.2f} s",
                        took,
                        rejects,
                    )
        return ProbeResult(False, "the feed ended before any quote", time.monotonic() - started, rejects)
    except TimeoutError:
        state = "connected but no quote" if connected else "no connection"
        return ProbeResult(False, f"{state} within {timeout_s:g} s", time.monotonic() - started, rejects)
    except FeedDisconnected as exc:
        return ProbeResult(False, f"disconnected: {exc}", time.monotonic() - started, rejects)
    except (ValueError, OSError) as exc:
        return ProbeResult(False, f"failed: {exc}", time.monotonic() - started, rejects)
