"""The OANDA v20 adapter against a local chunked-HTTP pricing stream."""

from __future__ import annotations

import asyncio

import pytest

from common.ticks import FeedEventKind
from marketdata.feeds.oanda import OandaFeed
from marketdata.feeds.venue import SymbolSpec
from testing.support import await_for

from . import wire as w
from .feedservers import Collected, chunk, consuming, http_stream_server

pytestmark = pytest.mark.asyncio

SYMBOLS = [SymbolSpec("EUR_USD", "EURUSD", 5, 0.0001), SymbolSpec("EUR_JPY", "EURJPY", 3, 0.01)]
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _feed(port: int, c: Collected, **params: object) -> OandaFeed:
    p = {"url": f"http://127.0.0.1:{port}", "account": "101-004-1", "symbols": SYMBOLS, **params}
    return OandaFeed("oandabroker", p, on_reject=c.on_reject, credentials={"token": "s3cret"})


async def test_it_streams_prices_in_both_shapes_with_depth_and_heartbeats():
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        requests.append(head)
        writer.write(HEAD)
        line = (w.oanda_price("EUR_USD", "1.08500", "1.08510") + "\n").encode()
        # One line split across two chunks, then two lines in one chunk: framing is by newline only.
        writer.write(chunk(line[:30]) + chunk(line[30:]))
        writer.write(
            chunk((w.oanda_heartbeat() + "\n" + w.oanda_price_legacy("EUR_JPY", "164.000", "164.020")).encode())
        )
        writer.write(chunk(b"\n" + (w.oanda_price("GBP_CHF", "1.1", "1.2") + "\n").encode()))
        await writer.drain()
        await reader.read()  # hold the stream open

    c = Collected()
    async with http_stream_server(handler) as port, consuming(c, _feed(port, c).connect()):
        await await_for(lambda: len(c.quotes) == 2 and c.rejects, what="two prices and a reject")
    head = requests[0].decode()
    assert head.startswith("GET /v3/accounts/101-004-1/pricing/stream?instruments=EUR_USD%2CEUR_JPY ")
    assert "\r\nauthorization: Bearer s3cret\r\n" in head.replace("Authorization:", "authorization:")
    eur, jpy = c.quotes
    assert (eur.instrument, eur.bid, eur.ask, eur.bid_size) == ("EURUSD", 1.085, 1.0851, 1e6)
    assert eur.depth == (((1.085, 1e6), (1.08499, 5e6)), ((1.0851, 1e6), (1.08511, 5e6)))
    assert eur.ts_broker == 1796040000123456  # nanoseconds truncated to µs
    assert (jpy.instrument, jpy.bid, jpy.ask) == ("EURJPY", 164.0, 164.02)
    assert [e.kind for e in c.events] == [FeedEventKind.CONNECTED, FeedEventKind.HEARTBEAT]
    assert c.reasons() == ["unknown_symbol"]


async def test_it_disconnects_when_heartbeats_stop():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(HEAD + chunk((w.oanda_heartbeat() + "\n").encode()))
        await writer.drain()
        await reader.read()

    c = Collected()
    async with http_stream_server(handler) as port, consuming(c, _feed(port, c, heartbeat_timeout_s=0.3).connect()):
        await await_for(c.done.is_set, what="the heartbeat timeout")
    assert "no heartbeat" in str(c.ended)


async def test_a_disconnect_in_the_middle_of_a_line_yields_no_partial_price():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        line = w.oanda_price("EUR_USD", "1.08500", "1.08510").encode()
        writer.write(HEAD + chunk(line[:40]))
        await writer.drain()

    c = Collected()
    async with http_stream_server(handler) as port, consuming(c, _feed(port, c).connect()):
        await await_for(c.done.is_set, what="the disconnect")
    assert c.ended is not None and c.quotes == []


async def test_a_refused_token_is_reported():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        body = b'{"errorMessage":"Insufficient authorization to perform request."}'
        writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    c = Collected()
    async with http_stream_server(handler) as port, consuming(c, _feed(port, c).connect()):
        await await_for(c.done.is_set, what="the refusal")
    assert "HTTP 401" in str(c.ended)
