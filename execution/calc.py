"""Pure core of the best-execution calculator (no Django): parse depth, walk it, price the cost.

Sizes are in units of the instrument's base: currency units for FX, troy ounces for metals, index
units for index CFDs (one unit moves one unit of quote currency per point), coins for crypto. The
feeds quote depth in the same units (see simulator/instruments.py).

Per broker the order is walked through that broker's own depth (its own book, so one broker's
off-market quote can never block another's). The split is the same order walked through the
consolidated book of every fresh broker's levels on the side the order takes (asks for a buy, bids
for a sell): with price priority it takes the cheapest levels first, so where the best single broker
fills in full the split can never cost more.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from common.ticks import consensus_mid

# One definition of lots and quote currencies for the pages and best execution.
from marketdata.costs import ACCOUNT_CURRENCY as ACCOUNT_CURRENCY
from marketdata.costs import STANDARD_LOT as STANDARD_LOT
from marketdata.costs import contract_size as contract_size
from marketdata.costs import quote_currency as quote_currency
from orderbook import ASK, BID, BUY, BookSide, OrderBook, OrderBookError, OrderSide, WalkResult

Side = Literal["buy", "sell"]
Status = Literal["ok", "stale", "no_depth", "bad_depth"]

MAX_LOTS = 10_000.0  # anything bigger is a typo, not an order (10,000 FX lots = 1 billion units)
# Brokers trade in steps of 0.01 lot (a micro lot), and 0.01 lot is the smallest order: a split never asks
# a broker for 5,618,040.52 units.
LOT_STEP = 0.01
MIN_LOTS = 0.01
SIZE_EPSILON = 1e-9  # a shortfall below this (in units) is float noise, not missing depth

Levels = tuple[tuple[float, float], ...]


def conversion_symbols(currency: str) -> tuple[str, str]:
    """The pairs that turn an amount in ``currency`` into USD: XXXUSD (multiply) or USDXXX (divide)."""
    return f"{currency}{ACCOUNT_CURRENCY}", f"{ACCOUNT_CURRENCY}{currency}"


def usd_per_unit(*, currency: str | None, mids: Mapping[str, float]) -> tuple[float | None, str]:
    """(USD per one unit of ``currency``, how it was found) from current mids by symbol."""
    if currency is None:
        return None, "quote currency unknown: no USD figure"
    if currency == ACCOUNT_CURRENCY:
        return 1.0, "quoted in USD"
    direct, inverse = conversion_symbols(currency)
    mid = mids.get(direct)
    if mid is not None and mid > 0:
        return mid, f"{currency} converted to USD at the {direct} mid {mid:g}"
    mid = mids.get(inverse)
    if mid is not None and mid > 0:
        return 1.0 / mid, f"{currency} converted to USD at 1 / the {inverse} mid {mid:g}"
    return None, f"no current {direct} or {inverse} price: no USD figure"


def depth_parse(raw: bytes | str) -> tuple[Levels, Levels, int]:
    """(bids, asks, ts µs) from the JSON an ingestor wrote; ValueError if it is not usable.

    Levels of size 0 are dropped and repeated prices merged, so the book gets one level per price.
    """
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("depth is not an object")
    ts = data.get("ts")
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise ValueError("depth has no integer ts")
    return _levels(data.get("bids")), _levels(data.get("asks")), ts


def _levels(raw: Any) -> Levels:
    if not isinstance(raw, list):
        raise ValueError("depth side is not a list")
    merged: dict[float, float] = {}
    for level in raw:
        if not isinstance(level, list) or len(level) != 2:
            raise ValueError("depth level is not [price, size]")
        price, size = level
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (price, size)):
            raise ValueError("depth price or size is not a number")
        price, size = float(price), float(size)
        if not (math.isfinite(price) and math.isfinite(size)) or price <= 0 or size < 0:
            raise ValueError("depth price or size out of range")
        if size > 0:
            merged[price] = merged.get(price, 0.0) + size
    return tuple(merged.items())


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class BrokerDepth:
    """One broker account's depth: the broker's feed levels as read from Redis (or why there are none),
    moved by the account's mark-up over the feed account, and the account's commission."""

    broker: str
    name: str
    raw: bytes | str | None  # None: no depth in Redis
    account: str = ""
    markup_price: float = 0.0  # added to every ask, taken from every bid: half the mark-up difference
    commission_per_lot: float = 0.0  # USD, round turn; an order pays half (one side)
    own_feed: bool = False  # raw is this account's own feed (not moved); else the broker's feed account's


@dataclass
class Cost:
    average_price: float | None
    filled: float
    shortfall: float
    levels_used: int
    cost_pips: float | None = None  # per unit filled, against the consensus mid; positive = you pay
    cost_quote: float | None = None  # in the quote currency, for the size filled
    cost_usd: float | None = None  # the spread cost (fill against mid) in USD
    commission_usd: float = 0.0  # one side of the round-turn commission, for the size filled
    commission_quote: float | None = None

    @property
    def all_in_usd(self) -> float | None:
        return None if self.cost_usd is None else self.cost_usd + self.commission_usd

    @property
    def all_in_per_unit(self) -> float | None:
        """Spread plus commission per unit filled, in the quote currency: what ranks accounts."""
        if self.cost_quote is None or self.commission_quote is None or self.filled <= 0:
            return None
        return (self.cost_quote + self.commission_quote) / self.filled

    def as_dict(self) -> dict[str, Any]:
        # Rounded well below anything a trader sees, to drop float noise (0.9999999999998899 pips).
        return {
            "average_price": _round(self.average_price, 10),
            "filled": self.filled,
            "shortfall": self.shortfall,
            "filled_units": self.filled,
            "unfilled_units": self.shortfall,
            "levels_used": self.levels_used,
            "cost_pips": _round(self.cost_pips, 6),
            "cost_quote": _round(self.cost_quote, 6),
            "cost_usd": _round(self.cost_usd, 6),
            "spread_cost_usd": _round(self.cost_usd, 6),
            "commission_usd": _round(self.commission_usd, 6),
            "all_in_usd": _round(self.all_in_usd, 6),
        }


@dataclass
class BrokerResult:
    broker: str
    name: str
    status: Status
    account: str = ""
    own_feed: bool = False  # priced from the account's own feed, not derived from the feed account's by mark-up
    age_s: float | None = None
    mid: float | None = None
    cost: Cost | None = None
    best: bool = False
    split_size: float = 0.0  # what the split order would take from this broker

    @property
    def fills_in_full(self) -> bool:
        return self.cost is not None and self.cost.average_price is not None and self.cost.shortfall <= SIZE_EPSILON

    @property
    def partial(self) -> bool:
        """Fills only part of the order: flagged and ranked after every full fill."""
        return self.cost is not None and self.cost.average_price is not None and not self.fills_in_full

    @property
    def filled_share(self) -> float | None:
        if self.cost is None or self.cost.average_price is None:
            return None
        total = self.cost.filled + self.cost.shortfall
        return self.cost.filled / total if total > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "name": self.name,
            "account": self.account,
            "priced_from": "account feed" if self.own_feed else "feed account + mark-up",
            "status": self.status,
            "partial": self.partial,
            "age_s": self.age_s,
            "best": self.best,
            "split_size": self.split_size,
            **(self.cost.as_dict() if self.cost is not None else Cost(None, 0.0, 0.0, 0).as_dict()),
        }


@dataclass
class Estimate:
    instrument: str
    side: Side
    size: float
    pip_size: float
    quote_currency: str | None
    usd_per_quote: float | None
    conversion: str
    consensus_mid: float | None
    brokers: list[BrokerResult]
    split: Cost | None
    best_broker: str | None
    max_age_s: float | None  # age of the oldest depth used
    stale_after_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def split_saving_usd(self) -> float | None:
        """What splitting saves against the best single broker (only when both fill in full)."""
        best = next((b for b in self.brokers if b.best), None)
        if best is None or best.cost is None or self.split is None or self.split.shortfall > SIZE_EPSILON:
            return None
        if best.cost.all_in_usd is None or self.split.all_in_usd is None:
            return None
        return best.cost.all_in_usd - self.split.all_in_usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "side": self.side,
            "size": self.size,
            "pip_size": self.pip_size,
            "quote_currency": self.quote_currency,
            "account_currency": ACCOUNT_CURRENCY,
            "usd_per_quote": self.usd_per_quote,
            "conversion": self.conversion,
            "consensus_mid": self.consensus_mid,
            "best_broker": self.best_broker,
            "brokers": [b.as_dict() for b in self.brokers],
            "split": None
            if self.split is None
            else {**self.split.as_dict(), "saving_usd_vs_best": _round(self.split_saving_usd, 6)},
            "max_age_s": self.max_age_s,
            "stale_after_s": self.stale_after_s,
            "notes": self.notes,
        }


def _cost(
    walk: WalkResult,
    *,
    side: Side,
    mid: float | None,
    pip: float,
    usd_per_quote: float | None,
    commission_per_unit_usd: float = 0.0,
) -> Cost:
    cost = Cost(walk.average_price, walk.filled, walk.shortfall, walk.levels_used)
    cost.commission_usd = commission_per_unit_usd * walk.filled
    if usd_per_quote is not None:
        cost.commission_quote = cost.commission_usd / usd_per_quote
    if walk.average_price is None or mid is None:
        return cost
    per_unit = walk.average_price - mid if side == BUY else mid - walk.average_price
    cost.cost_pips = per_unit / pip
    cost.cost_quote = per_unit * walk.filled
    if usd_per_quote is not None:
        cost.cost_usd = cost.cost_quote * usd_per_quote
    return cost


def _step_down(units: float, *, lot_units: float) -> float:
    """Units rounded down to the broker's lot step; 0 below the minimum order."""
    step = LOT_STEP * lot_units
    stepped = math.floor(units / step + SIZE_EPSILON) * step
    return round(stepped, 8) if stepped >= MIN_LOTS * lot_units - SIZE_EPSILON else 0.0


