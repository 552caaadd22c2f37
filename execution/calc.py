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
from orderbook import ASK, BID, BUY, OrderBook, OrderBookError, OrderSide, WalkResult

Side = Literal["buy", "sell"]
Status = Literal["ok", "stale", "no_depth", "bad_depth"]

STANDARD_LOT = 100_000.0  # FX: units of the base currency
# Contract size of one lot outside FX. Metals by symbol (gold 100 oz, silver 5,000 oz, platinum and
# palladium 100 oz); one index unit; one coin.
METAL_LOTS = {"XAU": 100.0, "XAG": 5_000.0, "XPT": 100.0, "XPD": 100.0}
ASSET_CLASS_LOTS = {"metal": 100.0, "index": 1.0, "crypto": 1.0}
MAX_LOTS = 10_000.0  # anything bigger is a typo, not an order (10,000 FX lots = 1 billion units)

# Index CFDs have no currency pair in their symbol: the currency they are quoted in.
INDEX_CURRENCY = {
    "US500": "USD",
    "US30": "USD",
    "US100": "USD",
    "NAS100": "USD",
    "GER40": "EUR",
    "FRA40": "EUR",
    "EU50": "EUR",
    "UK100": "GBP",
    "JPN225": "JPY",
    "AUS200": "AUD",
    "HK50": "HKD",
}
ACCOUNT_CURRENCY = "USD"
SIZE_EPSILON = 1e-9  # a shortfall below this (in units) is float noise, not missing depth

Levels = tuple[tuple[float, float], ...]


def contract_size(*, symbol: str, asset_class: str) -> float:
    """Units in one standard lot of the instrument."""
    if asset_class.startswith("fx"):
        return STANDARD_LOT
    if asset_class == "metal":
        return METAL_LOTS.get(symbol[:3], ASSET_CLASS_LOTS["metal"])
    return ASSET_CLASS_LOTS.get(asset_class, 1.0)


def quote_currency(*, symbol: str, asset_class: str) -> str | None:
    """The currency prices are quoted in (EURUSD: USD, USDJPY: JPY, GER40: EUR); None if unknown."""
    if asset_class == "index":
        return INDEX_CURRENCY.get(symbol)
    if len(symbol) == 6 and symbol.isalpha():
        return symbol[3:]
    return None


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
    """One broker's depth as read from Redis: levels, or why there are none."""

    broker: str
    name: str
    raw: bytes | str | None  # None: no depth in Redis


@dataclass
class Cost:
    average_price: float | None
    filled: float
    shortfall: float
    levels_used: int
    cost_pips: float | None = None  # per unit filled, against the consensus mid; positive = you pay
    cost_quote: float | None = None  # in the quote currency, for the size filled
    cost_usd: float | None = None

    def as_dict(self) -> dict[str, Any]:
        # Rounded well below anything a trader sees, to drop float noise (0.9999999999998899 pips).
        return {
            "average_price": _round(self.average_price, 10),
            "filled": self.filled,
            "shortfall": self.shortfall,
            "levels_used": self.levels_used,
            "cost_pips": _round(self.cost_pips, 6),
            "cost_quote": _round(self.cost_quote, 6),
            "cost_usd": _round(self.cost_usd, 6),
        }


