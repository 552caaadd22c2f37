"""Property tests: the order book against a brute-force reference, for every implementation.

The reference keeps a flat list of entries and re-sorts it for every question, so it is slow but
obviously right. Sizes are whole numbers, so float sums are exact and results compare with ==.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderbook import (
    ASK,
    BID,
    BUY,
    CompiledOrderBook,
    CrossedBookError,
    DuplicateLevelError,
    Entry,
    Fill,
    InvalidInputError,
    Level,
    Order,
    PyOrderBook,
    UnknownLevelError,
)

IMPLEMENTATIONS = [pytest.param(PyOrderBook, id="python")] + [
    pytest.param(
        CompiledOrderBook,
        id="compiled",
        marks=pytest.mark.skipif(
            CompiledOrderBook is None, reason="compiled core not built: python setup.py build_ext --inplace"
        ),
    )
]

BROKERS = ("alpha", "beta", "gamma")
PRICES = [t / 100 for t in range(96, 105)]  # a narrow grid, so levels collide and cross often


@dataclass
class RefEntry:
    side: str
    broker: str
    price: float
    size: float
    seq: int


@dataclass
class Reference:
    """Brute-force order book with the documented semantics."""

    cross_policy: str = "reject"
    entries: list[RefEntry] = field(default_factory=list)
    seq: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "rejected_invalid",
                "rejected_crossed",
                "rejected_unknown",
                "rejected_duplicate",
                "pruned",
                "matches",
                "fills",
            ),
            0,
        )
    )

    def _find(self, side, broker, price):
        return next((e for e in self.entries if (e.side, e.broker, e.price) == (side, broker, price)), None)

    def _valid(self, side, broker, price, size, positive):
        ok = (
            side in (BID, ASK)
            and type(broker) is str
            and broker != ""
            and type(price) in (int, float)
            and 0 < price < math.inf
            and (size is None or (type(size) in (int, float) and 0 <= size < math.inf and not (positive and size == 0)))
        )
        if not ok:
            self.counts["rejected_invalid"] += 1
            raise InvalidInputError("reference")

    def update(self, side, broker, price, size):
        self._valid(side, broker, price, size, False)
        price, size = float(price), float(size)
        entry = self._find(side, broker, price)
        if size == 0:
            if entry is None:
                self.counts["rejected_unknown"] += 1
                raise UnknownLevelError("reference")
            self.entries.remove(entry)
            return
        if entry is not None:
            if size > entry.size:
                self.seq += 1
                entry.seq = self.seq
            entry.size = size
            return
        if not any(e.side == side and e.price == price for e in self.entries):
            other = ASK if side == BID else BID
            crossed = [
                e for e in self.entries if e.side == other and (e.price <= price if side == BID else e.price >= price)
            ]
            if self.cross_policy == "reject" and any(e.broker != broker for e in crossed):
                self.counts["rejected_crossed"] += 1
                raise CrossedBookError("reference")
            for e in crossed:
                self.entries.remove(e)
            self.counts["pruned"] += len(crossed)
        self.seq += 1
        self.entries.append(RefEntry(side, broker, price, size, self.seq))

    def add(self, side, broker, price, size):
        self._valid(side, broker, price, size, True)
        if self._find(side, broker, float(price)) is not None:
            self.counts["rejected_duplicate"] += 1
            raise DuplicateLevelError("reference")
        self.update(side, broker, price, size)

    def change(self, side, broker, price, size):
        self._valid(side, broker, price, size, True)
        if self._find(side, broker, float(price)) is None:
            self.counts["rejected_unknown"] += 1
            raise UnknownLevelError("reference")
        self.update(side, broker, price, size)

    def delete(self, side, broker, price):
        self._valid(side, broker, price, None, False)
        if self._find(side, broker, float(price)) is None:
            self.counts["rejected_unknown"] += 1
            raise UnknownLevelError("reference")
        self.update(side, broker, price, 0.0)

    def clear_broker(self, broker):
        mine = [e for e in self.entries if e.broker == broker]
        for e in mine:
            self.entries.remove(e)
        return len(mine)

    def queue(self, order_side, broker=None):
        """Entries an order of that side would take, in price-time priority."""
        if order_side == BUY:
            es = sorted((e for e in self.entries if e.side == ASK), key=lambda e: (e.price, e.seq))
        else:
            es = sorted((e for e in self.entries if e.side == BID), key=lambda e: (-e.price, e.seq))
        return [e for e in es if broker is None or e.broker == broker]

    def match(self, order):
        self.counts["matches"] += 1
        remaining = float(order.size)
        fills = []
        for e in self.queue(order.side):
            if remaining == 0:
                break
            if order.limit is not None and (e.price > order.limit if order.side == BUY else e.price < order.limit):
                break
            take = min(e.size, remaining)
            fills.append(Fill(e.broker, e.price, take))
            remaining -= take
            e.size -= take
            if e.size == 0:
                self.entries.remove(e)
        self.counts["fills"] += len(fills)
        return fills, remaining

    def walk(self, side, size, broker=None):
        remaining = float(size)
        fills = []
        for e in self.queue(side, broker):
            if remaining == 0:
                break
            take = min(e.size, remaining)
            fills.append(Fill(e.broker, e.price, take))
            remaining -= take
        return fills, remaining, len({f.price for f in fills})

    def depth(self, side):
        prices = sorted({e.price for e in self.entries if e.side == side}, reverse=side == BID)
        out = []
        for p in prices:
            es = sorted((e for e in self.entries if e.side == side and e.price == p), key=lambda e: e.seq)
            out.append(Level(p, sum(e.size for e in es), tuple(Entry(e.broker, e.size, e.seq) for e in es)))
        return out

    def best(self, side):
        d = self.depth(side)
        return d[0].price if d else None

    def total(self, side):
        return sum(e.size for e in self.entries if e.side == side)


# ---------------------------------------------------------------------------- operations
sides = st.sampled_from([BID, ASK])
order_sides = st.sampled_from(["buy", "sell"])
brokers = st.sampled_from(BROKERS)
prices = st.sampled_from(PRICES)
sizes = st.integers(min_value=1, max_value=50).map(float)
bad_numbers = st.sampled_from([math.nan, -1.0, 0.0, math.inf, -math.inf, "1.0", None])

ops = st.one_of(
    st.tuples(st.just("update"), sides, brokers, prices, sizes),
    st.tuples(st.just("update"), sides, brokers, prices, sizes),
    st.tuples(st.just("update"), sides, brokers, prices, st.just(0.0)),
    st.tuples(st.just("add"), sides, brokers, prices, sizes),
    st.tuples(st.just("change"), sides, brokers, prices, sizes),
    st.tuples(st.just("delete"), sides, brokers, prices),
    st.tuples(st.just("match"), order_sides, st.integers(1, 120).map(float), st.none() | prices),
    st.tuples(st.just("walk"), order_sides, st.integers(1, 120).map(float), st.none() | brokers),
    st.tuples(st.just("clear_broker"), brokers),
    st.tuples(st.just("update"), sides, brokers, bad_numbers, sizes),
    st.tuples(st.just("update"), sides, brokers, prices, bad_numbers),
    st.tuples(st.just("update"), st.sampled_from(["buy", "BID", "", None]), brokers, prices, sizes),
)


def check_uncrossed(book):
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is None or ask is None or bid < ask, f"book crossed or locked: {bid} >= {ask}"


def check_fills_follow_price_time(fills, depth_before, order):
    """Fills take the front of the price-time queue: whole entries, then at most one partial one."""
    queue = [(level.price, e) for level in depth_before for e in level.entries]
    assert len(fills) <= len(queue)
    for i, fill in enumerate(fills):
        price, entry = queue[i]
        assert (fill.broker, fill.price) == (entry.broker, price), "fill out of price-time priority"
        if order.limit is not None:
            assert fill.price <= order.limit if order.side == BUY else fill.price >= order.limit
        if i < len(fills) - 1:
            assert fill.size == entry.size, "an older entry was only partly filled before a newer one"
        else:
            assert 0 < fill.size <= entry.size


def run(book, ref, op):
    name, *args = op
    if name == "match":
        side, size, limit = args
        order = Order(side, size, limit)
        depth_before = book.depth(ASK if side == BUY else BID)
        total_before = book.total_size(BID) + book.total_size(ASK)
        result = book.match(order)
        ref_fills, ref_remaining = ref.match(order)
        assert list(result.fills) == ref_fills
        assert result.remaining == ref_remaining
        assert result.filled + result.remaining == size
        assert result.filled == sum(f.size for f in result.fills)
        assert book.total_size(BID) + book.total_size(ASK) == total_before - result.filled, "quantity not conserved"
        if result.fills:
            notional = sum(f.price * f.size for f in result.fills)
            assert result.average_price == pytest.approx(notional / result.filled)
        else:
            assert result.average_price is None
        check_fills_follow_price_time(result.fills, depth_before, order)
        return
    if name == "walk":
        side, size, broker = args
        before = (book.depth(BID), book.depth(ASK))
        result = book.walk(side, size, broker)
        fills, remaining, used = ref.walk(side, size, broker)
        assert list(result.fills) == fills
        assert (result.shortfall, result.levels_used) == (remaining, used)
        assert result.filled == size - remaining
        assert (book.depth(BID), book.depth(ASK)) == before, "walk changed the book"
        return
    if name == "clear_broker":
        assert book.clear_broker(*args) == ref.clear_broker(*args)
        return
    before = (book.depth(BID), book.depth(ASK))
    try:
        getattr(ref, name)(*args)
    except Exception as expected:
        with pytest.raises(type(expected)):
            getattr(book, name)(*args)
        assert (book.depth(BID), book.depth(ASK)) == before, "a rejected update changed the book"
    else:
        getattr(book, name)(*args)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("policy", ["reject", "prune"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(ops, max_size=60))
def test_it_behaves_like_the_brute_force_reference_after_any_sequence(impl, policy, operations):
    book = impl("TEST", cross_policy=policy)
    ref = Reference(cross_policy=policy)
    for op in operations:
        run(book, ref, op)
        check_uncrossed(book)
        assert book.depth(BID) == ref.depth(BID)
        assert book.depth(ASK) == ref.depth(ASK)
        assert (book.best_bid(), book.best_ask()) == (ref.best(BID), ref.best(ASK))
        assert book.total_size(BID) == ref.total(BID)
        assert book.total_size(ASK) == ref.total(ASK)
        assert len(book) == len(ref.entries)
    assert book.counters() == ref.counts


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    updates=st.lists(st.tuples(sides, brokers, prices, sizes), max_size=40),
    side=order_sides,
    size=st.integers(1, 200).map(float),
    limit=st.none() | prices,
)
def test_a_match_fills_exactly_what_a_walk_predicted(impl, updates, side, size, limit: Any):
    book = impl("TEST")
    for u in updates:
        with contextlib.suppress(CrossedBookError):
            book.update(*u)
    walk = book.walk(side, size)
    result = book.match(Order(side, size))
    assert result.fills == walk.fills
    assert (result.filled, result.remaining, result.average_price) == (walk.filled, walk.shortfall, walk.average_price)
    check_uncrossed(book)
