"""The venue parsers' own parts, without a network: what they keep between messages must give what
computing afresh gives (books, Kraken checksums, timestamps, FIX fields and checksums), and no
value a venue can send makes a parser raise."""

from __future__ import annotations

import calendar
import dataclasses
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.ticks import Quote
from marketdata.feeds import venue
from marketdata.feeds.base import parser_create
from marketdata.feeds.fix import byte_sum, fields_of, fix_time_us
from marketdata.feeds.kraken import CompiledKrakenBook, KrakenBook, KrakenBookLogic, book_checksum
from marketdata.feeds.venue import DEPTH_LEVELS, Book, Reject, SortedBook, SymbolSpec, iso_to_us, quote_new

from . import wire as w

BTC = SymbolSpec("BTC/USD", "BTCUSD", 1, 1.0, 8)


def _kraken(kind: str, bids: str, asks: str = "[]", extra: str = "") -> bytes:
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"BTC/USD","bids":{bids},"asks":{asks}{extra}}}]}}'
    ).encode()


def _coinbase(seq: int, kind: str, price: str) -> bytes:
    update = f'{{"side":"bid","price_level":"{price}","new_quantity":"1","event_time":"2026-11-30T12:00:00Z"}}'
    return (
        f'{{"channel":"l2_data","timestamp":"2026-11-30T12:00:00Z","sequence_num":{seq},'
        f'"events":[{{"type":"{kind}","product_id":"BTC-USD","updates":[{update}]}}]}}'
    ).encode()


HOSTILE: list[tuple[str, list[bytes], bytes]] = [
    # (adapter, messages before, the hostile message): a price too large for a float, a cut timestamp
    (
        "fix",
        [w.fix_snapshot(1, "EUR/USD", [("1.08500", "1000000")], [("1.08510", "1000000")])],
        w.fix_incremental(2, [(0, 0, "EUR/USD", "1e999", "1000000")]),
    ),
    (
        "fix",
        [],
        w.fix_snapshot(1, "EUR/USD", [("1e999", "1000000")], [("1.08510", "1000000")]),
    ),
    (
        "binance",
        [b'{"lastUpdateId":1,"symbol":"BTCUSDT","bids":[["65000.00","1"]],"asks":[["65001.00","1"]]}'],
        w.binance_depth_update("BTCUSDT", 2, 2, [["1e999", "1"]], []).encode(),
    ),
    ("coinbase", [_coinbase(1, "snapshot", "65000.00")], _coinbase(2, "update", "1e999")),
    (
        "kraken",
        [_kraken("snapshot", '[{"price":45000.1,"qty":1}]', '[{"price":45001.1,"qty":1}]')],
        _kraken("update", '[{"price":1e308,"qty":1}]'),
    ),
    (
        "kraken",
        [],
        _kraken("snapshot", '[{"price":45000.1,"qty":1}]', '[{"price":45001.1,"qty":1}]', ',"timestamp":"2026-11-30"'),
    ),
]


@pytest.mark.parametrize(("adapter", "before", "hostile"), HOSTILE)
def test_a_value_out_of_range_is_a_garbled_reject_never_an_exception(adapter, before, hostile):
    parser = parser_create(adapter, broker="b", params={})
    for raw in before:
        parser.parse(raw, 1)
    out = parser.parse(hostile, 1)
    assert [x.reason for x in out if isinstance(x, Reject)] == ["garbled"], out


def _reference_depth(
    bids: dict[int, float], asks: dict[int, float], scale: int, levels: int = DEPTH_LEVELS
) -> tuple[Any, Any]:
    b = tuple((t / scale, bids[t]) for t in sorted(bids, reverse=True)[:levels])
    a = tuple((t / scale, asks[t]) for t in sorted(asks)[:levels])
    return b, a


