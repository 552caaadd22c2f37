"""The sorted books' compiled core (marketdata/feeds/_cfeeds.c) against the pure Python books:
the Kraken book (with checksum texts) and the plain sorted book (Coinbase's).

The compiled book runs the hot calls (set_bid/set_ask, checksum, quote) in C on the very objects the
Python book keeps, and hands every call it does not handle itself to the Python code. Both are run
here on the same operations, hostile ones included (sizes that are ints, NaN, infinite, negative or
too precise for a float, ticks past 2**53 and 2**63, texts given, non-ASCII texts, odd depths): the
results, the exceptions and the whole state after every operation must be the same.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.ticks import Quote
from marketdata.feeds import kraken, venue
from marketdata.feeds.base import parser_create
from marketdata.feeds.kraken import CompiledKrakenBook as _Compiled
from marketdata.feeds.kraken import KrakenBook, KrakenBookLogic, KrakenParser
from marketdata.feeds.venue import Book, SortedBook, SymbolSpec

from . import wire as w
from .test_feed_fast_paths import _json_corpus, _run

CompiledKrakenBook: Any = _Compiled
CompiledSortedBook: Any = venue.CompiledSortedBook
pytestmark = pytest.mark.skipif(
    CompiledKrakenBook is None, reason="Kraken book's compiled core not built: python setup.py build_ext --inplace"
)

BTC = SymbolSpec("BTC/USD", "BTCUSD", 1, 1.0, 8)
_STATE = (
    "bids",
    "asks",
    "scale",
    "_bid_keys",
    "_bid_lvls",
    "_bid_texts",
    "_ask_keys",
    "_ask_lvls",
    "_ask_texts",
    "_bid_depth",
    "_ask_depth",
    "_depth_n",
    "inexact",
    "_qty_format",
    "_qty_scale",
    "_qty_limit",
)
_SORTED_STATE = tuple(n for n in _STATE if "text" not in n and "qty" not in n and n != "inexact")


def _state(book: Any) -> str:
    # repr: floats to the last bit and the sign of zero, ints apart from floats and bools
    names = _STATE if isinstance(book, KrakenBookLogic) else _SORTED_STATE
    return repr([getattr(book, name, "<unset>") for name in names])


def _outcome(call: Any, *args: Any) -> str:
    try:
        result = call(*args)
    except Exception as exc:  # the very exception must be the same
        return f"raised {type(exc).__name__}: {exc}"
    if isinstance(result, Quote):
        return f"{type(result).__name__} {[(type(v).__name__, repr(v)) for v in vars_of(result)]}"
    return repr(result)


def vars_of(q: Quote) -> list[Any]:
    return [getattr(q, name) for name in Quote.__slots__]


def _apply(book: Any, op: tuple[Any, ...]) -> str:
    name, *args = op
    if name == "set":
        side, *rest = args
        return _outcome(book.set, book.bids if side == "bid" else book.asks, *rest)
    return _outcome(getattr(book, name), *args)


_TICK = st.one_of(
    st.integers(449_990, 450_010),
    st.sampled_from([0, -1, -450_000, 2**53 - 1, 2**53, 9007199254740995, 2**63, -(2**63) - 1, 2**70]),
    st.integers(2**53, 2**63 - 1),  # a double no longer holds every int: tick / scale rounds twice
)
_SIZE = st.one_of(
    st.integers(1, 10**9).map(lambda u: u / 1e8),
    st.sampled_from([0.0, -0.0, 1.5, 2.0, math.nan, math.inf, -math.inf, -1.0, 1e-9, 5e-9, 1.5e-8]),
    st.sampled_from([22517998.13685248, 99999999999.99999999, 2.0**51 / 1e8, 1e300]),  # past 2**51 / 10**8
    st.integers(-2, 3),  # ints (and 0) where the parser sends floats
    st.floats(allow_nan=True, allow_infinity=True),
)
_TEXT = st.one_of(st.text("0123456789", max_size=400), st.just("é1"), st.just(""))
_SET_OPS = [
    st.tuples(st.sampled_from(["set_bid", "set_ask"]), _TICK, _SIZE),
    st.tuples(st.sampled_from(["set_bid", "set_ask"]), _TICK, _SIZE, _TEXT),  # sorted book: a TypeError
    st.tuples(st.just("set"), st.sampled_from(["bid", "ask"]), _TICK, _SIZE),
]
_OTHER_OPS = [
    st.tuples(st.just("truncate"), st.integers(0, 12)),
    st.tuples(st.just("clear")),
    st.tuples(st.just("top_bids"), st.integers(0, 12)),
    st.tuples(st.just("top_asks"), st.integers(0, 12)),
    st.tuples(st.just("quote"), st.just("b"), st.just("BTCUSD"), *[st.integers(0, 9)] * 3),
    st.tuples(
        st.just("quote"),
        st.just("b"),
        st.just("BTCUSD"),
        st.just(1),
        st.just(2),
        st.just(3),
        st.one_of(st.integers(-2, 25), st.just(2**70), st.just(3.0)),
    ),
]
_OP = st.one_of(*_SET_OPS, st.tuples(st.just("checksum")), *_OTHER_OPS)


@settings(max_examples=400, deadline=None)
@given(
    spec=st.sampled_from([BTC, SymbolSpec("ETH/USD", "ETHUSD", 2, 0.01, 8), SymbolSpec("X/Y", "XY", 5, 1e-4, 0)]),
    ops=st.lists(_OP, max_size=60),
)
def test_the_compiled_book_does_what_the_python_book_does(spec, ops):
    py, c = KrakenBook(spec), CompiledKrakenBook(spec)
    assert _state(py) == _state(c)
    for i, op in enumerate(ops):
        assert _apply(py, op) == _apply(c, op), (i, op)
        assert _state(py) == _state(c), (i, op)


class _Contrary(float):
    """A float that says it is not positive: only Python's own comparison can tell."""

    def __gt__(self, other: object) -> bool:
        return False


