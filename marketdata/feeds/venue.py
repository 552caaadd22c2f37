"""What every real venue adapter shares: symbol mapping, an exact price-level book, timestamps, rejects.

Pure: no Django, no network. The adapters (fix, oanda, binance, kraken, coinbase) build on this, and
so do the replay command and the benchmark, which run the very same parsers without a network.

Prices in books are held as integer ticks at the instrument's price precision (an exact decimal), so
levels never split on float noise (0.1 + 0.2) and checksums computed from the book are exact; they
become floats only in the normalised Quote.
"""

from __future__ import annotations

import calendar
import dataclasses
import logging
import math
import sys
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter, neg
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import orjson

from common.ticks import Depth, Level, Quote
from simulator.instruments import SPECS

# A JSON integer as orjson decodes it to an int (it decodes those outside the signed 64-bit range, up
# to the unsigned one, to floats or ints): typed fast paths decode into it so that what decodes is what
# orjson gives; anything else fails to decode there and takes the general path.
WireInt = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]

_INF = math.inf
_NEG_INF = -math.inf

logger = logging.getLogger(__name__)
# A side shorter than this is sorted again after a level comes or goes (cheaper than two bisections
# for so few); a longer one is kept in order by bisection.
SORT_BELOW = 8
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
        # Only text is a venue symbol: a number or null in its place (a mangled message) used to raise
        # AttributeError out of the parser; it is now unknown, like any unmapped symbol.
        if spec is None and self.fallback and isinstance(venue_symbol, str):
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


def _quote_maker() -> Callable[..., Quote]:
    """A constructor of Quote that gives the same object as Quote(...) in a quarter of the time.

    Quote is a frozen dataclass: its generated __init__ stores each of its 11 fields through
    object.__setattr__ by name, about 2 µs a quote, more than decoding the venue's message. This one
    builds an instance of a plain class with the very same slots (each field a plain slot store, which
    the interpreter specialises) and then makes it a Quote: `__class__` may be assigned between two
    classes of the same layout, and Python checks that they are (a TypeError otherwise, never a
    half-made object). The result is a Quote through and through: type, equality, hash, frozenness.
    It takes the fields in Quote's order; if Quote ever gains, loses or reorders a field, or a
    __post_init__, the real constructor is used instead (and a test says so).
    """
    names = tuple(f.name for f in dataclasses.fields(Quote))
    expected = ("broker", "instrument", "bid", "ask", "bid_size", "ask_size", "ts_broker", "ts_recv", "seq")
    if (
        names != (*expected, "depth", "account")
        or getattr(Quote, "__slots__", None) != names
        or hasattr(Quote, "__post_init__")
    ):
        return Quote

    class _Fields:
        """Quote's layout without its frozen __setattr__: only ever a Quote in the making."""

        __slots__ = names

    def quote_new(
        broker: str,
        instrument: str,
        bid: float,
        ask: float,
        bid_size: float,
        ask_size: float,
        ts_broker: int,
        ts_recv: int,
        seq: int,
        depth: Depth | None = None,
        account: int = 0,
    ) -> Quote:
        # Made empty and filled here: calling a class with an __init__ runs it through the type's
        # slot (its arguments packed in a tuple, a second frame), which cost as much as these stores.
        q: Any = new(_Fields)  # its slots are Quote's names, which mypy cannot see
        q.broker = broker
        q.instrument = instrument
        q.bid = bid
        q.ask = ask
        q.bid_size = bid_size
        q.ask_size = ask_size
        q.ts_broker = ts_broker
        q.ts_recv = ts_recv
        q.seq = seq
        q.depth = depth
        q.account = account
        q.__class__ = Quote
        return q  # type: ignore[no-any-return]

    new = object.__new__

    try:  # the layouts must agree (they do while the names do); if not, the real constructor
        quote_new("b", "i", 1.0, 2.0, 1.0, 1.0, 0, 0, 0)
    except TypeError:
        return Quote
    return quote_new


quote_new = _quote_maker()


