"""What every real venue adapter shares: symbol mapping, an exact price-level book, timestamps, rejects.

Pure: no Django, no network. The adapters (fix, oanda, binance, kraken, coinbase) build on this, and
so do the replay command and the benchmark, which run the very same parsers without a network.

Prices in books are held as integer ticks at the instrument's price precision (an exact decimal), so
levels never split on float noise (0.1 + 0.2) and checksums computed from the book are exact; they
become floats only in the normalised Quote.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from common.ticks import Depth, Quote
from simulator.instruments import SPECS

DEPTH_LEVELS = 10  # levels kept in the normalised depth (the validator accepts up to 20)


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One venue symbol -> one site instrument, with the instrument's price precision and pip size."""

    venue_symbol: str
    instrument: str
    price_precision: int
    pip_size: float
    size_precision: int = 8  # decimals of quantities (Kraken's checksum formats them)


@dataclass(frozen=True, slots=True)
class Reject:
    """A message the adapter could not turn into a quote: counted by reason, never raised."""

    reason: str
    detail: str = ""


Parsed = Quote | Reject


def canonical_guess(venue_symbol: str) -> str:
    """The usual venue spellings of an instrument to the site's symbol: EUR/USD, EUR_USD, BTC-USD,
    BTCUSDT, XBT/USD -> EURUSD, EURUSD, BTCUSD, BTCUSD, BTCUSD."""
    s = venue_symbol.upper().replace("/", "").replace("_", "").replace("-", "").replace(".", "")
    if s.endswith("USDT") or s.endswith("USDC"):
        s = s[:-1]
    if s.startswith("XBT"):
        s = "BTC" + s[3:]
    return s


def default_spec(venue_symbol: str, precision: int | None = None) -> SymbolSpec:
    """The usual mapping of a venue symbol; `precision` None: the instrument's quoted digits."""
    instrument = canonical_guess(venue_symbol)
    spec = SPECS.get(instrument)
    if spec is None:  # an instrument the site does not list: the validator rejects it as unknown_symbol
        return SymbolSpec(venue_symbol, instrument, precision or 8, 0.0001)
    return SymbolSpec(venue_symbol, instrument, spec.digits if precision is None else precision, spec.pip)


class SymbolMap:
    """Venue symbol -> SymbolSpec. Configured mappings win; without one, `fallback` derives the usual
    names (replay, tests); a configured feed has no fallback, so an unmapped symbol stays unknown."""

    def __init__(self, specs: Iterable[SymbolSpec] = (), *, fallback: bool = False) -> None:
        self.specs: dict[str, SymbolSpec] = {s.venue_symbol: s for s in specs}
        self.fallback = fallback
        self.fallback_precision: int | None = None

    def get(self, venue_symbol: str) -> SymbolSpec | None:
        spec = self.specs.get(venue_symbol)
        if spec is None and self.fallback:
            spec = self.specs[venue_symbol] = default_spec(venue_symbol, self.fallback_precision)
        return spec

    def venue_symbols(self) -> list[str]:
        return list(self.specs)

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> SymbolMap:
        """From the `symbols` adapter parameter: [{venue_symbol, instrument, price_precision, pip_size}]."""
        raw = params.get("symbols")
        if not isinstance(raw, list):
            return cls(fallback=True)
        specs = []
        for item in raw:
            if isinstance(item, SymbolSpec):
                specs.append(item)
            elif isinstance(item, dict):
                specs.append(
                    SymbolSpec(
                        str(item["venue_symbol"]),
                        str(item["instrument"]),
                        int(item.get("price_precision", 5)),
                        float(item.get("pip_size", 0.0001)),
                        int(item.get("size_precision", 8)),
                    )
                )
        return cls(specs)


