"""The Kraken parser against the plainest model of the protocol, on random streams (hypothesis).

The model is the venue's own book (wire.KrakenBook): decimal strings as sent, sorted by Decimal,
truncated to the subscribed depth, checksummed by Kraken's documented algorithm on those strings
(wire.kraken_checksum). What the parser gives after every message (quotes with their depth,
rejects, the symbols to resubscribe) must be what the model says, including after a checksum that
does not match (counted, the book dropped, the symbol resubscribed, updates refused until the next
snapshot). Both the typed fast path and the general path are run.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from common.ticks import Quote
from marketdata.feeds.kraken import KrakenParser
from marketdata.feeds.venue import DEPTH_LEVELS, Reject, SymbolMap, SymbolSpec, iso_to_us

from . import wire as w
from .compiled_books import kraken_book_class  # noqa: F401 - every test on both Kraken books

BTC = SymbolSpec("BTC/USD", "BTCUSD", 1, 1.0, 8)
TS = "2026-11-30T12:00:00.123456Z"


def _price(tick: int) -> str:
    # Whole prices go out as JSON integers now and then (45000, not 45000.0), as a JSON writer may.
    return str(tick // 10) if tick % 20 == 0 else f"{tick // 10}.{tick % 10}"


def _qty(units: int, places: int) -> str:
    if places == 0:
        return str(units)
    return f"{units // 10**places}.{units % 10**places:0{places}d}"


_QTY = st.one_of(
    st.sampled_from(["0", "0.0", "0.00000000"]),  # removes the level
    # Any size at up to 10 places: past 2**51 / 10**8 (about 2.2e7) a float no longer tells the 8th
    # place, and past 8 places the text is the decimal rounded to 8: the decimal sent decides.
    st.builds(_qty, st.integers(1, 10**20), st.integers(0, 10)),
    st.builds(_qty, st.integers(1, 10**9), st.just(8)),  # the usual: under 10 at 8 places
    st.sampled_from(["105863320.4", "22517998.13685248", "99999999999.99999999", "0.000000005", "0.000000015"]),
)
_BID = st.tuples(st.integers(0, 40).map(lambda o: _price(450_000 - o)), _QTY)
_ASK = st.tuples(st.integers(0, 40).map(lambda o: _price(450_010 + o)), _QTY)
_MESSAGE = st.tuples(
    st.sampled_from(["update"] * 8 + ["snapshot", "bad_checksum"]),
    st.lists(_BID, max_size=5),
    st.lists(_ASK, max_size=5),
)


def _expected_quote(venue: w.KrakenBook, seq: int, ts_broker: int, ts_recv: int) -> Quote | None:
    if not venue.bids or not venue.asks:
        return None
    bids = sorted(venue.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)[:DEPTH_LEVELS]
    asks = sorted(venue.asks.items(), key=lambda kv: Decimal(kv[0]))[:DEPTH_LEVELS]
    depth = (tuple((float(p), float(q)) for p, q in bids), tuple((float(p), float(q)) for p, q in asks))
    b, a = depth[0][0], depth[1][0]
    return Quote("k", "BTCUSD", b[0], a[0], b[1], a[1], ts_broker, ts_recv, seq, depth)


@settings(max_examples=150, deadline=None)
@given(depth=st.sampled_from([3, 10, 25]), messages=st.lists(_MESSAGE, min_size=1, max_size=40), fast=st.booleans())
def test_the_parser_gives_what_the_plain_model_of_kraken_s_book_gives(depth, messages, fast):
    parser = KrakenParser("k", SymbolMap([BTC]), depth)
    parser.fast = fast
    venue = w.KrakenBook(depth=depth)
    synced = False
    seq = 0
    for i, (kind, bids, asks) in enumerate(messages):
        ts_recv = 10_000 + i
        if kind == "snapshot":
            venue = w.KrakenBook(depth=depth)
        checksum = venue.apply(bids, asks)
        sent = checksum ^ 1 if kind == "bad_checksum" else checksum
        raw = w.kraken_book("snapshot" if kind == "snapshot" else "update", "BTC/USD", bids, asks, sent, ts=TS)
        out = parser.parse(raw.encode(), ts_recv)
        expected: list[object]
        mismatch = False
        if kind != "snapshot" and not synced:
            expected = [Reject("awaiting_snapshot", "BTC/USD")]
        elif kind == "bad_checksum":
            expected = [Reject("checksum_mismatch", f"BTC/USD: expected {sent}")]
            synced = False
            mismatch = True
        else:
            synced = True
            seq += 1
            ts_broker = ts_recv if kind == "snapshot" else iso_to_us(TS)
            quote = _expected_quote(venue, seq, ts_broker, ts_recv)
            expected = [] if quote is None else [quote]
        assert out == expected, (i, kind, bids, asks)
        assert parser.resync == ({"BTC/USD"} if mismatch else set())
        parser.resync.clear()  # what the feed does once it has resubscribed
