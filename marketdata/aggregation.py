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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.ticks import consensus_mid

MINUTE_US = 60_000_000


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


class _Acc:
    __slots__ = (
        "close",
        "count",
        "dev_count",
        "dev_max",
        "dev_min",
        "first_ts",
        "high",
        "last_ts",
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
        ]

    @classmethod
    def load(cls, data: list[Any]) -> _Acc:
        acc = cls(int(data[0]), float(data[1]), int(data[7]))
        acc.high, acc.low, acc.close = float(data[2]), float(data[3]), float(data[4])
        acc.count, acc.tw_sum, acc.last_ts = int(data[5]), float(data[6]), int(data[8])
        acc.dev_min, acc.dev_max, acc.dev_count = float(data[9]), float(data[10]), int(data[11])
        return acc


class SpreadAggregator:
    def __init__(self, *, bar_us: int = MINUTE_US, consensus_max_age_us: int = 10_000_000) -> None:
        self.bar_us = bar_us
        self.max_age = consensus_max_age_us
        self._bars: dict[tuple[str, str, int], _Acc] = {}
        self._mids: dict[str, dict[str, tuple[int, float]]] = {}
        self._dirty: dict[tuple[str, str, int, int], _Acc] = {}
        self.quotes = 0

    def add(self, broker: str, instrument: str, bid: float, ask: float, ts: int, account: int = 0) -> None:
        self.quotes += 1
        spread = ask - bid
        mid = (ask + bid) * 0.5
        key = (broker, instrument, account)
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

    def take_rows(self) -> list[BarRow]:
        """Rows of every bar touched since the last call (current values; the open bar may change again)."""
        rows = [acc.row(b, i, a, self.bar_us) for (b, i, a, _), acc in self._dirty.items()]
        self._dirty = {}
        return rows

    def state(self) -> dict[str, Any]:
        return {
            # [broker, instrument, *accumulator, account]: the account last, so a state saved before
            # accounts (14 fields) loads as account 0.
            "bars": [[b, i, *acc.dump(), a] for (b, i, a), acc in self._bars.items()],
            "mids": {inst: {b: [t, m] for b, (t, m) in mids.items()} for inst, mids in self._mids.items()},
            "quotes": self.quotes,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self._bars = {
            (str(r[0]), str(r[1]), int(r[14]) if len(r) > 14 else 0): _Acc.load(r[2:14]) for r in state.get("bars", [])
        }
        self._mids = {
            str(inst): {str(b): (int(v[0]), float(v[1])) for b, v in mids.items()}
            for inst, mids in state.get("mids", {}).items()
        }
        self.quotes = int(state.get("quotes", 0))
        self._dirty = {}

    def prune(self, older_than_us: int) -> None:
        """Forget bars and mids not updated since `older_than_us` (their rows are already written)."""
        self._bars = {k: a for k, a in self._bars.items() if a.last_ts >= older_than_us}
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
            )
        )
    return out
