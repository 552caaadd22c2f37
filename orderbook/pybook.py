"""Pure Python order book: the reference implementation and the fallback of the compiled core.

Layout, chosen for the hot path (update, then read the best price):

* per side a dict ``price -> level`` and a sorted list of keys with the best price LAST, so the
  best price is ``keys[-1]`` and inserts near the top of the book move few elements. Bids are
  keyed by price, asks by ``-price``, so both lists are ascending.
* a level is a dict ``broker -> [size, seq]``; dicts keep insertion order, which is time
  priority: a broker whose size grows is re-inserted at the back with a new sequence number.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from typing import TYPE_CHECKING, Any

from common.ticks import consensus_mid
from orderbook.types import (
    ASK,
    BID,
    BUY,
    COUNTER_NAMES,
    SELL,
    BookSide,
    CrossedBookError,
    CrossPolicy,
    DuplicateLevelError,
    Entry,
    Fill,
    InvalidInputError,
    Level,
    MatchResult,
    Order,
    OrderSide,
    UnknownLevelError,
    WalkResult,
)

_INF = math.inf
_LevelMap = dict[float, dict[str, list[Any]]]


def _bad(what: str, value: object) -> InvalidInputError:
    return InvalidInputError(f"invalid {what}: {value!r}")


class BookLogic:
    """All the book's behaviour over the layout above, shared by both implementations.

    :class:`PyOrderBook` keeps the state in slots; the compiled core keeps the very same objects
    in a C struct and replaces only the hot methods (update, best reads), so everything else is
    one code path.
    """

    if not TYPE_CHECKING:  # mypy can't see that subclasses provide these as slots or C members
        __slots__ = ()

    _bk: list[float]
    _ak: list[float]
    _bl: _LevelMap
    _al: _LevelMap
    _seq: int
    _counts: dict[str, int]
    cross_policy: CrossPolicy
    instrument: str

    def __init__(self, instrument: str = "", *, cross_policy: CrossPolicy = "reject") -> None:
        if cross_policy not in ("reject", "prune"):
            raise InvalidInputError(f"invalid cross_policy: {cross_policy!r} (expected 'reject' or 'prune')")
        self.instrument = instrument
        self.cross_policy = cross_policy
        self._bk = []  # bid prices, ascending: best last
        self._ak = []  # negated ask prices, ascending: best last
        self._bl = {}
        self._al = {}
        self._seq = 0
        self._counts = dict.fromkeys(COUNTER_NAMES, 0)

    # ------------------------------------------------------------------ validation
    def _reject(self, counter: str, error: Exception) -> Exception:
        self._counts[counter] += 1
        return error

    def _check(self, side: object, broker: object, price: object, size: object, positive: bool) -> float:
        """Validates the arguments of an update; returns the price as a float."""
        if side is not BID and side is not ASK and side != BID and side != ASK:
            raise self._reject("rejected_invalid", _bad("side (expected 'bid' or 'ask')", side))
        if type(broker) is not str or not broker:
            raise self._reject("rejected_invalid", _bad("broker (expected a non-empty str)", broker))
        if type(price) is not float:
            if type(price) is not int:
                raise self._reject("rejected_invalid", _bad("price", price))
            price = float(price)
        if not 0.0 < price < _INF:  # also false for NaN
            raise self._reject("rejected_invalid", _bad("price (must be finite and > 0)", price))
        if size is not None:
            if type(size) is not float and type(size) is not int:
                raise self._reject("rejected_invalid", _bad("size", size))
            if not 0.0 <= size < _INF or (positive and size == 0.0):  # also true for NaN
                rule = "finite and > 0" if positive else "finite and >= 0"
                raise self._reject("rejected_invalid", _bad(f"size (must be {rule})", size))
        return price

    # ------------------------------------------------------------------ updates
    def update(self, side: BookSide, broker: str, price: float, size: float) -> None:
        """Sets the broker's size at the price: adds the level, changes it, or deletes it when size is 0."""
        if side == BID:
            levels = self._bl
        elif side == ASK:
            levels = self._al
        else:
            levels = None
        if (
            levels is not None
            and type(price) is float
            and 0.0 < price < _INF
            and type(size) is float
            and 0.0 < size < _INF
            and type(broker) is str
            and broker
        ):
            level = levels.get(price)
            if level is not None:
                entry = level.get(broker)
                if entry is not None:
                    if size <= entry[0]:  # a smaller size keeps its place in the queue
                        entry[0] = size
                    else:
                        del level[broker]
                        self._seq += 1
                        level[broker] = [size, self._seq]
                    return
                self._seq += 1
                level[broker] = [size, self._seq]
                return
            self._insert(side, broker, price, size)
            return
        # slow path: deletes, ints and bad input
        price = self._check(side, broker, price, size, False)
        if size == 0:
            self.delete(side, broker, price)
        else:
            self.update(side, broker, price, float(size))

    def add(self, side: BookSide, broker: str, price: float, size: float) -> None:
        """Adds a new level for the broker; raises DuplicateLevelError if it already has one there."""
        price = self._check(side, broker, price, size, True)
        level = (self._bl if side == BID else self._al).get(price)
        if level is not None and broker in level:
            raise self._reject("rejected_duplicate", DuplicateLevelError(f"{broker} already has a {side} at {price}"))
        self.update(side, broker, price, float(size))

    def change(self, side: BookSide, broker: str, price: float, size: float) -> None:
        """Changes the size of an existing level; raises UnknownLevelError if the broker has none there."""
        price = self._check(side, broker, price, size, True)
        level = (self._bl if side == BID else self._al).get(price)
        if level is None or broker not in level:
            raise self._reject("rejected_unknown", UnknownLevelError(f"{broker} has no {side} at {price}"))
        self.update(side, broker, price, float(size))

    def delete(self, side: BookSide, broker: str, price: float) -> None:
        """Deletes the broker's level; raises UnknownLevelError if it has none there."""
        price = self._check(side, broker, price, None, False)
        levels, keys, key = (self._bl, self._bk, price) if side == BID else (self._al, self._ak, -price)
        level = levels.get(price)
        if level is None or broker not in level:
            raise self._reject("rejected_unknown", UnknownLevelError(f"{broker} has no {side} at {price}"))
        del level[broker]
        if not level:
            del levels[price]
            del keys[bisect_left(keys, key)]

    def _insert(self, side: str, broker: str, price: float, size: float) -> None:
        """Creates a new price level, first dealing with any level on the other side it would cross."""
        if side == BID:
            okeys, olevels, sign = self._ak, self._al, -1.0
            crossed = bool(okeys) and -okeys[-1] <= price
        else:
            okeys, olevels, sign = self._bk, self._bl, 1.0
            crossed = bool(okeys) and okeys[-1] >= price
        if crossed:
            self._uncross(broker, price, okeys, olevels, sign, side)
        self._seq += 1
        if side == BID:
            self._bl[price] = {broker: [size, self._seq]}
            insort(self._bk, price)
        else:
            self._al[price] = {broker: [size, self._seq]}
            insort(self._ak, -price)

    def _uncross(
        self, broker: str, price: float, okeys: list[float], olevels: _LevelMap, sign: float, side: str
    ) -> None:
        # Opposite levels at prices the new level crosses or locks, best first.
        n = 0
        for key in reversed(okeys):
            p = key * sign
            if (p > price) if side == BID else (p < price):
                break
            n += 1
        doomed = okeys[len(okeys) - n :]
        if self.cross_policy == "reject":
            for key in doomed:
                for other in olevels[key * sign]:
                    if other != broker:
                        raise self._reject(
                            "rejected_crossed",
                            CrossedBookError(f"{broker} {side} at {price} would cross {other}'s level at {key * sign}"),
                        )
        for key in doomed:
            self._counts["pruned"] += len(olevels.pop(key * sign))
        del okeys[len(okeys) - n :]

    def clear_broker(self, broker: str) -> int:
        """Removes all the broker's levels (e.g. its feed went down); returns how many."""
        removed = 0
        for levels, keys, sign in ((self._bl, self._bk, 1.0), (self._al, self._ak, -1.0)):
            for price in [p for p, level in levels.items() if broker in level]:
                level = levels[price]
                del level[broker]
                removed += 1
                if not level:
                    del levels[price]
                    del keys[bisect_left(keys, price * sign)]
        return removed

    # ------------------------------------------------------------------ reads
    def best_bid(self) -> float | None:
        k = self._bk
        return k[-1] if k else None

    def best_ask(self) -> float | None:
        k = self._ak
        return -k[-1] if k else None

    def best(self, side: BookSide) -> float | None:
        """Best price of a book side ('bid' or 'ask')."""
        if side == BID:
            return self._bk[-1] if self._bk else None
        if side == ASK:
            return -self._ak[-1] if self._ak else None
        raise self._reject("rejected_invalid", _bad("side (expected 'bid' or 'ask')", side))

    def bbo(self) -> tuple[float | None, float, float | None, float]:
        """(best bid, its total size, best ask, its total size); sizes are 0.0 on an empty side."""
        bid = self.best_bid()
        ask = self.best_ask()
        bid_size = math.fsum(e[0] for e in self._bl[bid].values()) if bid is not None else 0.0
        ask_size = math.fsum(e[0] for e in self._al[ask].values()) if ask is not None else 0.0
        return bid, bid_size, ask, ask_size

    def mid(self) -> float | None:
        """Mid of the consolidated best bid and offer; None unless both sides have depth."""
        bid, ask = self.best_bid(), self.best_ask()
        return None if bid is None or ask is None else (bid + ask) / 2.0

    def broker_bbo(self, broker: str) -> tuple[float | None, float | None]:
        """The broker's own best bid and best ask in this book."""
        bid = next((k for k in reversed(self._bk) if broker in self._bl[k]), None)
        ask = next((-k for k in reversed(self._ak) if broker in self._al[-k]), None)
        return bid, ask

    def consensus_mid(self, exclude: str | None = None) -> float | None:
        """Median of the mids of the brokers quoting both sides (optionally leaving one broker out).

        The median is robust to one broker quoting off-market, unlike the consolidated mid.
        """
        mids = []
        for broker in self.brokers():
            if broker == exclude:
                continue
            bid, ask = self.broker_bbo(broker)
            if bid is not None and ask is not None:
                mids.append((bid + ask) / 2.0)
        return consensus_mid(mids)

    def brokers(self) -> list[str]:
        """Brokers with at least one level, sorted."""
        names: set[str] = set()
        for level in self._bl.values():
            names.update(level)
        for level in self._al.values():
            names.update(level)
        return sorted(names)

    def depth(self, side: BookSide, levels: int | None = None) -> list[Level]:
        """Price levels of a side, best first, each with its entries oldest first."""
        if side == BID:
            prices = [k for k in reversed(self._bk)]
            book = self._bl
        elif side == ASK:
            prices = [-k for k in reversed(self._ak)]
            book = self._al
        else:
            raise self._reject("rejected_invalid", _bad("side (expected 'bid' or 'ask')", side))
        if levels is not None:
            prices = prices[:levels]
        out = []
        for p in prices:
            entries = tuple(Entry(b, e[0], e[1]) for b, e in book[p].items())
            out.append(Level(p, math.fsum(e.size for e in entries), entries))
        return out

    def size_at(self, side: BookSide, broker: str, price: float) -> float:
        """The broker's size at the price (0.0 if it has no level there)."""
        level = (self._bl if side == BID else self._al).get(float(price))
        entry = level.get(broker) if level is not None else None
        return entry[0] if entry is not None else 0.0

    def total_size(self, side: BookSide) -> float:
        """Sum of all sizes on a side."""
        book = self._bl if side == BID else self._al
        return math.fsum(e[0] for level in book.values() for e in level.values())

    def __len__(self) -> int:
        """Number of entries (broker levels) in the book."""
        return sum(len(level) for level in self._bl.values()) + sum(len(level) for level in self._al.values())

    def counters(self) -> dict[str, int]:
        """Rejected inputs by reason, entries pruned to keep the book uncrossed, matches and fills."""
        return dict(self._counts)

    # ------------------------------------------------------------------ matching
    def _order_args(self, side: object, size: object, limit: object) -> tuple[bool, float, float]:
        """Validates an order; returns (is buy, size, worst acceptable price)."""
        if side == BUY:
            buy = True
        elif side == SELL:
            buy = False
        else:
            raise self._reject("rejected_invalid", _bad("order side (expected 'buy' or 'sell')", side))
        if size.__class__ is not float:
            if size.__class__ is not int:
                raise self._reject("rejected_invalid", _bad("order size (must be finite and > 0)", size))
            size = float(size)  # type: ignore[arg-type]
        if not 0.0 < size < _INF:  # type: ignore[operator]
            raise self._reject("rejected_invalid", _bad("order size (must be finite and > 0)", size))
        if limit is None:
            return buy, size, _INF if buy else -_INF  # type: ignore[return-value]
        if limit.__class__ is not float:
            if limit.__class__ is not int:
                raise self._reject("rejected_invalid", _bad("limit price (must be finite and > 0, or None)", limit))
            limit = float(limit)  # type: ignore[arg-type]
        if not 0.0 < limit < _INF:  # type: ignore[operator]
            raise self._reject("rejected_invalid", _bad("limit price (must be finite and > 0, or None)", limit))
        return buy, size, limit  # type: ignore[return-value]

    def match(self, order: Order) -> MatchResult:
        """Fills an immediate-or-cancel order against the book in price-time priority.

        A buy takes asks from the lowest price up (a sell takes bids from the highest down), and
        within a price level the oldest entry first; it stops at the limit price. Filled size is
        removed from the brokers' levels. What is not filled is returned as ``remaining``.
        """
        buy, size, bound = self._order_args(order.side, order.size, order.limit)
        remaining = size
        keys, levels, sign = (self._ak, self._al, -1.0) if buy else (self._bk, self._bl, 1.0)
        fills: list[Fill] = []
        notional = 0.0
        while remaining > 0.0 and keys:
            price = keys[-1] * sign
            if (price > bound) if buy else (price < bound):
                break
            level = levels[price]
            for broker, entry in list(level.items()):
                have = entry[0]
                if have <= remaining:
                    take = have
                    del level[broker]
                else:
                    take = remaining
                    entry[0] = have - take
                remaining -= take
                notional += take * price
                fills.append(Fill(broker, price, take))
                if remaining <= 0.0:
                    break
            if not level:
                del levels[price]
                keys.pop()
        self._counts["matches"] += 1
        self._counts["fills"] += len(fills)
        filled = size - remaining
        return MatchResult(tuple(fills), filled, remaining, notional / filled if fills else None)

    def walk(self, side: OrderSide, size: float, broker: str | None = None) -> WalkResult:
        """Expected fill of a market order of ``size`` without touching the book.

        ``side`` is the order's side ('buy' walks the asks). With ``broker`` only that broker's
        levels are walked (its expected average price); without, all brokers' levels in
        price-time priority (the best split across brokers).
        """
        buy, total, _ = self._order_args(side, size, None)
        remaining = total
        keys, levels, sign = (self._ak, self._al, -1.0) if buy else (self._bk, self._bl, 1.0)
        fills: list[Fill] = []
        notional = 0.0
        used = 0
        for key in reversed(keys):
            if remaining <= 0.0:
                break
            price = key * sign
            level = levels[price]
            touched = False
            for name, entry in level.items():
                if broker is not None and name != broker:
                    continue
                take = entry[0] if entry[0] <= remaining else remaining
                remaining -= take
                notional += take * price
                fills.append(Fill(name, price, take))
                touched = True
                if remaining <= 0.0:
                    break
            used += touched
        filled = total - remaining
        return WalkResult(notional / filled if fills else None, filled, remaining, used, tuple(fills))


class PyOrderBook(BookLogic):
    """Consolidated price-time priority book of one instrument over all brokers' depth (pure Python)."""

    __slots__ = ("_ak", "_al", "_bk", "_bl", "_counts", "_seq", "cross_policy", "instrument")
