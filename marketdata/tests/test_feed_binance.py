"""The Binance adapter against a local WebSocket stream and a local REST depth endpoint."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.server import ServerConnection

from marketdata.feeds.binance import BinanceFeed
from marketdata.feeds.venue import SymbolSpec
from testing.support import await_for

from . import wire as w
from .compiled_books import binance_book_class  # noqa: F401 - every test on both sorted books
from .feedservers import Collected, consuming, http_stream_server, ws_server

pytestmark = pytest.mark.asyncio

BTC = SymbolSpec("BTCUSDT", "BTCUSD", 2, 1.0)


class Rest:
    """GET /api/v3/depth answers with the next prepared snapshot."""

    def __init__(self, *snapshots: dict[str, object]) -> None:
        self.snapshots = list(snapshots)
        self.calls: list[str] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        self.calls.append(head.split(b" ")[1].decode())
        body = json.dumps(self.snapshots.pop(0) if len(self.snapshots) > 1 else self.snapshots[0]).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        writer.write(body)
        await writer.drain()


def _feed(ws_port: int, rest_port: int, c: Collected, **params: object) -> BinanceFeed:
    p = {
        "ws_url": f"ws://127.0.0.1:{ws_port}",
        "rest_url": f"http://127.0.0.1:{rest_port}",
        "symbols": [BTC],
        **params,
    }
    return BinanceFeed("binancebroker", p, on_reject=c.on_reject)


async def test_diff_depth_syncs_from_a_snapshot_drops_old_events_and_resyncs_on_a_gap():
    paths: list[str] = []
    rest = Rest(
        w.binance_snapshot(103, [["65000.00", "1"], ["64999.00", "2"]], [["65001.00", "1"]]),
        w.binance_snapshot(300, [["65100.00", "1"]], [["65101.00", "1"]]),
    )

    async def stream(ws: ServerConnection) -> None:
        paths.append(ws.request.path if ws.request else "")
        await ws.send(w.binance_depth_update("BTCUSDT", 100, 102, [["65000.00", "9"]], []))  # older than snapshot
        await ws.send(w.binance_depth_update("BTCUSDT", 103, 105, [["65000.50", "3"]], []))  # straddles 104
        await await_for(lambda: len(rest.calls) == 1, what="the first snapshot")
        await ws.send(w.binance_depth_update("BTCUSDT", 106, 106, [], [["65001.00", "0"], ["65002.00", "4"]]))
        await ws.send(w.binance_depth_update("BTCUSDT", 106, 106, [], [["65001.50", "9"]]))  # duplicate
        await ws.send(w.binance_depth_update("BTCUSDT", 110, 111, [["65000.10", "1"]], []))  # gap: 107-109
        await await_for(lambda: len(rest.calls) == 2, what="the resync")
        await ws.send(w.binance_depth_update("BTCUSDT", 301, 301, [["65100.50", "1"]], []))
        await ws.wait_closed()

    c = Collected()
    async with (
        ws_server(stream) as ws_port,
        http_stream_server(rest) as rest_port,
        consuming(c, _feed(ws_port, rest_port, c).connect()),
    ):
        await await_for(lambda: len(c.quotes) >= 5, what="quotes after the resync")
    assert paths == ["/stream?streams=btcusdt@depth@100ms"]
    assert rest.calls[0] == "/api/v3/depth?symbol=BTCUSDT&limit=1000"
    synced, straddling, removed, resynced, after = c.quotes[:5]
    # 100-102 was buffered and dropped (u <= 103); 103-105 straddles lastUpdateId + 1 and applies.
    assert synced.depth == (((65000.0, 1.0), (64999.0, 2.0)), ((65001.0, 1.0),))
    assert straddling.depth == (((65000.5, 3.0), (65000.0, 1.0), (64999.0, 2.0)), ((65001.0, 1.0),))
    assert (removed.ask, removed.ask_size) == (65002.0, 4.0)
    assert resynced.depth == (((65100.0, 1.0),), ((65101.0, 1.0),))
    assert after.bid == 65100.5
    assert c.reasons() == ["duplicate", "seq_gap"]


async def test_book_ticker_gives_top_of_book_and_drops_repeated_update_ids():
    async def stream(ws: ServerConnection) -> None:
        for u, bid in ((10, "65000.10"), (10, "65000.10"), (9, "64000.00"), (11, "65000.20")):
            await ws.send(
                json.dumps(
                    {
                        "stream": "btcusdt@bookTicker",
                        "data": json.loads(w.binance_book_ticker("BTCUSDT", u, bid, "65000.30")),
                    }
                )
            )
        await ws.send(w.binance_book_ticker("ETHBTC", 1, "0.05", "0.06"))
        await ws.wait_closed()

    c = Collected()
    async with ws_server(stream) as ws_port, consuming(c, _feed(ws_port, 1, c, stream="bookTicker").connect()):
        await await_for(lambda: len(c.rejects) == 3, what="three rejects")
    assert [q.bid for q in c.quotes] == [65000.1, 65000.2]
    assert c.reasons() == ["duplicate", "out_of_order", "unknown_symbol"]
    assert c.quotes[0].depth is None and c.quotes[0].ts_broker == c.quotes[0].ts_recv


async def test_it_reconnects_on_its_own_before_the_24_hour_cut_and_times_out_on_silence():
    connections: list[int] = []

    async def stream(ws: ServerConnection) -> None:
        connections.append(1)
        await ws.send(w.binance_book_ticker("BTCUSDT", len(connections), "65000.10", "65000.30"))
        await ws.wait_closed()

    c = Collected()
    async with ws_server(stream) as ws_port:
        feed = _feed(ws_port, 1, c, stream="bookTicker", max_session_s=0.2, heartbeat_timeout_s=0.3)
        async with consuming(c, feed.connect()):
            await await_for(lambda: len(c.quotes) >= 2, what="a planned reconnect")
    assert feed.sessions >= 2 and len(c.quotes) >= 2
    assert [q.seq for q in c.quotes] == sorted({q.seq for q in c.quotes})  # numbering goes on

    silent = Collected()
    async with ws_server(lambda ws: ws.wait_closed()) as ws_port:
        feed = _feed(ws_port, 1, silent, stream="bookTicker", heartbeat_timeout_s=0.3)
        async with consuming(silent, feed.connect()):
            await await_for(silent.done.is_set, what="the silence timeout")
    assert "nothing for" in str(silent.ended)