_EDGES: list[tuple[Any, ...]] = [
    # Each op after a few plain levels, then a quote and a checksum: the edges the C code hands
    # over or writes by hand.
    ("set_bid", 0, 1.5),  # tick 0: its text starts with the quantity ("0".lstrip("0") is empty)
    ("set_ask", -3, 1.5),  # a negative tick keeps its sign in the text
    ("set_bid", True, 1.5),  # a bool is an int but writes itself "True"
    ("set_bid", 449_999, 1.0),  # the very size again: nothing changes, the depth is kept
    ("set_bid", 449_999, 1),  # an int size is stored as sent
    ("set_bid", 449_999, _Contrary(2.0)),  # a float subclass compares as it says: removed
    ("set_ask", 9007199254740995, 1.0),  # past 2**53: tick / scale is rounded once, not twice
    ("set_ask", 2**63, 1.0),  # past a C long long
    ("set_bid", 449_998, 2.0**51 / 1e8),  # at the limit: the float's digits, and inexact
    ("set_bid", 449_998, 1.000000005),  # more places than the pair's
    ("set_bid", 449_998, 1.5, "15"),  # a text given
    ("set_bid", 449_998, math.nan),
    ("quote", "b", "BTCUSD", 1, 2, 3, True),  # a bool for levels
    ("quote", "b", "BTCUSD", 1, 2, 3, 0),
    ("quote", "b", "BTCUSD", 1, 2, 3, -1),
]


@pytest.mark.parametrize("op", _EDGES, ids=repr)
def test_the_compiled_book_at_the_edges_it_hands_over_or_writes_by_hand(op):
    py, c = KrakenBook(BTC), CompiledKrakenBook(BTC)
    plain: list[tuple[Any, ...]] = [("set_bid", 450_000 - k, 1.0) for k in range(3)]
    plain += [("set_ask", 450_010 + k, 1.0) for k in range(3)]
    for step in [*plain, ("quote", "b", "BTCUSD", 1, 2, 3), op, ("quote", "b", "BTCUSD", 1, 2, 4), ("checksum",)]:
        assert _apply(py, step) == _apply(c, step), step
        assert _state(py) == _state(c), step


@pytest.mark.parametrize("broken", ["_bid_lvls", "_bid_texts"])
def test_a_book_whose_lists_were_cut_by_hand_fails_as_the_python_book_fails(broken):
    py, c = KrakenBook(BTC), CompiledKrakenBook(BTC)
    for book in (py, c):
        book.set_bid(450_000, 1.0)
        getattr(book, broken).clear()
    for step in [("set_bid", 450_000, 2.0), ("set_bid", 449_000, 2.0), ("quote", "b", "BTCUSD", 1, 2, 3)]:
        assert _apply(py, step) == _apply(c, step), step
        assert _state(py) == _state(c), step


