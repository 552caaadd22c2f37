"""Example tests of the order book core, run against every implementation."""

from __future__ import annotations

import math

import pytest

import orderbook as orderbook_pkg
from orderbook import (
    ASK,
    BID,
    CompiledOrderBook,
    CrossedBookError,
    DuplicateLevelError,
    Fill,
    InvalidInputError,
    Order,
    OrderBookError,
    PyOrderBook,
    UnknownLevelError,
)

IMPLEMENTATIONS = [pytest.param(PyOrderBook, id="python")] + [
    pytest.param(
        CompiledOrderBook,
        id="compiled",
        marks=pytest.mark.skipif(
            CompiledOrderBook is None, reason="compiled core not built: python setup.py build_ext --inplace"
        ),
    )
]


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request):
    return request.param


@pytest.fixture
def book(impl):
    """EURUSD-like book: alpha and beta quote both sides, beta joined alpha's 1.1000 bid later."""
    b = impl("EURUSD")
    b.update(BID, "alpha", 1.1000, 100.0)
    b.update(BID, "beta", 1.1000, 50.0)
    b.update(BID, "beta", 1.0999, 200.0)
    b.update(ASK, "alpha", 1.1002, 80.0)
    b.update(ASK, "beta", 1.1003, 300.0)
    return b


def test_it_reports_best_bid_offer_and_mid(book):
    assert (book.best_bid(), book.best_ask()) == (1.1000, 1.1002)
    assert book.best(BID) == 1.1000 and book.best(ASK) == 1.1002
    assert book.bbo() == (1.1000, 150.0, 1.1002, 80.0)
    assert book.mid() == pytest.approx(1.1001)


def test_an_empty_book_has_no_prices_and_fills_nothing(impl):
    book = impl("EURUSD")
    assert (book.best_bid(), book.best_ask(), book.mid(), book.consensus_mid()) == (None, None, None, None)
    assert book.bbo() == (None, 0.0, None, 0.0)
    assert book.depth(BID) == [] and len(book) == 0
    result = book.match(Order("buy", 10.0))
    assert result.fills == () and result.filled == 0.0 and result.remaining == 10.0 and result.average_price is None
    walk = book.walk("sell", 10.0)
    assert (walk.average_price, walk.filled, walk.shortfall, walk.levels_used) == (None, 0.0, 10.0, 0)


def test_levels_keep_entries_in_time_order(book):
    level = book.depth(BID)[0]
    assert level.price == 1.1000 and level.size == 150.0
    assert [e.broker for e in level.entries] == ["alpha", "beta"]
    assert level.entries[0].seq < level.entries[1].seq


def test_a_size_decrease_keeps_time_priority_and_an_increase_loses_it(book):
    book.update(BID, "alpha", 1.1000, 60.0)
    assert [e.broker for e in book.depth(BID)[0].entries] == ["alpha", "beta"]
    book.change(BID, "alpha", 1.1000, 61.0)
    assert [e.broker for e in book.depth(BID)[0].entries] == ["beta", "alpha"]
    assert book.size_at(BID, "alpha", 1.1000) == 61.0


def test_a_market_order_fills_partially_across_levels_in_price_time_order(book):
    result = book.match(Order("sell", 180.0))
    assert result.fills == (
        Fill("alpha", 1.1000, 100.0),
        Fill("beta", 1.1000, 50.0),
        Fill("beta", 1.0999, 30.0),
    )
    assert result.filled == 180.0 and result.remaining == 0.0
    assert result.average_price == pytest.approx((150 * 1.1000 + 30 * 1.0999) / 180)
    assert book.best_bid() == 1.0999 and book.size_at(BID, "beta", 1.0999) == 170.0


def test_a_limit_order_stops_at_its_limit_and_returns_the_rest(book):
    result = book.match(Order("buy", 500.0, limit=1.1002))
    assert result.fills == (Fill("alpha", 1.1002, 80.0),)
    assert result.remaining == 420.0
    assert book.best_ask() == 1.1003  # the rest never rests in the book
    assert book.best_bid() == 1.1000