@pytest.mark.parametrize(
    "book_class",
    [
        "Book",
        "KrakenBook",
        pytest.param(
            "CompiledKrakenBook",
            marks=pytest.mark.skipif(CompiledKrakenBook is None, reason="Kraken book's compiled core not built"),
        ),
        "SortedBook",
        pytest.param(
            "CompiledSortedBook",
            marks=pytest.mark.skipif(venue.CompiledSortedBook is None, reason="compiled core not built"),
        ),
    ],
)
def test_a_book_keeps_between_messages_exactly_what_it_would_compute_afresh(book_class):
    rng = random.Random(5)
    classes: dict[str, Any] = {"KrakenBook": KrakenBook, "CompiledKrakenBook": CompiledKrakenBook}
    sorted_classes: dict[str, Any] = {
        "Book": Book,
        "SortedBook": SortedBook,
        "CompiledSortedBook": venue.CompiledSortedBook,
    }
    book = sorted_classes[book_class](1) if book_class in sorted_classes else classes[book_class](BTC)
    bids: dict[int, float] = {}
    asks: dict[int, float] = {}
    levels = DEPTH_LEVELS
    for step in range(6000):
        # Books much deeper than the depth (changes below its last level keep it) and shallower ones,
        # and now and then another depth asked for.
        width = 100 if step < 3000 else 8
        if rng.random() < 0.02:
            levels = rng.choice([DEPTH_LEVELS, DEPTH_LEVELS, 1, 3, 12])
        r = rng.random()
        if r < 0.01:
            book.clear()
            bids.clear()
            asks.clear()
        elif r < 0.05:
            n = rng.randint(1, 12)
            book.truncate(n)
            for side, best in ((bids, sorted(bids, reverse=True)), (asks, sorted(asks))):
                for t in best[n:]:
                    del side[t]
        else:
            is_bid = rng.random() < 0.5
            tick = 450_000 + rng.randint(-width, width)
            size = rng.choice([0.0, 0.0, 1.5, 2.0, rng.randint(1, 10**9) / 1e8])
            if rng.random() < 0.5:
                book.set(book.bids if is_bid else book.asks, tick, size)
            else:
                (book.set_bid if is_bid else book.set_ask)(tick, size)
            side = bids if is_bid else asks
            if size > 0:
                side[tick] = size
            else:
                side.pop(tick, None)
        assert book.bids == bids and book.asks == asks
        assert book.top_bids(10) == sorted(bids, reverse=True)[:10]
        assert book.top_asks(10) == sorted(asks)[:10]
        q = book.quote("b", "BTCUSD", step, step, step, levels)
        if not bids or not asks:
            assert q is None
        else:
            assert q is not None and q.depth == _reference_depth(bids, asks, book.scale, levels), step
            assert (q.bid, q.bid_size) == q.depth[0][0] and (q.ask, q.ask_size) == q.depth[1][0]
        if isinstance(book, KrakenBookLogic):
            assert book.checksum() == book_checksum(book, BTC), step


def test_kraken_s_kept_checksum_agrees_with_kraken_s_algorithm_on_decimal_strings():
    rng = random.Random(11)
    venue = w.KrakenBook(depth=10)
    parser = parser_create("kraken", broker="b", params={})
    bids = [(f"{45000 - i / 10:.1f}", "1.00000000") for i in range(10)]
    asks = [(f"{45001 + i / 10:.1f}", "1.00000000") for i in range(10)]
    assert not any(
        isinstance(x, Reject)
        for x in parser.parse(w.kraken_book("snapshot", "BTC/USD", bids, asks, venue.apply(bids, asks)), 1)
    )
    for _ in range(500):
        b = [(f"{45000 - rng.randint(-3, 15) / 10:.1f}", rng.choice(["0", f"{rng.randint(1, 10**9) / 1e8:.8f}"]))]
        a = [(f"{45001 + rng.randint(-3, 15) / 10:.1f}", rng.choice(["0", f"{rng.randint(1, 10**9) / 1e8:.8f}"]))]
        out = parser.parse(w.kraken_book("update", "BTC/USD", b, a, venue.apply(b, a)), 1)
        assert not any(isinstance(x, Reject) for x in out), out