def test_an_unchanged_level_keeps_the_quoted_depth_object():
    book = CompiledKrakenBook(BTC)
    book.set_bid(450_000, 1.0)
    book.set_ask(450_010, 1.0)
    depth = book.quote("b", "BTCUSD", 1, 2, 3).depth
    book.set_bid(450_000, 1.0)
    assert book.quote("b", "BTCUSD", 1, 2, 4).depth[0] is depth[0]


def test_the_compiled_book_on_long_random_streams_deep_and_shallow():
    rng = random.Random(3)
    py, c = KrakenBook(BTC), CompiledKrakenBook(BTC)
    for step in range(20_000):
        width = 600 if step < 10_000 else 12
        r = rng.random()
        if r < 0.002:
            op: tuple[Any, ...] = ("clear",)
        elif r < 0.01:
            op = ("truncate", rng.choice([10, 25, 100, 500]))
        elif r < 0.3:
            op = ("quote", "b", "BTCUSD", step, step, step)
        elif r < 0.5:
            op = ("checksum",)
        else:
            tick = 450_000 + rng.randint(-width, width)
            size = rng.choice([0.0, rng.randint(1, 10**9) / 1e8, rng.randint(1, 10**12) / 1e4])
            op = (rng.choice(["set_bid", "set_ask"]), tick, size)
        assert _apply(py, op) == _apply(c, op), (step, op)
        if step % 97 == 0:
            assert _state(py) == _state(c), step
    assert _state(py) == _state(c)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(st.characters(max_codepoint=127), max_size=700), max_size=30))
def test_the_compiled_checksum_is_zlib_s_crc32_of_the_texts(texts):
    book = CompiledKrakenBook(BTC)
    book._ask_texts[:] = texts[:15]
    book._bid_texts[:] = texts[15:]
    joined = "".join(texts[:10]) + "".join(texts[15:25])
    assert book.checksum() == zlib.crc32(joined.encode()) == KrakenBook.checksum(book)


def test_quotes_of_the_compiled_book_are_real_quotes_sharing_the_book_s_levels():
    book = CompiledKrakenBook(BTC)
    for t in range(10):
        book.set_bid(450_000 - t, 1.0 + t)
        book.set_ask(450_010 + t, 2.0 + t)
    q = book.quote("b", "BTCUSD", 1, 2, 3)
    assert type(q) is Quote and q == Quote("b", "BTCUSD", 45000.0, 45001.0, 1.0, 2.0, 1, 2, 3, q.depth, 0)
    assert hash(q) == hash(Quote("b", "BTCUSD", 45000.0, 45001.0, 1.0, 2.0, 1, 2, 3, q.depth, 0))
    with pytest.raises(AttributeError):
        q.bid = 1.0  # type: ignore[misc]
    book.set_bid(450_000 - 5, 9.0)  # a change below the top keeps the ask side and the levels above it
    again = book.quote("b", "BTCUSD", 1, 2, 4)
    assert again is not None and again.depth is not None and q.depth is not None
    assert again.depth[1] is q.depth[1] and again.depth[0][0] is q.depth[0][0]


def test_the_kraken_parser_uses_the_compiled_book_when_it_is_built():
    assert KrakenParser.book_class is CompiledKrakenBook


