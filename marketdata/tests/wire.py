"""Real wire messages of each venue, built the way the venue documents them (tests, benchmark).

Independent of the adapters' code: FIX is encoded by simplefix, Kraken checksums are computed from
decimal strings exactly as Kraken's documentation describes.
"""

from __future__ import annotations

import json
import random
import time
import zlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import simplefix  # type: ignore[import-untyped]


def fix_time(t: float | None = None) -> str:
    t = time.time() if t is None else t
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}"


def fix_msg(
    msg_type: str,
    seq: int,
    body: list[tuple[int, Any]],
    *,
    sender: str = "MDSERVER",
    target: str = "BROKERWATCH",
    poss_dup: bool = False,
) -> bytes:
    m = simplefix.FixMessage()
    m.append_pair(8, "FIX.4.4", header=True)
    m.append_pair(35, msg_type, header=True)
    m.append_pair(49, sender, header=True)
    m.append_pair(56, target, header=True)
    m.append_pair(34, seq, header=True)
    if poss_dup:
        m.append_pair(43, "Y", header=True)
    m.append_pair(52, fix_time(), header=True)
    for tag, value in body:
        m.append_pair(tag, value)
    return bytes(m.encode())


def fix_snapshot(seq: int, symbol: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> bytes:
    body: list[tuple[int, Any]] = [(262, f"md-{symbol}"), (55, symbol), (268, len(bids) + len(asks))]
    for p, s in bids:
        body += [(269, 0), (270, p), (271, s)]
    for p, s in asks:
        body += [(269, 1), (270, p), (271, s)]
    return fix_msg("W", seq, body)


def fix_incremental(seq: int, entries: list[tuple[int, int, str, str, str]], *, poss_dup: bool = False) -> bytes:
    """entries: (MDUpdateAction 0/1/2, MDEntryType 0 bid / 1 offer, symbol, price, size)."""
    body: list[tuple[int, Any]] = [(268, len(entries))]
    for action, kind, symbol, p, s in entries:
        body += [(279, action), (269, kind), (55, symbol), (270, p), (271, s)]
    return fix_msg("X", seq, body, poss_dup=poss_dup)


def corrupt_checksum(frame: bytes) -> bytes:
    i = frame.rfind(b"\x0110=")
    bad = (int(frame[i + 4 : i + 7]) + 1) % 256
    return frame[: i + 4] + f"{bad:03d}".encode() + b"\x01"


def corrupt_body_length(frame: bytes) -> bytes:
    i = frame.find(b"\x019=")
    j = frame.find(b"\x01", i + 1)
    n = int(frame[i + 3 : j]) + 3
    return frame[: i + 3] + str(n).encode() + frame[j:]


def oanda_price(instrument: str, bid: str, ask: str, *, liquidity: int = 1_000_000, ts: str | None = None) -> str:
    return json.dumps(
        {
            "type": "PRICE",
            "time": ts or "2026-11-30T12:00:00.123456789Z",
            "bids": [{"price": bid, "liquidity": liquidity}, {"price": _step(bid, -1), "liquidity": liquidity * 5}],
            "asks": [{"price": ask, "liquidity": liquidity}, {"price": _step(ask, 1), "liquidity": liquidity * 5}],
            "closeoutBid": bid,
            "closeoutAsk": ask,
            "status": "tradeable",
            "tradeable": True,
            "instrument": instrument,
        }
    )


def oanda_price_legacy(instrument: str, bid: str, ask: str, *, ts: str = "2026-11-30T12:00:01.000000Z") -> str:
    """The Price shape: `timestamp` and base prices."""
    return json.dumps({"type": "PRICE", "instrument": instrument, "timestamp": ts, "baseBid": bid, "baseAsk": ask})


def oanda_heartbeat(ts: str = "2026-11-30T12:00:05.000000000Z") -> str:
    return json.dumps({"type": "HEARTBEAT", "time": ts})


def _step(price: str, ticks: int) -> str:
    d = Decimal(price)
    return str(d + ticks * Decimal(1).scaleb(d.as_tuple().exponent))  # type: ignore[arg-type]


def binance_book_ticker(symbol: str, u: int, bid: str, ask: str) -> str:
    return json.dumps({"u": u, "s": symbol, "b": bid, "B": "1.50000000", "a": ask, "A": "2.00000000"})


def binance_depth_update(
    symbol: str, first: int, last: int, bids: list[list[str]], asks: list[list[str]], *, event_ms: int | None = None
) -> str:
    data = {
        "e": "depthUpdate",
        "E": event_ms if event_ms is not None else int(time.time() * 1000),
        "s": symbol,
        "U": first,
        "u": last,
        "b": bids,
        "a": asks,
    }
    return json.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": data})


def binance_snapshot(last_update_id: int, bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    return {"lastUpdateId": last_update_id, "bids": bids, "asks": asks}


def kraken_checksum(bids: dict[str, str], asks: dict[str, str], price_precision: int, qty_precision: int) -> int:
    """Kraken's documented algorithm, on decimal strings: top 10 asks ascending, then bids descending."""

    def fmt(value: str, places: int) -> str:
        s = f"{Decimal(value):.{places}f}".replace(".", "")
        return s.lstrip("0")

    top_asks = sorted(asks.items(), key=lambda kv: Decimal(kv[0]))[:10]
    top_bids = sorted(bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)[:10]
    text = "".join(fmt(p, price_precision) + fmt(q, qty_precision) for p, q in top_asks + top_bids)
    return zlib.crc32(text.encode())


def kraken_book(
    kind: str,
    symbol: str,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    checksum: int,
    *,
    ts: str = "2026-11-30T12:00:00.123456Z",
) -> str:
    """Prices and quantities go out as JSON numbers (written from the decimal strings), as Kraken v2 sends them."""

    def levels(side: list[tuple[str, str]]) -> str:
        return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in side) + "]"

    extra = f',"timestamp":"{ts}"' if kind == "update" else ""
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}","bids":{levels(bids)},'
        f'"asks":{levels(asks)},"checksum":{checksum}{extra}}}]}}'
    )