class Book:
    """One instrument's price levels: tick (int) -> size (float) per side. Size 0 deletes a level.

    Write only through set / set_bid / set_ask / clear / truncate: besides the sizes, the book keeps
    what quoting needs between messages, so a message costs what it changed, not the book's depth:
    - each level's (price, size) tuple, made when the level changes and shared by every quote until
      it changes again (the validator's depth check then meets the same objects);
    - each side's ticks best first: sorted once after a clear (a snapshot adds its levels in any
      order), then kept in order as levels come and go (a bisection and a move in C, where sorting a
      venue's thousand levels after every added level took 30 µs and more; a side of fewer than
      SORT_BELOW levels is simply sorted again);
    - each side's depth tuple, rebuilt only after a change among the levels it shows (a book deeper
      than the depth keeps it through changes below its last level: most of a deep book's updates).
    """

    __slots__ = (
        "_ask_ceiling",
        "_ask_depth",
        "_ask_levels",
        "_ask_order",
        "_bid_depth",
        "_bid_floor",
        "_bid_levels",
        "_bid_order",
        "_depth_n",
        "asks",
        "bids",
        "scale",
    )

    def __init__(self, precision: int) -> None:
        self.scale = int(10**precision)
        self.bids: dict[int, float] = {}
        self.asks: dict[int, float] = {}
        self._bid_levels: dict[int, Level] = {}  # tick -> (price, size)
        self._ask_levels: dict[int, Level] = {}
        self._bid_order: list[int] | None = None  # ticks best first; None: to sort (after a clear)
        self._ask_order: list[int] | None = None
        self._bid_depth: tuple[Level, ...] | None = None  # the last quote's levels; None: to build again
        self._ask_depth: tuple[Level, ...] | None = None
        # The worst tick the depth shows when it is full (a change beyond it cannot alter the depth);
        # while a side is shallower than the depth, every change shows: -inf / +inf.
        self._bid_floor: float = _NEG_INF
        self._ask_ceiling: float = _INF
        self._depth_n = DEPTH_LEVELS  # how many levels the cached depth holds

    def tick(self, price: float | str) -> int:
        return round(float(price) * self.scale)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self._bid_levels.clear()
        self._ask_levels.clear()
        self._bid_order = self._ask_order = None
        self._bid_depth = self._ask_depth = None

    def set(self, side: dict[int, float], tick: int, size: float) -> None:
        if side is self.bids:
            self.set_bid(tick, size)
        elif side is self.asks:
            self.set_ask(tick, size)
        else:
            raise ValueError("not a side of this book")

    def set_bid(self, tick: int, size: float) -> None:
        bids = self.bids
        old = bids.get(tick)
        if size > 0:
            if old is None:
                order = self._bid_order
                if order is not None:
                    if len(order) < SORT_BELOW:
                        self._bid_order = None
                    else:
                        insort(order, tick, key=neg)
            elif old == size:
                return
            bids[tick] = size
            self._bid_levels[tick] = (tick / self.scale, size)
        elif old is not None:
            del bids[tick], self._bid_levels[tick]
            order = self._bid_order
            if order is not None:
                if len(order) <= SORT_BELOW:
                    self._bid_order = None
                else:
                    del order[bisect_left(order, -tick, key=neg)]
        else:
            return
        if tick >= self._bid_floor:
            self._bid_depth = None

    def set_ask(self, tick: int, size: float) -> None:
        asks = self.asks
        old = asks.get(tick)
        if size > 0:
            if old is None:
                order = self._ask_order
                if order is not None:
                    if len(order) < SORT_BELOW:
                        self._ask_order = None
                    else:
                        insort(order, tick)
            elif old == size:
                return
            asks[tick] = size
            self._ask_levels[tick] = (tick / self.scale, size)
        elif old is not None:
            del asks[tick], self._ask_levels[tick]
            order = self._ask_order
            if order is not None:
                if len(order) <= SORT_BELOW:
                    self._ask_order = None
                else:
                    del order[bisect_left(order, tick)]
        else:
            return
        if tick <= self._ask_ceiling:
            self._ask_depth = None

    def _bid_ticks(self) -> list[int]:
        order = self._bid_order
        if order is None:
            order = self._bid_order = sorted(self.bids, reverse=True)
        return order

    def _ask_ticks(self) -> list[int]:
        order = self._ask_order
        if order is None:
            order = self._ask_order = sorted(self.asks)
        return order

    def top_bids(self, n: int) -> list[int]:
        return self._bid_ticks()[:n]

    def top_asks(self, n: int) -> list[int]:
        return self._ask_ticks()[:n]

    def truncate(self, n: int) -> None:
        """Keep the best n levels a side (Kraken: the book is only as deep as the subscription)."""
        if len(self.bids) > n:
            order = self._bid_ticks()
            for t in order[n:]:
                del self.bids[t], self._bid_levels[t]
            self._bid_order = order[:n]
            self._bid_depth = None
        if len(self.asks) > n:
            order = self._ask_ticks()
            for t in order[n:]:
                del self.asks[t], self._ask_levels[t]
            self._ask_order = order[:n]
            self._ask_depth = None

    def quote(
        self, broker: str, instrument: str, ts_broker: int, ts_recv: int, seq: int, levels: int = DEPTH_LEVELS
    ) -> Quote | None:
        """Top of book with depth, or None while a side is empty (nothing to quote)."""
        if not self.bids or not self.asks:
            return None
        if levels != self._depth_n:
            self._depth_n = levels
            self._bid_depth = self._ask_depth = None
        bid_levels = self._bid_depth
        if bid_levels is None:
            order = self._bid_ticks()
            if len(order) > levels:
                order = order[:levels]
                self._bid_floor = order[-1]
            else:
                self._bid_floor = order[-1] if len(order) == levels else _NEG_INF
            # itemgetter: the levels' tuple in one C call (5x tuple(map(dict.__getitem__, ...)) for
            # 10 levels); with one key it gives the value itself, not a tuple.
            bid_levels = self._bid_depth = (
                itemgetter(*order)(self._bid_levels) if len(order) > 1 else (self._bid_levels[order[0]],)
            )
        ask_levels = self._ask_depth
        if ask_levels is None:
            order = self._ask_ticks()
            if len(order) > levels:
                order = order[:levels]
                self._ask_ceiling = order[-1]
            else:
                self._ask_ceiling = order[-1] if len(order) == levels else _INF
            ask_levels = self._ask_depth = (
                itemgetter(*order)(self._ask_levels) if len(order) > 1 else (self._ask_levels[order[0]],)
            )
        b, a = bid_levels[0], ask_levels[0]
        return quote_new(broker, instrument, b[0], a[0], b[1], a[1], ts_broker, ts_recv, seq, (bid_levels, ask_levels))


