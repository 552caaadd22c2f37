"""Pure core of the best-execution calculator (no Django): parse depth, walk it, price the cost.

Sizes are in units of the instrument's base: currency units for FX, troy ounces for metals, index
units for index CFDs (one unit moves one unit of quote currency per point), coins for crypto. The
feeds quote depth in the same units (see simulator/instruments.py).

Per account the order is walked through that account's own depth (its own book, so one broker's
off-market quote can never block another's). The split takes from one account per broker, chosen with
the split, in whole lot steps of each account: the exact cheapest allocation (execution/split.py), so
where the best single account fills in full the split can never cost more.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from common.ticks import consensus_mid
from execution.split import Offer, split_solve

# One definition of lots and quote currencies for the pages and best execution.
from marketdata.costs import ACCOUNT_CURRENCY as ACCOUNT_CURRENCY
from marketdata.costs import STANDARD_LOT as STANDARD_LOT
from marketdata.costs import contract_size as contract_size
from marketdata.costs import quote_currency as quote_currency
from orderbook import ASK, BID, BUY, BookSide, OrderBook, OrderBookError, OrderSide, WalkResult

Side = Literal["buy", "sell"]
Status = Literal["ok", "stale", "no_depth", "bad_depth"]

MAX_LOTS = 10_000.0  # anything bigger is a typo, not an order (10,000 FX lots = 1 billion units)
# An account takes whole numbers of its lot step at or above its minimum order (AccountType.lot_step and
# min_lots); these are the model's defaults, for depth that names no account.
DEFAULT_LOT_STEP = 0.01
DEFAULT_MIN_LOTS = 0.01
SIZE_EPSILON = 1e-9  # a shortfall below this (in units) is float noise, not missing depth

PENALTY_RULE = (
    "The unfilled part of a partial fill is priced as if it filled at the worst price the account's fill reached "
    "plus the account's current spread (best ask minus best bid) once more, with the account's commission on it "
    "(penalty_usd). Partial fills rank after every full fill, by all-in cost including that penalty; an account "
    "that can fill nothing of the order ranks after them."
)
LOT_RULE = (
    "Each account takes only whole numbers of its lot step, at or above its minimum order (both in lots, "
    "per account); an account fills the largest such size its depth allows and the rest counts as unfilled."
)

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
    moved by the account's mark-up over the feed account, the account's commission and its order sizes."""

    broker: str
    name: str
    raw: bytes | str | None  # None: no depth in Redis
    account: str = ""
    markup_price: float = 0.0  # added to every ask, taken from every bid: half the mark-up difference
    commission_per_lot: float = 0.0  # USD, round turn; an order pays half (one side)
    own_feed: bool = False  # raw is this account's own feed (not moved); else the broker's feed account's
    lot_step: float = DEFAULT_LOT_STEP  # lots
    min_lots: float = DEFAULT_MIN_LOTS  # lots


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
    # The unfilled part priced by PENALTY_RULE (0 for a full fill; None when the rule cannot be applied).
    penalty_price: float | None = None
    penalty_quote: float | None = None
    penalty_usd: float | None = None

    @property
    def all_in_usd(self) -> float | None:
        return None if self.cost_usd is None else self.cost_usd + self.commission_usd

    @property
    def all_in_with_penalty_usd(self) -> float | None:
        if self.all_in_usd is None or self.penalty_usd is None:
            return None
        return self.all_in_usd + self.penalty_usd

    @property
    def all_in_per_unit(self) -> float | None:
        """Spread plus commission per unit filled, in the quote currency: what ranks full fills."""
        if self.cost_quote is None or self.commission_quote is None or self.filled <= 0:
            return None
        return (self.cost_quote + self.commission_quote) / self.filled

    @property
    def with_penalty_per_unit(self) -> float | None:
        """All-in plus the penalty per unit ordered, in the quote currency: what ranks partial fills."""
        ordered = self.filled + self.shortfall
        if self.cost_quote is None or self.commission_quote is None or self.penalty_quote is None or ordered <= 0:
            return None
        return (self.cost_quote + self.commission_quote + self.penalty_quote) / ordered

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
            "penalty_price": _round(self.penalty_price, 10),
            "penalty_usd": _round(self.penalty_usd, 6),
            "all_in_with_penalty_usd": _round(self.all_in_with_penalty_usd, 6),
        }


