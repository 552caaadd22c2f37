"""1-minute spread bars from a stream of accepted quotes. Pure: no Django, no I/O.

Per broker, instrument, account and minute: open/high/low/close spread, time-weighted mean spread, quote
count, and min/max deviation of the broker's mid from the consensus (median) mid of the other brokers'
latest quotes. The whole state is JSON-serialisable, so the durable aggregator checkpoints it in the
same transaction as the bars and a restart continues bit-for-bit where the last commit ended.

Definitions (the brute-force test recomputes these independently):
- A quote's spread holds from its broker timestamp until the next quote of that broker/instrument,
  or the end of the minute. mean = sum(spread * held) / (minute end - first quote's time).
- consensus = median of the other brokers' latest mids on that instrument whose timestamps are at most
  `consensus_max_age_us` older than this quote; deviation = mid - consensus (price units).
- Accounts: a broker may quote each account type on its own feed (account 0: its default account). Bars
  are kept per account; the consensus is built from the default-account mids only (one mid per broker:
  an account's mark-up widens the spread around the same mid, and a broker must not count twice), and
  every account's quotes are measured against it.
- A quote timestamped before its key's latest quote (possible only after an ingestor restart) is
  counted at the latest quote's time rather than dropped.

Reliability measures (methodology 2.3), per broker, instrument and account, attributed to the bar of the
quote that ends what they measure:
- Frozen: between two consecutive quotes of a key, the market moved when the median move of the other brokers
  that quoted in between, each against its own mid where the key's price was set (the start of a run of
  identical quotes; their mids at most ``consensus_max_age_us`` old then), exceeds 4 of the key's price steps
  (its smallest price change seen so far): a price that tracks the market must have changed then, whatever
  the noise of the others' quotes and the lag between them (fewer steps let ordinary repeats of a quote
  count at a quote a second, where EURUSD moves about one step).
  ``frozen_judged_s`` adds up such intervals, ``frozen_s`` those in which the quote repeated the same bid and
  ask. frozen_s / frozen_judged_s estimates the share of moving-market time the price stood still at any quote
  rate; a repeat while the market moved less than the broker's price step (a coarse price grid, a quiet
  market) is never judged. Intervals over ``MAX_HELD_US`` (an outage, a closed market) are not judged.
- Latency: ts_ingest - ts_broker per quote, as a count and a sum of ln(1 + ms) (a geometric mean rolls up
  exactly and one quote replayed an hour late moves it by a hair, unlike a mean); a negative delay (the
  broker's clock ahead of ours) counts as 0.
- Depth: quotes whose smaller touch size (bid or ask) reaches 1, 5 and 10 lots, of the quotes with a size
  reported, for instruments whose lot size the aggregator was given (``lot_units``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.ticks import consensus_mid

MINUTE_US = 60_000_000
MAX_HELD_US = 3_600_000_000  # a longer silence between two quotes is an outage or a closed market, not a freeze
FROZEN_MOVE_STEPS = 4.0  # market move (in the key's price steps) after which a tracking price must have changed


# The reliability measures recorded per bar (the last fields of BarRow), plain sums in every roll-up and in
# the daily inputs of TrustMetrics under the same names: the one list of them (bar SQL, roll-ups, scoring).
RELIABILITY_FIELDS = (
    "frozen_s",
    "frozen_judged_s",
    "latency_count",
    "latency_log_sum",
    "depth_count",
    "depth_1",
    "depth_5",
    "depth_10",
)


@dataclass(slots=True)
class BarRow:
    broker: str
    instrument: str
    start_us: int
    open: float
    high: float
    low: float
    close: float
    mean: float
    count: int
    dev_min: float
    dev_max: float
    duration: float  # seconds covered by quotes
    dev_count: int
    account: int = 0  # the account type id; 0: the broker's default account
    frozen_s: float = 0.0  # seconds the price stood still while the consensus moved (see the module docstring)
    frozen_judged_s: float = 0.0  # seconds in which the consensus moved enough to judge that
    latency_count: int = 0  # quotes with a receipt time
    latency_log_sum: float = 0.0  # sum of ln(1 + ts_ingest - ts_broker in ms)
    depth_count: int = 0  # quotes with a touch size, of an instrument with a known lot size
    depth_1: int = 0  # of those, the quotes with at least 1 lot on both sides of the touch
    depth_5: int = 0
    depth_10: int = 0


class _Acc:
    __slots__ = (
        "close",
        "count",
        "depth",
        "dev_count",
        "dev_max",
        "dev_min",
        "first_ts",
        "frozen_us",
        "high",
        "judged_us",
        "last_ts",
        "lat_count",
        "lat_log_sum",
        "low",
        "open",
        "start",
        "tw_sum",
    )

    def __init__(self, start: int, spread: float, ts: int) -> None:
        self.start = start
        self.open = self.high = self.low = self.close = spread
        self.count = 1
        self.tw_sum = 0.0
        self.first_ts = self.last_ts = ts
        self.dev_min = 0.0
        self.dev_max = 0.0
        self.dev_count = 0
        self.frozen_us = 0
        self.judged_us = 0
        self.lat_count = 0
        self.lat_log_sum = 0.0
        self.depth = [0, 0, 0, 0]  # quotes with a size; with 1, 5 and 10 lots at the touch

    def row(self, broker: str, instrument: str, account: int, bar_us: int) -> BarRow:
        end = self.start + bar_us
        covered = end - self.first_ts
        mean = (self.tw_sum + self.close * (end - self.last_ts)) / covered if covered > 0 else self.close
        return BarRow(
            broker,
            instrument,
            self.start,
            self.open,
            self.high,
            self.low,
            self.close,
            mean,
            self.count,
            self.dev_min,
            self.dev_max,
            covered / 1e6,
            self.dev_count,
            account,
            self.frozen_us / 1e6,
            self.judged_us / 1e6,
            self.lat_count,
            self.lat_log_sum,
            *self.depth,
        )

    def dump(self) -> list[Any]:
        return [
            self.start,
            self.open,
            self.high,
            self.low,
            self.close,
            self.count,
            self.tw_sum,
            self.first_ts,
            self.last_ts,
            self.dev_min,
            self.dev_max,
            self.dev_count,
            self.frozen_us,
            self.judged_us,
            self.lat_count,
            self.lat_log_sum,
            *self.depth,
        ]

    @classmethod
    def load(cls, data: list[Any]) -> _Acc:
        acc = cls(int(data[0]), float(data[1]), int(data[7]))
        acc.high, acc.low, acc.close = float(data[2]), float(data[3]), float(data[4])
        acc.count, acc.tw_sum, acc.last_ts = int(data[5]), float(data[6]), int(data[8])
        acc.dev_min, acc.dev_max, acc.dev_count = float(data[9]), float(data[10]), int(data[11])
        if len(data) >= 20:  # a state saved before 2.3's reliability measures has none: they start at 0
            acc.frozen_us, acc.judged_us, acc.lat_count = int(data[12]), int(data[13]), int(data[14])
            acc.lat_log_sum = float(data[15])
            acc.depth = [int(x) for x in data[16:20]]
        return acc


class SpreadAggregator:
    def __init__(
        self,
        *,
        bar_us: int = MINUTE_US,
        consensus_max_age_us: int = 10_000_000,
        lot_units: Mapping[str, float] | None = None,
    ) -> None:
        self.bar_us = bar_us
        self.max_age = consensus_max_age_us
        # Units in one lot per instrument (depth is counted in lots); an instrument missing here has no depth.
        self.lot_units = dict(lot_units or {})
        self._bars: dict[tuple[str, str, int], _Acc] = {}
        self._mids: dict[str, dict[str, tuple[int, float]]] = {}
        # Per key, where its price stands: [time of the last quote, bid, ask, the other brokers' latest (time,
        # mid) when this price was set, price step (smallest price change seen; 0: none yet)].
        self._runs: dict[tuple[str, str, int], list[Any]] = {}
        self._dirty: dict[tuple[str, str, int, int], _Acc] = {}
        self.quotes = 0

    def add(
        self,
        broker: str,
        instrument: str,
        bid: float,
        ask: float,
        ts: int,
        account: int = 0,
        ts_ingest: int | None = None,
        bid_size: float = 0.0,
        ask_size: float = 0.0,
    ) -> None:
        self.quotes += 1
        spread = ask - bid
        mid = (ask + bid) * 0.5
        key = (broker, instrument, account)
        if ts_ingest is not None:
            delay_ms = (ts_ingest - ts) / 1000.0
        acc = self._bars.get(key)
        if acc is not None and ts < acc.last_ts:
            ts = acc.last_ts  # late quote: count it at the latest known time (see module docstring)
        start = ts - ts % self.bar_us
        if acc is None or start > acc.start:
            acc = _Acc(start, spread, ts)
            self._bars[key] = acc
            self._dirty[(broker, instrument, account, start)] = acc
        else:
            acc.tw_sum += acc.close * (ts - acc.last_ts)
            acc.last_ts = ts
            acc.close = spread
            if spread > acc.high:
                acc.high = spread
            elif spread < acc.low:
                acc.low = spread
            acc.count += 1
            self._dirty[(broker, instrument, account, acc.start)] = acc
        mids = self._mids.get(instrument)
        if mids is None:
            mids = self._mids[instrument] = {}
        oldest = ts - self.max_age
        others = [m for b, (t, m) in mids.items() if t >= oldest and b != broker]
        consensus = consensus_mid(others)
        if consensus is not None:
            dev = mid - consensus
            if acc.dev_count == 0:
                acc.dev_min = acc.dev_max = dev
            elif dev < acc.dev_min:
                acc.dev_min = dev
            elif dev > acc.dev_max:
                acc.dev_max = dev
            acc.dev_count += 1
        if not account:
            mids[broker] = (ts, mid)

        run = self._runs.get(key)
        if run is None:
            self._runs[key] = [ts, bid, ask, {b: v for b, v in mids.items() if b != broker and v[0] >= oldest}, 0.0]
        else:
            held = ts - run[0]
            same = bid == run[1] and ask == run[2]
            step = run[4]
            if not same:
                change = max(abs(bid - run[1]), abs(ask - run[2]))
                if change > 0 and (step == 0 or change < step):
                    step = run[4] = change
            ref = run[3]
            if ref and step > 0 and 0 < held <= MAX_HELD_US:
                # The market's move: the median of the moves of the other brokers that quoted since this price
                # was set, each against its own earlier mid (a median of different brokers at the two ends would
                # add their differences of level to the move).
                moves = [cur[1] - m for b, (t, m) in ref.items() if (cur := mids.get(b)) is not None and cur[0] > t]
                if moves:
                    moves.sort()
                    n = len(moves)
                    move = moves[n // 2] if n % 2 else (moves[n // 2 - 1] + moves[n // 2]) * 0.5
                    if abs(move) > FROZEN_MOVE_STEPS * step:
                        acc.judged_us += held
                        if same:
                            acc.frozen_us += held
            run[0] = ts
            if not same or not ref:
                # A new price, or a price still without a market to compare with: compare from here.
                run[3] = {b: v for b, v in mids.items() if b != broker and v[0] >= oldest}
                run[1], run[2] = bid, ask

        if ts_ingest is not None:
            acc.lat_count += 1
            acc.lat_log_sum += math.log1p(delay_ms if delay_ms > 0 else 0.0)
        lot = self.lot_units.get(instrument)
        touch = bid_size if bid_size < ask_size else ask_size
        if lot and touch > 0:
            depth = acc.depth
            depth[0] += 1
            if touch >= lot:
                depth[1] += 1
                if touch >= 5 * lot:
                    depth[2] += 1
                    if touch >= 10 * lot:
                        depth[3] += 1

    def take_rows(self) -> list[BarRow]:
        """Rows of every bar touched since the last call (current values; the open bar may change again)."""
        rows = [acc.row(b, i, a, self.bar_us) for (b, i, a, _), acc in self._dirty.items()]
        self._dirty = {}
        return rows

    def state(self) -> dict[str, Any]:
        out = []
        for (b, i, a), acc in self._bars.items():
            dumped = acc.dump()
            # [broker, instrument, *accumulator, account, *2.3 measures]: the account after the first 12 fields, so
            # a state saved before accounts (14 fields) loads as account 0 and one saved before 2.3 with no measures.
            out.append([b, i, *dumped[:12], a, *dumped[12:]])
        return {
            "bars": out,
            "mids": {inst: {b: [t, m] for b, (t, m) in mids.items()} for inst, mids in self._mids.items()},
            "runs": [
                [b, i, a, ts, bid, ask, {o: [t, m] for o, (t, m) in ref.items()}, step]
                for (b, i, a), (ts, bid, ask, ref, step) in self._runs.items()
            ],
            "quotes": self.quotes,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self._bars = {
            (str(r[0]), str(r[1]), int(r[14]) if len(r) > 14 else 0): _Acc.load([*r[2:14], *r[15:]])
            for r in state.get("bars", [])
        }
        self._mids = {
            str(inst): {str(b): (int(v[0]), float(v[1])) for b, v in mids.items()}
            for inst, mids in state.get("mids", {}).items()
        }
        self._runs = {
            (str(r[0]), str(r[1]), int(r[2])): [
                int(r[3]),
                float(r[4]),
                float(r[5]),
                {str(b): (int(v[0]), float(v[1])) for b, v in r[6].items()},
                float(r[7]),
            ]
            for r in state.get("runs", [])
        }
        self.quotes = int(state.get("quotes", 0))
        self._dirty = {}

    def prune(self, older_than_us: int) -> None:
        """Forget bars, mids and prices not updated since `older_than_us` (their rows are already written)."""
        self._bars = {k: a for k, a in self._bars.items() if a.last_ts >= older_than_us}
        self._runs = {k: r for k, r in self._runs.items() if r[0] >= older_than_us}
        for inst in list(self._mids):
            kept = {b: v for b, v in self._mids[inst].items() if v[0] >= older_than_us}
            if kept:
                self._mids[inst] = kept
            else:
                del self._mids[inst]


def rollup_rows(rows: list[BarRow], *, bucket_us: int) -> list[BarRow]:
    """Combine bars into coarser buckets exactly as the SQL roll-up does (duration-weighted mean)."""
    groups: dict[tuple[str, str, int, int], list[BarRow]] = {}
    for r in rows:
        groups.setdefault((r.broker, r.instrument, r.account, r.start_us - r.start_us % bucket_us), []).append(r)
    out: list[BarRow] = []
    for (broker, instrument, account, start), bars in groups.items():
        bars.sort(key=lambda b: b.start_us)
        duration = sum(b.duration for b in bars)
        mean = (
            sum(b.mean * b.duration for b in bars) / duration if duration > 0 else sum(b.mean for b in bars) / len(bars)
        )
        measured = [b for b in bars if b.dev_count > 0]
        out.append(
            BarRow(
                broker,
                instrument,
                start,
                bars[0].open,
                max(b.high for b in bars),
                min(b.low for b in bars),
                bars[-1].close,
                mean,
                sum(b.count for b in bars),
                min((b.dev_min for b in measured), default=0.0),
                max((b.dev_max for b in measured), default=0.0),
                duration,
                sum(b.dev_count for b in bars),
                account,
                *(sum(getattr(b, f) for b in bars) for f in RELIABILITY_FIELDS),
            )
        )
    return out
