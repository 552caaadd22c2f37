"""One broker's simulated feed: samples the reference markets through the broker's profile.

`events(t0, t1)` yields quotes and connection events with broker timestamps in [t0, t1), in time
order. The generator keeps its own state, so successive windows continue one another and the output
for a seed does not depend on how time is cut into windows.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

from common.ticks import FeedEventKind, Quote, StatusEvent
from simulator.market import DAY_US, ReferenceMarket, session_factor
from simulator.profiles import BrokerProfile

HOUR_US = 3_600_000_000


@dataclass
class _Stream:
    symbol: str
    market: ReferenceMarket
    rng: random.Random
    next_t: int
    last_bid: float = 0.0
    last_ask: float = 0.0


def outages_for_day(profile: BrokerProfile, seed: int, day: int) -> list[tuple[int, int]]:
    """Disconnected intervals [start, end) in µs starting on `day` (deterministic per seed)."""
    rng = random.Random(f"{seed}:{profile.slug}:outages:{day}")
    rate = profile.disconnects_per_day
    out: list[tuple[int, int]] = []
    # Poisson count by summing exponential gaps over one day.
    t = rng.expovariate(rate) if rate > 0 else math.inf
    while t < 1.0:
        if profile.outage_hours is not None:
            first, last = profile.outage_hours
            span = (last - first) % 24 or 24
            start_h = (first + rng.random() * span) % 24
            start = day * DAY_US + int(start_h * HOUR_US)
        else:
            start = day * DAY_US + int(t * DAY_US)
        duration = min(rng.expovariate(1.0 / profile.outage_mean_s), 6 * 3600.0)
        out.append((start, start + max(1_000_000, int(duration * 1_000_000))))
        t += rng.expovariate(rate)
    out.sort()
    merged: list[tuple[int, int]] = []
    for s, e in out:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


class BrokerFeedSimulator:
    def __init__(
        self,
        profile: BrokerProfile,
        markets: dict[str, ReferenceMarket],
        *,
        seed: int,
        quotes_per_s: float,
        start_us: int,
        with_depth: bool = True,
        instruments: list[str] | None = None,
        account_markup_pips: float = 0.0,
        account: int = 0,
    ) -> None:
        if quotes_per_s <= 0:
            raise ValueError("quotes_per_s must be positive")
        if account_markup_pips < 0:
            raise ValueError("account_markup_pips cannot be negative")
        self.profile = profile
        # A feed of one of the broker's marked-up accounts: its published mark-up on top of the raw price
        # (0: the broker's tightest account, which the demo feeds carry; see simulator/world.ACCOUNT_MARKUPS).
        self.account_markup_pips = account_markup_pips
        # The account type the quotes are stamped with (0: the broker's default account). One simulator per
        # account of a broker with the same seed samples the same market, timing and noise: the accounts
        # differ by their mark-up only, as a broker's accounts priced off one raw book do.
        self.account = account
        self.seed = seed
        self.rate = quotes_per_s
        self.with_depth = with_depth
        self.rng = random.Random(f"{seed}:{profile.slug}:quirks")
        symbols = [s for s in (instruments or profile.instruments) if s in profile.instruments and s in markets]
        self.streams: list[_Stream] = []
        for sym in symbols:
            rng = random.Random(f"{seed}:{profile.slug}:{sym}")
            self.streams.append(_Stream(sym, markets[sym], rng, start_us + int(rng.expovariate(self.rate) * 1e6)))
        self._heap = [(st.next_t, i) for i, st in enumerate(self.streams)]
        heapq.heapify(self._heap)
        self.seq = 0
        self.connected = True
        self._outages: list[tuple[int, int]] = []
        self._outage_day = -1

    def _outage_at(self, t: int) -> tuple[int, int] | None:
        day = t // DAY_US
        if day != self._outage_day:
            self._outages = outages_for_day(self.profile, self.seed, day - 1) + outages_for_day(
                self.profile, self.seed, day
            )
            self._outage_day = day
        for s, e in self._outages:
            if s <= t < e:
                return (s, e)
        return None

    def events(self, t0: int, t1: int) -> Iterator[Quote | StatusEvent]:
        heap = self._heap
        p = self.profile
        while heap and heap[0][0] < t1:
            t, i = heap[0]
            st = self.streams[i]
            heapq.heapreplace(heap, (t + max(1, int(st.rng.expovariate(self.rate) * 1e6)), i))
            if t < t0:
                continue
            outage = self._outage_at(t)
            if outage is not None:
                if self.connected:
                    self.connected = False
                    yield StatusEvent(p.slug, FeedEventKind.DISCONNECTED, max(outage[0], t0), "simulated outage")
                continue
            if not self.connected:
                self.connected = True
                self.seq = 0  # a new session restarts the sequence numbers
                yield StatusEvent(p.slug, FeedEventKind.CONNECTED, t, "reconnected")
            yield self._quote(st, t)

    def _quote(self, st: _Stream, t: int) -> Quote:
        p, spec, rng = self.profile, st.market.spec, st.rng
        self.seq += 1
        latency = int(rng.expovariate(1.0 / p.latency_ms) * 1000) if p.latency_ms > 0 else 0
        ts_recv = t + latency
        if st.last_bid and rng.random() < p.freeze_rate:
            bid, ask = st.last_bid, st.last_ask  # a frozen, stale quote
        else:
            mid = st.market.mid_at(t - int(p.stale_ms * 1000))
            news = st.market.intensity(t)
            typical = spec.spread_pips * spec.pip
            spread = (
                typical
                * p.markup
                * p.instrument_markup.get(st.symbol, 1.0)
                * (1.0 + (p.news_widening - 1.0) * news)
                * (1.6 - 0.6 * min(session_factor(t), 1.0))
                * math.exp(rng.gauss(0.0, 0.15))
            ) + self.account_markup_pips * spec.pip
            if p.off_market_rate and rng.random() < p.off_market_rate:
                mid += (1 if rng.random() < 0.5 else -1) * p.off_market_spreads * typical * (0.75 + 0.5 * rng.random())
            point = 10.0**-spec.digits
            bid = round(mid - spread / 2, spec.digits)
            ask = round(bid + max(point, round(spread, spec.digits)), spec.digits)
            st.last_bid, st.last_ask = bid, ask
        size = spec.size * p.size_factor
        bid_size = round(size * (0.5 + rng.random()), 2)
        ask_size = round(size * (0.5 + rng.random()), 2)
        depth = None
        if self.with_depth:
            step = max(ask - bid, 10.0**-spec.digits) / 2
            bids = tuple(
                (round(bid - k * step, spec.digits), round(bid_size * (1 + k), 2)) for k in range(p.depth_levels)
            )
            asks = tuple(
                (round(ask + k * step, spec.digits), round(ask_size * (1 + k), 2)) for k in range(p.depth_levels)
            )
            depth = (bids, asks)
        quote = Quote(
            p.slug, p.symbol(st.symbol), bid, ask, bid_size, ask_size, t, ts_recv, self.seq, depth, self.account
        )
        if p.bad_quote_rate and self.rng.random() < p.bad_quote_rate:
            return self._malformed(quote)
        return quote

    def _malformed(self, q: Quote) -> Quote:
        """Feeds do send garbage; the validator has to reject and count it."""
        kind = self.rng.randrange(4)
        if kind == 0:
            return replace(q, bid=math.nan, depth=None)
        if kind == 1:
            return replace(q, bid=q.ask, ask=q.bid, depth=None)
        if kind == 2:
            return replace(q, instrument="XYZ" + q.instrument, depth=None)
        self.seq -= 1  # resend the previous sequence number
        return replace(q, seq=max(self.seq, 0), depth=None)