class Book:
    """One instrument's price levels: tick (int) -> size (float) per side. Size 0 deletes a level."""

    __slots__ = ("asks", "bids", "scale")

    def __init__(self, precision: int) -> None:
        self.scale = int(10**precision)
        self.bids: dict[int, float] = {}
        self.asks: dict[int, float] = {}

    def tick(self, price: float | str) -> int:
        return round(float(price) * self.scale)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def set(self, side: dict[int, float], tick: int, size: float) -> None:
        if size > 0:
            side[tick] = size
        else:
            side.pop(tick, None)

    def top_bids(self, n: int) -> list[int]:
        b = self.bids
        if len(b) <= n:
            return sorted(b, reverse=True)
        return sorted(b, reverse=True)[:n]

    def top_asks(self, n: int) -> list[int]:
        a = self.asks
        if len(a) <= n:
            return sorted(a)
        return sorted(a)[:n]

    def truncate(self, n: int) -> None:
        """Keep the best n levels a side (Kraken: the book is only as deep as the subscription)."""
        if len(self.bids) > n:
            keep = set(self.top_bids(n))
            for t in [t for t in self.bids if t not in keep]:
                del self.bids[t]
        if len(self.asks) > n:
            keep = set(self.top_asks(n))
            for t in [t for t in self.asks if t not in keep]:
                del self.asks[t]

    def quote(
        self, broker: str, instrument: str, ts_broker: int, ts_recv: int, seq: int, levels: int = DEPTH_LEVELS
    ) -> Quote | None:
        """Top of book with depth, or None while a side is empty (nothing to quote)."""
        if not self.bids or not self.asks:
            return None
        scale = self.scale
        bids = self.top_bids(levels)
        asks = self.top_asks(levels)
        bid_side, ask_side = self.bids, self.asks
        bid_levels = tuple([(t / scale, bid_side[t]) for t in bids])  # a list first: faster than a generator
        ask_levels = tuple([(t / scale, ask_side[t]) for t in asks])
        depth: Depth = (bid_levels, ask_levels)
        b, a = bid_levels[0], ask_levels[0]
        return Quote(broker, instrument, b[0], a[0], b[1], a[1], ts_broker, ts_recv, seq, depth)


_DAY_CACHE: dict[str, int] = {}


def iso_to_us(ts: str) -> int:
    """RFC 3339 UTC timestamp (any number of fractional digits, trailing Z) -> µs since the epoch.

    Hand-parsed: venues send one per message and datetime.fromisoformat (3.11) rejects nanoseconds.
    Raises ValueError on anything else.
    """
    day = ts[:10]
    base = _DAY_CACHE.get(day)
    if base is None:
        y, m, d = int(day[0:4]), int(day[5:7]), int(day[8:10])
        if ts[4] != "-" or ts[7] != "-":
            raise ValueError(f"not a timestamp: {ts!r}")
        base = calendar.timegm((y, m, d, 0, 0, 0)) * 1_000_000
        if len(_DAY_CACHE) > 64:
            _DAY_CACHE.clear()
        _DAY_CACHE[day] = base
    if ts[10] not in "Tt " or ts[13] != ":" or ts[16] != ":":
        raise ValueError(f"not a timestamp: {ts!r}")
    secs = int(ts[11:13]) * 3600 + int(ts[14:16]) * 60 + int(ts[17:19])
    us = 0
    if len(ts) > 19 and ts[19] == ".":
        end = ts.find("Z", 20)
        frac = ts[20:end] if end > 0 else ts[20:]
        us = int((frac + "000000")[:6])
    return base + secs * 1_000_000 + us


class VenueParser:
    """Turns one venue's raw messages into normalised quotes and rejects, keeping its books.

    `parse` never raises: a message it cannot use becomes a Reject with a reason. `seq` numbers the
    quotes of one connection (the validator's duplicate/out-of-order check), since venues number
    their messages per symbol or per channel, not per feed.
    """

    name = "venue"
    # Book precision of the default mapping: 8 places hold any venue's prices exactly; Kraken (None)
    # needs the pair's own precision for its checksum, and the site's digits match Kraken's pairs.
    fallback_precision: int | None = 8

    def __init__(self, broker: str, symbols: SymbolMap) -> None:
        self.broker = broker
        self.symbols = symbols
        if symbols.fallback:
            symbols.fallback_precision = self.fallback_precision
        self.seq = 0
        self.books: dict[str, Book] = {}

    def book(self, spec: SymbolSpec) -> Book:
        b = self.books.get(spec.venue_symbol)
        if b is None:
            b = self.books[spec.venue_symbol] = Book(spec.price_precision)
        return b

    def emit(self, spec: SymbolSpec, book: Book, ts_broker: int, ts_recv: int) -> Quote | None:
        self.seq += 1
        return book.quote(self.broker, spec.instrument, ts_broker, ts_recv, self.seq)

    def unknown(self, venue_symbol: object) -> Reject:
        return Reject("unknown_symbol", str(venue_symbol)[:40])

    def parse(self, raw: bytes | str, ts_recv: int) -> list[Parsed]:
        raise NotImplementedError


class JsonVenueParser(VenueParser):
    """A venue whose every message is one JSON object: decoding and its rejects in one place."""

    def parse(self, raw: bytes | str, ts_recv: int) -> list[Parsed]:
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:  # also too deep (orjson stops at 1,024 levels) and bad UTF-8
            return [Reject("garbled", str(raw[:40]))]
        if not isinstance(msg, dict):
            return [Reject("garbled", "not an object")]
        return self.message(msg, ts_recv)

    def message(self, msg: dict[str, Any], ts_recv: int) -> list[Parsed]:
        raise NotImplementedError