UnfilledReason = Literal["depth", "lot_step", "minimum"]


@dataclass
class BrokerResult:
    broker: str
    name: str
    status: Status
    account: str = ""
    own_feed: bool = False  # priced from the account's own feed, not derived from the feed account's by mark-up
    lot_step: float = DEFAULT_LOT_STEP
    min_lots: float = DEFAULT_MIN_LOTS
    age_s: float | None = None
    mid: float | None = None
    cost: Cost | None = None
    unfilled_reason: UnfilledReason | None = None
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
    def fills_nothing(self) -> bool:
        """Fresh depth, but none of the order can be placed here (below the minimum, or too little depth)."""
        return self.status == "ok" and self.cost is not None and self.cost.average_price is None

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
            "unfilled_reason": self.unfilled_reason,
            "lot_step_lots": self.lot_step,
            "min_lots": self.min_lots,
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
    penalty_rule: str = PENALTY_RULE
    lot_rule: str = LOT_RULE

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
            "penalty_rule": self.penalty_rule,
            "lot_rule": self.lot_rule,
            "notes": self.notes,
        }


def _tolerance(units: float) -> float:
    """Float noise on a size in units: absolute for small sizes, relative for a billion units."""
    return max(SIZE_EPSILON, abs(units) * 1e-12)


def _whole(x: float) -> int:
    """floor(x), forgiving float noise just under a whole number (2.9999999999999996 steps are 3)."""
    return math.floor(x + max(1e-9, abs(x) * 1e-12))


@dataclass(frozen=True)
class _Grid:
    """The sizes one account accepts, in units: whole numbers of ``step`` from ``min_steps`` of them."""

    step: float
    min_steps: int
    lots: float = DEFAULT_LOT_STEP  # the step in lots
    lot_units: float = STANDARD_LOT

    @staticmethod
    def of(depth: BrokerDepth, *, lot_units: float) -> _Grid:
        step = depth.lot_step if math.isfinite(depth.lot_step) and depth.lot_step > 0 else DEFAULT_LOT_STEP
        minimum = depth.min_lots if math.isfinite(depth.min_lots) and depth.min_lots > 0 else DEFAULT_MIN_LOTS
        return _Grid(
            step=step * lot_units,
            min_steps=max(1, math.ceil(minimum / step - 1e-9)),
            lots=step,
            lot_units=lot_units,
        )

    def steps_in(self, units: float) -> int:
        """The most whole steps within ``units`` (0 when that is below the minimum)."""
        n = _whole(units / self.step)
        return n if n >= self.min_steps else 0

    def units(self, steps: int) -> float:
        return round(steps * self.step, 8)


def _ticks_per_lot(grids: Iterable[_Grid]) -> int:
    """The fewest ticks per lot (a power of ten up to a million) in which every step is a whole number: 1,000 for
    the model's steps (three decimals of a lot)."""
    steps = [g.lots for g in grids]
    for digits in range(7):
        per_lot: int = 10**digits
        if all(abs(s * per_lot - round(s * per_lot)) <= 1e-9 * max(1.0, s * per_lot) for s in steps):
            return per_lot
    return 10**6


@dataclass
class _Priced:
    """What the calculator knows of one fresh account: its book, the levels its orders take, its costs."""

    book: Any
    levels: Levels  # the side the order takes, best first
    commission_usd: float  # per unit, one side
    grid: _Grid


def _signed(side: Side) -> float:
    return 1.0 if side == BUY else -1.0