def test_without_the_extension_the_python_code_is_used_and_said_loudly(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "marketdata.feeds._cfeeds", None)  # import then raises ImportError
    with caplog.at_level(logging.WARNING, logger="marketdata.feeds.venue"):
        assert venue._compiled_core() is None
    assert any("pure Python" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    monkeypatch.setattr(venue, "COMPILED", None)
    monkeypatch.setattr(kraken, "COMPILED", None)
    assert kraken._compiled_book_class() is None and venue._compiled_sorted_book() is None


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_parsers_on_either_book_agree_on_mangled_streams(seed, fast, monkeypatch):
    """The fast-path tests' hostile corpora (wrong types, missing keys, numbers out of range, cut
    messages, gaps, resyncs): quotes, rejects, validator verdicts and parser state the same."""
    rng = random.Random(seed)
    corpus = _json_corpus(w.STREAMS["kraken"](400, rng), rng)
    runs, books = [], []
    for book_class in (KrakenBook, CompiledKrakenBook):
        monkeypatch.setattr(KrakenParser, "book_class", book_class)
        parser = parser_create("kraken", broker="b", params={})
        parser.fast = fast
        runs.append(_run(parser, corpus))
        books.append({k: _state(b) for k, b in parser.books.items()})
    assert books[0] == books[1]
    for i, (py, c) in enumerate(zip(*runs, strict=True)):
        assert py == c, (i, corpus[i])


_SORTED_OP = st.one_of(*_SET_OPS, *_OTHER_OPS)


@settings(max_examples=400, deadline=None)
@given(precision=st.sampled_from([1, 2, 5, 8]), ops=st.lists(_SORTED_OP, max_size=60))
def test_the_compiled_sorted_book_does_what_the_python_sorted_book_does(precision, ops):
    py, c = SortedBook(precision), CompiledSortedBook(precision)
    assert _state(py) == _state(c)
    for i, op in enumerate(ops):
        assert _apply(py, op) == _apply(c, op), (i, op)
        assert _state(py) == _state(c), (i, op)


@pytest.mark.parametrize("op", _EDGES, ids=repr)
def test_the_compiled_sorted_book_at_the_edges(op):
    if len(op) > 3 and op[0] != "quote":
        op = op[:3]
    py, c = SortedBook(8), CompiledSortedBook(8)
    plain: list[tuple[Any, ...]] = [("set_bid", 450_000 - k, 1.0) for k in range(3)]
    plain += [("set_ask", 450_010 + k, 1.0) for k in range(3)]
    for step in [*plain, ("quote", "b", "BTCUSD", 1, 2, 3), op, ("quote", "b", "BTCUSD", 1, 2, 4)]:
        assert _apply(py, step) == _apply(c, step), step
        assert _state(py) == _state(c), step


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("stream", ["coinbase", "binance", "binance_deep"])
def test_venues_on_book_sorted_book_and_compiled_sorted_book_alike_on_mangled_streams(stream, seed, fast, monkeypatch):
    """Coinbase and Binance kept venue.Book until their books became sorted ones: on the fast-path
    tests' hostile corpora (and a Binance book of 1,000 levels a side), the quotes with their depth,
    rejects, verdicts and parser state are Book's."""
    rng = random.Random(seed)
    adapter = stream.split("_")[0]
    make = w.binance_deep_stream if stream == "binance_deep" else w.STREAMS[adapter]
    corpus = _json_corpus(make(300, rng), rng)
    runs, books = [], []
    parser_class = type(parser_create(adapter, broker="b", params={}))
    for book_class in (Book, SortedBook, CompiledSortedBook):
        monkeypatch.setattr(parser_class, "book_class", book_class)
        parser = parser_create(adapter, broker="b", params={})
        parser.fast = fast
        runs.append(_run(parser, corpus))
        books.append({k: (b.bids, b.asks, b.top_bids(2000), b.top_asks(2000)) for k, b in parser.books.items()})
    assert books[0] == books[1] == books[2]
    for i, (old, py, c) in enumerate(zip(*runs, strict=True)):
        assert old == py == c, (i, corpus[i])


def test_the_core_keeps_its_containers_of_the_types_its_c_code_reads():
    for book in (CompiledKrakenBook(BTC), CompiledSortedBook(8)):
        for name in ("_bid_keys", "_ask_keys", "_bid_lvls", "_ask_lvls", "_bid_texts", "_ask_texts"):
            with pytest.raises(TypeError):
                setattr(book, name, (1,))
        for name in ("bids", "asks"):
            with pytest.raises(TypeError):
                setattr(book, name, [])
        book._bid_texts = None  # a book without texts
        book._bid_keys = [1]
        book.bids = {}
    with pytest.raises(AttributeError):
        CompiledSortedBook(8).checksum()  # no texts to sum: handed to Python, which has no checksum


def _refuse(*args: object) -> None:
    raise AssertionError(f"handed to Python: {args[1:]}")


def test_the_usual_calls_stay_in_c(monkeypatch):
    for cls, book in ((CompiledKrakenBook, CompiledKrakenBook(BTC)), (CompiledSortedBook, CompiledSortedBook(1))):
        for name in ("_py_set_bid", "_py_set_ask", "_py_quote", "_py_checksum"):
            monkeypatch.setattr(cls, name, _refuse, raising=False)
        for k in range(12):
            book.set_bid(450_000 - k, 1.0 + k / 1e8)
            book.set_ask(450_010 + k, 2.5)
        book.set_bid(450_000, 3.0)  # a change
        book.set_ask(450_010, 2.5)  # the same
        book.set_bid(449_995, 0.0)  # gone
        book.set_ask(1, 0.0)  # not there
        assert book.quote("b", "BTCUSD", 1, 2, 3) is not None
        assert book.quote("b", "BTCUSD", 1, 2, 4, 5) is not None
        if cls is CompiledKrakenBook:
            assert book.checksum() == KrakenBook.checksum(book)
