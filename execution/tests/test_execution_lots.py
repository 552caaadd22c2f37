"""Each account's lot step and minimum order, hostile order sizes, and the stated penalty for an unfilled part.

Pure core only (no Django, no Redis): the rules the page, its JSON and the API all show.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution import calc

NOW = 1_700_000_000_000_000
LOT = calc.STANDARD_LOT


def depth(
    broker: str, bids, asks, *, account: str = "", commission: float = 0.0, step: float = 0.01, minimum: float = 0.01
) -> calc.BrokerDepth:
    return calc.BrokerDepth(
        broker=broker,
        name=broker.title(),
        raw=json.dumps({"bids": bids, "asks": asks, "ts": NOW}),
        account=account,
        commission_per_lot=commission,
        lot_step=step,
        min_lots=minimum,
    )


def estimate(depths, *, size: float, side="buy") -> calc.Estimate:
    return calc.estimate_compute(
        instrument="EURUSD",
        side=side,
        size=size,
        pip_size=0.0001,
        quote_ccy="USD",
        depths=depths,
        other_mids={},
        now_us=NOW,
        stale_after_s=5.0,
    )


def on_grid(units: float, *, step: float, minimum: float, lot: float = LOT) -> bool:
    """0, or a whole number of lot steps at or above the minimum."""
    if units == 0:
        return True
    steps = units / (step * lot)
    return abs(steps - round(steps)) < 1e-6 and units >= minimum * lot - 1e-6


def by_broker(result: calc.Estimate) -> dict[str, calc.BrokerResult]:
    return {r.broker: r for r in result.brokers}


# -- each account's own lot step and minimum ------------------------------------------------------------------


def test_an_account_fills_only_whole_lot_steps_and_counts_the_rest_as_unfilled():
    # 1.234567 lots: a 0.01-lot account takes 1.23 lots, a 0.1-lot account 1.2 lots.
    result = estimate(
        [
            depth("fine", [[1.0999, 1e7]], [[1.1001, 1e7]], step=0.01, minimum=0.01),
            depth("coarse", [[1.0999, 1e7]], [[1.1001, 1e7]], step=0.1, minimum=0.1),
        ],
        size=123_456.7,
    )
    rows = by_broker(result)
    assert rows["fine"].cost is not None and rows["fine"].cost.filled == pytest.approx(123_000)
    assert rows["coarse"].cost is not None and rows["coarse"].cost.filled == pytest.approx(120_000)
    assert rows["fine"].partial and rows["fine"].as_dict()["unfilled_reason"] == "lot_step"
    assert rows["fine"].as_dict()["unfilled_units"] == pytest.approx(456.7)
    assert rows["coarse"].as_dict()["lot_step_lots"] == 0.1 and rows["coarse"].as_dict()["min_lots"] == 0.1
    assert result.best_broker is None  # neither can take 1.234567 lots as it is
    assert any("whole number of lot steps" in n for n in result.notes)


def test_an_order_below_an_accounts_minimum_fills_nothing_there_and_ranks_after_every_fill():
    result = estimate(
        [
            depth("big-minimum", [[1.09995, 1e7]], [[1.10005, 1e7]], step=0.1, minimum=1.0),
            depth("small", [[1.0999, 1e7]], [[1.1001, 1e7]], step=0.01, minimum=0.01),
        ],
        size=50_000.0,  # half a lot
    )
    rows = by_broker(result)
    big = rows["big-minimum"]
    assert big.cost is not None and big.cost.filled == 0 and big.fills_nothing and not big.partial
    assert big.as_dict()["unfilled_reason"] == "minimum" and big.as_dict()["penalty_usd"] is None
    assert [r.broker for r in result.brokers] == ["small", "big-minimum"]
    assert result.best_broker == "small"
    assert result.split is not None and result.split.filled == pytest.approx(50_000)
    assert big.split_size == 0 and rows["small"].split_size == pytest.approx(50_000)


def test_a_size_below_every_minimum_fills_nothing_anywhere_and_says_why():
    result = estimate(
        [
            depth("a", [[1.0999, 1e7]], [[1.1001, 1e7]]),
            depth("b", [[1.0998, 1e7]], [[1.1002, 1e7]], step=0.1, minimum=0.1),
        ],
        size=500.0,  # 0.005 lot
    )
    assert all(r.fills_nothing and r.as_dict()["unfilled_reason"] == "minimum" for r in result.brokers)
    assert result.split is not None and result.split.filled == 0 and result.split.average_price is None
    assert result.split.shortfall == pytest.approx(500.0)
    assert all(r.split_size == 0 for r in result.brokers)
    assert any("below the minimum order of every account" in n for n in result.notes)


def test_the_split_gives_each_account_whole_steps_of_its_own_above_its_own_minimum():
    # The cheapest account trades in 0.1 lot from 0.5 lot and shows 0.75 lot: it can take 0.7; the next
    # takes the other 0.3 in its 0.01 steps.
    result = estimate(
        [
            depth("coarse", [[1.0999, 1e7]], [[1.1000, 75_000]], step=0.1, minimum=0.5),
            depth("fine", [[1.0998, 1e7]], [[1.1002, 1e7]], step=0.01, minimum=0.01),
        ],
        size=100_000.0,
    )
    rows = by_broker(result)
    assert rows["coarse"].split_size == pytest.approx(70_000)
    assert rows["fine"].split_size == pytest.approx(30_000)
    assert result.split is not None and result.split.shortfall == 0


def test_the_split_falls_back_to_one_account_when_the_cheap_levels_leave_a_gap_no_step_fits():
    # Cheap depth of half a lot, then an account that only trades whole lots: taking the cheap half would leave
    # half a lot nobody can fill, so the split is the whole-lot account alone.
    result = estimate(
        [
            depth("cheap", [[1.0999, 1e7]], [[1.1000, 50_000]]),
            depth("whole", [[1.0998, 1e7]], [[1.1002, 1e7]], step=1.0, minimum=1.0),
        ],
        size=100_000.0,
    )
    rows = by_broker(result)
    assert result.split is not None and result.split.shortfall == 0
    assert rows["whole"].split_size == pytest.approx(100_000) and rows["cheap"].split_size == 0


def test_the_split_weighs_every_account_of_a_broker_not_only_its_best_ranked_one():
    # 1.05 lots. Alpen's Standard account fills it all alone (so it ranks above Alpen's Premium, which trades
    # 0.1 lot from 1 lot and fills 1.0), but its mark-up costs 2 pips. Premium's whole lot at the touch plus
    # Palm's 0.05 lot is cheaper: the split takes those, and each row says which account takes how much.
    result = estimate(
        [
            depth("alpen", [[1.0999, 1e7]], [[1.1000, 1e7]], account="Premium", commission=5.0, step=0.1, minimum=1.0),
            # The same depth with a 4-pip mark-up (2 pips a side), as the page prices an account with no own feed.
            replace(depth("alpen", [[1.0999, 1e7]], [[1.1000, 1e7]], account="Standard"), markup_price=0.0002),
            depth("palm", [[1.0998, 1e7]], [[1.1001, 10_000]], account="Raw", commission=7.0),
        ],
        size=105_000.0,
    )
    rows = {(r.broker, r.account): r for r in result.brokers}
    assert rows[("alpen", "Standard")].fills_in_full and rows[("alpen", "Premium")].partial
    assert rows[("alpen", "Premium")].split_size == pytest.approx(100_000)
    assert rows[("palm", "Raw")].split_size == pytest.approx(5_000)
    assert rows[("alpen", "Standard")].split_size == 0  # one account per broker: its depth is Premium's too
    assert result.split is not None and result.split.shortfall == 0
    standard_alone = rows[("alpen", "Standard")].cost
    assert standard_alone is not None and standard_alone.all_in_usd is not None and result.split.all_in_usd is not None
    assert result.split.all_in_usd < standard_alone.all_in_usd - 0.5


@pytest.mark.parametrize("lots", [128.11, 9999.99, 0.07, 3.0])
def test_a_size_typed_in_lots_fills_in_full_despite_float_noise(lots):
    size = lots * LOT  # 128.11 lots is 12,811,000.000000002 units in floating point
    result = estimate([depth("a", [[1.0999, 2e9]], [[1.1001, 2e9]])], size=size)
    (row,) = result.brokers
    assert row.fills_in_full and row.unfilled_reason is None and row.best
    assert result.split is not None and result.split.shortfall == 0


def test_hostile_sizes_never_give_an_account_a_share_off_its_grid():
    books = [
        depth("a", [[1.0999, 5_618_040.52]], [[1.1001, 5_618_040.52]], step=0.01, minimum=0.01),
        depth("b", [[1.0998, 123_456_789.123]], [[1.1002, 123_456_789.123]], step=0.001, minimum=0.003),
        depth("c", [[1.0997, 77_777.7]], [[1.1000, 77_777.7]], step=0.1, minimum=0.5),
    ]
    steps = {"a": (0.01, 0.01), "b": (0.001, 0.003), "c": (0.1, 0.5)}
    for size in (0.5, 999.99, 5_618_540.52, 123_456.789, 1e9, calc.MAX_LOTS * LOT):
        result = estimate(books, size=size)
        assert result.split is not None
        for r in result.brokers:
            step, minimum = steps[r.broker]
            assert on_grid(r.split_size, step=step, minimum=minimum), (size, r.broker, r.split_size)
            assert r.cost is not None and on_grid(r.cost.filled, step=step, minimum=minimum), (size, r.broker)
        assert sum(r.split_size for r in result.brokers) == pytest.approx(result.split.filled)
        assert result.split.filled + result.split.shortfall == pytest.approx(size)
        assert "5618040.52" not in json.dumps(result.as_dict())


# -- the stated penalty for the unfilled part of a partial fill ------------------------------------------------


def test_the_unfilled_part_is_priced_at_the_worst_level_reached_plus_the_accounts_spread_and_commission():
    result = estimate(
        [
            depth("partial", [[1.0999, 1e6]], [[1.1001, 300_000]], commission=7.0),
            depth("full", [[1.0999, 5e6]], [[1.1001, 5e6]]),
        ],
        size=1_000_000.0,
    )
    assert result.consensus_mid == pytest.approx(1.1)
    row = by_broker(result)["partial"].as_dict()
    assert row["partial"] and row["unfilled_reason"] == "depth"
    assert row["spread_cost_usd"] == pytest.approx(30.0)  # 300,000 x 1 pip
    assert row["commission_usd"] == pytest.approx(10.5)  # 3 lots x $3.50 (one side of $7)
    assert row["all_in_usd"] == pytest.approx(40.5)
    # 700,000 unfilled at 1.1001 + the 2-pip spread = 1.1003: 3 pips over the mid, $210, plus 7 lots x $3.50.
    assert row["penalty_price"] == pytest.approx(1.1003)
    assert row["penalty_usd"] == pytest.approx(210.0 + 24.5)
    assert row["all_in_with_penalty_usd"] == pytest.approx(40.5 + 234.5)
    full = by_broker(result)["full"].as_dict()
    assert full["penalty_usd"] == 0 and full["all_in_with_penalty_usd"] == full["all_in_usd"]
    assert "worst price" in result.as_dict()["penalty_rule"]


def test_a_sell_prices_the_unfilled_part_one_spread_below_the_worst_bid_reached():
    result = estimate(
        [
            depth("partial", [[1.0999, 200_000], [1.0998, 100_000]], [[1.1001, 1e6]]),
            depth("full", [[1.0999, 5e6]], [[1.1001, 5e6]]),
        ],
        size=1_000_000.0,
        side="sell",
    )
    row = by_broker(result)["partial"].as_dict()
    assert row["penalty_price"] == pytest.approx(1.0998 - 0.0002)
    assert row["penalty_usd"] == pytest.approx(700_000 * (1.1 - 1.0996))


def test_partials_rank_after_every_full_fill_by_all_in_including_the_penalty():
    result = estimate(
        [
            # Cheapest on what it fills ($10) but a 12-pip spread: its 900,000 unfilled cost $1,080 more.
            depth("thin-wide", [[1.0990, 1e6]], [[1.1001, 100_000]]),
            # $80 on what it fills, then 500,000 at 1.1004: $200 more. $280 in all.
            depth("half-tight", [[1.0999, 1e6]], [[1.1001, 200_000], [1.1002, 300_000]]),
            # Fills in full for $500: dearer than the better partial, but a full fill.
            depth("full-dear", [[1.0995, 5e6]], [[1.1005, 5e6]]),
            depth("full", [[1.0999, 5e6]], [[1.1001, 5e6]]),
        ],
        size=1_000_000.0,
    )
    assert result.consensus_mid == pytest.approx(1.1)
    assert [r.broker for r in result.brokers] == ["full", "full-dear", "half-tight", "thin-wide"]
    rows = by_broker(result)
    assert rows["thin-wide"].as_dict()["all_in_usd"] < rows["half-tight"].as_dict()["all_in_usd"]
    assert rows["half-tight"].as_dict()["all_in_with_penalty_usd"] == pytest.approx(280.0)
    assert rows["thin-wide"].as_dict()["all_in_with_penalty_usd"] == pytest.approx(10.0 + 1080.0)


def test_a_partial_whose_account_quotes_one_side_only_states_no_penalty_and_ranks_after_those_that_do():
    result = estimate(
        [
            depth("one-sided", [], [[1.1000, 100_000]]),
            depth("two-sided", [[1.0999, 1e6]], [[1.1001, 200_000]]),
            depth("mid", [[1.0999, 1e6]], [[1.1001, 100]]),
        ],
        size=1_000_000.0,
    )
    rows = by_broker(result)
    assert rows["one-sided"].as_dict()["penalty_usd"] is None
    assert rows["one-sided"].as_dict()["penalty_price"] is None
    assert [r.broker for r in result.brokers][:2] == ["two-sided", "one-sided"]


def test_a_partial_split_states_its_penalty_by_the_same_rule():
    result = estimate(
        [
            depth("a", [[1.0999, 1e6]], [[1.1001, 100_000]]),
            depth("b", [[1.0998, 1e6]], [[1.1002, 100_000]], commission=5.0),
        ],
        size=1_000_000.0,
    )
    split = result.as_dict()["split"]
    assert split["filled_units"] == pytest.approx(200_000)
    # The worst level reached is b's 1.1002, b's spread is 4 pips: 800,000 at 1.1006 against the 1.1 mid,
    # plus b's commission ($2.50 a lot, one side) on the 8 lots.
    assert split["penalty_price"] == pytest.approx(1.1006)
    assert split["penalty_usd"] == pytest.approx(800_000 * 0.0006 + 8 * 2.5)
    assert split["all_in_with_penalty_usd"] == pytest.approx(split["all_in_usd"] + split["penalty_usd"])


# -- the property: on every account's grid, never worse than one account ---------------------------------------

grid = st.sampled_from([(0.001, 1), (0.01, 1), (0.01, 10), (0.1, 1), (0.1, 5), (1.0, 1)])  # (step, minimum in steps)
level = st.tuples(
    st.integers(min_value=1, max_value=30),  # ticks from the touch
    st.floats(min_value=1.0, max_value=3e6, allow_nan=False, allow_infinity=False),  # any size, fractions too
)
account_book = st.tuples(grid, st.lists(level, min_size=1, max_size=5), st.lists(level, min_size=1, max_size=5))


@settings(max_examples=200, deadline=None)
@given(
    books=st.lists(account_book, min_size=1, max_size=5),
    side=st.sampled_from(["buy", "sell"]),
    size=st.one_of(
        st.floats(min_value=1.0, max_value=2e7, allow_nan=False, allow_infinity=False),
        st.integers(min_value=1, max_value=200).map(lambda lots: lots * LOT),
    ),
)
def test_every_share_is_on_its_accounts_grid_and_the_split_is_never_worse_than_one_account(books, side, size):
    tick = 0.00001
    depths, grids = [], {}
    for i, ((step, min_steps), bid_levels, ask_levels) in enumerate(books):
        bid0 = 1.1 - i * tick
        bids = [[round(bid0 - t * tick, 5), q] for t, q in bid_levels]
        asks = [[round(bid0 + t * tick, 5), q] for t, q in ask_levels]
        minimum = round(step * min_steps, 3)
        depths.append(depth(f"b{i}", bids, asks, step=step, minimum=minimum))
        grids[f"b{i}"] = (step, minimum, sum(q for _, q in (bid_levels if side == "sell" else ask_levels)))
    result = estimate(depths, side=side, size=size)
    split = result.split
    assert split is not None
    for r in result.brokers:
        step, minimum, available = grids[r.broker]
        assert r.cost is not None
        assert on_grid(r.cost.filled, step=step, minimum=minimum) and r.cost.filled <= min(size, available) + 1e-6
        assert on_grid(r.split_size, step=step, minimum=minimum) and r.split_size <= available + 1e-6
        assert split.filled >= r.cost.filled - 1e-6  # the split never fills less than one account
        assert math.isclose(r.cost.filled + r.cost.shortfall, size, rel_tol=1e-9)
    assert sum(r.split_size for r in result.brokers) == pytest.approx(split.filled)
    assert split.filled + split.shortfall == pytest.approx(size)
    best = next((r for r in result.brokers if r.best), None)
    if best is not None:
        assert best.cost is not None and best.cost.average_price is not None
        assert split.shortfall <= calc.SIZE_EPSILON and split.average_price is not None
        if side == "buy":
            assert split.average_price <= best.cost.average_price * (1 + 1e-12)
        else:
            assert split.average_price >= best.cost.average_price * (1 - 1e-12)
    # Full fills first; then partials by all-in with the penalty; then those that fill nothing.
    groups = [0 if r.fills_in_full else 1 if r.partial else 2 for r in result.brokers if r.status == "ok"]
    assert groups == sorted(groups)
    partials = [r.as_dict()["all_in_with_penalty_usd"] for r in result.brokers if r.partial]
    priced = [p for p in partials if p is not None]
    assert priced == sorted(priced) and partials[: len(priced)] == priced


# -- an order size some accounts cannot take as it is: said beside the field, with the nearest sizes ------------


def test_an_off_grid_size_names_the_accounts_that_cannot_take_it_and_the_nearest_sizes_they_can():
    result = estimate(
        [
            depth("fine", [[1.0999, 1e7]], [[1.1001, 1e7]], step=0.001, minimum=0.001),
            depth("micro", [[1.0999, 1e7]], [[1.1001, 1e7]], step=0.01, minimum=0.01),
            depth("tenth", [[1.0999, 1e7]], [[1.1001, 1e7]], step=0.1, minimum=1.0),
        ],
        size=1.005 * LOT,
    )
    rows = by_broker(result)
    assert rows["fine"].fills_in_full  # an account that can take the size still shows a full fill
    assert rows["micro"].partial and rows["tenth"].partial
    advice = calc.size_advice(estimate=result, lot_units=LOT)
    assert [(a.lot_step, a.min_lots, a.accounts, a.below, a.above, a.reason) for a in advice] == [
        (0.01, 0.01, ("Micro",), 1.0, 1.01, "lot_step"),
        (0.1, 1.0, ("Tenth",), 1.0, 1.1, "lot_step"),
    ]


def test_a_size_below_a_minimum_offers_the_minimum_and_nothing_smaller():
    result = estimate([depth("big", [[1.0999, 1e7]], [[1.1001, 1e7]], step=0.1, minimum=1.0)], size=0.25 * LOT)
    (advice,) = calc.size_advice(estimate=result, lot_units=LOT)
    assert advice.reason == "minimum" and advice.below is None and advice.above == 1.0


def test_a_size_every_account_takes_needs_no_advice():
    result = estimate([depth("a", [[1.0999, 1e7]], [[1.1001, 1e7]], step=0.1, minimum=0.1)], size=2.3 * LOT)
    assert calc.size_advice(estimate=result, lot_units=LOT) == []