def _walk(book: Any, side: OrderSide, units: float) -> WalkResult:
    """The book walked for ``units``; nothing walked for 0 (an account that can take none of the order)."""
    if units <= 0:
        return WalkResult(None, 0.0, 0.0, 0, ())
    walked: WalkResult = book.walk(side, units)
    return walked


def _penalty(
    cost: Cost,
    *,
    worst: float | None,
    spread: float | None,
    side: Side,
    mid: float | None,
    usd_per_quote: float | None,
    commission_per_unit_usd: float,
) -> None:
    """Price the unfilled part by PENALTY_RULE: at the worst price reached plus the account's spread once more,
    with the account's commission. A full fill has no penalty (0); without a fill or a spread there is no rule
    to apply (None)."""
    if cost.shortfall <= 0:
        cost.penalty_quote, cost.penalty_usd = 0.0, 0.0
        return
    if worst is None or spread is None:
        return
    cost.penalty_price = worst + _signed(side) * spread
    if mid is None or usd_per_quote is None:
        return
    spread_quote = _signed(side) * (cost.penalty_price - mid) * cost.shortfall
    commission_usd = commission_per_unit_usd * cost.shortfall
    cost.penalty_quote = spread_quote + commission_usd / usd_per_quote
    cost.penalty_usd = spread_quote * usd_per_quote + commission_usd


def _cost(
    walk: WalkResult,
    *,
    size: float,
    side: Side,
    mid: float | None,
    pip: float,
    usd_per_quote: float | None,
    commission_per_unit_usd: float = 0.0,
) -> Cost:
    """The fill of a walk as the cost of an order of ``size`` (the rest of it unfilled)."""
    shortfall = size - walk.filled
    cost = Cost(walk.average_price, walk.filled, shortfall if shortfall > _tolerance(size) else 0.0, walk.levels_used)
    cost.commission_usd = commission_per_unit_usd * walk.filled
    if usd_per_quote is not None:
        cost.commission_quote = cost.commission_usd / usd_per_quote
    if walk.average_price is None or mid is None:
        return cost
    per_unit = _signed(side) * (walk.average_price - mid)
    cost.cost_pips = per_unit / pip
    cost.cost_quote = per_unit * walk.filled
    if usd_per_quote is not None:
        cost.cost_usd = cost.cost_quote * usd_per_quote
    return cost


def _worst(walk: WalkResult, side: Side) -> float | None:
    prices = [f.price for f in walk.fills]
    if not prices:
        return None
    return max(prices) if side == BUY else min(prices)


