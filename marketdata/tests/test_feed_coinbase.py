"""The Coinbase Advanced Trade adapter against a local WebSocket server."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.server import ServerConnection

from marketdata.feeds.coinbase import CoinbaseFeed
from marketdata.feeds.venue import SymbolSpec
from testing.support import await_for

from . import wire as w
from .compiled_books import coinbase_book_class  # noqa: F401 - every test on both sorted books
from .feedservers import Collected, consuming, ws_server

pytestmark = pytest.mark.asyncio

BTC = SymbolSpec("BTC-USD", "BTCUSD", 2, 1.0)
SNAP = [("bid", "65000.01", "1.5"), ("bid", "64999.50", "2"), ("offer", "65000.50", "0.7"), ("offer", "65001.00", "3")]


def _feed(port: int, c: Collected, **params: object) -> CoinbaseFeed:
    p = {"ws_url": f"ws://127.0.0.1:{port}", "symbols": [BTC], **params}
    return CoinbaseFeed("coinbasebroker", p, on_reject=c.on_reject)


async def test_level2_and_ticker_give_quotes_and_depth_duplicates_are_dropped_and_a_gap_resyncs():
    subscriptions: list[list[dict[str, object]]] = []

    async def server(ws: ServerConnection) -> None:
        subs = [json.loads(await ws.recv()) for _ in range(3)]
        subscriptions.append(subs)
        if len(subscriptions) == 1:
            await ws.send(w.coinbase_l2(0, "snapshot", "BTC-USD", SNAP))
            await ws.send(w.coinbase_l2(1, "update", "BTC-USD", [("offer", "65000.50", "0"), ("bid", "65000.20", "1")]))
            await ws.send(w.coinbase_l2(1, "update", "BTC-USD", [("bid", "70000", "1")]))  # duplicate
            await ws.send(w.coinbase_ticker(2, "BTC-USD", "65000.20", "65001.00"))
            await ws.send(w.coinbase_heartbeat(3))
            await ws.send(w.coinbase_l2(4, "update", "ETH-USD", [("bid", "3000", "1")]))
            await ws.send(w.coinbase_l2(7, "update", "BTC-USD", [("bid", "65000.30", "1")]))  # 5 and 6 lost
        else:
            await ws.send(w.coinbase_l2(0, "snapshot", "BTC-USD", SNAP[:1] + SNAP[2:3]))
        await ws.wait_closed()

    c = Collected()
    async with ws_server(server) as port:
        feed = _feed(port, c)
        async with consuming(c, feed.connect()):
            await await_for(lambda: len(c.quotes) == 4, what="quotes after the resync")
    assert [s["channel"] for s in subscriptions[0]] == ["level2", "ticker", "heartbeats"]
    assert subscriptions[0][0]["product_ids"] == ["BTC-USD"]
    assert len(subscriptions) == 2 and feed.resyncs == 1
    snap, update, ticker, resynced = c.quotes
    assert snap.depth == (((65000.01, 1.5), (64999.5, 2.0)), ((65000.5, 0.7), (65001.0, 3.0)))
    assert update.depth == (((65000.2, 1.0), (65000.01, 1.5), (64999.5, 2.0)), ((65001.0, 3.0),))
    assert (ticker.bid, ticker.ask, ticker.depth) == (65000.2, 65001.0, None)
    assert resynced.depth == (((65000.01, 1.5),), ((65000.5, 0.7),))
    assert [q.seq for q in c.quotes] == [1, 2, 3, 4]  # numbering goes on across the resync
    assert c.reasons() == ["duplicate", "unknown_symbol", "seq_gap"]
    assert [e.kind.value for e in c.events] == ["connected", "heartbeat"]


async def test_it_disconnects_when_heartbeats_stop():
    async def server(ws: ServerConnection) -> None:
        for _ in range(3):
            await ws.recv()
        await ws.wait_closed()

    c = Collected()
    async with ws_server(server) as port, consuming(c, _feed(port, c, heartbeat_timeout_s=0.3).connect()):
        await await_for(c.done.is_set, what="the heartbeat timeout")
    assert "no heartbeat" in str(c.ended)