UNCHANGED = sys.maxsize  # _set_level: no level changed (past any depth a quote is cut from)


class SortedBookLogic:
    """A book kept as its quote reads it: each side a sorted list of keys (the ask's tick; the bid's
    tick negated, so that the best comes first for both and bisect needs no key function), with the
    levels' (price, size) tuples in a list of the same order. A change costs a bisection and a store
    in place (or a move in C for a level that comes or goes); the depth is one slice of the levels,
    made again only after a change among the levels it shows. The dicts `bids` and `asks`
    (tick -> size) are kept as in Book, for what reads them. Its quotes are Book's, to the object
    shared between quotes (a test runs both on the same changes).

    The logic only, on the attributes below: SortedBook keeps them in Python slots, CompiledSortedBook
    in the compiled core (_cfeeds.c), which runs set_bid, set_ask and quote in C and hands what it
    does not handle to these very methods. kraken.KrakenBookLogic adds each level's checksum text.
    """

    if not TYPE_CHECKING:  # mypy can't see that subclasses provide these as slots or C members
        __slots__ = ()

    scale: int
    bids: dict[int, float]
    asks: dict[int, float]
    _bid_keys: list[int]
    _bid_lvls: list[Level]
    _ask_keys: list[int]
    _ask_lvls: list[Level]
    _bid_depth: tuple[Level, ...] | None
    _ask_depth: tuple[Level, ...] | None
    _depth_n: int

    def __init__(self, precision: int) -> None:
        self.scale = int(10**precision)
        self.bids = {}
        self.asks = {}
        self._bid_keys = []  # -tick, best bid first
        self._bid_lvls = []
        self._ask_keys = []  # tick, best ask first
        self._ask_lvls = []
        self._bid_depth = None  # the last quote's levels; None: to build again
        self._ask_depth = None
        self._depth_n = DEPTH_LEVELS  # how many levels the cached depths hold

    def tick(self, price: float | str) -> int:
        return round(float(price) * self.scale)

    def set(self, side: dict[int, float], tick: int, size: float) -> None:
        if side is self.bids:
            self.set_bid(tick, size)
        elif side is self.asks:
            self.set_ask(tick, size)
        else:
            raise ValueError("not a side of this book")

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        for side in (self._bid_keys, self._bid_lvls, self._ask_keys, self._ask_lvls):
            side.clear()
        self._bid_depth = self._ask_depth = None

    def set_bid(self, tick: int, size: float) -> None:
        if self._set_level(self.bids, self._bid_keys, self._bid_lvls, -tick, tick, size) < self._depth_n:
            self._bid_depth = None

    def set_ask(self, tick: int, size: float) -> None:
        if self._set_level(self.asks, self._ask_keys, self._ask_lvls, tick, tick, size) < self._depth_n:
            self._ask_depth = None

    def _set_level(
        self, side: dict[int, float], keys: list[int], lvls: list[Level], key: int, tick: int, size: float
    ) -> int:
        """Set one side's level (key: -tick for bids, tick for asks, so the best comes first); returns the
        position of the level that changed, or UNCHANGED."""
        i = bisect_left(keys, key)
        found = i < len(keys) and keys[i] == key
        if size > 0:
            if found:
                if lvls[i][1] == size:
                    return UNCHANGED
                lvls[i] = (tick / self.scale, size)
            else:
                keys.insert(i, key)
                lvls.insert(i, (tick / self.scale, size))
            side[tick] = size
        elif found:
            del keys[i], lvls[i], side[tick]
        else:
            return UNCHANGED
        return i

    def top_bids(self, n: int) -> list[int]:
        return [-k for k in self._bid_keys[:n]]

    def top_asks(self, n: int) -> list[int]:
        return self._ask_keys[:n]

    def truncate(self, n: int) -> None:
        """Keep the best n levels a side."""
        if len(self._bid_keys) > n:
            for k in self._bid_keys[n:]:
                del self.bids[-k]
            del self._bid_keys[n:], self._bid_lvls[n:]
            self._bid_depth = None
        if len(self._ask_keys) > n:
            for k in self._ask_keys[n:]:
                del self.asks[k]
            del self._ask_keys[n:], self._ask_lvls[n:]
            self._ask_depth = None

    def quote(
        self, broker: str, instrument: str, ts_broker: int, ts_recv: int, seq: int, levels: int = DEPTH_LEVELS
    ) -> Quote | None:
        """Top of book with depth, or None while a side is empty. A side's depth is made again only
        after a change among its first `levels` levels (set_* clear it then)."""
        if levels != self._depth_n:
            self._depth_n = levels
            self._bid_depth = self._ask_depth = None
        bid_levels = self._bid_depth
        if bid_levels is None:
            bid_levels = self._bid_depth = tuple(self._bid_lvls[:levels])
        ask_levels = self._ask_depth
        if ask_levels is None:
            ask_levels = self._ask_depth = tuple(self._ask_lvls[:levels])
        if not bid_levels or not ask_levels:
            return None
        b, a = bid_levels[0], ask_levels[0]
        return quote_new(broker, instrument, b[0], a[0], b[1], a[1], ts_broker, ts_recv, seq, (bid_levels, ask_levels))