def _spread(book: Any, broker: str) -> float | None:
    bid, ask = book.broker_bbo(broker)
    return None if bid is None or ask is None else ask - bid


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

    Per account: the largest size the account accepts (whole lot steps at or above its minimum) that its depth
    can fill, walked against the consensus mid, is the spread cost; one side of the round-turn commission is
    added for the size filled; the two make the all-in cost. Full fills rank first by all-in cost per unit;
    partial fills after them by all-in including the penalty for the unfilled part (PENALTY_RULE); accounts
    that fill nothing last. ``other_mids`` are current mids of other instruments for the USD conversion; the
    instrument's own consensus mid is used when it is itself the conversion pair (USDJPY).
    """
    order_side: OrderSide = BUY if side == BUY else "sell"
    take_side: BookSide = ASK if side == BUY else BID
    results: list[BrokerResult] = []
    priced: dict[int, _Priced] = {}  # index in results -> that account's book and terms
    parsed: dict[str, tuple[Levels, Levels, int] | None] = {}
    feed_mids: dict[str, float] = {}
    ages: list[float] = []
    for depth in depths:
        result = BrokerResult(
            broker=depth.broker,
            name=depth.name,
            status="no_depth",
            account=depth.account,
            own_feed=depth.own_feed,
            lot_step=depth.lot_step,
            min_lots=depth.min_lots,
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
        taken = sorted(bids if take_side == BID else asks, key=lambda level: -level[0] if side != BUY else level[0])
        priced[index] = _Priced(
            book=book,
            levels=tuple(taken),
            commission_usd=depth.commission_per_lot / 2.0 / lot_units,
            grid=_Grid.of(depth, lot_units=lot_units),
        )
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

    size_steps: dict[int, int] = {}
    for index, p in priced.items():
        r = results[index]
        whole = _walk(p.book, order_side, size)
        available = whole.filled
        size_steps[index] = p.grid.steps_in(size)
        target = p.grid.units(min(size_steps[index], p.grid.steps_in(available)))
        # Usually the whole order is on the account's grid and within its depth: that walk is the fill.
        walk = whole if abs(target - available) <= _tolerance(size) else _walk(p.book, order_side, target)
        r.cost = _cost(
            walk,
            size=size,
            side=side,
            mid=consensus,
            pip=pip_size,
            usd_per_quote=usd_rate,
            commission_per_unit_usd=p.commission_usd,
        )
        if r.cost.shortfall > 0:
            if size_steps[index] == 0:
                r.unfilled_reason = "minimum"
            elif available < size - _tolerance(size):
                r.unfilled_reason = "depth"
            else:
                r.unfilled_reason = "lot_step"
        _penalty(
            r.cost,
            worst=_worst(walk, side),
            spread=_spread(p.book, r.broker),
            side=side,
            mid=consensus,
            usd_per_quote=usd_rate,
            commission_per_unit_usd=p.commission_usd,
        )

    def rank_key(r: BrokerResult) -> tuple[int, float]:
        """(group, cost): full fills by all-in per unit, then partials by all-in with the penalty per unit
        ordered, then partials with no penalty to state, then accounts that fill nothing. Without a mid or a
        USD rate, the signed price (of the fill, and of the penalty for the unfilled part) orders the same way
        within an instrument."""
        c = r.cost
        if c is None or c.average_price is None:
            return 3, 0.0
        sign = _signed(side)
        if r.fills_in_full:
            per_unit = c.all_in_per_unit
            return 0, per_unit if per_unit is not None else sign * c.average_price
        if c.penalty_price is None:
            return 2, sign * c.average_price
        with_penalty = c.with_penalty_per_unit
        if with_penalty is not None:
            return 1, with_penalty
        return 1, sign * (c.average_price * c.filled + c.penalty_price * c.shortfall) / (c.filled + c.shortfall)

    full = [r for r in results if r.fills_in_full]
    best_broker: str | None = None
    if full:
        best_key = min(round(rank_key(r)[1], 12) for r in full)
        for r in full:
            if round(rank_key(r)[1], 12) == best_key:
                r.best = True
                best_broker = best_broker or r.broker

    split, notes = _split(
        results=results,
        priced=priced,
        order_side=order_side,
        size=size,
        side=side,
        consensus=consensus,
        pip_size=pip_size,
        usd_rate=usd_rate,
        rank_key=rank_key,
    )
    ok = [results[i] for i in priced]
    if ok and all(r.unfilled_reason == "minimum" for r in ok):
        notes.append("The order is below the minimum order of every account: none can take it.")
    elif ok and not full:
        if any(r.unfilled_reason == "depth" for r in ok):
            notes.append("No single broker account has enough depth to fill the whole order.")
        else:
            notes.append("No single broker account can take the whole order as it is (lot steps, minimum orders).")
    if any(r.unfilled_reason == "lot_step" for r in ok):
        notes.append(
            "Some accounts cannot take this size as it is: they take only a whole number of lot steps at or above "
            "their minimum order, so they fill the nearest smaller size and the rest counts as unfilled."
        )
    if any(r.unfilled_reason == "minimum" for r in ok) and not all(r.unfilled_reason == "minimum" for r in ok):
        notes.append("The order is below the minimum order of some accounts: they fill nothing and are ranked last.")
    if any(r.partial for r in results):
        notes.append(
            "A partial fill ranks after every full fill, by its all-in cost including the penalty for the unfilled "
            "part (penalty_rule says how it is priced)."
        )
    if consensus is None and priced:
        notes.append("No broker quotes both sides, so there is no consensus mid to measure the cost against.")
    notes.append(
        "Commission: each account's round-turn rate per lot, halved for this one-sided order, for the size filled."
    )

    order = {"ok": 0, "stale": 1, "bad_depth": 2, "no_depth": 3}

    def rank(r: BrokerResult) -> tuple[int, int, float, str, str]:
        group, key = rank_key(r)
        return order[r.status], group, key, r.name, r.account

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
    priced: dict[int, _Priced],
    order_side: OrderSide,
    size: float,
    side: Side,
    consensus: float | None,
    pip_size: float,
    usd_rate: float | None,
    rank_key: Callable[[BrokerResult], tuple[int, float]],
) -> tuple[Cost | None, list[str]]:
    """The order split across brokers, through whichever account of each broker makes it cheapest: every account
    of every broker with fresh depth is offered, and the split takes from one account per broker (a broker's
    accounts quote the same liquidity, so two of them would count its depth twice; execution/split.py, 6.). The
    split is exact for the cost model (execution/split.py proves it): of all allocations in whole lot steps of
    each account at or above its minimum order, at most one account per broker, it fills the most and, of those,
    costs the least (price plus commission), priced exactly on each account's own book. Each row's
    ``split_size`` says which account each leg uses. It never fills less than any account alone nor costs more
    than the best full fill (each account alone is one of the allocations; checked again below)."""
    notes: list[str] = []
    if not priced:
        notes.append("No broker has fresh depth for this instrument right now.")
        return None, notes
    # Every fresh account, best-ranked first: at equal fill and cost the split keeps a broker's best-ranked one.
    indices = sorted(priced, key=lambda i: (rank_key(results[i]), i))
    brokers = {b: n for n, b in enumerate(dict.fromkeys(results[i].broker for i in indices))}

    # The exact split over those accounts (execution/split.py says why it is the best there is), in ticks: the
    # largest fraction of a lot of which every step and minimum is a whole number.
    lot_units = priced[indices[0]].grid.lot_units
    per_lot = _ticks_per_lot([priced[i].grid for i in indices])
    tick = lot_units / per_lot
    offers = []
    for index in indices:
        p = priced[index]
        commission_quote = p.commission_usd / usd_rate if usd_rate else 0.0
        sign = _signed(side)
        offers.append(
            Offer(
                levels=[(sign * price + commission_quote, qty) for price, qty in p.levels],
                step=max(1, round(p.grid.lots * per_lot)),
                min_steps=p.grid.min_steps,
                tick=tick,
                group=brokers[results[index].broker],
            )
        )
    solved = split_solve(offers, size_ticks=_whole(size / tick))
    ticks = solved.ticks
    if not solved.exact:
        notes.append(
            f"This order can be split in so many ways (accounts with minimum orders, brokers with several accounts "
            f"worth weighing) that the split solved {solved.choices} of them rather than all: it may not be the "
            "cheapest there is."
        )

    def allocation_cost(allocation: dict[int, float]) -> tuple[Cost, dict[int, float]]:
        filled = notional = commission_usd = 0.0
        levels = 0
        worst: tuple[float, float | None, float] | None = None  # (signed worst price, spread, commission)
        taken: dict[int, float] = {}
        for index, units in allocation.items():
            part = _walk(priced[index].book, order_side, units)
            if part.average_price is None:
                continue
            taken[index] = round(part.filled, 8)
            filled += part.filled
            notional += part.average_price * part.filled
            levels += part.levels_used
            commission_usd += priced[index].commission_usd * part.filled
            price = _worst(part, side)
            if price is not None:
                spread = _spread(priced[index].book, results[index].broker)
                candidate = (_signed(side) * price, spread, priced[index].commission_usd)
                # The worst price reached; at a tie, the wider spread (the rule errs on the dear side).
                if worst is None or (candidate[0], candidate[1] or 0.0) > (worst[0], worst[1] or 0.0):
                    worst = candidate
        walk = WalkResult(notional / filled if filled > 0 else None, filled, 0.0, levels, ())
        cost = _cost(walk, size=size, side=side, mid=consensus, pip=pip_size, usd_per_quote=usd_rate)
        cost.commission_usd = commission_usd
        cost.commission_quote = commission_usd / usd_rate if usd_rate is not None else None
        _penalty(
            cost,
            worst=None if worst is None else _signed(side) * worst[0],
            spread=None if worst is None else worst[1],
            side=side,
            mid=consensus,
            usd_per_quote=usd_rate,
            commission_per_unit_usd=0.0 if worst is None else worst[2],
        )
        return cost, taken

    def better(a: Cost, b: Cost) -> bool:
        """a fills more than b, or as much for less."""
        if abs(a.filled - b.filled) > _tolerance(size):
            return a.filled > b.filled
        key_a, key_b = a.all_in_per_unit, b.all_in_per_unit
        if key_a is not None and key_b is not None:
            return key_a < key_b - 1e-15
        if a.average_price is None or b.average_price is None:
            return False
        return _signed(side) * a.average_price < _signed(side) * b.average_price

    split, taken = allocation_cost({i: round(t * tick, 8) for i, t in zip(indices, ticks, strict=True) if t > 0})
    for index in priced:
        alone = results[index].cost  # one account alone: its own row, priced by the same rules
        if alone is not None and alone.average_price is not None and better(alone, split):
            split, taken = alone, {index: round(alone.filled, 8)}
    for index, units in taken.items():
        results[index].split_size = units
    if split.shortfall > 0:
        # The most any one account of each broker shows (a broker's accounts share its depth).
        shown: dict[str, float] = {}
        for i in priced:
            b = results[i].broker
            shown[b] = max(shown.get(b, 0.0), priced[i].book.walk(order_side, size).filled)
        visible = sum(shown.values())
        if visible < size - _tolerance(size):
            notes.append("Even split across all brokers the visible depth does not fill the whole order.")
        else:
            notes.append(
                f"Each account takes only whole lot steps at or above its minimum order, so the split leaves "
                f"{split.shortfall:,.2f} units unfilled."
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


@dataclass(frozen=True)
class SizeAdvice:
    """Accounts that cannot take an order's size as it is, for one lot rule, and the nearest sizes they take."""

    lot_step: float  # lots
    min_lots: float  # lots
    accounts: tuple[str, ...]  # "Broker (Account)"
    below: float | None  # the nearest size under the order's that they take, in lots (None: below the minimum)
    above: float  # the nearest size over it, in lots
    reason: UnfilledReason


def size_advice(*, estimate: Estimate, lot_units: float) -> list[SizeAdvice]:
    """Per lot rule, the accounts with fresh depth that cannot take the order's size as it is (not a whole
    number of their lot steps, or below their minimum), with the nearest sizes that they can: what the form says
    beside the size field before a trader reads a table of partial fills."""
    lots = estimate.size / lot_units
    groups: dict[tuple[float, float], list[str]] = {}
    reasons: dict[tuple[float, float], UnfilledReason] = {}
    for r in estimate.brokers:
        if r.status != "ok" or r.unfilled_reason not in ("lot_step", "minimum"):
            continue
        key = (r.lot_step, r.min_lots)
        groups.setdefault(key, []).append(f"{r.name} ({r.account})" if r.account else r.name)
        reasons[key] = r.unfilled_reason
    out = []
    for (step, minimum), names in sorted(groups.items()):
        steps = _whole(lots / step)
        below = round(steps * step, 6) if steps > 0 and steps * step >= minimum - 1e-9 else None
        above = round(max(minimum, math.ceil(lots / step - 1e-9) * step), 6)
        out.append(SizeAdvice(step, minimum, tuple(names), below, above, reasons[(step, minimum)]))
    return out
