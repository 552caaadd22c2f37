"""Best execution per broker and account: commissions count, partial fills rank last, the split trades in lots."""

from __future__ import annotations

import json

import pytest

from execution import calc

NOW = 1_700_000_000_000_000


def depth(broker: str, bids, asks, *, account: str = "", markup_pips: float = 0.0, commission: float = 0.0):
    raw = json.dumps({"bids": bids, "asks": asks, "ts": NOW})
    return calc.BrokerDepth(
        broker=broker,
        name=broker.title(),
        raw=raw,
        account=account,
        markup_price=markup_pips * 0.0001 / 2,
        commission_per_lot=commission,
    )


def estimate(depths, *, size=100_000.0, side="buy") -> calc.Estimate:
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


def test_a_commission_can_make_the_tightest_price_not_the_best_deal():
    # Alpenbank's raw price is 0.2 pip tighter, but its $5 round-turn commission costs $2.50 on a one-sided lot.
    result = estimate(
        [
            depth("alpenbank", [[1.09999, 5e6]], [[1.10001, 5e6]], account="Private", commission=5.0),
            depth("northwind", [[1.09998, 5e6]], [[1.10002, 5e6]], account="Standard"),
        ]
    )
    best = next(r for r in result.brokers if r.best)
    assert (best.broker, best.account) == ("northwind", "Standard")
    alpen = next(r for r in result.brokers if r.broker == "alpenbank")
    assert alpen.cost is not None and alpen.cost.cost_usd is not None
    assert alpen.cost.commission_usd == pytest.approx(2.5)
    assert alpen.cost.all_in_usd == pytest.approx(alpen.cost.cost_usd + 2.5)
    row = alpen.as_dict()
    for key in ("account", "filled_units", "unfilled_units", "spread_cost_usd", "commission_usd", "all_in_usd"):
        assert key in row
    assert row["account"] == "Private" and row["commission_usd"] == pytest.approx(2.5)


def test_each_account_of_a_broker_is_priced_from_the_same_depth_moved_by_its_mark_up():
    book = ([[1.09999, 5e6]], [[1.10001, 5e6]])
    result = estimate(
        [
            depth("northwind", *book, account="Raw", commission=6.0),
            depth("northwind", *book, account="Standard", markup_pips=0.8),
        ]
    )
    rows = {r.account: r for r in result.brokers}
    assert rows["Standard"].cost is not None and rows["Raw"].cost is not None
    assert rows["Standard"].cost.average_price == pytest.approx(1.10001 + 0.00004)
    assert rows["Raw"].cost.commission_usd == pytest.approx(3.0)
    assert rows["Standard"].cost.commission_usd == 0.0


def test_a_partial_fill_is_flagged_and_ranked_after_every_full_fill_however_cheap():
    result = estimate(
        [
            depth("palmetto", [[1.09999, 1e5]], [[1.10000, 275_000]], account="Standard"),
            depth("northwind", [[1.09990, 2e7]], [[1.10010, 2e7]], account="Standard"),
        ],
        size=10_000_000.0,
    )
    assert [r.broker for r in result.brokers] == ["northwind", "palmetto"]
    palmetto = result.brokers[1]
    assert palmetto.partial and not palmetto.best
    assert palmetto.as_dict()["unfilled_units"] == pytest.approx(9_725_000)
    assert any("partial fill" in n for n in result.notes)


def test_the_split_gives_each_broker_whole_lot_steps_and_nothing_below_the_minimum():
    result = estimate(
        [
            depth("a", [[1.09999, 1e7]], [[1.10001, 5_618_040.52]]),
            depth("b", [[1.09998, 1e7]], [[1.10002, 1e7]]),
            depth("c", [[1.09997, 1e7]], [[1.10003, 1e7]]),
        ],
        size=5_618_540.52,
    )
    step = calc.DEFAULT_LOT_STEP * calc.STANDARD_LOT
    for r in result.brokers:
        assert r.split_size == 0 or r.split_size >= calc.DEFAULT_MIN_LOTS * calc.STANDARD_LOT
        assert abs(r.split_size / step - round(r.split_size / step)) < 1e-6, r.split_size
    assert result.split is not None and result.split.shortfall > 0
    assert any("lot step" in n for n in result.notes)


def test_an_account_quoted_on_its_own_feed_is_priced_from_that_feed_and_does_not_move_the_consensus():
    feed = ([[1.09999, 5e6]], [[1.10001, 5e6]])
    # Northwind's Standard account on a feed of its own: wider than the mark-up would say, and off-centre.
    own = calc.BrokerDepth(
        broker="northwind",
        name="Northwind",
        raw=json.dumps({"bids": [[1.10000, 5e6]], "asks": [[1.10030, 5e6]], "ts": NOW}),
        account="Standard",
        own_feed=True,
    )
    result = estimate(
        [
            own,  # read first: it must still not stand for the broker in the consensus
            depth("northwind", *feed, account="Raw", commission=6.0),
            depth("kestrel", [[1.09998, 5e6]], [[1.10002, 5e6]], account="Raw", commission=7.0),
        ]
    )
    rows = {(r.broker, r.account): r for r in result.brokers}
    standard = rows[("northwind", "Standard")]
    assert standard.cost is not None and standard.cost.average_price == pytest.approx(1.10030)
    assert standard.as_dict()["priced_from"] == "account feed"
    assert rows[("northwind", "Raw")].as_dict()["priced_from"] == "feed account + mark-up"
    # The consensus is the brokers' feed-account mids (1.1 and 1.1), not the Standard feed's 1.10015.
    assert result.consensus_mid == pytest.approx(1.1)
