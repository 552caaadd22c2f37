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

Prices are held as exact integer ticks at the pair's precision (see venue.Book).
"""

from __future__ import annotations

import asyncio
import zlib
from bisect import bisect_left, insort
from collections.abc import AsyncIterator, Callable
from operator import itemgetter, neg
from typing import Any, Literal

import msgspec
import orjson
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from common.ticks import FeedEventKind, FeedItem, StatusEvent, now_us
from marketdata.feeds.base import FeedDisconnected, adapter_register
from marketdata.feeds.venue import (
    SORT_BELOW,
    Book,
    JsonVenueParser,
    Parsed,
    Reject,
    SymbolMap,
    SymbolSpec,
    WireInt,
    iso_to_us,
)


def _level_text(tick: int, qty: float, spec: SymbolSpec) -> str:
    """One level as the checksum writes it: price and qty at the pair's precision, no point, no
    leading zeros. The tick is the price times 10**precision, so its digits are the price's."""
    return str(tick).lstrip("0") + f"{qty:.{spec.size_precision}f}".replace(".", "").lstrip("0")


def book_checksum(book: Book, spec: SymbolSpec) -> int:
    parts: list[str] = []
    for side, ticks in ((book.asks, book.top_asks(10)), (book.bids, book.top_bids(10))):
        for t in ticks:
            parts.append(_level_text(t, side[t], spec))
    return zlib.crc32("".join(parts).encode())


class KrakenBook(Book):
    """A Book that also keeps each level's checksum text, written when the level changes: the
    checksum after a message then joins the top 10 texts a side instead of formatting 20 levels.
    set_bid/set_ask are Book's with that one line more (written out: a call less per level)."""

    __slots__ = ("_ask_text", "_bid_text", "_qty_format")

    def __init__(self, spec: SymbolSpec) -> None:
        super().__init__(spec.price_precision)
        self._qty_format = f".{spec.size_precision}f"
        self._bid_text: dict[int, str] = {}  # tick -> the level's text (levels since removed may stay)
        self._ask_text: dict[int, str] = {}

    def clear(self) -> None:
        super().clear()
        self._bid_text.clear()
        self._ask_text.clear()

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
            self._bid_text[tick] = str(tick).lstrip("0") + format(size, self._qty_format).replace(".", "").lstrip("0")
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
            self._ask_text[tick] = str(tick).lstrip("0") + format(size, self._qty_format).replace(".", "").lstrip("0")
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

    def checksum(self) -> int:
        """book_checksum of this book: the texts of its top 10 asks, then of its top 10 bids (only
        the book's own ticks are looked up, so texts of removed levels are never read)."""
        asks = self._ask_order
        if asks is None:
            asks = self._ask_order = sorted(self.asks)
        bids = self._bid_order
        if bids is None:
            bids = self._bid_order = sorted(self.bids, reverse=True)
        asks, bids = asks[:10], bids[:10]
        if len(asks) > 1 and len(bids) > 1:  # the usual book: two itemgetter calls, no call of ours
            text = "".join(itemgetter(*asks)(self._ask_text) + itemgetter(*bids)(self._bid_text))
        else:
            text = "".join(_texts(self._ask_text, asks) + _texts(self._bid_text, bids))
        return zlib.crc32(text.encode())


def _texts(texts: dict[int, str], ticks: list[int]) -> tuple[str, ...]:
    """The texts of these ticks, in one C call (itemgetter gives the value itself for one key)."""
    if len(ticks) > 1:
        return itemgetter(*ticks)(texts)  # type: ignore[no-any-return]
    return (texts[ticks[0]],) if ticks else ()


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

    def __init__(self, broker: str, symbols: SymbolMap, depth: int = 10) -> None:
        super().__init__(broker, symbols)
        self.depth = depth
        self.heartbeats = 0
        self.synced: set[str] = set()
        self.resync: set[str] = set()  # symbols to resubscribe (checksum mismatch)

    def book(self, spec: SymbolSpec) -> KrakenBook:
        b = self.books.get(spec.venue_symbol)
        if b is None:
            b = self.books[spec.venue_symbol] = KrakenBook(spec)
        return b  # type: ignore[return-value]

    def parse(self, raw: bytes | str, ts_recv: int) -> list[Parsed]:
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
        for d in msg.data:
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
        for d in data:
            try:
                out.extend(self._book(d, kind == "snapshot", ts_recv))
            # IndexError: a timestamp cut short; OverflowError: a price too large to round (1e308 * 10)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError):
                out.append(Reject("garbled", "bad book entry"))
        return out

    def _book(self, d: dict[str, Any], snapshot: bool, ts_recv: int) -> list[Parsed]:
        name = d["symbol"]
        route = self.route(name)
        if route is None:
            return [self.unknown(name)]
        spec, book = route
        assert isinstance(book, KrakenBook)
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
