"""Benchmark of the consolidated order book: ``python -m bench.book [--quick]``.

Every implementation gets the same generated update stream (14 brokers, 5 levels a side each,
sizes changing and levels moving with a random-walk mid, never crossing) and, after each update
really applied, reads the best price of the updated side. Compared in the same run:

* ``orderbook`` compiled core (if built with ``python setup.py build_ext --inplace``);
* ``orderbook`` pure Python core;
* ``order-book`` (bmoscon's C extension, the fastest order book on PyPI we know of): it keeps
  one size per price and no brokers, so it is fed the same stream aggregated per price level
  (computed before timing) -- it does less work per update than the books with broker queues;
* a ``sortedcontainers`` SortedDict book with per-broker FIFO levels, written here as the
  baseline a Python developer would write.

Match latency is timed per call (``perf_counter_ns``) for market and limit orders that take 1-4
entries; the liquidity taken is put back untimed after each so the book stays in steady state.
"""

from __future__ import annotations

import argparse
import functools
import gc
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from sortedcontainers import SortedDict

from orderbook import ASK, BID, BUY, SELL, CompiledOrderBook, Fill, Order, PyOrderBook

Event = tuple[str, str, float, float]  # side, broker, price, size (0.0 deletes)
AggEvent = tuple[str, float, float]  # side, price, total size at the price (0.0 deletes)

TICK = 100_000  # price = ticks / TICK


# ---------------------------------------------------------------------------- the stream
def make_stream(n_events: int, seed: int = 7, brokers: int = 14, levels: int = 5) -> tuple[list[Event], list[Event]]:
    """Returns (seed snapshot, events); every event applies cleanly to a book built from the snapshot."""
    rng = random.Random(seed)
    names = [f"broker{i:02d}" for i in range(brokers)]
    markup = {b: rng.randint(1, 8) for b in names}
    mid = 110_000  # ticks
    check = PyOrderBook("bench")
    model: dict[tuple[str, str], dict[float, float]] = {(b, s): {} for b in names for s in (BID, ASK)}

    def price_for(side: str, broker: str) -> float:
        away = markup[broker] + rng.randint(0, levels * 2)
        return (mid - away if side == BID else mid + away) / TICK

    def size() -> float:
        return float(rng.randint(1, 100) * 10_000)

    snapshot: list[Event] = []
    for b in names:
        for s in (BID, ASK):
            while len(model[(b, s)]) < levels:
                p = price_for(s, b)
                if p not in model[(b, s)]:
                    ev = (s, b, p, size())
                    check.update(*ev)
                    model[(b, s)][p] = ev[3]
                    snapshot.append(ev)
    events: list[Event] = []
    while len(events) < n_events:
        if rng.random() < 0.05:
            mid += rng.choice((-1, 1))
        b = rng.choice(names)
        s = rng.choice((BID, ASK))
        mine = model[(b, s)]
        if rng.random() < 0.75 or len(mine) < levels:
            if not mine:
                continue
            p = rng.choice(list(mine))
            ev = (s, b, p, size())
        elif rng.random() < 0.5:
            p = rng.choice(list(mine))
            ev = (s, b, p, 0.0)
        else:
            p = price_for(s, b)
            if p in mine:
                continue
            other = check.best_ask() if s == BID else check.best_bid()
            if other is not None and (p >= other if s == BID else p <= other):
                continue  # would cross: left out so every book applies the whole stream
            ev = (s, b, p, size())
        check.update(*ev)
        if ev[3]:
            mine[p] = ev[3]
        else:
            del mine[p]
        events.append(ev)
    assert check.counters()["pruned"] == 0
    return snapshot, events


def aggregate(snapshot: Sequence[Event], events: Sequence[Event]) -> tuple[list[AggEvent], list[AggEvent]]:
    """The same stream as total size per price level, for books without brokers."""
    per: dict[tuple[str, float], dict[str, float]] = {}

    def one(ev: Event) -> AggEvent:
        side, broker, price, size = ev
        level = per.setdefault((side, price), {})
        if size:
            level[broker] = size
        else:
            level.pop(broker, None)
        return side, price, math.fsum(level.values())

    return [one(e) for e in snapshot], [one(e) for e in events]