class SortedBook(SortedBookLogic, Book):
    """The sorted book in pure Python (its logic on Python slots): the fallback when the compiled
    core is not built, and the reference the compiled one is tested against. Of Book's own storage
    only `bids`, `asks`, `scale` and the depth caches are used."""

    __slots__ = ("_ask_keys", "_ask_lvls", "_bid_keys", "_bid_lvls")

    def __init__(self, precision: int) -> None:
        Book.__init__(self, precision)
        SortedBookLogic.__init__(self, precision)


_DAY_CACHE: dict[str, int] = {}
_SECOND_CACHE: dict[str, int] = {}  # "yyyy-mm-ddThh:mm:ss" -> µs since the epoch


def _iso_seconds_us(ts: str) -> int:
    """The whole seconds of an RFC 3339 timestamp (its first 19 characters) in µs; raises ValueError."""
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
    return base + (int(ts[11:13]) * 3600 + int(ts[14:16]) * 60 + int(ts[17:19])) * 1_000_000


def iso_to_us_py(ts: str) -> int:
    """RFC 3339 UTC timestamp (any number of fractional digits, trailing Z) -> µs since the epoch.

    Hand-parsed: venues send one per message and datetime.fromisoformat (3.11) rejects nanoseconds.
    The whole seconds are remembered (a stream sends many messages a second), so a message pays for
    its fraction only. Raises ValueError on anything else.
    """
    head = ts[:19]
    base = _SECOND_CACHE.get(head)
    if base is not None and ts.find("Z", 20) == 26 and ts[19] == ".":
        return base + int(ts[20:26])  # the usual six places: just what the lines below give it
    if base is None:
        base = _iso_seconds_us(ts)  # raises on a bad timestamp: only good ones are remembered
        if len(_SECOND_CACHE) > 4096:
            _SECOND_CACHE.clear()
        _SECOND_CACHE[head] = base
    if len(ts) > 19 and ts[19] == ".":
        end = ts.find("Z", 20)
        frac = ts[20:end] if end > 0 else ts[20:]
        return base + int((frac + "000000")[:6])
    return base


