"""The pure core of the best-execution calculator: no Django, no Redis; runs in milliseconds."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution import calc

NOW = 1_700_000_000_000_000


def depth(broker: str, bids, asks, *, age_s: float = 0.0) -> calc.BrokerDepth:
    raw = json.dumps({"bids": bids, "asks": asks, "ts": NOW - int(age_s * 1e6)})
    return calc.BrokerDepth(broker=broker, name=broker.title(), raw=raw)


def estimate(depths, *, side="buy", size=1_000_000.0, pip=0.0001, ccy="USD", mids=None) -> calc.Estimate:
    return calc.estimate_compute(
        instrument="EURUSD",
        side=side,
        size=size,
        pip_size=pip,
        quote_ccy=ccy,
        depths=depths,
        other_mids=mids or {},
        now_us=NOW,
        stale_after_s=5.0,
    )


@pytest.mark.parametrize(
    ("symbol", "asset_class", "lot"),
    [
        ("EURUSD", "fx_major", 100_000),
        ("USDTRY", "fx_exotic", 100_000),
        ("XAUUSD", "metal", 100),
        ("XAGUSD", "metal", 5_000),
        ("US500", "index", 1),
        ("BTCUSD", "crypto", 1),
    ],
)
def test_a_lot_has_the_usual_contract_size(symbol, asset_class, lot):
    assert calc.contract_size(symbol=symbol, asset_class=asset_class) == lot


@pytest.mark.parametrize(
    ("symbol", "asset_class", "ccy"),
    [("EURUSD", "fx_major", "USD"), ("USDJPY", "fx_major", "JPY"), ("GER40", "index", "EUR"), ("XYZ", "index", None)],
)
def test_the_quote_currency_comes_from_the_symbol(symbol, asset_class, ccy):
    assert calc.quote_currency(symbol=symbol, asset_class=asset_class) == ccy


def test_usd_conversion_uses_the_direct_pair_or_the_inverse():
    assert calc.usd_per_unit(currency="GBP", mids={"GBPUSD": 1.25})[0] == 1.25
    assert calc.usd_per_unit(currency="JPY", mids={"USDJPY": 150.0})[0] == pytest.approx(1 / 150)
    rate, why = calc.usd_per_unit(currency="TRY", mids={})
    assert rate is None and "no USD figure" in why


def test_depth_parsing_merges_repeated_prices_and_drops_empty_levels():
    bids, asks, ts = calc.depth_parse('{"bids":[[1.1,5],[1.1,2],[1.09,0]],"asks":[[1.2,1]],"ts":7}')
    assert bids == ((1.1, 7.0),) and asks == ((1.2, 1.0),) and ts == 7


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        '{"bids":[],"asks":[]}',
        '{"bids":[[1.1]],"asks":[],"ts":1}',
        '{"bids":[[1.1,-1]],"asks":[],"ts":1}',
        '{"bids":[["1.1",1]],"asks":[],"ts":1}',
        '{"bids":[[0,1]],"asks":[],"ts":1}',
        '{"bids":[[NaN,1]],"asks":[],"ts":1}',
        '{"bids":[],"asks":[],"ts":1.5}',
        "{",
    ],
)
def test_unusable_depth_is_refused(raw):
    with pytest.raises(ValueError):
        calc.depth_parse(raw)


def test_a_broker_quoting_one_side_has_no_mid_but_can_still_fill():
    result = estimate([depth("a", [], [[1.1002, 2e6]]), depth("b", [[1.1000, 1e6]], [[1.1004, 1e6]])])
    assert result.consensus_mid == pytest.approx(1.1002)  # b's mid only
    a = next(r for r in result.brokers if r.broker == "a")
    assert a.cost is not None and a.cost.cost_pips == pytest.approx(0.0)
    assert result.best_broker == "a"


def test_a_timestamp_from_the_future_counts_as_stale():
    result = estimate([depth("a", [[1.1, 1e6]], [[1.2, 1e6]], age_s=-60)])
    assert result.brokers[0].status == "stale"
    assert result.split is None
    assert "No broker has fresh depth" in result.notes[0]


def test_tied_best_prices_highlight_every_tied_broker():
    book = [[1.1000, 1e6]], [[1.1002, 1e6]]
    result = estimate([depth("a", *book), depth("b", *book)])
    assert [r.best for r in result.brokers] == [True, True]


level = st.tuples(
    st.integers(min_value=1, max_value=40),  # ticks from the touch
    st.integers(min_value=1, max_value=50).map(lambda n: n * 100_000.0),
)
broker_book = st.tuples(
    st.integers(min_value=0, max_value=5),  # spread in ticks beyond one
    st.lists(level, min_size=1, max_size=6),
    st.lists(level, min_size=1, max_size=6),
)


@settings(max_examples=150, deadline=None)
@given(
    books=st.lists(broker_book, min_size=1, max_size=6),
    side=st.sampled_from(["buy", "sell"]),
    lots=st.integers(min_value=1, max_value=400),
)
def test_the_split_never_costs_more_than_the_best_single_broker(books, side, lots):
    tick = 0.00001
    depths = []
    for i, (spread, bid_levels, ask_levels) in enumerate(books):
        bid0 = 1.1 - i * tick  # brokers at different prices; they may cross each other, which is fine
        bids = [[round(bid0 - t * tick, 5), s] for t, s in bid_levels]
        asks = [[round(bid0 + (spread + t) * tick, 5), s] for t, s in ask_levels]
        depths.append(depth(f"b{i}", bids, asks))
    size = lots * 100_000.0
    result = estimate(depths, side=side, size=size)
    assert result.split is not None and result.split.average_price is not None
    full = [r for r in result.brokers if r.fills_in_full]
    if full:
        best = next(r for r in result.brokers if r.best)
        assert best.cost is not None and best.cost.average_price is not None
        assert result.split.shortfall == 0
        if side == "buy":
            assert result.split.average_price <= best.cost.average_price * (1 + 1e-12)
            assert all(best.cost.average_price <= (r.cost.average_price or 0) for r in full if r.cost)
        else:
            assert result.split.average_price >= best.cost.average_price * (1 - 1e-12)
        assert result.split.cost_pips is not None and best.cost.cost_pips is not None
        assert result.split.cost_pips <= best.cost.cost_pips + 1e-6
    # The split never fills less than any one broker, and its allocation adds up to what it filled.
    assert all(result.split.filled >= r.cost.filled - 1e-6 for r in result.brokers if r.cost)
    assert sum(r.split_size for r in result.brokers) == pytest.approx(result.split.filled)
    assert result.split.filled + result.split.shortfall == pytest.approx(size)
