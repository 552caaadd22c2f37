"""Coinbase Advanced Trade WebSocket: `level2` (book) and `ticker`, with `heartbeats`.

Subscribe per channel: {"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"} (and
"ticker", "heartbeats"; a `jwt` is added when a credential is configured, public market data needs
none). Every message carries `sequence_num`, counted per connection across channels: a message
that skips numbers means something was lost, so the books are dropped and the connection is
re-opened (a fresh subscription starts with snapshots); a number seen again is a duplicate, dropped.

l2_data events: {"type":"snapshot"|"update","product_id","updates":[{"side":"bid"|"offer",
"price_level","new_quantity","event_time"}]}; quantity "0" removes a level. ticker events carry
`tickers` with best_bid/best_bid_quantity/best_ask/best_ask_quantity (top of book, no depth).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import msgspec
import orjson
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from common.ticks import FeedEventKind, FeedItem, StatusEvent, now_us
from marketdata.feeds.base import FeedDisconnected, adapter_register
from marketdata.feeds.venue import (
    SORTED_BOOK,
    JsonVenueParser,
    Parsed,
    Reject,
    SymbolMap,
    WireInt,
    iso_to_us,
    quote_new,
)


class _Update(msgspec.Struct, gc=False):
    side: str
    price_level: str
    new_quantity: str


class _L2Event(msgspec.Struct, gc=False):
    type: str
    product_id: str
    updates: list[_Update]


class _L2Message(msgspec.Struct, gc=False):
    """An l2_data message with the documented types: what the fast path reads (prices stay strings,
    converted by float() as on the general path). Anything else takes the general path."""

    channel: Literal["l2_data"]
    timestamp: str
    events: list[_L2Event]
    sequence_num: WireInt | None = None


_decode_l2 = msgspec.json.Decoder(_L2Message).decode


class CoinbaseParser(JsonVenueParser):
    name = "coinbase"
    # Books kept sorted (venue.SortedBookLogic), on the compiled core when it is built (the tests run
    # both): the same quotes as venue.Book, for fewer instructions a message.
    book_class = SORTED_BOOK

    def __init__(self, broker: str, symbols: SymbolMap) -> None:
        super().__init__(broker, symbols)
        self.last_seq: int | None = None
        self.heartbeats = 0
        self.lost = False  # a sequence gap: the adapter must resync (reconnect)
        self.synced: set[str] = set()

    def parse(self, raw: bytes | str, ts_recv: int) -> list[Parsed]:
        if self.fast:
            try:
                msg = _decode_l2(raw)
            except (msgspec.DecodeError, TypeError):  # ValidationError is a DecodeError
                pass
            else:
                return self._l2_message(msg, ts_recv)
        return super().parse(raw, ts_recv)

    def _l2_message(self, msg: _L2Message, ts_recv: int) -> list[Parsed]:
        """message() and _level2() for a typed l2_data message: the same steps in the same order
        (a test runs both paths on hostile corpora)."""
        seq = msg.sequence_num
        if seq is not None:
            last = self.last_seq
            if last is not None and seq <= last:
                return [Reject("duplicate" if seq == last else "out_of_order", f"sequence_num={seq}")]
            self.last_seq = seq
            if last is not None and seq != last + 1:
                return self._gap(last, seq)
        out: list[Parsed] = []
        try:
            ts = iso_to_us(msg.timestamp)
            for event in msg.events:
                name = event.product_id
                route = self._routes.get(name) or self.route(name)
                if route is None:
                    out.append(self.unknown(name))
                    continue
                spec, book = route
                if event.type == "snapshot":
                    book.clear()
                    self.synced.add(name)
                elif name not in self.synced:
                    out.append(Reject("awaiting_snapshot", name))
                    continue
                scale, set_bid, set_ask = book.scale, book.set_bid, book.set_ask
                for u in event.updates:
                    (set_bid if u.side == "bid" else set_ask)(
                        round(float(u.price_level) * scale), float(u.new_quantity)
                    )
                self.seq += 1
                q = book.quote(self.broker, spec.instrument, ts, ts_recv, self.seq)
                if q is not None:
                    out.append(q)
        except (ValueError, IndexError, OverflowError):  # as in message(): a cut timestamp, 1e999
            out.append(Reject("garbled", "bad l2_data message"))
        return out

    def _gap(self, last: int, seq: int) -> list[Parsed]:
        # Something was lost: the books cannot be trusted, nor this message applied to them.
        self.lost = True
        self.synced.clear()
        for book in self.books.values():
            book.clear()
        return [Reject("seq_gap", f"sequence_num {last} -> {seq}")]

    def message(self, msg: dict[str, Any], ts_recv: int) -> list[Parsed]:
        out: list[Parsed] = []
        seq = msg.get("sequence_num")
        if type(seq) is int:
            last = self.last_seq
            if last is not None and seq <= last:
                return [Reject("duplicate" if seq == last else "out_of_order", f"sequence_num={seq}")]
            self.last_seq = seq
            if last is not None and seq != last + 1:
                return self._gap(last, seq)
        channel = msg.get("channel")
        try:
            if channel == "l2_data":
                ts = iso_to_us(msg["timestamp"])
                for event in msg["events"]:
                    out.extend(self._level2(event, ts, ts_recv))
            elif channel == "ticker":
                ts = iso_to_us(msg["timestamp"])
                for event in msg["events"]:
                    for t in event["tickers"]:
                        out.append(self._ticker(t, ts, ts_recv))
            elif channel == "heartbeats":
                self.heartbeats += 1
            elif msg.get("type") == "error":
                out.append(Reject("venue_error", str(msg.get("message", ""))[:100]))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError):  # Overflow: 1e999
            out.append(Reject("garbled", f"bad {channel} message"))
        return out

    def _level2(self, event: dict[str, Any], ts: int, ts_recv: int) -> list[Parsed]:
        name = event["product_id"]
        route = self.route(name)
        if route is None:
            return [self.unknown(name)]
        spec, book = route
        if event["type"] == "snapshot":
            book.clear()
            self.synced.add(name)
        elif name not in self.synced:
            return [Reject("awaiting_snapshot", name)]
        scale, set_bid, set_ask = book.scale, book.set_bid, book.set_ask
        for u in event["updates"]:
            (set_bid if u["side"] == "bid" else set_ask)(
                round(float(u["price_level"]) * scale), float(u["new_quantity"])
            )
        q = self.emit(spec, book, ts, ts_recv)
        return [q] if q is not None else []

    def _ticker(self, t: dict[str, Any], ts: int, ts_recv: int) -> Parsed:
        name = t["product_id"]
        spec = self.symbols.get(name)
        if spec is None:
            return self.unknown(name)
        self.seq += 1
        return quote_new(
            self.broker,
            spec.instrument,
            float(t["best_bid"]),
            float(t["best_ask"]),
            float(t["best_bid_quantity"]),
            float(t["best_ask_quantity"]),
            ts,
            ts_recv,
            self.seq,
        )


class CoinbaseFeed:
    """Params: ws_url, channels (default level2, ticker), heartbeat_timeout_s, symbols (BTC-USD ...);
    credentials: jwt (optional)."""

    def __init__(
        self,
        broker: str,
        params: dict[str, Any],
        *,
        on_reject: Callable[[str, str], None] | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.broker = broker
        self.ws_url = str(params.get("ws_url", "wss://advanced-trade-ws.coinbase.com"))
        self.channels = [str(c) for c in params.get("channels", ["level2", "ticker"])]
        self.heartbeat_timeout_s = float(params.get("heartbeat_timeout_s", 5.0))
        self.symbols = SymbolMap.from_params(params)
        self.jwt = (credentials or {}).get("jwt", "")
        self.on_reject = on_reject
        self.parser = CoinbaseParser(broker, self.symbols)
        self.resyncs = 0

    def _subscribe(self, channel: str) -> str:
        msg: dict[str, Any] = {"type": "subscribe", "product_ids": self.symbols.venue_symbols(), "channel": channel}
        if self.jwt:
            msg["jwt"] = self.jwt
        return orjson.dumps(msg).decode()

    async def connect(self) -> AsyncIterator[FeedItem]:
        first = True
        try:
            while True:  # a new connection after a sequence gap: fresh snapshots, sequence from 0
                seq = self.parser.seq  # quote numbers go on across a resync: the validator sees one feed
                self.parser = parser = CoinbaseParser(self.broker, self.symbols)
                parser.seq = seq
                async with ws_connect(self.ws_url, open_timeout=10, max_size=2**24) as ws:
                    for channel in [*self.channels, "heartbeats"]:
                        await ws.send(self._subscribe(channel))
                    if first:
                        yield StatusEvent(self.broker, FeedEventKind.CONNECTED, now_us(), "Coinbase Advanced Trade")
                        first = False
                    while not parser.lost:
                        try:
                            raw = await asyncio.wait_for(ws.recv(), self.heartbeat_timeout_s)
                        except TimeoutError:
                            raise FeedDisconnected(
                                f"Coinbase: no heartbeat for {self.heartbeat_timeout_s:g} s"
                            ) from None
                        beats = parser.heartbeats
                        for item in parser.parse(raw, now_us()):
                            if isinstance(item, Reject):
                                if self.on_reject is not None:
                                    self.on_reject(item.reason, item.detail)
                            else:
                                yield item
                        if parser.heartbeats != beats:
                            yield StatusEvent(self.broker, FeedEventKind.HEARTBEAT, now_us())
                self.resyncs += 1
        except (OSError, WebSocketException) as exc:
            raise FeedDisconnected(f"Coinbase: {exc!r}") from exc


def _factory(broker: str, params: dict[str, Any]) -> CoinbaseFeed:
    return CoinbaseFeed(broker, params, on_reject=params.get("on_reject"), credentials=params.get("credentials"))


adapter_register("coinbase", _factory)
