"""Feed adapter backed by the market simulator: the default for the demo and the tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from common.ticks import FeedEventKind, FeedItem, Quote, StatusEvent, now_us
from marketdata.feeds.base import FeedDisconnected, adapter_register
from simulator.broker import BrokerFeedSimulator
from simulator.calendar import CalendarEvent
from simulator.market import ReferenceMarket
from simulator.profiles import BROKER_PROFILES

_markets: dict[tuple[int, str], ReferenceMarket] = {}


def _market(seed: int, symbol: str, events: list[CalendarEvent]) -> ReferenceMarket:
    # Shared by all brokers in this process: one reference market per instrument.
    key = (seed, symbol)
    if key not in _markets:
        _markets[key] = ReferenceMarket(symbol, seed=seed, events=events)
    return _markets[key]


class SimulatorFeed:
    """Params: quotes_per_s (per instrument), seed, tick_ms, heartbeat_s, with_depth, instruments, events
    (list of CalendarEvent), outages (list of [start offset s, duration s] forced on top of the profile),
    account (account type id the quotes belong to; 0: the broker's default account) and account_markup_pips
    (pips that account adds to the default account's price)."""

    def __init__(self, broker: str, params: dict[str, Any]) -> None:
        if broker not in BROKER_PROFILES:
            raise ValueError(f"the simulator has no profile for broker {broker!r}")
        self.broker = broker
        self.seed = int(params.get("seed", 42))
        self.quotes_per_s = float(params.get("quotes_per_s", 1.0))
        self.tick_s = float(params.get("tick_ms", 100)) / 1000
        self.heartbeat_s = float(params.get("heartbeat_s", 1.0))
        events: list[CalendarEvent] = list(params.get("events", []))
        profile = BROKER_PROFILES[broker]
        markets = {s: _market(self.seed, s, events) for s in profile.instruments}
        self.started = now_us()
        self.sim = BrokerFeedSimulator(
            profile,
            markets,
            seed=self.seed,
            quotes_per_s=self.quotes_per_s,
            start_us=self.started,
            with_depth=bool(params.get("with_depth", True)),
            instruments=params.get("instruments"),
            account_markup_pips=float(params.get("account_markup_pips", 0.0)),
            account=int(params.get("account", 0)),
        )
        self.forced = [
            (self.started + int(a * 1e6), self.started + int((a + d) * 1e6)) for a, d in params.get("outages", [])
        ]
        self._t = self.started

    def _forced_outage(self, t: int) -> bool:
        return any(s <= t < e for s, e in self.forced)

    async def connect(self) -> AsyncIterator[FeedItem]:
        now = now_us()
        if self._forced_outage(now) or self.sim._outage_at(now) is not None:
            self._t = now  # nothing is sent while the broker is unreachable
            raise FeedDisconnected("connection refused (simulated outage)")
        yield StatusEvent(self.broker, FeedEventKind.CONNECTED, now, "simulator session")
        last_beat = now
        while True:
            await asyncio.sleep(self.tick_s)
            now = now_us()
            if self._forced_outage(now):
                self._t = now
                raise FeedDisconnected("connection dropped (forced outage)")
            for item in self.sim.events(self._t, now):
                if isinstance(item, StatusEvent):
                    if item.kind == FeedEventKind.DISCONNECTED:
                        self._t = now
                        raise FeedDisconnected("connection dropped (simulated outage)")
                    continue
                yield replace(item, ts_recv=now) if item.ts_recv > now else item
            self._t = now
            if now - last_beat >= self.heartbeat_s * 1e6:
                last_beat = now
                yield StatusEvent(self.broker, FeedEventKind.HEARTBEAT, now)


def _factory(broker: str, params: dict[str, Any]) -> SimulatorFeed:
    return SimulatorFeed(broker, params)


adapter_register("simulator", _factory)

__all__ = ["Quote", "SimulatorFeed"]
