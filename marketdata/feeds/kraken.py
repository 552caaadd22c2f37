"""Kraken WebSocket v2 `book` channel: snapshot, updates, depth truncation and the CRC32 checksum.

Subscribe: {"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":10}}.
Messages: {"channel":"book","type":"snapshot"|"update","data":[{"symbol","bids","asks","checksum",
"timestamp"}]} with levels {"price": number, "qty": number}; qty 0 removes a level. After each
message the book is cut back to the subscribed depth, then its checksum is checked.

Checksum (Kraken docs, "Book checksum v2"): for the top 10 asks (lowest first) then the top 10 bids
(highest first), write price and qty with the pair's precision, remove the decimal point and leading
zeros, concatenate everything, CRC32 it; compare with `checksum` as an unsigned 32-bit integer. A
mismatch means the local book is wrong: it is counted (`checksum_mismatch`), dropped, and the symbol
resubscribed for a fresh snapshot.

Prices are held as exact integer ticks at the pair's precision (see venue.Book), and each level's
checksum text is the decimal sent at the pair's precision: written from integers while the float
tells it exactly, from the message's own decimal text otherwise (KrakenBook, KrakenParser._exact).
"""

from __future__ import annotations

import asyncio
import json
import zlib
from bisect import bisect_left
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import orjson
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from common.ticks import FeedEventKind, FeedItem, Level, StatusEvent, now_us
from marketdata.feeds.base import FeedDisconnected, adapter_register
from marketdata.feeds.venue import (
    COMPILED,
    UNCHANGED,
    Book,
    JsonVenueParser,
    Parsed,
    Reject,
    SortedBook,
    SortedBookLogic,
    SymbolMap,
    SymbolSpec,
    WireInt,
    iso_to_us,
)


def _level_text(tick: int, qty: float, qty_format: str) -> str:
    """One level as the checksum writes it: price and qty at the pair's precision, no point, no
    leading zeros. The tick is the price times 10**precision, so its digits are the price's."""
    return str(tick).lstrip("0") + format(qty, qty_format).replace(".", "").lstrip("0")


def _decimal_text(tick: int, qty: object, qty_format: str) -> str:
    """_level_text from the quantity as sent (a Decimal or an int from the JSON text): exact."""
    return str(tick).lstrip("0") + format(Decimal(qty), qty_format).replace(".", "").lstrip("0")  # type: ignore[arg-type]


def book_checksum(book: Book | KrakenBookLogic, spec: SymbolSpec) -> int:
    """Kraken's algorithm on the book's levels, written afresh (the reference for KrakenBook's kept
    texts; the float's digits, which are the decimal sent's for quantities under 2**51 / 10**places)."""
    parts: list[str] = []
    qty_format = f".{spec.size_precision}f"
    for side, ticks in ((book.asks, book.top_asks(10)), (book.bids, book.top_bids(10))):
        for t in ticks:
            parts.append(_level_text(t, side[t], qty_format))
    return zlib.crc32("".join(parts).encode())


