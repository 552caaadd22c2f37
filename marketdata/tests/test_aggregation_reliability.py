"""Frozen prices, latency and depth in the 1-minute bars (TrustMetrics 2.3's reliability measures).

Checked against a recomputation straight from the definitions in marketdata.aggregation, on the real simulator
with its freeze, latency and size traits, and on hand-made quotes for each rule's edge.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import math
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from brokers.services import demo_seed
from common.ticks import Quote
from marketdata.aggregation import (
    FROZEN_MOVE_STEPS,
    MAX_HELD_US,
    MINUTE_US,
    RELIABILITY_FIELDS,
    BarRow,
    SpreadAggregator,
    rollup_rows,
)
from marketdata.models import SpreadBar
from marketdata.services import bars_rollup, bars_upsert
from simulator.broker import BrokerFeedSimulator
from simulator.market import ReferenceMarket
from simulator.profiles import BROKER_PROFILES

T0 = int(datetime(2026, 3, 3, 9, tzinfo=UTC).timestamp()) * 1_000_000
S = 1_000_000
BROKERS = ["northwind-markets", "kestrel-fx", "cypress-trade", "coral-reef-trading", "vanguard-pacific-fx"]
INSTRUMENTS = ["EURUSD", "USDJPY", "XAUUSD"]
LOTS = {"EURUSD": 100_000.0, "USDJPY": 100_000.0, "XAUUSD": 100.0}


def quotes_with_receipt(*, minutes=20, rate=1.0, seed=3):
    """(broker, instrument, bid, ask, ts_broker, ts_recv, bid_size, ask_size) of valid simulated quotes."""
    markets = {s: ReferenceMarket(s, seed=seed) for s in INSTRUMENTS}
    sims = [
        BrokerFeedSimulator(BROKER_PROFILES[b], markets, seed=seed, quotes_per_s=rate, start_us=T0,
                            with_depth=False, instruments=INSTRUMENTS)
        for b in BROKERS
    ]  # fmt: skip
    items = heapq.merge(
        *(s.events(T0, T0 + minutes * MINUTE_US) for s in sims), key=lambda x: getattr(x, "ts_broker", 0)
    )
    out = []
    for q in items:
        if isinstance(q, Quote) and q.bid == q.bid and 0 < q.bid <= q.ask and not q.instrument.startswith("XYZ"):
            suffix = BROKER_PROFILES[q.broker].suffix
            inst = q.instrument[: len(q.instrument) - len(suffix)] if suffix else q.instrument
            out.append((q.broker, inst, q.bid, q.ask, q.ts_broker, q.ts_recv, q.bid_size, q.ask_size))
    return out


def fold(quotes, agg=None):
    agg = agg or SpreadAggregator(lot_units=LOTS)
    for b, inst, bid, ask, ts, recv, bsz, asz in quotes:
        agg.add(b, inst, bid, ask, ts, 0, recv, bsz, asz)
    return agg


def brute_force(quotes, *, max_age=10_000_000):
    """The 2.3 measures per (broker, instrument, minute) from the definitions, sharing no code with the core."""
    out: dict[tuple[str, str, int], dict[str, float]] = {}
    history: dict[tuple[str, str], list[tuple[int, float, float, dict[str, tuple[int, float]]]]] = {}
    every: dict[str, dict[str, tuple[int, float]]] = {}  # instrument -> broker -> its latest (time, mid) so far
    steps: dict[tuple[str, str], list[float]] = {}
    for b, inst, bid, ask, ts, recv, bsz, asz in quotes:
        latest = {b2: v for b2, v in every.get(inst, {}).items() if b2 != b}
        # The others' latest mids (at most max_age old) when this quote came: where a price is set.
        snapshot = {b2: v for b2, v in latest.items() if v[0] >= ts - max_age}
        row = out.setdefault((b, inst, ts - ts % MINUTE_US), dict.fromkeys(
            ("frozen", "judged", "lat_n", "lat_log", "d", "d1", "d5", "d10"), 0.0))  # fmt: skip
        row["lat_n"] += 1
        row["lat_log"] += math.log(1 + max(0.0, (recv - ts) / 1000))
        touch, lot = min(bsz, asz), LOTS[inst]
        if touch > 0:
            row["d"] += 1
            row["d1"] += touch >= lot
            row["d5"] += touch >= 5 * lot
            row["d10"] += touch >= 10 * lot
        past = history.setdefault((b, inst), [])
        if past:
            changes = steps.setdefault((b, inst), [])
            changes.append(max(abs(bid - past[-1][1]), abs(ask - past[-1][2])))
            step = min((c for c in changes if c > 0), default=0.0)
            # The run of identical quotes the standing price belongs to, and the first snapshot in it with others.
            k = len(past) - 1
            while k > 0 and (past[k - 1][1], past[k - 1][2]) == (past[k][1], past[k][2]):
                k -= 1
            ref = next((p[3] for p in past[k:] if p[3]), {})
            moves = sorted(latest[o][1] - m for o, (t, m) in ref.items() if o in latest and latest[o][0] > t)
            held = ts - past[-1][0]
            if (
                moves
                and step > 0
                and 0 < held <= MAX_HELD_US
                and abs(statistics.median(moves)) > FROZEN_MOVE_STEPS * step
            ):
                row["judged"] += held / 1e6
                if (bid, ask) == (past[-1][1], past[-1][2]):
                    row["frozen"] += held / 1e6
        past.append((ts, bid, ask, snapshot))
        every.setdefault(inst, {})[b] = (ts, (bid + ask) / 2)
    return out


def test_frozen_time_latency_and_depth_equal_a_recomputation_from_the_definitions():
    quotes = quotes_with_receipt(minutes=4, rate=1.0)
    got = {(r.broker, r.instrument, r.start_us): r for r in fold(quotes).take_rows()}
    want = brute_force(quotes)
    assert set(got) == set(want)
    for key, w in want.items():
        r = got[key]
        assert r.frozen_s == pytest.approx(w["frozen"], abs=1e-9), key
        assert r.frozen_judged_s == pytest.approx(w["judged"], abs=1e-9), key
        assert r.latency_count == w["lat_n"] and r.latency_log_sum == pytest.approx(w["lat_log"], rel=1e-12), key
        assert (r.depth_count, r.depth_1, r.depth_5, r.depth_10) == (w["d"], w["d1"], w["d5"], w["d10"]), key
    assert sum(r.frozen_s for r in got.values()) > 0


def _shares(rows):
    per: dict[str, list[float]] = {}
    for r in rows:
        acc = per.setdefault(r.broker, [0.0] * 7)
        for k, v in enumerate(
            (r.frozen_s, r.frozen_judged_s, r.latency_count, r.latency_log_sum, r.depth_count, r.depth_5, r.depth_10)
        ):
            acc[k] += v
    return {
        b: {
            "frozen": a[0] / a[1],
            "latency_ms": math.exp(a[3] / a[2]) - 1,
            "depth_5": a[5] / a[4],
        }
        for b, a in per.items()
    }


def test_the_measures_follow_the_simulated_brokers_freeze_latency_and_size_traits():
    shares = _shares(fold(quotes_with_receipt(minutes=30, rate=1.0)).take_rows())
    by_freeze = sorted(BROKERS, key=lambda b: BROKER_PROFILES[b].freeze_rate)
    by_latency = sorted(BROKERS, key=lambda b: BROKER_PROFILES[b].latency_ms)
    # Frozen share of moving-market time estimates the share of repeated quotes, at any quote rate.
    for b in BROKERS:
        assert shares[b]["frozen"] == pytest.approx(BROKER_PROFILES[b].freeze_rate, abs=0.012), (b, shares[b])
    assert shares[by_freeze[-1]]["frozen"] > 4 * shares[by_freeze[0]]["frozen"]
    assert [b for b in sorted(BROKERS, key=lambda b: shares[b]["latency_ms"])] == by_latency
    # A geometric mean of exponential delays: about 0.56 of their mean.
    for b in BROKERS:
        assert 0.4 < shares[b]["latency_ms"] / BROKER_PROFILES[b].latency_ms < 0.75, (b, shares[b])
    assert shares["northwind-markets"]["depth_5"] > shares["vanguard-pacific-fx"]["depth_5"] + 0.3


def test_the_frozen_share_does_not_depend_on_the_quote_rate():
    slow = _shares(fold(quotes_with_receipt(minutes=180, rate=0.1)).take_rows())
    fast = _shares(fold(quotes_with_receipt(minutes=30, rate=1.0)).take_rows())
    v = "vanguard-pacific-fx"
    assert slow[v]["frozen"] == pytest.approx(fast[v]["frozen"], abs=0.015)
    assert slow[v]["frozen"] == pytest.approx(BROKER_PROFILES[v].freeze_rate, abs=0.015)


def _market(agg, ts, mids, *, brokers=("b", "c", "d")):
    for b, m in zip(brokers, mids, strict=True):
        agg.add(b, "EURUSD", m - 0.00005, m + 0.00005, ts)


def test_a_repeated_quote_counts_as_frozen_only_while_the_market_moves():
    agg = SpreadAggregator()
    t = T0
    # The broker's price step becomes known (0.00001), the market then moves by 0.0003 while it repeats.
    _market(agg, t, [1.1000, 1.1000, 1.1000])
    agg.add("a", "EURUSD", 1.09995, 1.10005, t + 1)
    agg.add("a", "EURUSD", 1.09996, 1.10006, t + S)
    _market(agg, t + 2 * S, [1.1003, 1.1003, 1.1003])
    agg.add("a", "EURUSD", 1.09996, 1.10006, t + 3 * S)  # repeated while the market moved: 2 s frozen
    _market(agg, t + 4 * S, [1.1003, 1.1003, 1.1003])
    agg.add("a", "EURUSD", 1.09996, 1.10006, t + 5 * S)  # repeated again, consensus still 3 steps off where set
    rows = {r.broker: r for r in agg.take_rows()}
    assert rows["a"].frozen_s == pytest.approx(4.0) and rows["a"].frozen_judged_s == pytest.approx(4.0)

    still = SpreadAggregator()
    _market(still, t, [1.1000, 1.1000, 1.1000])
    still.add("a", "EURUSD", 1.09995, 1.10005, t + 1)
    still.add("a", "EURUSD", 1.09996, 1.10006, t + S)
    _market(still, t + 2 * S, [1.10001, 1.10001, 1.10001])  # one step: less than a tracking price must follow
    still.add("a", "EURUSD", 1.09996, 1.10006, t + 3 * S)
    rows = {r.broker: r for r in still.take_rows()}
    assert rows["a"].frozen_s == 0 and rows["a"].frozen_judged_s == 0


def test_a_coarse_price_step_is_not_mistaken_for_a_frozen_feed():
    # A broker quoting whole 0.001 steps repeats its price while the market moves by less than that step.
    agg = SpreadAggregator()
    _market(agg, T0, [1.1000, 1.1000, 1.1000])
    agg.add("a", "EURUSD", 1.099, 1.101, T0 + 1)
    agg.add("a", "EURUSD", 1.100, 1.102, T0 + S)
    _market(agg, T0 + 2 * S, [1.1008, 1.1008, 1.1008])
    agg.add("a", "EURUSD", 1.100, 1.102, T0 + 3 * S)
    (row,) = [r for r in agg.take_rows() if r.broker == "a"]
    assert row.frozen_s == 0 and row.frozen_judged_s == 0


def test_a_silence_longer_than_an_hour_is_not_judged():
    agg = SpreadAggregator()
    _market(agg, T0, [1.1000, 1.1000, 1.1000])
    agg.add("a", "EURUSD", 1.09995, 1.10005, T0 + 1)
    agg.add("a", "EURUSD", 1.09996, 1.10006, T0 + S)
    later = T0 + S + MAX_HELD_US + 1
    _market(agg, later - S, [1.1030, 1.1030, 1.1030])
    agg.add("a", "EURUSD", 1.09996, 1.10006, later)
    assert sum(r.frozen_judged_s for r in agg.take_rows() if r.broker == "a") == 0


def test_latency_is_the_delay_to_ingest_and_a_clock_ahead_counts_as_none():
    agg = SpreadAggregator()
    agg.add("a", "EURUSD", 1.1, 1.1001, T0, 0, T0 + 99_000)  # 99 ms
    agg.add("a", "EURUSD", 1.1, 1.1001, T0 + S, 0, T0 + S - 5_000)  # the broker's clock 5 ms ahead
    agg.add("a", "EURUSD", 1.1, 1.1001, T0 + 2 * S)  # no receipt time: not counted
    (row,) = agg.take_rows()
    assert row.latency_count == 2
    assert row.latency_log_sum == pytest.approx(math.log(100) + 0.0)


def test_depth_counts_the_smaller_touch_side_in_lots_and_skips_unknown_lots_and_sizes():
    agg = SpreadAggregator(lot_units={"EURUSD": 100_000.0})
    for bid_size, ask_size in ((2e6, 6e5), (1.2e6, 1.5e6), (5e4, 9e6), (0.0, 0.0)):
        agg.add("a", "EURUSD", 1.1, 1.1001, T0, 0, None, bid_size, ask_size)
    agg.add("a", "GBPUSD", 1.3, 1.3001, T0, 0, None, 5e6, 5e6)  # no lot size known: no depth
    rows = {r.instrument: r for r in agg.take_rows()}
    assert (rows["EURUSD"].depth_count, rows["EURUSD"].depth_1, rows["EURUSD"].depth_5, rows["EURUSD"].depth_10) == (
        3, 2, 2, 1,
    )  # fmt: skip
    assert rows["GBPUSD"].depth_count == 0


def test_a_checkpoint_resumes_the_measures_bit_for_bit_and_an_older_state_still_loads():
    quotes = quotes_with_receipt(minutes=4)
    whole = {(r.broker, r.instrument, r.start_us): r for r in fold(quotes).take_rows()}
    first = fold(quotes[: len(quotes) // 3])
    resumed = SpreadAggregator(lot_units=LOTS)
    resumed.load_state(json.loads(json.dumps(first.state())))
    rows = {(r.broker, r.instrument, r.start_us): r for r in first.take_rows()}
    rows.update(
        {(r.broker, r.instrument, r.start_us): r for r in fold(quotes[len(quotes) // 3 :], resumed).take_rows()}
    )
    assert rows == whole

    # A state written before 2.3: 15 fields per bar (the account last) and no runs. The measures start at 0.
    old = first.state()
    old["bars"] = [r[:15] for r in old["bars"]]
    del old["runs"]
    again = SpreadAggregator(lot_units=LOTS)
    again.load_state(json.loads(json.dumps(old)))
    b, i, *_ = quotes[len(quotes) // 3]
    again.add(b, i, 1.0, 1.0001, quotes[len(quotes) // 3][4])
    assert again.take_rows()


def test_rollups_add_the_measures_up_in_python_and_in_sql(db):
    demo_seed()
    quotes = quotes_with_receipt(minutes=3, rate=1.0)
    rows = fold(quotes).take_rows()
    bars_upsert(rows=rows)
    bars_upsert(rows=rows)  # idempotent
    start = datetime.fromtimestamp(T0 / 1e6, tz=UTC)
    bars_rollup(since=start, until=start + timedelta(minutes=10))
    py = {(r.broker, r.instrument): r for r in rollup_rows(rows, bucket_us=3_600_000_000)}
    fields = RELIABILITY_FIELDS
    hourly = SpreadBar.objects.filter(resolution="1h").select_related("broker", "instrument")
    assert hourly.count() == len(py)
    for bar in hourly:
        want = py[(bar.broker.slug, bar.instrument.symbol)]
        for name in fields:
            assert getattr(bar, name) == pytest.approx(getattr(want, name), rel=1e-9), name
    assert sum(b.frozen_s for b in hourly) > 0 and sum(b.depth_count for b in hourly) > 0


def test_the_reliability_measures_are_listed_once_for_the_bars_the_bar_table_and_the_daily_inputs():
    from trustmetrics.models import TrustDailyInput
    from trustmetrics.scoring import DAILY_FIELDS

    bar_fields = [f.name for f in dataclasses.fields(BarRow)]
    assert tuple(bar_fields[bar_fields.index("account") + 1 :]) == RELIABILITY_FIELDS
    table = {f.name for f in SpreadBar._meta.get_fields()}
    daily = {f.name for f in TrustDailyInput._meta.get_fields()}
    assert set(RELIABILITY_FIELDS) <= table & daily & set(DAILY_FIELDS)