def estimate_compute(
    *,
    instrument: str,
    side: Side,
    size: float,
    pip_size: float,
    quote_ccy: str | None,
    depths: Iterable[BrokerDepth],
    other_mids: Mapping[str, float],
    now_us: int,
    stale_after_s: float,
    lot_units: float = STANDARD_LOT,
) -> Estimate:
    """The estimate for one order from every broker account's depth.

    Per account: the fill from walking the broker's depth (moved by the account's mark-up) against the
    consensus mid is the spread cost; one side of the round-turn commission is added for the size filled;
    the two make the all-in cost. Full fills rank first by all-in cost per unit; a partial fill is flagged
    and ranked after every full fill. ``other_mids`` are current mids of other instruments for the USD
    conversion; the instrument's own consensus mid is used when it is itself the conversion pair (USDJPY).
    """
    order_side: OrderSide = BUY if side == BUY else "sell"
    take_side: BookSide = ASK if side == BUY else BID
    sign = 1.0 if side == BUY else -1.0
    results: list[BrokerResult] = []
    books: dict[int, Any] = {}  # index in results -> that account's book
    levels_taken: dict[int, Levels] = {}
    commissions: dict[int, float] = {}  # USD per unit, one side
    parsed: dict[str, tuple[Levels, Levels, int] | None] = {}
    feed_mids: dict[str, float] = {}
    ages: list[float] = []
    for depth in depths:
        result = BrokerResult(
            broker=depth.broker, name=depth.name, status="no_depth", account=depth.account, own_feed=depth.own_feed
        )
        index = len(results)
        results.append(result)
        if depth.raw is None:
            continue
        feed_key = f"{depth.broker}:{depth.account}" if depth.own_feed else depth.broker
        if feed_key not in parsed:
            try:
                parsed[feed_key] = depth_parse(depth.raw)
            except ValueError:
                parsed[feed_key] = None
        got = parsed[feed_key]
        if got is None:
            result.status = "bad_depth"
            continue
        bids, asks, ts = got
        age = (now_us - ts) / 1e6
        result.age_s = max(0.0, age)
        # A timestamp from the future is as untrustworthy as an old one.
        if age > stale_after_s or age < -stale_after_s:
            result.status = "stale"
            continue
        shift = depth.markup_price
        bids = tuple((p - shift, q) for p, q in bids if p - shift > 0)
        asks = tuple((p + shift, q) for p, q in asks)
        try:
            book = OrderBook(instrument)
            for price, qty in bids:
                book.update(BID, depth.broker, price, qty)
            for price, qty in asks:
                book.update(ASK, depth.broker, price, qty)
        except (ValueError, OrderBookError):  # OrderBookError is a ValueError too; listed for the reader
            result.status = "bad_depth"
            continue
        result.status = "ok"
        ages.append(result.age_s)
        books[index] = book
        levels_taken[index] = bids if take_side == BID else asks
        commissions[index] = depth.commission_per_lot / 2.0 / lot_units
        bid, ask = book.broker_bbo(depth.broker)
        if bid is not None and ask is not None:
            result.mid = (bid + ask) / 2.0
            # The consensus is of the brokers' feed prices: one mid per broker, whatever its accounts.
            if not depth.own_feed:
                feed_mids.setdefault(depth.broker, result.mid)

    # The same consensus as OrderBook.consensus_mid: the median of the brokers' own mids, computed per
    # broker because brokers' quotes may cross each other and one consolidated book would not hold them.
    consensus = consensus_mid(list(feed_mids.values()))
    rate_mids = dict(other_mids)
    if consensus is not None:
        rate_mids[instrument] = consensus
    usd_rate, conversion = usd_per_unit(currency=quote_ccy, mids=rate_mids)

    for index, book in books.items():
        results[index].cost = _cost(
            book.walk(order_side, size),
            side=side,
            mid=consensus,
            pip=pip_size,
            usd_per_quote=usd_rate,
            commission_per_unit_usd=commissions[index],
        )

    def all_in_key(r: BrokerResult) -> float:
        per_unit = r.cost.all_in_per_unit if r.cost is not None else None
        if per_unit is not None:
            return per_unit
        # No mid or no USD rate: rank by the signed fill price, which orders the same way within an instrument.
        return sign * (r.cost.average_price or 0.0) if r.cost is not None else 0.0

    full = [r for r in results if r.fills_in_full]
    best_broker: str | None = None
    if full:
        best_key = min(round(all_in_key(r), 12) for r in full)
        for r in full:
            if round(all_in_key(r), 12) == best_key:
                r.best = True
                best_broker = best_broker or r.broker

    split, notes = _split(
        results=results,
        books=books,
        levels_taken=levels_taken,
        commissions=commissions,
        order_side=order_side,
        take_side=take_side,
        size=size,
        lot_units=lot_units,
        instrument=instrument,
        side=side,
        consensus=consensus,
        pip_size=pip_size,
        usd_rate=usd_rate,
        all_in_key=all_in_key,
    )
    if books and not full:
        notes.append("No single broker account has enough depth to fill the whole order.")
    if any(r.partial for r in results):
        notes.append(
            "A partial fill is priced for the part filled only, so it is ranked after every full fill, "
            "whatever its cost."
        )
    if consensus is None and books:
        notes.append("No broker quotes both sides, so there is no consensus mid to measure the cost against.")
    notes.append(
        "Commission: each account's round-turn rate per lot, halved for this one-sided order, for the size filled."
    )

    order = {"ok": 0, "stale": 1, "bad_depth": 2, "no_depth": 3}

    def rank(r: BrokerResult) -> tuple[int, int, int, float, str, str]:
        price = r.cost.average_price if r.cost is not None else None
        return (order[r.status], 0 if r.fills_in_full else 1, price is None, all_in_key(r), r.name, r.account)

    results.sort(key=rank)
    return Estimate(
        instrument=instrument,
        side=side,
        size=size,
        pip_size=pip_size,
        quote_currency=quote_ccy,
        usd_per_quote=usd_rate,
        conversion=conversion,
        consensus_mid=consensus,
        brokers=results,
        split=split,
        best_broker=best_broker,
        max_age_s=max(ages) if ages else None,
        stale_after_s=stale_after_s,
        notes=notes,
    )