class KrakenBookLogic(SortedBookLogic):
    """A sorted book (venue.SortedBookLogic) that also keeps each level's checksum text, in a list
    of the same order: the checksum after a message is one join of the top texts a side.

    A level's text is written when it changes, from integers: the qty's digits at the pair's
    precision are round(qty * 10**precision) whenever that integer gives back the very float
    (then the float is the nearest one to that decimal and, below 2**51 / 10**precision, no other
    decimal at that precision has it). Otherwise (a quantity too large for a float to tell its
    last places, or with more places than the pair's) the float's own digits are written, as
    book_checksum writes them, and `inexact` is set: the parser then writes the level again
    from the decimal text sent (KrakenParser._exact).

    The logic only: KrakenBook keeps its attributes in Python slots, CompiledKrakenBook in the
    compiled core (_cfeeds.c), which runs set_bid, set_ask, checksum and quote in C and hands what
    it does not handle to these very methods.
    """

    if not TYPE_CHECKING:  # mypy can't see that subclasses provide these as slots or C members
        __slots__ = ()

    _bid_texts: list[str]
    _ask_texts: list[str]
    _qty_format: str
    _qty_scale: float
    _qty_limit: float
    inexact: bool

    def __init__(self, spec: SymbolSpec) -> None:
        SortedBookLogic.__init__(self, spec.price_precision)
        self._bid_texts = []
        self._ask_texts = []
        self._qty_format = f".{spec.size_precision}f"
        self._qty_scale = float(10**spec.size_precision)
        self._qty_limit = 2.0**51 / 10**spec.size_precision
        self.inexact = False  # a level's text was written from its float's digits

    def clear(self) -> None:
        SortedBookLogic.clear(self)
        self._bid_texts.clear()
        self._ask_texts.clear()
        self.inexact = False

    def set_bid(self, tick: int, size: float, text: str | None = None) -> None:
        keys, lvls, texts = self._bid_keys, self._bid_lvls, self._bid_texts
        if self._set_level_text(self.bids, keys, lvls, texts, -tick, tick, size, text) < self._depth_n:
            self._bid_depth = None

    def set_ask(self, tick: int, size: float, text: str | None = None) -> None:
        keys, lvls, texts = self._ask_keys, self._ask_lvls, self._ask_texts
        if self._set_level_text(self.asks, keys, lvls, texts, tick, tick, size, text) < self._depth_n:
            self._ask_depth = None

    def _set_level_text(
        self,
        side: dict[int, float],
        keys: list[int],
        lvls: list[Level],
        texts: list[str],
        key: int,
        tick: int,
        size: float,
        text: str | None,
    ) -> int:
        """SortedBookLogic._set_level, keeping the level's checksum text beside it (written here when
        not given); returns the position of the level that changed, or UNCHANGED."""
        i = bisect_left(keys, key)
        found = i < len(keys) and keys[i] == key
        if size > 0:
            if text is None:
                qs = self._qty_scale
                if size < self._qty_limit and (q := round(size * qs)) / qs == size:
                    if found and lvls[i][1] == size:
                        return UNCHANGED  # the same float, so the same text (not so past the limit)
                    text = f"{tick}{q}" if tick > 0 else str(tick).lstrip("0") + str(q)
                else:
                    text = _level_text(tick, size, self._qty_format)
                    self.inexact = True
            elif found and lvls[i][1] == size and texts[i] == text:
                return UNCHANGED
            if found:
                lvls[i] = (tick / self.scale, size)
                texts[i] = text
            else:
                keys.insert(i, key)
                lvls.insert(i, (tick / self.scale, size))
                texts.insert(i, text)
            side[tick] = size
        elif found:
            del keys[i], lvls[i], texts[i], side[tick]
        else:
            return UNCHANGED
        return i

    def truncate(self, n: int) -> None:
        """Keep the best n levels a side (the book is only as deep as the subscription)."""
        if len(self._bid_keys) > n:
            for k in self._bid_keys[n:]:
                del self.bids[-k]
            del self._bid_keys[n:], self._bid_lvls[n:], self._bid_texts[n:]
            self._bid_depth = None
        if len(self._ask_keys) > n:
            for k in self._ask_keys[n:]:
                del self.asks[k]
            del self._ask_keys[n:], self._ask_lvls[n:], self._ask_texts[n:]
            self._ask_depth = None

    def checksum(self) -> int:
        """Kraken's checksum of this book: the texts of its top 10 asks, then of its top 10 bids."""
        return zlib.crc32(("".join(self._ask_texts[:10]) + "".join(self._bid_texts[:10])).encode())


class KrakenBook(KrakenBookLogic, SortedBook):
    """The Kraken book in pure Python (its logic on Python slots): the fallback when the compiled
    core is not built, and the reference the compiled one is tested against."""

    __slots__ = ("_ask_texts", "_bid_texts", "_qty_format", "_qty_limit", "_qty_scale", "inexact")

    def __init__(self, spec: SymbolSpec) -> None:
        Book.__init__(self, spec.price_precision)
        KrakenBookLogic.__init__(self, spec)


def _compiled_book_class() -> type[KrakenBookLogic] | None:
    """The Kraken book on the compiled core (_cfeeds.c), or None when it is not built (venue says
    so in a warning)."""
    if COMPILED is None:
        return None

    class CompiledKrakenBook(COMPILED.BookCore, KrakenBookLogic):  # type: ignore[misc,name-defined]
        """KrakenBookLogic on the compiled core: set_bid, set_ask, checksum and quote in C."""

        __slots__ = ()

        # The C methods hand every call they do not handle themselves to these (the same objects).
        _py_set_bid = KrakenBookLogic.set_bid
        _py_set_ask = KrakenBookLogic.set_ask
        _py_checksum = KrakenBookLogic.checksum
        _py_quote = KrakenBookLogic.quote

    CompiledKrakenBook.__module__ = __name__
    CompiledKrakenBook.__qualname__ = CompiledKrakenBook.__name__
    return CompiledKrakenBook


CompiledKrakenBook = _compiled_book_class()


class _Level(msgspec.Struct, gc=False):
    price: WireInt | float
    qty: WireInt | float


class _Entry(msgspec.Struct, gc=False):
    symbol: str
    bids: list[_Level]
    asks: list[_Level]
    checksum: WireInt | None = None
    timestamp: str | None = None