# ---------------------------------------------------------------------------- baseline
class SortedContainersBook:
    """Price-time book on ``sortedcontainers.SortedDict``: the straightforward Python baseline."""

    def __init__(self) -> None:
        self.bids: Any = SortedDict()  # price -> {broker: [size, seq]}
        self.asks: Any = SortedDict()
        self.seq = 0

    def update(self, side: str, broker: str, price: float, size: float) -> None:
        book = self.bids if side == BID else self.asks
        level = book.get(price)
        if size == 0.0:
            if level is None or broker not in level:
                raise ValueError(f"{broker} has no {side} at {price}")
            del level[broker]
            if not level:
                del book[price]
            return
        if level is None:
            other = self.asks if side == BID else self.bids
            if other and (
                (side == BID and price >= other.peekitem(0)[0]) or (side == ASK and price <= other.peekitem(-1)[0])
            ):
                raise ValueError("crossed")
            level = book[price] = {}
        entry = level.get(broker)
        if entry is not None and size <= entry[0]:
            entry[0] = size
            return
        level.pop(broker, None)
        self.seq += 1
        level[broker] = [size, self.seq]

    def best(self, side: str) -> float | None:
        if side == BID:
            return self.bids.peekitem(-1)[0] if self.bids else None
        return self.asks.peekitem(0)[0] if self.asks else None

    def best_bid(self) -> float | None:
        return self.bids.peekitem(-1)[0] if self.bids else None

    def size_at(self, side: str, broker: str, price: float) -> float:
        level = (self.bids if side == BID else self.asks).get(price)
        return level[broker][0] if level and broker in level else 0.0

    def match(self, order: Order) -> list[Fill]:
        buy = order.side == BUY
        book = self.asks if buy else self.bids
        remaining = order.size
        fills: list[Fill] = []
        while remaining > 0 and book:
            price, level = book.peekitem(0 if buy else -1)
            if order.limit is not None and (price > order.limit if buy else price < order.limit):
                break
            for broker, entry in list(level.items()):
                take = min(entry[0], remaining)
                entry[0] -= take
                remaining -= take
                fills.append(Fill(broker, price, take))
                if entry[0] == 0.0:
                    del level[broker]
                if remaining == 0.0:
                    break
            if not level:
                del book[price]
        return fills


# ---------------------------------------------------------------------------- timing
def time_updates(book: Any, events: Sequence[Event]) -> float:
    upd, best = book.update, book.best
    t0 = time.perf_counter()
    for side, broker, price, size in events:
        upd(side, broker, price, size)
        best(side)
    return time.perf_counter() - t0


def time_updates_peer(ob: Any, events: Sequence[AggEvent]) -> float:
    bids, asks = ob.bids, ob.asks
    t0 = time.perf_counter()
    for side, price, size in events:
        d = bids if side == BID else asks
        if size:
            d[price] = size
        else:
            del d[price]
        d.index(0)
    return time.perf_counter() - t0