@dataclass
class BrokerResult:
    broker: str
    name: str
    status: Status
    age_s: float | None = None
    mid: float | None = None
    cost: Cost | None = None
    best: bool = False
    split_size: float = 0.0  # what the split order would take from this broker

    @property
    def fills_in_full(self) -> bool:
        return self.cost is not None and self.cost.average_price is not None and self.cost.shortfall <= SIZE_EPSILON

    def as_dict(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "name": self.name,
            "status": self.status,
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
        if best.cost.cost_usd is None or self.split.cost_usd is None:
            return None
        return best.cost.cost_usd - self.split.cost_usd

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


def _cost(walk: WalkResult, *, side: Side, mid: float | None, pip: float, usd_per_quote: float | None) -> Cost:
    cost = Cost(walk.average_price, walk.filled, walk.shortfall, walk.levels_used)
    if walk.average_price is None or mid is None:
        return cost
    per_unit = walk.average_price - mid if side == BUY else mid - walk.average_price
    cost.cost_pips = per_unit / pip
    cost.cost_quote = per_unit * walk.filled
    if usd_per_quote is not None:
        cost.cost_usd = cost.cost_quote * usd_per_quote
    return cost


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
) -> Estimate:
    """The estimate for one order from every broker's depth.

    ``other_mids`` are current mids of other instruments (symbol -> mid) for the USD conversion;
    the instrument's own consensus mid is used when it is itself the conversion pair (USDJPY).
    """
    order_side: OrderSide = BUY if side == BUY else "sell"
    take_side = ASK if side == BUY else BID
    results: list[BrokerResult] = []
    books: dict[str, Any] = {}
    split_book = OrderBook(instrument)
    ages: list[float] = []
    for depth in depths:
        result = BrokerResult(broker=depth.broker, name=depth.name, status="no_depth")
        results.append(result)
        if depth.raw is None:
            continue
        try:
            bids, asks, ts = depth_parse(depth.raw)
            book = OrderBook(instrument)
            for price, qty in bids:
                book.update(BID, depth.broker, price, qty)
            for price, qty in asks:
                book.update(ASK, depth.broker, price, qty)
        except (ValueError, OrderBookError):  # OrderBookError is a ValueError too; listed for the reader
            result.status = "bad_depth"
            continue
        age = (now_us - ts) / 1e6
        result.age_s = max(0.0, age)
        # A timestamp from the future is as untrustworthy as an old one.
        if age > stale_after_s or age < -stale_after_s:
            result.status = "stale"
            continue
        result.status = "ok"
        ages.append(result.age_s)
        books[depth.broker] = book
        bid, ask = book.broker_bbo(depth.broker)
        if bid is not None and ask is not None:
            result.mid = (bid + ask) / 2.0
        for price, qty in bids if take_side == BID else asks:
            split_book.update(take_side, depth.broker, price, qty)

    mids = [r.mid for r in results if r.mid is not None]
    # The same consensus as OrderBook.consensus_mid: the median of the brokers' own mids, computed
    # per broker because brokers' quotes may cross each other and one consolidated book would not hold them.
    consensus = consensus_mid(mids)
    rate_mids = dict(other_mids)
    if consensus is not None:
        rate_mids[instrument] = consensus
    usd_rate, conversion = usd_per_unit(currency=quote_ccy, mids=rate_mids)

    for r in results:
        if r.status == "ok":
            r.cost = _cost(
                books[r.broker].walk(order_side, size), side=side, mid=consensus, pip=pip_size, usd_per_quote=usd_rate
            )

    full = [r for r in results if r.fills_in_full]
    best_broker: str | None = None
    if full:
        sign = 1.0 if side == BUY else -1.0
        best_price = min(sign * (r.cost.average_price or 0.0) for r in full if r.cost is not None)
        for r in full:
            if r.cost is not None and sign * (r.cost.average_price or 0.0) == best_price:
                r.best = True
                best_broker = best_broker or r.broker

    split: Cost | None = None
    notes: list[str] = []
    if books:
        walk = split_book.walk(order_side, size)
        split = _cost(walk, side=side, mid=consensus, pip=pip_size, usd_per_quote=usd_rate)
        taken: dict[str, float] = {}
        for fill in walk.fills:
            taken[fill.broker] = taken.get(fill.broker, 0.0) + fill.size
        for r in results:
            r.split_size = taken.get(r.broker, 0.0)
        if split.shortfall > SIZE_EPSILON:
            notes.append("Even split across all brokers the visible depth does not fill the whole order.")
    else:
        notes.append("No broker has fresh depth for this instrument right now.")
    if books and not full:
        notes.append("No single broker has enough depth to fill the whole order.")
    if consensus is None and books:
        notes.append("No broker quotes both sides, so there is no consensus mid to measure the cost against.")

    order = {"ok": 0, "stale": 1, "bad_depth": 2, "no_depth": 3}

    def rank(r: BrokerResult) -> tuple[int, int, int, float, str]:
        price = r.cost.average_price if r.cost is not None else None
        signed = 0.0 if price is None else (price if side == BUY else -price)
        return (order[r.status], 0 if r.fills_in_full else 1, price is None, signed, r.name)

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