class _BookMessage(msgspec.Struct, gc=False):
    """A `book` message whose every entry has the documented types: what the fast path reads. Any
    other message (heartbeats, acks, or a book message with a field of another type) fails to decode
    into it and takes the general path, which judges it as before."""

    channel: Literal["book"]
    data: list[_Entry]
    type: str | None = None


_decode_book = msgspec.json.Decoder(_BookMessage).decode


class KrakenParser(JsonVenueParser):
    name = "kraken"
    fallback_precision = None
    # The compiled book when it is built (the tests run both).
    book_class: type[KrakenBookLogic] = CompiledKrakenBook or KrakenBook  # type: ignore[assignment]

    def __init__(self, broker: str, symbols: SymbolMap, depth: int = 10) -> None:
        super().__init__(broker, symbols)
        self.depth = depth
        self.heartbeats = 0
        self.synced: set[str] = set()
        self.resync: set[str] = set()  # symbols to resubscribe (checksum mismatch)
        self._raw: bytes | str = b""  # the message being parsed

    def book(self, spec: SymbolSpec) -> KrakenBookLogic:  # type: ignore[override]
        b = self.books.get(spec.venue_symbol)
        if b is None:
            # Not a venue.Book when compiled, but a book of the same interface for the parser.
            b = self.books[spec.venue_symbol] = self.book_class(spec)  # type: ignore[assignment]
        return b  # type: ignore[return-value]

    def parse(self, raw: bytes | str, ts_recv: int) -> list[Parsed]:
        self._raw = raw  # for _exact
        if self.fast:
            try:
                msg = _decode_book(raw)
            except (msgspec.DecodeError, TypeError):  # ValidationError is a DecodeError
                pass
            else:
                return self._book_message(msg, ts_recv)
        return super().parse(raw, ts_recv)

    def _book_message(self, msg: _BookMessage, ts_recv: int) -> list[Parsed]:
        """message() and _book() for a message decoded into _BookMessage: the same steps in the
        same order, read from typed fields (a test runs both paths on hostile corpora)."""
        snapshot = msg.type == "snapshot"
        out: list[Parsed] = []
        routes, synced, depth = self._routes, self.synced, self.depth
        for index, d in enumerate(msg.data):
            try:
                name = d.symbol
                route = routes.get(name) or self.route(name)
                if route is None:
                    out.append(self.unknown(name))
                    continue
                spec, book = route
                if snapshot:
                    book.clear()
                    synced.add(name)
                    self.resync.discard(name)
                elif name not in synced:
                    out.append(Reject("awaiting_snapshot", name))
                    continue
                scale = book.scale
                set_bid = book.set_bid
                for lv in d.bids:
                    set_bid(round(lv.price * scale), float(lv.qty))
                set_ask = book.set_ask
                for lv in d.asks:
                    set_ask(round(lv.price * scale), float(lv.qty))
                if book.inexact:  # type: ignore[attr-defined]
                    self._exact(book, index)  # type: ignore[arg-type]
                if len(book.bids) > depth or len(book.asks) > depth:
                    book.truncate(depth)
                expected = d.checksum
                if expected is not None and book.checksum() != expected:  # type: ignore[attr-defined]
                    book.clear()
                    synced.discard(name)
                    self.resync.add(name)
                    out.append(Reject("checksum_mismatch", f"{name}: expected {expected}"))
                    continue
                ts = d.timestamp
                ts_broker = iso_to_us(ts) if ts is not None else ts_recv
                self.seq += 1
                quote = book.quote(self.broker, spec.instrument, ts_broker, ts_recv, self.seq)
                if quote is not None:
                    out.append(quote)
            except (ValueError, IndexError, OverflowError):  # as in message(): a cut timestamp, 1e308 * 10
                out.append(Reject("garbled", "bad book entry"))
        return out

    def message(self, msg: dict[str, Any], ts_recv: int) -> list[Parsed]:
        channel = msg.get("channel")
        if channel == "heartbeat":
            self.heartbeats += 1
            return []
        if channel != "book":
            return []  # status, subscription acks
        kind = msg.get("type")
        out: list[Parsed] = []
        data = msg.get("data")
        if not isinstance(data, list):
            return [Reject("garbled", "book without data")]
        for index, d in enumerate(data):
            try:
                out.extend(self._book(d, kind == "snapshot", ts_recv, index))
            # IndexError: a timestamp cut short; OverflowError: a price too large to round (1e308 * 10)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError):
                out.append(Reject("garbled", "bad book entry"))
        return out

    def _exact(self, book: KrakenBookLogic, index: int) -> None:
        """The levels of entry `index` written again with their texts from the decimals sent, after
        one was written from a float that cannot tell them (KrakenBook). The same ticks and sizes,
        so the book is as before but for those texts (a level set twice in the message ends as the
        message left it). A message that does not decode so keeps the texts it has: a wrong one
        then shows as a checksum mismatch."""
        book.inexact = False
        try:
            entry = json.loads(self._raw, parse_float=Decimal)["data"][index]
            scale, qty_format = book.scale, book._qty_format
            for levels, set_level in ((entry["bids"], book.set_bid), (entry["asks"], book.set_ask)):
                for lv in levels:
                    price, qty = lv["price"], lv["qty"]
                    tick = round((price if type(price) is int else float(price)) * scale)
                    set_level(tick, float(qty), _decimal_text(tick, qty, qty_format))
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, ArithmeticError):
            pass

    def _book(self, d: dict[str, Any], snapshot: bool, ts_recv: int, index: int = 0) -> list[Parsed]:
        name = d["symbol"]
        route = self.route(name)
        if route is None:
            return [self.unknown(name)]
        spec, book = route
        assert isinstance(book, KrakenBookLogic)
        if snapshot:
            book.clear()
            self.synced.add(name)
            self.resync.discard(name)
        elif name not in self.synced:
            return [Reject("awaiting_snapshot", name)]
        scale = book.scale
        set_bid, set_ask = book.set_bid, book.set_ask
        for lv in d["bids"]:
            set_bid(round(lv["price"] * scale), float(lv["qty"]))
        for lv in d["asks"]:
            set_ask(round(lv["price"] * scale), float(lv["qty"]))
        if book.inexact:
            self._exact(book, index)
        book.truncate(self.depth)
        expected = d.get("checksum")
        if expected is not None and book.checksum() != int(expected):
            book.clear()
            self.synced.discard(name)
            self.resync.add(name)
            return [Reject("checksum_mismatch", f"{name}: expected {expected}")]
        ts = d.get("timestamp")
        quote = self.emit(spec, book, iso_to_us(ts) if isinstance(ts, str) else ts_recv, ts_recv)
        return [quote] if quote is not None else []


