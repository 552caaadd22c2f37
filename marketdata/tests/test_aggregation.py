"""1-minute bars match a brute-force recomputation from raw quotes; checkpoints and roll-ups are exact."""

from __future__ import annotations

import heapq
import json
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from brokers.services import demo_seed
from common.ticks import Quote
from marketdata.aggregation import MINUTE_US, BarRow, SpreadAggregator, rollup_rows
from marketdata.models import SpreadBar
from marketdata.services import bars_rollup, bars_upsert
from simulator.broker import BrokerFeedSimulator
from simulator.market import ReferenceMarket
from simulator.profiles import BROKER_PROFILES

T0 = int(datetime(2026, 3, 3, 9, tzinfo=UTC).timestamp()) * 1_000_000
BROKERS = ["northwind-markets", "kestrel-fx", "palmetto-global", "coral-reef-trading", "cypress-trade"]
INSTRUMENTS = ["EURUSD", "USDJPY", "XAUUSD"]


def simulated_quotes(*, minutes=5, rate=3.0, seed=5, brokers=BROKERS, start=T0):
    markets = {s: ReferenceMarket(s, seed=seed) for s in INSTRUMENTS}
    sims = [
        BrokerFeedSimulator(BROKER_PROFILES[b], markets, seed=seed, quotes_per_s=rate, start_us=start,
                            with_depth=False, instruments=INSTRUMENTS)
        for b in brokers
    ]  # fmt: skip
    items = heapq.merge(
        *(s.events(start, start + minutes * MINUTE_US) for s in sims), key=lambda x: getattr(x, "ts_broker", 0)
    )
    out = []
    for q in items:
        if isinstance(q, Quote) and q.bid == q.bid and 0 < q.bid <= q.ask and not q.instrument.startswith("XYZ"):
            suffix = BROKER_PROFILES[q.broker].suffix
            out.append((q.broker, q.instrument[: len(q.instrument) - len(suffix)] if suffix else q.instrument,
                        q.bid, q.ask, q.ts_broker))  # fmt: skip
    return out


def brute_force(quotes, *, max_age=10_000_000):
    """Straight from the definitions, with no shared code: scan everything for every quote."""
    per_bar: dict[tuple[str, str, int], list[tuple[int, float, float | None]]] = {}
    for i, (b, inst, bid, ask, ts) in enumerate(quotes):
        latest: dict[str, tuple[int, float]] = {}
        for b2, inst2, bid2, ask2, ts2 in quotes[:i]:
            if inst2 == inst and b2 != b:
                latest[b2] = (ts2, (bid2 + ask2) / 2)
        others = [m for t, m in latest.values() if t >= ts - max_age]
        dev = (bid + ask) / 2 - statistics.median(others) if others else None
        per_bar.setdefault((b, inst, ts - ts % MINUTE_US), []).append((ts, ask - bid, dev))
    rows = {}
    for (b, inst, start), qs in per_bar.items():
        end = start + MINUTE_US
        held = [(qs[k + 1][0] if k + 1 < len(qs) else end) - qs[k][0] for k in range(len(qs))]
        devs = [d for _, _, d in qs if d is not None]
        spreads = [s for _, s, _ in qs]
        rows[(b, inst, start)] = dict(
            open=spreads[0], high=max(spreads), low=min(spreads), close=spreads[-1],
            mean=sum(s * h for s, h in zip(spreads, held, strict=True)) / (end - qs[0][0]), count=len(qs),
            dev_min=min(devs, default=0.0), dev_max=max(devs, default=0.0), dev_count=len(devs),
        )  # fmt: skip
    return rows


def fold(quotes, agg=None):
    agg = agg or SpreadAggregator()
    for b, inst, bid, ask, ts in quotes:
        agg.add(b, inst, bid, ask, ts)
    return agg


def as_dict(rows: list[BarRow]):
    return {(r.broker, r.instrument, r.start_us): r for r in rows}


def test_bars_equal_a_brute_force_recomputation_from_raw_quotes():
    quotes = simulated_quotes(minutes=4, rate=2.0)
    assert len(quotes) > 1000
    got = as_dict(fold(quotes).take_rows())
    want = brute_force(quotes)
    assert set(got) == set(want)
    for key, w in want.items():
        r = got[key]
        for name, value in w.items():
            assert getattr(r, name) == pytest.approx(value, rel=1e-9, abs=1e-12), (key, name)
    assert any(r.dev_count for r in got.values())
    # Palmetto's off-market quotes show up as the widest deviations from consensus.
    worst = max(got.values(), key=lambda r: max(abs(r.dev_min), abs(r.dev_max)) / (r.mean or 1))
    assert worst.broker == "palmetto-global"


def test_a_checkpointed_state_resumes_to_exactly_the_same_bars():
    quotes = simulated_quotes(minutes=3)
    whole = as_dict(fold(quotes).take_rows())
    first = fold(quotes[: len(quotes) // 3])
    saved = json.loads(json.dumps(first.state()))
    resumed = SpreadAggregator()
    resumed.load_state(saved)
    rows = as_dict(first.take_rows())
    rows.update(as_dict(fold(quotes[len(quotes) // 3 :], resumed).take_rows()))
    assert rows == whole


def test_a_late_quote_is_counted_at_the_latest_time_not_dropped():
    agg = SpreadAggregator()
    agg.add("a", "EURUSD", 1.0, 1.0002, T0 + 30_000_000)
    agg.add("a", "EURUSD", 1.0, 1.0004, T0 + 10_000_000)
    (row,) = agg.take_rows()
    assert row.count == 2 and row.close == pytest.approx(0.0004)


def test_python_rollup_matches_brute_force_weighting():
    rows = fold(simulated_quotes(minutes=6)).take_rows()
    hourly = as_dict(rollup_rows(rows, bucket_us=3_600_000_000))
    key = ("northwind-markets", "EURUSD", T0)
    minutes = sorted((r for r in rows if (r.broker, r.instrument) == key[:2]), key=lambda r: r.start_us)
    h = hourly[key]
    assert h.count == sum(r.count for r in minutes)
    assert h.open == minutes[0].open and h.close == minutes[-1].close
    assert h.mean == pytest.approx(sum(r.mean * r.duration for r in minutes) / sum(r.duration for r in minutes))


@pytest.mark.django_db
def test_upserting_the_same_bars_twice_changes_nothing_and_sql_rollups_match_python():
    demo_seed()
    rows = fold(simulated_quotes(minutes=6)).take_rows()
    bars_upsert(rows=rows)
    snapshot = list(SpreadBar.objects.order_by("id").values())
    bars_upsert(rows=rows)
    assert list(SpreadBar.objects.order_by("id").values()) == snapshot
    start = datetime.fromtimestamp(T0 / 1e6, tz=UTC)
    bars_rollup(since=start, until=start + timedelta(minutes=10))
    bars_rollup(since=start, until=start + timedelta(minutes=10))  # idempotent
    py = as_dict(rollup_rows(rows, bucket_us=3_600_000_000))
    hourly = SpreadBar.objects.filter(resolution="1h").select_related("broker", "instrument")
    assert hourly.count() == len(py)
    for bar in hourly:
        r = py[(bar.broker.slug, bar.instrument.symbol, T0)]
        assert (bar.count, bar.open, bar.close) == (r.count, r.open, r.close)
        assert bar.mean == pytest.approx(r.mean, rel=1e-9)
        assert bar.dev_min == pytest.approx(r.dev_min) and bar.dev_max == pytest.approx(r.dev_max)
    daily = SpreadBar.objects.filter(resolution="1d")
    assert sum(daily.values_list("count", flat=True)) == sum(r.count for r in rows)