def _split(
    *,
    results: list[BrokerResult],
    books: dict[int, Any],
    levels_taken: dict[int, Levels],
    commissions: dict[int, float],
    order_side: OrderSide,
    take_side: BookSide,
    size: float,
    lot_units: float,
    instrument: str,
    side: Side,
    consensus: float | None,
    pip_size: float,
    usd_rate: float | None,
    all_in_key: Any,
) -> tuple[Cost | None, list[str]]:
    """The order split across brokers: each broker through its cheapest account for this order, levels
    taken by price including commission, each broker's share rounded down to the lot step and dropped
    below the minimum order, then priced exactly on that account's own book."""
    notes: list[str] = []
    if not books:
        notes.append("No broker has fresh depth for this instrument right now.")
        return None, notes
    chosen: dict[str, int] = {}
    for index in books:
        r = results[index]
        if r.broker not in chosen or all_in_key(r) < all_in_key(results[chosen[r.broker]]):
            chosen[r.broker] = index
    per_unit_commission_quote = {
        i: (commissions[i] / usd_rate if usd_rate else 0.0) * (1.0 if side == BUY else -1.0) for i in chosen.values()
    }
    split_book = OrderBook(instrument)
    for broker, index in chosen.items():
        for price, qty in levels_taken[index]:
            effective = price + per_unit_commission_quote[index]
            if effective > 0:
                split_book.update(take_side, broker, effective, qty)
    walk = split_book.walk(order_side, size)
    taken: dict[str, float] = {}
    for fill in walk.fills:
        taken[fill.broker] = taken.get(fill.broker, 0.0) + fill.size
    stepped = {b: _step_down(units, lot_units=lot_units) for b, units in taken.items()}
    filled = 0.0
    notional = 0.0
    levels = 0
    commission_usd = 0.0
    for broker, units in stepped.items():
        if units <= 0:
            continue
        index = chosen[broker]
        part = books[index].walk(order_side, units)
        if part.average_price is None:
            continue
        filled += part.filled
        notional += part.average_price * part.filled
        levels += part.levels_used
        commission_usd += commissions[index] * part.filled
        results[index].split_size = part.filled
    average = notional / filled if filled > 0 else None
    split = Cost(average, filled, max(0.0, size - filled), levels)
    split.commission_usd = commission_usd
    if usd_rate is not None:
        split.commission_quote = commission_usd / usd_rate
    if average is not None and consensus is not None:
        per_unit = average - consensus if side == BUY else consensus - average
        split.cost_pips = per_unit / pip_size
        split.cost_quote = per_unit * filled
        if usd_rate is not None:
            split.cost_usd = split.cost_quote * usd_rate
    if split.shortfall > SIZE_EPSILON:
        if walk.shortfall > SIZE_EPSILON:
            notes.append("Even split across all brokers the visible depth does not fill the whole order.")
        else:
            notes.append(
                f"Each broker's share is rounded down to its lot step ({LOT_STEP:g} lot) and shares under "
                f"{MIN_LOTS:g} lot are left out, so the split leaves part of the order unfilled."
            )
    return split, notes


def latest_mid(raws: Iterable[bytes | str | None], *, now_us: int, stale_after_s: float) -> float | None:
    """Median mid of the fresh latest quotes (live JSON messages) of one instrument; None if none."""
    mids = []
    for raw in raws:
        if raw is None:
            continue
        try:
            data = json.loads(raw)
            bid, ask, ts = float(data["bid"]), float(data["ask"]), int(data["ts_ingest"])
        except (ValueError, KeyError, TypeError):
            continue
        if math.isfinite(bid) and math.isfinite(ask) and 0 < bid < ask and abs(now_us - ts) <= stale_after_s * 1e6:
            mids.append((bid + ask) / 2.0)
    return consensus_mid(mids)