def _compiled_core() -> ModuleType | None:
    """The compiled core (_cfeeds.c: the sorted books' hot calls, the timestamp reader), or None,
    said loudly, when it is not built (`python setup.py build_ext --inplace`, as scripts/_common.sh
    does): everything then runs in Python, the same but slower."""
    try:
        import marketdata.feeds._cfeeds as _cfeeds
    except ImportError as exc:
        logger.warning(
            "feed adapters run in pure Python (a Kraken message about 45%% more instructions, Coinbase and "
            "Binance 25%% more): the compiled core marketdata/feeds/_cfeeds.c is not built "
            "(python setup.py build_ext --inplace): %s",
            exc,
        )
        return None
    _cfeeds.configure(Quote, quote_new, DEPTH_LEVELS)
    _cfeeds.set_iso_fallback(iso_to_us_py)
    return _cfeeds


COMPILED = _compiled_core()
# The compiled reader reads the usual shape itself and hands anything else to iso_to_us_py (a test
# holds the two to the same results).
iso_to_us: Callable[[str], int] = COMPILED.iso_to_us if COMPILED is not None else iso_to_us_py


def _compiled_sorted_book() -> type[SortedBookLogic] | None:
    if COMPILED is None:
        return None

    class CompiledSortedBook(COMPILED.BookCore, SortedBookLogic):  # type: ignore[misc,name-defined]
        """SortedBookLogic on the compiled core: set_bid, set_ask and quote in C."""

        __slots__ = ()

        # The C methods hand every call they do not handle themselves to these (the same objects).
        _py_set_bid = SortedBookLogic.set_bid
        _py_set_ask = SortedBookLogic.set_ask
        _py_quote = SortedBookLogic.quote

        def __init__(self, precision: int) -> None:
            SortedBookLogic.__init__(self, precision)
            self._bid_texts = self._ask_texts = None  # the core's book without checksum texts

    CompiledSortedBook.__module__ = __name__
    CompiledSortedBook.__qualname__ = CompiledSortedBook.__name__
    return CompiledSortedBook


CompiledSortedBook = _compiled_sorted_book()
# What the parsers of Coinbase and Binance keep their books in (a Book to the type checker).
SORTED_BOOK: type[Book] = CompiledSortedBook or SortedBook  # type: ignore[assignment]


class VenueParser:
    """Turns one venue's raw messages into normalised quotes and rejects, keeping its books.

    `parse` never raises: a message it cannot use becomes a Reject with a reason. `seq` numbers the
    quotes of one connection (the validator's duplicate/out-of-order check), since venues number
    their messages per symbol or per channel, not per feed.
    """

    name = "venue"
    # Parsers with a typed fast path (msgspec decoding into the usual message shape) fall back to the
    # general path for any message that does not decode into it; False sends every message there (the
    # differential tests' reference).
    fast = True
    # Book precision of the default mapping: 8 places hold any venue's prices exactly; Kraken (None)
    # needs the pair's own precision for its checksum, and the site's digits match Kraken's pairs.
    fallback_precision: int | None = 8
    # The books' class, made with the symbol's price precision: Book, or a sorted book (SortedBook,
    # CompiledSortedBook), whose quotes are Book's (the venues' tests run them on each).
    book_class: type[Book] = Book

    def __init__(self, broker: str, symbols: SymbolMap) -> None:
        self.broker = broker
        self.symbols = symbols
        if symbols.fallback:
            symbols.fallback_precision = self.fallback_precision
        self.seq = 0
        self.books: dict[str, Book] = {}
        self._routes: dict[str, tuple[SymbolSpec, Book]] = {}

    def book(self, spec: SymbolSpec) -> Book:
        b = self.books.get(spec.venue_symbol)
        if b is None:
            b = self.books[spec.venue_symbol] = self.book_class(spec.price_precision)
        return b

    def route(self, venue_symbol: str) -> tuple[SymbolSpec, Book] | None:
        """The spec and the book of a venue symbol, None if it has no mapping. Remembered: a symbol's
        spec never changes and its book lives as long as the parser (a resync clears it in place)."""
        r = self._routes.get(venue_symbol)
        if r is None:
            spec = self.symbols.get(venue_symbol)
            if spec is None:
                return None
            r = self._routes[venue_symbol] = (spec, self.book(spec))
        return r

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