def test_quote_new_makes_the_very_quote_the_constructor_makes():
    depth = (((1.1, 2.0),), ((1.2, 3.0),))
    args = ("b", "EURUSD", 1.1, 1.2, 2.0, 3.0, 10, 11, 12)
    assert quote_new is not Quote, "Quote's fields changed: update venue._quote_maker"
    for extra in ((), (depth,), (depth, 4)):
        made, real = quote_new(*args, *extra), Quote(*args, *extra)
        assert type(made) is Quote and made == real and hash(made) == hash(real)
        assert [getattr(made, f.name) for f in dataclasses.fields(Quote)] == [
            getattr(real, f.name) for f in dataclasses.fields(Quote)
        ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.bid = 2.0  # type: ignore[misc]


def _fields_reference(frame: bytes) -> list[list[bytes]]:
    return [list(f.partition(b"=")[::2]) for f in frame[:-1].split(b"\x01")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=12).filter(lambda b: b"\x01" not in b), min_size=1, max_size=30))
def test_fix_fields_are_cut_as_partition_cuts_them(fields):
    frame = b"\x01".join(fields) + b"\x01"
    assert fields_of(frame) == _fields_reference(frame)


def test_fix_fields_without_an_equals_sign_or_with_two():
    for frame in (b"8=FIX.4.4\x0158\x01", b"58=a=b\x01", b"\x01", b"=\x01", b"279\x01269=0\x01"):
        assert fields_of(frame) == _fields_reference(frame), frame


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.integers(0, 2100))
def test_the_fix_byte_sum_is_the_plain_sum(data, end):
    assert byte_sum(data, end) == sum(data[:end])


def test_the_fix_byte_sum_over_long_runs_of_the_largest_byte():
    for n in (255, 256, 257, 511, 512, 513, 4096):
        data = b"\xff" * n
        assert byte_sum(data, n) == 255 * n


def _iso_reference(ts: str) -> int:
    day, rest = ts[:10], ts[11:]
    y, m, d = (int(x) for x in day.split("-"))
    secs = int(rest[0:2]) * 3600 + int(rest[3:5]) * 60 + int(rest[6:8])
    frac = rest[9:].rstrip("Z") if len(rest) > 8 and rest[8] == "." else ""
    return calendar.timegm((y, m, d, 0, 0, 0)) * 1_000_000 + secs * 1_000_000 + int((frac + "000000")[:6] or 0)


def _iso_outcome(ts: str) -> object:
    try:
        return iso_to_us(ts)
    except (ValueError, IndexError) as exc:
        return type(exc)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789Z.+_ -", min_size=0, max_size=10))
def test_a_timestamp_whose_second_is_remembered_gives_what_it_gave_before(tail):
    # The second remembered, the usual six places take a shortcut: it must give what the full
    # reading gave on the first call, whatever follows the seconds.
    ts = "2026-11-30T12:00:00" + tail
    venue._SECOND_CACHE.clear()
    first = _iso_outcome(ts)
    assert _iso_outcome(ts) == first, ts


def test_timestamps_remembered_per_second_give_what_parsing_gives():
    rng = random.Random(3)
    for _ in range(3000):
        day = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        base = f"{day}T{rng.randint(0, 23):02d}:{rng.randint(0, 1):02d}:{rng.randint(0, 2):02d}"
        fraction = rng.choice(["", f".{rng.randint(0, 999):03d}", f".{rng.randint(0, 999999):06d}", ".5"])
        ts = base + rng.choice([fraction, f".{rng.randint(0, 999999999):09d}"]) + "Z"
        assert iso_to_us(ts) == _iso_reference(ts), ts
        fix = ts[:4] + ts[5:7] + ts[8:10] + "-" + ts[11:].rstrip("Z")
        assert fix_time_us(fix.encode()) == _iso_reference(ts), fix
    for bad in ("2026-11-30X12:00:00Z", "2026-11-30T12-00:00Z", "2026/11/30T12:00:00Z", "2026-11-30Taa:00:00Z"):
        for _ in range(2):  # a bad one is never remembered as good
            with pytest.raises(ValueError):
                iso_to_us(bad)
    for bad_fix in (b"20261130 12:00:00", b"20261130-12-00:00", b"2026113a-12:00:00"):
        for _ in range(2):
            with pytest.raises(ValueError):
                fix_time_us(bad_fix)
