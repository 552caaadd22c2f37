"""Binance spot market data over WebSocket: `bookTicker` (top of book) or diff-depth with the
documented local order book sync.

Diff-depth sync (Binance "How to manage a local order book correctly"):
1. open `<symbol>@depth@100ms`, buffer the events;
2. GET /api/v3/depth?symbol=X&limit=1000 (a REST snapshot with `lastUpdateId`);
3. if the snapshot is older than the first buffered event (lastUpdateId < its U), get it again;
4. drop buffered events with u <= lastUpdateId; the first applied must have U <= lastUpdateId+1 <= u;
5. after that each event's U must be the previous u + 1: a gap means the book is lost -> resync (2.).
Quantity 0 removes a level. Connections are cut by Binance after 24 h: the adapter reconnects on its
own after `max_session_s` (default 23 h), before the cut.

Captures for replay: one WebSocket message per line (raw or combined `{"stream":..,"data":..}`), and
REST snapshots as a line `{"lastUpdateId":..,"symbol":"BTCUSDT","bids":..,"asks":..}` (the REST
answer plus the symbol it was asked for).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import httpx
import msgspec
import orjson
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from common.ticks import FeedEventKind, FeedItem, StatusEvent, now_us
from marketdata.feeds.base import FeedDisconnected, adapter_register
from marketdata.feeds.venue import SORTED_BOOK, JsonVenueParser, Parsed, Reject, SymbolMap, WireInt, quote_new

MAX_BUFFER = 10_000  # events buffered while waiting for a snapshot


class _DepthUpdate(msgspec.Struct, gc=False):
    """A diff-depth event with the documented types: what the fast path reads (levels stay strings,
    converted by float() as on the general path). `data` must be absent or null: a raw event with a
    `data` object is read as that object by the general path."""

    e: Literal["depthUpdate"]
    E: WireInt
    s: str
    U: WireInt
    u: WireInt
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]
    data: None = None


class _Combined(msgspec.Struct, gc=False):
    data: _DepthUpdate


_decode_combined = msgspec.json.Decoder(_Combined).decode
_decode_raw = msgspec.json.Decoder(_DepthUpdate).decode


class BinanceParser(JsonVenueParser):
    name = "binance"
    # Books kept sorted (venue.SortedBookLogic), on the compiled core when it is built (the tests run
    # both): the same quotes as venue.Book, for fewer instructions a message.
    book_class = SORTED_BOOK

    def __init__(self, broker: str, symbols: SymbolMap) -> None:
        super().__init__(broker, symbols)
        self.last_u: dict[str, int] = {}  # symbol -> last applied update id (synced books only)
        self.buffer: dict[str, list[dict[str, Any]]] = {}
        self.ticker_u: dict[str, int] = {}
        self.needs_snapshot: set[str] = set()  # symbols whose book must be (re)fetched over REST
        self.fresh: set[str] = set()  # synced from a snapshot, no event applied since: U <= last+1 <= u
        self._combined = True  # the shape the last fast-path message came in: tried first

    def parse(self, raw: bytes | str, ts_recv: int) -> list[Parsed]:
        if self.fast:
            msg = self._decode(raw)
            if msg is not None:
                out = self._depth_update(msg, ts_recv)
                if out is not None:
                    return out
        return super().parse(raw, ts_recv)

    def _decode(self, raw: bytes | str) -> _DepthUpdate | None:
        """The diff-depth event of a combined-stream or raw message, None if it is not one that
        decodes into _DepthUpdate (both shapes are tried, the last one seen first)."""
        combined = self._combined
        try:
            return _decode_combined(raw).data if combined else _decode_raw(raw)
        except (msgspec.DecodeError, TypeError):  # ValidationError is a DecodeError
            pass
        self._combined = not combined
        try:
            return _decode_raw(raw) if combined else _decode_combined(raw).data
        except (msgspec.DecodeError, TypeError):
            return None

    def _depth_update(self, msg: _DepthUpdate, ts_recv: int) -> list[Parsed] | None:
        """depth_update() for a typed event of a synced symbol: the same steps in the same order (a
        test runs both paths on hostile corpora). None: not synced, the general path buffers it."""
        name = msg.s
        symbols = self.symbols
        spec = symbols.specs.get(name) or symbols.get(name)  # the mapping's own dict first: no call
        if spec is None:
            return [self.unknown(name)]
        last = self.last_u.get(name)
        if last is None:
            return None
        first_id, final_id = msg.U, msg.u
        if final_id <= last:
            return [Reject("duplicate", f"u={final_id} <= {last}")]
        fresh = self.fresh
        if first_id != last + 1 and not (name in fresh and first_id <= last + 1):
            return self._lost(name, f"U={first_id}, expected {last + 1}")
        if fresh:
            fresh.discard(name)
        try:
            book = self.books[name]
            scale = book.scale
            set_bid = book.set_bid
            for price, qty in msg.b:
                set_bid(round(float(price) * scale), float(qty))
            set_ask = book.set_ask
            for price, qty in msg.a:
                set_ask(round(float(price) * scale), float(qty))
        except (KeyError, ValueError, OverflowError):  # as in message(): a price like 1e999
            return [Reject("garbled", "bad fields")]
        self.last_u[name] = final_id
        self.seq += 1
        q = book.quote(self.broker, spec.instrument, msg.E * 1000, ts_recv, self.seq)
        return [q] if q is not None else []

    def message(self, msg: dict[str, Any], ts_recv: int) -> list[Parsed]:
        data = msg.get("data")
        if isinstance(data, dict):
            msg = data
        try:
            if msg.get("e") == "depthUpdate":
                return self.depth_update(msg, ts_recv)
            if "lastUpdateId" in msg:
                return self.snapshot(str(msg["symbol"]), msg, ts_recv)
            if "b" in msg and "a" in msg and "u" in msg:
                return self.book_ticker(msg, ts_recv)
        except (KeyError, TypeError, ValueError, IndexError, OverflowError):  # Overflow: a price like 1e999
            return [Reject("garbled", "bad fields")]
        return []  # subscription results and the like

    def book_ticker(self, msg: dict[str, Any], ts_recv: int) -> list[Parsed]:
        name = msg["s"]
        spec = self.symbols.get(name)
        if spec is None:
            return [self.unknown(name)]
        u = int(msg["u"])
        last = self.ticker_u.get(name)
        if last is not None and u <= last:
            return [Reject("duplicate" if u == last else "out_of_order", f"u={u}")]
        self.ticker_u[name] = u
        # Spot bookTicker carries no event time; futures streams send E (ms).
        ts = int(msg["E"]) * 1000 if "E" in msg else ts_recv
        self.seq += 1
        return [
            quote_new(
                self.broker,
                spec.instrument,
                float(msg["b"]),
                float(msg["a"]),
                float(msg["B"]),
                float(msg["A"]),
                ts,
                ts_recv,
                self.seq,
            )
        ]

    def snapshot(self, name: str, msg: dict[str, Any], ts_recv: int) -> list[Parsed]:
        spec = self.symbols.get(name)
        if spec is None:
            return [self.unknown(name)]
        last_id = int(msg["lastUpdateId"])
        buffered = self.buffer.pop(name, [])
        if buffered and last_id < int(buffered[0]["U"]):
            # The snapshot is older than what we hold: fetch it again (keep the buffer).
            self.buffer[name] = buffered
            self.needs_snapshot.add(name)
            return [Reject("stale_snapshot", f"lastUpdateId={last_id} < U={buffered[0]['U']}")]
        book = self.book(spec)
        book.clear()
        scale, set_bid, set_ask = book.scale, book.set_bid, book.set_ask
        for price, qty in msg["bids"]:
            set_bid(round(float(price) * scale), float(qty))
        for price, qty in msg["asks"]:
            set_ask(round(float(price) * scale), float(qty))
        self.last_u[name] = last_id
        self.needs_snapshot.discard(name)
        self.fresh.add(name)
        out: list[Parsed] = []
        ts = ts_recv
        first = True
        for event in buffered:
            if int(event["u"]) <= last_id:
                continue
            if first and not int(event["U"]) <= last_id + 1:
                return self._lost(name, f"first event U={event['U']} > lastUpdateId+1={last_id + 1}")
            first = False
            self.fresh.discard(name)
            self._apply(name, event)
            ts = int(event["E"]) * 1000
        q = self.emit(spec, book, ts, ts_recv)
        if q is not None:
            out.append(q)
        return out

    def _lost(self, name: str, detail: str) -> list[Parsed]:
        self.last_u.pop(name, None)
        self.buffer[name] = []
        self.needs_snapshot.add(name)
        book = self.books.get(name)
        if book is not None:
            book.clear()
        return [Reject("seq_gap", detail)]

    def _apply(self, name: str, event: dict[str, Any]) -> None:
        book = self.books[name]
        scale, set_bid, set_ask = book.scale, book.set_bid, book.set_ask
        for price, qty in event["b"]:
            set_bid(round(float(price) * scale), float(qty))
        for price, qty in event["a"]:
            set_ask(round(float(price) * scale), float(qty))
        self.last_u[name] = int(event["u"])

    def depth_update(self, msg: dict[str, Any], ts_recv: int) -> list[Parsed]:
        name = msg["s"]
        spec = self.symbols.get(name)
        if spec is None:
            return [self.unknown(name)]
        last = self.last_u.get(name)
        if last is None:  # not synced yet: buffer until the snapshot arrives
            buf = self.buffer.setdefault(name, [])
            if len(buf) >= MAX_BUFFER:
                del buf[0]
            buf.append(msg)
            if name not in self.books or not self.books[name].bids:
                self.needs_snapshot.add(name)
            return []
        first_id, final_id = int(msg["U"]), int(msg["u"])
        if final_id <= last:
            return [Reject("duplicate", f"u={final_id} <= {last}")]
        if first_id != last + 1 and not (name in self.fresh and first_id <= last + 1):
            return self._lost(name, f"U={first_id}, expected {last + 1}")
        self.fresh.discard(name)
        self._apply(name, msg)
        q = self.emit(spec, self.books[name], int(msg["E"]) * 1000, ts_recv)
        return [q] if q is not None else []


class BinanceFeed:
    """Params: ws_url, rest_url, stream ("depth" | "bookTicker"), heartbeat_timeout_s, max_session_s,
    symbols (venue symbols like BTCUSDT)."""

    def __init__(
        self,
        broker: str,
        params: dict[str, Any],
        *,
        on_reject: Callable[[str, str], None] | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.broker = broker
        self.ws_url = str(params.get("ws_url", "wss://stream.binance.com:9443")).rstrip("/")
        self.rest_url = str(params.get("rest_url", "https://api.binance.com")).rstrip("/")
        self.stream = str(params.get("stream", "depth"))
        self.heartbeat_timeout_s = float(params.get("heartbeat_timeout_s", 30.0))
        self.max_session_s = float(params.get("max_session_s", 23 * 3600))
        self.symbols = SymbolMap.from_params(params)
        self.on_reject = on_reject
        self.parser = BinanceParser(broker, self.symbols)
        self.sessions = 0

    def _url(self) -> str:
        suffix = "@depth@100ms" if self.stream == "depth" else "@bookTicker"
        streams = "/".join(s.lower() + suffix for s in self.symbols.venue_symbols())
        return f"{self.ws_url}/stream?streams={streams}"

    async def _snapshot(self, client: httpx.AsyncClient, name: str) -> bytes:
        r = await client.get(f"{self.rest_url}/api/v3/depth", params={"symbol": name, "limit": 1000})
        if r.status_code != 200:
            raise FeedDisconnected(f"Binance depth snapshot for {name}: HTTP {r.status_code}")
        body = r.json()
        body["symbol"] = name
        return orjson.dumps(body)

    async def connect(self) -> AsyncIterator[FeedItem]:
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                while True:  # one WebSocket session per turn: renewed before Binance's 24 h cut
                    async for item in self._session(client):
                        yield item
        except (OSError, WebSocketException, httpx.HTTPError) as exc:
            raise FeedDisconnected(f"Binance: {exc!r}") from exc

    async def _session(self, client: httpx.AsyncClient) -> AsyncIterator[FeedItem]:
        seq = self.parser.seq  # quote numbers go on across sessions: the validator sees one feed
        self.parser = parser = BinanceParser(self.broker, self.symbols)
        parser.seq = seq
        self.sessions += 1
        async with ws_connect(self._url(), open_timeout=10, max_size=2**22) as ws:
            yield StatusEvent(self.broker, FeedEventKind.CONNECTED, now_us(), f"Binance {self.stream} stream")
            ends = time.monotonic() + self.max_session_s
            last_heard = time.monotonic()
            while (left := ends - time.monotonic()) > 0:
                try:
                    raw = await asyncio.wait_for(ws.recv(), min(left, self.heartbeat_timeout_s))
                except TimeoutError:
                    if time.monotonic() - last_heard >= self.heartbeat_timeout_s:
                        raise FeedDisconnected(f"Binance: nothing for {self.heartbeat_timeout_s:g} s") from None
                    continue
                last_heard = time.monotonic()
                for item in parser.parse(raw, now_us()):
                    if isinstance(item, Reject):
                        if self.on_reject is not None:
                            self.on_reject(item.reason, item.detail)
                    else:
                        yield item
                for name in sorted(parser.needs_snapshot):  # at most one REST call per symbol and message
                    parser.needs_snapshot.discard(name)
                    for item in parser.parse(await self._snapshot(client, name), now_us()):
                        if isinstance(item, Reject):
                            if self.on_reject is not None:
                                self.on_reject(item.reason, item.detail)
                        else:
                            yield item


def _factory(broker: str, params: dict[str, Any]) -> BinanceFeed:
    return BinanceFeed(broker, params, on_reject=params.get("on_reject"), credentials=params.get("credentials"))


adapter_register("binance", _factory)