def time_reads(best: Callable[[], Any], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        best()
    return time.perf_counter() - t0 - _empty_loop(n)


def _empty_loop(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        pass
    return time.perf_counter() - t0


def time_matches(book: Any, orders: Sequence[Order]) -> list[float]:
    """Latency of each match in µs; the liquidity taken is put back (untimed) after each."""
    match, update, size_at = book.match, book.update, book.size_at
    clock = time.perf_counter_ns
    out = []
    for order in orders:
        t0 = clock()
        result = match(order)
        out.append((clock() - t0) / 1000.0)
        side = ASK if order.side == BUY else BID
        for f in result if isinstance(result, list) else result.fills:
            update(side, f.broker, f.price, size_at(side, f.broker, f.price) + f.size)
    return out


def make_orders(book: Any, n: int, seed: int = 11) -> list[Order]:
    rng = random.Random(seed)
    orders = []
    for _ in range(n):
        side = rng.choice((BUY, SELL))
        size = float(rng.randint(1, 150) * 10_000)  # takes 1-4 entries of the stream's sizes
        limit = None
        if rng.random() < 0.5:
            best = book.best(ASK if side == BUY else BID)
            limit = best + (1 if side == BUY else -1) * rng.randint(0, 3) / TICK
        orders.append(Order(side, size, limit))
    return orders


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller run, under a minute")
    args = ap.parse_args(argv)
    n_events, reps, n_reads, n_orders = (
        (300_000, 5, 1_000_000, 20_000) if args.quick else (1_000_000, 7, 5_000_000, 100_000)
    )

    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # one core
    t0 = time.perf_counter()
    snapshot, events = make_stream(n_events)
    agg_snapshot, agg_events = aggregate(snapshot, events)
    print(
        f"stream: {len(snapshot)} snapshot + {len(events)} updates, 14 brokers, generated in "
        f"{time.perf_counter() - t0:.1f}s; pinned to cpu {cpu}; python {sys.version.split()[0]}; best of {reps}"
    )
    gc.collect()
    gc.freeze()  # the stream itself is not the books' garbage

    impls: list[tuple[str, Callable[[], Any]]] = []
    if CompiledOrderBook is not None:
        impls.append(("orderbook compiled", lambda: CompiledOrderBook("bench")))
    impls.append(("orderbook python", lambda: PyOrderBook("bench")))
    impls.append(("sortedcontainers book", SortedContainersBook))

    def ours_once(factory: Callable[[], Any]) -> tuple[float, Any]:
        book = factory()
        for ev in snapshot:
            book.update(*ev)
        return time_updates(book, events), book

    def peer_once() -> tuple[float, Any]:
        ob = PeerBook()
        for s, p, q in agg_snapshot:
            (ob.bids if s == BID else ob.asks)[p] = q
        return time_updates_peer(ob, agg_events), ob

    runners: list[tuple[str, Callable[[], tuple[float, Any]]]] = [
        (name, functools.partial(ours_once, factory)) for name, factory in impls
    ]
    try:
        from order_book import OrderBook as PeerBook

        runners.append(("order-book (C, per-price only)", peer_once))
    except ImportError:
        print("order-book is not installed (pip install -r requirements-dev.txt): peer skipped")

    # Repetitions go round-robin over the implementations, so noise from other processes on this
    # shared machine hits them all alike; each keeps its best repetition.
    times: dict[str, list[float]] = {name: [] for name, _ in runners}
    last: dict[str, Any] = {}
    for _ in range(reps):
        for name, once in runners:
            elapsed, last[name] = once()
            times[name].append(elapsed)

    ours_books = [last[name] for name, _ in impls if name.startswith("orderbook")]
    if len(ours_books) == 2:  # the compiled and the Python book applied the stream identically
        assert all(ours_books[0].depth(side) == ours_books[1].depth(side) for side in (BID, ASK))
    rows: list[dict[str, Any]] = []
    finals = []
    for name, _ in runners:
        book = last[name]
        if name.startswith("order-book"):
            finals.append((name, [book.bids.index(0)[0], book.asks.index(0)[0]]))
            reads = n_reads / max(time_reads(functools.partial(book.bids.index, 0), n_reads), 1e-9)
            p50 = p99 = None
        else:
            finals.append((name, [book.best(BID), book.best(ASK)]))
            reads = n_reads / max(time_reads(book.best_bid, n_reads), 1e-9)
            lat = time_matches(book, make_orders(book, n_orders))
            p50, p99 = pct(lat, 0.5), pct(lat, 0.99)
        rows.append({"name": name, "ups": len(events) / min(times[name]), "reads": reads, "p50": p50, "p99": p99})

    # every book must end on the same best prices, else the comparison is meaningless
    tops = {tuple(v) for _, v in finals}
    assert len(tops) == 1, finals

    ours = rows[0]
    peers = [r for r in rows if not r["name"].startswith("orderbook")]
    peer = max(peers, key=lambda r: r["ups"])
    print(
        f"\n{'implementation':34} {'updates+read/s':>15} {'vs peer':>8} {'best reads/s':>14} "
        f"{'match p50 µs':>13} {'match p99 µs':>13}"
    )
    for r in rows:
        lat50 = f"{r['p50']:.2f}" if r["p50"] is not None else "n/a"
        lat99 = f"{r['p99']:.2f}" if r["p99"] is not None else "n/a"
        print(
            f"{r['name']:34} {r['ups']:15,.0f} {r['ups'] / peer['ups']:7.2f}x {r['reads']:14,.0f} "
            f"{lat50:>13} {lat99:>13}"
        )
    target = ours["ups"] >= 1_000_000 and ours["p99"] < 10
    print(
        f"\ntarget: >= 1,000,000 updates/s with a best read after each, match p99 < 10 µs: "
        f"{'met' if target else 'NOT met'} by {ours['name']}"
    )
    peer_name = peer["name"].split(" ")[0]
    print(
        f"RESULT updates_per_s={ours['ups']:.0f} match_p99_us={ours['p99']:.2f} peer={peer_name} "
        f"peer_updates_per_s={peer['ups']:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