def test_an_order_larger_than_the_book_empties_the_side(book):
    result = book.match(Order("buy", 1_000.0))
    assert result.filled == 380.0 and result.remaining == 620.0
    assert book.best_ask() is None and book.depth(ASK) == []


def test_walk_gives_each_brokers_expected_price_and_the_shortfall(book):
    alpha = book.walk("buy", 100.0, broker="alpha")
    assert (alpha.average_price, alpha.filled, alpha.shortfall, alpha.levels_used) == (1.1002, 80.0, 20.0, 1)
    beta = book.walk("buy", 100.0, broker="beta")
    assert (beta.average_price, beta.filled, beta.shortfall) == (1.1003, 100.0, 0.0)
    split = book.walk("buy", 100.0)
    assert split.average_price == pytest.approx((80 * 1.1002 + 20 * 1.1003) / 100)
    assert split.levels_used == 2 and split.shortfall == 0.0
    assert book.walk("buy", 100.0, broker="nobody").filled == 0.0
    assert book.size_at(ASK, "alpha", 1.1002) == 80.0  # walking never takes liquidity


def test_a_level_crossing_another_broker_is_rejected_and_counted(book):
    with pytest.raises(CrossedBookError, match="cross"):
        book.update(BID, "gamma", 1.1002, 10.0)  # would lock alpha's ask
    with pytest.raises(CrossedBookError):
        book.update(ASK, "gamma", 1.0999, 10.0)
    assert (book.best_bid(), book.best_ask()) == (1.1000, 1.1002)
    assert book.counters()["rejected_crossed"] == 2


def test_a_brokers_new_quote_replaces_its_own_stale_crossed_levels(impl):
    book = impl("EURUSD")
    book.update(BID, "alpha", 1.1000, 10.0)
    book.update(ASK, "alpha", 1.1002, 10.0)
    book.update(ASK, "beta", 1.1006, 10.0)
    book.update(BID, "alpha", 1.1004, 10.0)  # alpha's price moved up: its 1.1002 ask is stale
    assert (book.best_bid(), book.best_ask()) == (1.1004, 1.1006)
    assert book.counters()["pruned"] == 1


def test_the_prune_policy_lets_the_newest_quote_win(impl):
    book = impl("EURUSD", cross_policy="prune")
    book.update(ASK, "alpha", 1.1002, 10.0)
    book.update(ASK, "beta", 1.1002, 5.0)
    book.update(ASK, "beta", 1.1005, 5.0)
    book.update(BID, "gamma", 1.1003, 7.0)
    assert (book.best_bid(), book.best_ask()) == (1.1003, 1.1005)
    assert book.counters()["pruned"] == 2


def test_an_unknown_cross_policy_is_refused(impl):
    with pytest.raises(ValueError, match="cross_policy"):
        impl("EURUSD", cross_policy="ignore")


def test_deleting_an_unknown_level_raises_a_clear_error(book):
    with pytest.raises(UnknownLevelError, match=r"gamma has no bid at 1\.1"):
        book.delete(BID, "gamma", 1.1000)
    with pytest.raises(UnknownLevelError):
        book.update(ASK, "alpha", 1.2, 0.0)
    with pytest.raises(UnknownLevelError):
        book.change(ASK, "alpha", 1.2, 5.0)
    assert book.counters()["rejected_unknown"] == 3


def test_add_refuses_a_level_the_broker_already_has(book):
    with pytest.raises(DuplicateLevelError):
        book.add(BID, "alpha", 1.1000, 5.0)
    book.add(BID, "gamma", 1.1000, 5.0)
    assert book.depth(BID)[0].size == 155.0


def test_delete_removes_the_level_when_its_last_entry_goes(book):
    book.delete(ASK, "alpha", 1.1002)
    assert book.best_ask() == 1.1003
    book.delete(BID, "alpha", 1.1000)
    assert book.best_bid() == 1.1000  # beta is still there
    book.update(BID, "beta", 1.1000, 0.0)
    assert book.best_bid() == 1.0999


