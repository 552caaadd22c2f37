"""OANDA v20 pricing stream: chunked HTTP, one JSON object per line, bearer token.

GET {url}/v3/accounts/{account}/pricing/stream?instruments=EUR_USD,USD_JPY with
`Authorization: Bearer <token>`. Lines are PRICE or HEARTBEAT (every 5 s). PRICE comes in two
documented shapes, both read here:
- ClientPrice: `time`, `bids`/`asks` lists of {price, liquidity} (best first), closeout prices;
- Price (the deprecated fields some accounts still stream): `timestamp`, `bids`/`asks` and/or
  `baseBid`/`baseAsk` without liquidity (a size of 1 unit is reported then, since sizes must be > 0).
A PRICE replaces the instrument's whole book. No line for `heartbeat_timeout_s` (default 10 s, two
missed heartbeats): the stream is dead, reconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import httpx
import msgspec

from common.ticks import FeedEventKind, FeedItem, StatusEvent, now_us
from marketdata.feeds.base import FeedDisconnected, adapter_register
from marketdata.feeds.venue import JsonVenueParser, Parsed, Reject, SymbolMap, WireInt, iso_to_us, quote_new


def _levels(buckets: object, reverse: bool) -> tuple[tuple[float, float], ...]:
    if not isinstance(buckets, list):
        raise TypeError("buckets")
    levels = [(float(b["price"]), float(b.get("liquidity", 1.0))) for b in buckets]
    levels.sort(reverse=reverse)
    return tuple(levels[:20])


class _Bucket(msgspec.Struct, gc=False):
    price: str
    liquidity: WireInt | float | str = 1.0


class _Price(msgspec.Struct, gc=False):
    """A ClientPrice line with the documented types: what the fast path reads (values converted by
    float() as on the general path). Anything else, the deprecated shape included, takes the general
    path."""

    type: Literal["PRICE"]
    instrument: str
    time: str
    bids: list[_Bucket]
    asks: list[_Bucket]


_decode_price = msgspec.json.Decoder(_Price).decode


def _bucket_levels(buckets: list[_Bucket], reverse: bool) -> tuple[tuple[float, float], ...]:
    levels = [(float(b.price), float(b.liquidity)) for b in buckets]
    levels.sort(reverse=reverse)
    return tuple(levels[:20])


class OandaParser(JsonVenueParser):
    name = "oanda"

    def __init__(self, broker: str, symbols: SymbolMap) -> None:
        super().__init__(broker, symbols)
        self.heartbeats = 0

    def parse(self, raw: bytes | str, ts_recv: int) -> list[Parsed]:
        if self.fast:
            try:
                msg = _decode_price(raw)
            except (msgspec.DecodeError, TypeError):  # ValidationError is a DecodeError
                pass
            else:
                # The general path reads `timestamp` when `time` is empty and the deprecated fields
                # when a side is empty: those go there.
                if msg.time and msg.bids and msg.asks:
                    return self._price(msg, ts_recv)
        return super().parse(raw, ts_recv)

    def _price(self, msg: _Price, ts_recv: int) -> list[Parsed]:
        """message() for a typed PRICE: the same steps in the same order (a test runs both paths on
        hostile corpora)."""
        name = msg.instrument
        spec = self.symbols.get(name)
        if spec is None:
            return [self.unknown(name)]
        try:
            ts = iso_to_us(msg.time)
            bids, asks = _bucket_levels(msg.bids, True), _bucket_levels(msg.asks, False)
        except (ValueError, IndexError):
            return [Reject("garbled", f"PRICE {name}")]
        self.seq += 1
        b, a = bids[0], asks[0]
        return [quote_new(self.broker, spec.instrument, b[0], a[0], b[1], a[1], ts, ts_recv, self.seq, (bids, asks))]

    def message(self, msg: dict[str, Any], ts_recv: int) -> list[Parsed]:
        kind = msg.get("type")
        if kind == "HEARTBEAT":
            self.heartbeats += 1
            return []
        if kind != "PRICE" and "instrument" not in msg:
            return []
        name = msg.get("instrument")
        spec = self.symbols.get(name) if isinstance(name, str) else None
        if spec is None:
            return [self.unknown(name)]
        try:
            ts = iso_to_us(msg.get("time") or msg["timestamp"])
            bids_raw, asks_raw = msg.get("bids"), msg.get("asks")
            if bids_raw and asks_raw:
                bids, asks = _levels(bids_raw, True), _levels(asks_raw, False)
            else:
                bid = msg.get("baseBid") or msg.get("closeoutBid")
                ask = msg.get("baseAsk") or msg.get("closeoutAsk")
                bids, asks = ((float(str(bid)), 1.0),), ((float(str(ask)), 1.0),)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            return [Reject("garbled", f"PRICE {name}")]
        self.seq += 1
        b, a = bids[0], asks[0]
        return [quote_new(self.broker, spec.instrument, b[0], a[0], b[1], a[1], ts, ts_recv, self.seq, (bids, asks))]


class OandaFeed:
    """Params: url (default the practice stream host), account, heartbeat_timeout_s, symbols;
    credentials: token."""

    def __init__(
        self,
        broker: str,
        params: dict[str, Any],
        *,
        on_reject: Callable[[str, str], None] | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.broker = broker
        self.url = str(params.get("url", "https://stream-fxpractice.oanda.com")).rstrip("/")
        self.account = str(params.get("account", ""))
        self.heartbeat_timeout_s = float(params.get("heartbeat_timeout_s", 10.0))
        self.symbols = SymbolMap.from_params(params)
        self.token = (credentials or {}).get("token", "")
        self.on_reject = on_reject
        self.parser = OandaParser(broker, self.symbols)

    async def connect(self) -> AsyncIterator[FeedItem]:
        self.parser = parser = OandaParser(self.broker, self.symbols)
        url = f"{self.url}/v3/accounts/{self.account}/pricing/stream"
        headers = {"Authorization": f"Bearer {self.token}", "Accept-Datetime-Format": "RFC3339"}
        query = {"instruments": ",".join(self.symbols.venue_symbols())}
        timeout = httpx.Timeout(10.0, read=self.heartbeat_timeout_s)
        try:
            async with (
                httpx.AsyncClient(timeout=timeout) as client,
                client.stream("GET", url, params=query, headers=headers) as response,
            ):
                if response.status_code != 200:
                    body = (await response.aread())[:200].decode("utf-8", "replace")
                    raise FeedDisconnected(f"OANDA stream: HTTP {response.status_code} {body}")
                yield StatusEvent(self.broker, FeedEventKind.CONNECTED, now_us(), "OANDA pricing stream")
                lines = response.aiter_lines()
                while True:
                    try:
                        line = await asyncio.wait_for(anext(lines), self.heartbeat_timeout_s)
                    except StopAsyncIteration:
                        raise FeedDisconnected("OANDA stream ended") from None
                    except TimeoutError:
                        raise FeedDisconnected(f"OANDA: no heartbeat for {self.heartbeat_timeout_s:g} s") from None
                    if not line.strip():
                        continue
                    beats = parser.heartbeats
                    for item in parser.parse(line, now_us()):
                        if isinstance(item, Reject):
                            if self.on_reject is not None:
                                self.on_reject(item.reason, item.detail)
                        else:
                            yield item
                    if parser.heartbeats != beats:
                        yield StatusEvent(self.broker, FeedEventKind.HEARTBEAT, now_us())
        except httpx.HTTPError as exc:
            raise FeedDisconnected(f"OANDA stream: {exc!r}") from exc


def _factory(broker: str, params: dict[str, Any]) -> OandaFeed:
    return OandaFeed(broker, params, on_reject=params.get("on_reject"), credentials=params.get("credentials"))


adapter_register("oanda", _factory)