class KrakenFeed:
    """Params: ws_url, depth (10, 25, 100, 500, 1000), heartbeat_timeout_s, symbols (BTC/USD ...)."""

    def __init__(
        self,
        broker: str,
        params: dict[str, Any],
        *,
        on_reject: Callable[[str, str], None] | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.broker = broker
        self.ws_url = str(params.get("ws_url", "wss://ws.kraken.com/v2"))
        self.depth = int(params.get("depth", 10))
        self.heartbeat_timeout_s = float(params.get("heartbeat_timeout_s", 10.0))
        self.symbols = SymbolMap.from_params(params)
        self.on_reject = on_reject
        self.parser = KrakenParser(broker, self.symbols, self.depth)
        self.resubscribed = 0

    def _request(self, method: str, symbols: list[str]) -> str:
        params = {"channel": "book", "symbol": symbols, "depth": self.depth}
        if method == "subscribe":
            params["snapshot"] = True
        return orjson.dumps({"method": method, "params": params}).decode()

    async def connect(self) -> AsyncIterator[FeedItem]:
        self.parser = parser = KrakenParser(self.broker, self.symbols, self.depth)
        try:
            async with ws_connect(self.ws_url, open_timeout=10) as ws:
                await ws.send(self._request("subscribe", self.symbols.venue_symbols()))
                yield StatusEvent(self.broker, FeedEventKind.CONNECTED, now_us(), "Kraken v2 book")
                while True:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), self.heartbeat_timeout_s)
                    except TimeoutError:
                        raise FeedDisconnected(f"Kraken: nothing for {self.heartbeat_timeout_s:g} s") from None
                    beats = parser.heartbeats
                    for item in parser.parse(raw, now_us()):
                        if isinstance(item, Reject):
                            if self.on_reject is not None:
                                self.on_reject(item.reason, item.detail)
                        else:
                            yield item
                    if parser.heartbeats != beats:
                        yield StatusEvent(self.broker, FeedEventKind.HEARTBEAT, now_us())
                    if parser.resync:
                        symbols = sorted(parser.resync)
                        parser.resync.clear()
                        self.resubscribed += 1
                        await ws.send(self._request("unsubscribe", symbols))
                        await ws.send(self._request("subscribe", symbols))
        except (OSError, WebSocketException) as exc:
            raise FeedDisconnected(f"Kraken: {exc!r}") from exc


def _factory(broker: str, params: dict[str, Any]) -> KrakenFeed:
    return KrakenFeed(broker, params, on_reject=params.get("on_reject"), credentials=params.get("credentials"))


adapter_register("kraken", _factory)