@pytest.mark.parametrize(
    ("price", "size", "message"),
    [
        (math.nan, 1.0, "invalid price"),
        (-1.1, 1.0, "invalid price"),
        (0.0, 1.0, "invalid price"),
        (math.inf, 1.0, "invalid price"),
        ("1.1", 1.0, "invalid price"),
        (1.1, -5.0, "invalid size"),
        (1.1, math.nan, "invalid size"),
        (1.1, math.inf, "invalid size"),
        (1.1, "5", "invalid size"),
        (1.1, True, "invalid size"),
    ],
)
def test_bad_prices_and_sizes_raise_a_clear_value_error(book, price, size, message):
    before = (book.depth(BID), book.depth(ASK))
    with pytest.raises(ValueError, match=message) as caught:
        book.update(BID, "alpha", price, size)
    assert isinstance(caught.value, InvalidInputError) and isinstance(caught.value, OrderBookError)
    assert (book.depth(BID), book.depth(ASK)) == before
    assert book.counters()["rejected_invalid"] == 1


def test_bad_sides_brokers_and_orders_raise_a_clear_value_error(book):
    with pytest.raises(ValueError, match="invalid side"):
        book.update("buy", "alpha", 1.1, 1.0)
    with pytest.raises(ValueError, match="invalid broker"):
        book.update(BID, "", 1.1, 1.0)
    with pytest.raises(ValueError, match="invalid broker"):
        book.update(BID, 7, 1.1, 1.0)
    with pytest.raises(ValueError, match="invalid size"):
        book.add(BID, "alpha", 1.1, 0.0)
    with pytest.raises(ValueError, match="order size"):
        book.match(Order("buy", -1.0))
    with pytest.raises(ValueError, match="order side"):
        book.match(Order("bid", 1.0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        book.match(Order("buy", 1.0, limit=math.nan))
    with pytest.raises(ValueError, match="order size"):
        book.walk("sell", math.nan)
    with pytest.raises(ValueError, match="invalid side"):
        book.best("buy")
    assert book.counters()["rejected_invalid"] == 9
    assert book.counters()["matches"] == 0


def test_int_prices_and_sizes_are_accepted_as_floats(impl):
    book = impl("XAUUSD")
    book.update(BID, "alpha", 2000, 3)
    assert book.best_bid() == 2000.0 and book.size_at(BID, "alpha", 2000.0) == 3.0


def test_consensus_mid_is_the_median_of_brokers_mids_and_ignores_an_outlier(impl):
    book = impl("EURUSD")
    book.update(BID, "a", 1.1000, 1.0)
    book.update(ASK, "a", 1.1004, 1.0)
    book.update(BID, "b", 1.1001, 1.0)
    book.update(ASK, "b", 1.1005, 1.0)
    book.update(BID, "c", 1.0950, 1.0)  # off-market
    book.update(ASK, "c", 1.1006, 1.0)
    assert book.broker_bbo("c") == (1.0950, 1.1006)
    assert book.consensus_mid() == pytest.approx(1.1002)  # median of 1.1002, 1.1003, 1.0978
    assert book.mid() == pytest.approx(1.10025)  # the consolidated mid is another thing
    assert book.consensus_mid(exclude="b") == pytest.approx((1.1002 + 1.0978) / 2)
    assert book.brokers() == ["a", "b", "c"]


def test_clear_broker_removes_all_its_levels(book):
    assert book.clear_broker("alpha") == 2
    assert book.brokers() == ["beta"]
    assert (book.best_bid(), book.best_ask()) == (1.1000, 1.1003)
    assert book.clear_broker("alpha") == 0


def test_depth_can_be_limited_to_the_top_levels(book):
    assert [level.price for level in book.depth(BID, 1)] == [1.1000]
    assert [level.price for level in book.depth(BID)] == [1.1000, 1.0999]
    assert [level.price for level in book.depth(ASK)] == [1.1002, 1.1003]


def test_the_package_picks_the_compiled_core_only_when_it_is_built():
    if CompiledOrderBook is None:
        assert orderbook_pkg.OrderBook is PyOrderBook and orderbook_pkg.IMPLEMENTATION == "python"
    else:
        assert orderbook_pkg.OrderBook is CompiledOrderBook and orderbook_pkg.IMPLEMENTATION == "compiled"