class KrakenBook:
    """The venue side's book, to produce correct checksums for a stream of updates."""

    def __init__(self, depth: int = 10, price_precision: int = 1, qty_precision: int = 8) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.depth = depth
        self.pp, self.qp = price_precision, qty_precision

    def apply(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, q in levels:
                if Decimal(q) == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        for side, rev in ((self.bids, True), (self.asks, False)):
            keep = sorted(side, key=Decimal, reverse=rev)[: self.depth]
            for p in [p for p in side if p not in keep]:
                del side[p]
        return kraken_checksum(self.bids, self.asks, self.pp, self.qp)


def coinbase_l2(
    seq: int, kind: str, product: str, updates: list[tuple[str, str, str]], *, ts: str = "2026-11-30T12:00:00.5Z"
) -> str:
    return json.dumps(
        {
            "channel": "l2_data",
            "client_id": "",
            "timestamp": ts,
            "sequence_num": seq,
            "events": [
                {
                    "type": kind,
                    "product_id": product,
                    "updates": [
                        {"side": s, "event_time": ts, "price_level": p, "new_quantity": q} for s, p, q in updates
                    ],
                }
            ],
        }
    )


def coinbase_ticker(seq: int, product: str, bid: str, ask: str, *, ts: str = "2026-11-30T12:00:01Z") -> str:
    return json.dumps(
        {
            "channel": "ticker",
            "client_id": "",
            "timestamp": ts,
            "sequence_num": seq,
            "events": [
                {
                    "type": "update",
                    "tickers": [
                        {
                            "type": "ticker",
                            "product_id": product,
                            "price": bid,
                            "best_bid": bid,
                            "best_bid_quantity": "0.5",
                            "best_ask": ask,
                            "best_ask_quantity": "0.7",
                        }
                    ],
                }
            ],
        }
    )


def coinbase_heartbeat(seq: int, counter: int = 1) -> str:
    return json.dumps(
        {
            "channel": "heartbeats",
            "client_id": "",
            "timestamp": "2026-11-30T12:00:02Z",
            "sequence_num": seq,
            "events": [{"current_time": "2026-11-30 12:00:02 +0000 UTC", "heartbeat_counter": counter}],
        }
    )


# Streams of each venue's usual messages (the benchmark bench.feeds and the fast-path tests).
NOW_MS = int(time.time() * 1000)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}000Z"


def fix_stream(n: int, rng: random.Random) -> list[bytes]:
    msgs = [fix_snapshot(1, "EUR/USD", [("1.08500", "1000000")], [("1.08510", "1000000")])]
    bid = 108500
    for i in range(n):
        old, bid = bid, bid + rng.choice((-1, 1))
        entries = [  # the top moves: old levels deleted, new ones added (2 entries a side)
            (2, 0, "EUR/USD", f"{old / 1e5:.5f}", "0"),
            (0, 0, "EUR/USD", f"{bid / 1e5:.5f}", str(rng.randint(1, 50) * 100_000)),
            (2, 1, "EUR/USD", f"{(old + 10) / 1e5:.5f}", "0"),
            (0, 1, "EUR/USD", f"{(bid + 10) / 1e5:.5f}", str(rng.randint(1, 50) * 100_000)),
        ]
        msgs.append(fix_incremental(i + 2, entries))
    return msgs


