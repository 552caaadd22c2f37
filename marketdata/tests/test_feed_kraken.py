"""The Kraken v2 book adapter against a local WebSocket server; checksums from Kraken's documented
algorithm computed on decimal strings (wire.kraken_checksum), not by the adapter's code."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest
from order_book import OrderBook
from websockets.asyncio.server import ServerConnection

from marketdata.feeds.kraken import KrakenFeed, KrakenParser, book_checksum
from marketdata.feeds.venue import SymbolMap, SymbolSpec
from testing.support import await_for

from . import wire as w
from .compiled_books import kraken_book_class  # noqa: F401 - every test on both Kraken books
from .feedservers import Collected, consuming, ws_server

pytestmark = pytest.mark.asyncio

BTC = SymbolSpec("BTC/USD", "BTCUSD", 1, 1.0, 8)
BIDS = [("45283.5", "0.10000000"), ("45283.4", "1.50000000"), ("45282.1", "0.00100000")]
ASKS = [("45285.2", "0.00100000"), ("45286.4", "1.50000000"), ("45287.0", "3.20000000")]


def _feed(port: int, c: Collected, **params: object) -> KrakenFeed:
    p = {"ws_url": f"ws://127.0.0.1:{port}", "symbols": [BTC], "depth": 3, **params}
    return KrakenFeed("krakenbroker", p, on_reject=c.on_reject)


async def test_its_checksum_agrees_with_an_independent_implementation_of_kraken_s_algorithm():
    # The order-book package (C, by the cryptofeed author) implements Kraken's checksum on Decimals.
    rng = random.Random(7)
    for _ in range(50):
        bids = {f"{45000 - rng.randint(0, 900) / 10:.1f}": f"{rng.randint(1, 10**9) / 1e8:.8f}" for _ in range(15)}
        asks = {f"{45100 + rng.randint(0, 900) / 10:.1f}": f"{rng.randint(1, 10**9) / 1e8:.8f}" for _ in range(15)}
        reference = OrderBook(checksum_format="KRAKEN", max_depth=10)
        reference.bids = {Decimal(p): Decimal(q) for p, q in bids.items()}
        reference.asks = {Decimal(p): Decimal(q) for p, q in asks.items()}
        parser = KrakenParser("k", SymbolMap([BTC]))
        book = parser.book(BTC)
        for p, q in bids.items():
            book.set(book.bids, book.tick(p), float(q))
        for p, q in asks.items():
            book.set(book.asks, book.tick(p), float(q))
        assert book_checksum(book, BTC) == reference.checksum() == w.kraken_checksum(bids, asks, 1, 8)


async def test_snapshot_and_updates_keep_a_truncated_book_and_a_mismatch_resubscribes():
    sent: list[dict[str, object]] = []
    venue = w.KrakenBook(depth=3)

    async def server(ws: ServerConnection) -> None:
        sent.append(json.loads(await ws.recv()))
        await ws.send(
            json.dumps({"method": "subscribe", "result": {"channel": "book", "symbol": "BTC/USD"}, "success": True})
        )
        await ws.send(w.kraken_book("snapshot", "BTC/USD", BIDS, ASKS, venue.apply(BIDS, ASKS)))
        await ws.send(json.dumps({"channel": "heartbeat"}))
        new_bid = [("45284.0", "2.00000000")]  # a better bid pushes the worst out of a depth-3 book
        await ws.send(w.kraken_book("update", "BTC/USD", new_bid, [], venue.apply(new_bid, [])))
        gone = [("45285.2", "0")]
        await ws.send(w.kraken_book("update", "BTC/USD", [], gone, venue.apply([], gone)))
        await ws.send(w.kraken_book("update", "BTC/USD", [("45280.0", "1")], [], 12345))  # wrong checksum
        await ws.send(w.kraken_book("update", "BTC/USD", [("45284.0", "5")], [], 1))  # ignored until resync
        sent.append(json.loads(await ws.recv()))
        sent.append(json.loads(await ws.recv()))
        fresh = w.KrakenBook(depth=3)
        await ws.send(w.kraken_book("snapshot", "BTC/USD", BIDS, ASKS, fresh.apply(BIDS, ASKS)))
        await ws.send(w.kraken_book("snapshot", "ZZZ/USD", BIDS, ASKS, 0))
        await ws.wait_closed()

    c = Collected()
    async with ws_server(server) as port, consuming(c, _feed(port, c).connect()):
        await await_for(lambda: len(c.quotes) == 4 and len(c.rejects) == 3, what="the resynced book")
    assert sent[0] == {
        "method": "subscribe",
        "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 3, "snapshot": True},
    }
    assert [m["method"] for m in sent[1:]] == ["unsubscribe", "subscribe"]
    snap, better, removed, resynced = c.quotes
    assert snap.depth == (
        ((45283.5, 0.1), (45283.4, 1.5), (45282.1, 0.001)),
        ((45285.2, 0.001), (45286.4, 1.5), (45287.0, 3.2)),
    )
    assert better.depth is not None and better.depth[0] == ((45284.0, 2.0), (45283.5, 0.1), (45283.4, 1.5))
    assert removed.ask == 45286.4 and removed.ts_broker == 1796040000123456
    assert resynced.depth == snap.depth
    assert c.reasons() == ["checksum_mismatch", "awaiting_snapshot", "unknown_symbol"]
    assert [e.kind.value for e in c.events] == ["connected", "heartbeat"]


async def test_silence_ends_the_connection():
    async def server(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.wait_closed()

    c = Collected()
    async with ws_server(server) as port, consuming(c, _feed(port, c, heartbeat_timeout_s=0.3).connect()):
        await await_for(c.done.is_set, what="the timeout")
    assert "nothing for" in str(c.ended)