def oanda_stream(n: int, rng: random.Random) -> list[bytes]:
    out = []
    bid = 108500
    for i in range(n):
        bid += rng.choice((-1, 0, 1))
        ts = _iso(NOW_MS + i)
        out.append(oanda_price("EUR_USD", f"{bid / 1e5:.5f}", f"{(bid + 10) / 1e5:.5f}", ts=ts).encode())
    return out


def binance_stream(n: int, rng: random.Random) -> list[bytes]:
    snap = binance_snapshot(100, [["65000.00", "1"]], [["65001.00", "1"]])  # levels the first update deletes
    snap["symbol"] = "BTCUSDT"
    out = [json.dumps(snap).encode()]
    bid = 6500000
    for i in range(n):
        old, bid = bid, bid + rng.choice((-1, 1))
        bids = [[f"{bid / 100:.2f}", f"{rng.randint(1, 900) / 100:.8f}"], [f"{old / 100:.2f}", "0.00000000"]]
        asks = [[f"{(bid + 100) / 100:.2f}", f"{rng.randint(1, 900) / 100:.8f}"], [f"{(old + 100) / 100:.2f}", "0"]]
        out.append(binance_depth_update("BTCUSDT", 101 + i, 101 + i, bids, asks, event_ms=NOW_MS + i).encode())
    return out


def binance_deep_stream(n: int, rng: random.Random) -> list[bytes]:
    """Binance as a real book looks: a REST snapshot of 1,000 levels a side, then updates of 3 levels
    a side spread through the book (most far from the top), a level in 3 deleted or new."""
    books = ({6500000 - i: 1 for i in range(1000)}, {6500010 + i: 1 for i in range(1000)})
    snap = {
        "lastUpdateId": 100,
        "symbol": "BTCUSDT",
        "bids": [[f"{t / 100:.2f}", "1.00000000"] for t in books[0]],
        "asks": [[f"{t / 100:.2f}", "1.00000000"] for t in books[1]],
    }
    out = [json.dumps(snap).encode()]
    for i in range(n):
        sides: list[list[list[str]]] = [[], []]
        for side, book, sign, best in ((sides[0], books[0], -1, 6500000), (sides[1], books[1], 1, 6500010)):
            for _ in range(3):
                tick = best + sign * int(rng.expovariate(1 / 200))
                if tick in book and rng.random() < 0.35:
                    del book[tick]
                    side.append([f"{tick / 100:.2f}", "0.00000000"])
                else:
                    book[tick] = 1
                    side.append([f"{tick / 100:.2f}", f"{rng.randint(1, 900) / 100:.8f}"])
        out.append(binance_depth_update("BTCUSDT", 101 + i, 101 + i, *sides, event_ms=NOW_MS + i).encode())
    return out


def kraken_stream(n: int, rng: random.Random) -> list[bytes]:
    venue = KrakenBook(depth=10)
    bids = [(f"{45000 - i / 10:.1f}", "1.00000000") for i in range(10)]
    asks = [(f"{45001 + i / 10:.1f}", "1.00000000") for i in range(10)]
    out = [kraken_book("snapshot", "BTC/USD", bids, asks, venue.apply(bids, asks)).encode()]
    for i in range(n):
        b = [(f"{45000 - rng.randint(0, 9) / 10:.1f}", f"{rng.randint(1, 10**9) / 1e8:.8f}")]
        a = [(f"{45001 + rng.randint(0, 9) / 10:.1f}", f"{rng.randint(1, 10**9) / 1e8:.8f}")]
        out.append(kraken_book("update", "BTC/USD", b, a, venue.apply(b, a), ts=_iso(NOW_MS + i)).encode())
    return out


def coinbase_stream(n: int, rng: random.Random) -> list[bytes]:
    snap = [("bid", f"{65000 - i / 100:.2f}", "1") for i in range(10)]
    snap += [("offer", f"{65001 + i / 100:.2f}", "1") for i in range(10)]
    out = [coinbase_l2(0, "snapshot", "BTC-USD", snap, ts=_iso(NOW_MS)).encode()]
    for i in range(n):
        upd = [
            ("bid", f"{65000 - rng.randint(0, 9) / 100:.2f}", f"{rng.randint(1, 900) / 100:.8f}"),
            ("offer", f"{65001 + rng.randint(0, 9) / 100:.2f}", f"{rng.randint(1, 900) / 100:.8f}"),
        ]
        out.append(coinbase_l2(i + 1, "update", "BTC-USD", upd, ts=_iso(NOW_MS + i)).encode())
    return out


STREAMS: dict[str, Callable[[int, random.Random], list[bytes]]] = {
    "fix": fix_stream,
    "oanda": oanda_stream,
    "binance": binance_stream,
    "kraken": kraken_stream,
    "coinbase": coinbase_stream,
}
