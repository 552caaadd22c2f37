"""The bootstrap band's fast resampling gives exactly what adding each instrument's drawn days up gives."""

from __future__ import annotations

import dataclasses
import operator
import random

from trustmetrics.methodology import METHODOLOGY
from trustmetrics.scoring import (
    BOOTSTRAP_FIELDS,
    DAILY_FIELDS,
    BrokerInputs,
    ExecutionStats,
    FeedStats,
    InstrumentStats,
    LicenceInput,
    ProfileInput,
    bootstrap_bands,
    score_all,
)

SYMBOLS = [
    ("EURUSD", "fx_major", 0.0001),
    ("USDJPY", "fx_major", 0.01),
    ("XAUUSD", "metal", 0.01),
    ("US500", "index", 0.1),
    ("GBPUSD", "fx_major", 0.0001),
]


def _day(rng: random.Random, symbol: str, asset: str, pip: float, broker_id: int) -> InstrumentStats:
    """One day of one instrument with every measure recorded, as the daily inputs hold it."""
    hours = rng.randint(1, 24)
    dev = rng.randint(0, hours)
    off = rng.randint(0, dev)
    news_hours = rng.randint(0, dev)
    spread = pip * rng.uniform(0.5, 3.0) * (broker_id % 3 + 1)
    excursion = rng.uniform(0, 1e-4) * dev
    books = rng.randint(0, 500)
    depth_1 = rng.randint(0, books)
    depth_5 = rng.randint(0, depth_1)
    judged = rng.uniform(0, 3600) if rng.random() < 0.8 else 0.0
    news = rng.choice([0, rng.randint(1, 60)])
    return InstrumentStats(
        symbol,
        asset,
        pip,
        hours=hours,
        sum_mean=spread * hours,
        sum_mean_sq=spread * spread * hours * rng.uniform(1.0, 1.1),
        quotes=rng.randint(0, 5000),
        dev_hours=dev,
        sum_excursion=excursion,
        off_market_hours=off,
        news_minutes=news,
        news_sum_mean=news * spread * rng.uniform(1.0, 4.0),
        news_hours=news_hours,
        news_off_market_hours=min(news_hours, off),
        off_market_sum_excursion=excursion * rng.uniform(0, 0.5) if off else 0.0,
        frozen_s=rng.uniform(0, judged),
        frozen_judged_s=judged,
        latency_count=rng.randint(0, 100),
        latency_log_sum=rng.uniform(0, 500),
        depth_count=books,
        depth_1=depth_1,
        depth_5=depth_5,
        depth_10=rng.randint(0, depth_5),
    )


def _market(seed: int) -> tuple[list[BrokerInputs], dict[tuple[int, str], list[InstrumentStats | None]], int]:
    """A random market: brokers with days missing, instruments without any day and some without any measure."""
    rng = random.Random(seed)
    days = rng.choice([1, 3, 7, 8])
    brokers = []
    daily: dict[tuple[int, str], list[InstrumentStats | None]] = {}
    for broker_id in range(1, rng.randint(3, 9)):
        instruments = []
        for symbol, asset, pip in SYMBOLS:
            if rng.random() < 0.15:
                continue
            per_day = [None if rng.random() < 0.15 else _day(rng, symbol, asset, pip, broker_id) for _ in range(days)]
            if rng.random() < 0.1:
                per_day = [None] * days
            if rng.random() > 0.1:  # else not in the daily rows at all
                daily[(broker_id, symbol)] = per_day
            total = InstrumentStats(symbol, asset, pip)
            for st in per_day:
                total = total if st is None else total + st
            instruments.append(total)
        brokers.append(
            BrokerInputs(
                broker_id=broker_id,
                licences=tuple(
                    LicenceInput(rng.choice([1, 2, 3]), rng.choice(["active", "suspended"]), rng.choice([None, 3]))
                    for _ in range(rng.randint(0, 2))
                ),
                profile=ProfileInput(year_founded=2000 + broker_id, company_type="private", has_website=True),
                as_of_year=2026,
                commission_per_lot=rng.choice([0.0, 7.0]),
                instruments=tuple(instruments),
                feed=(
                    FeedStats(86400.0 * days, 86000.0 * days, 100.0, 300.0, 1, news_s=3600.0, news_out_s=60.0)
                    if rng.random() < 0.7
                    else None
                ),
                rejected_quotes=rng.randint(0, 20),
                execution=ExecutionStats(30.0, 0.9, 0.5, 0.2) if rng.random() < 0.3 else None,
            )
        )
    return brokers, daily, days


def _bands_day_by_day(brokers, daily, days, seed):
    """The band as methodology 2.3 first computed it: per instrument, each field summed over its days with data
    as (times drawn) x (value), then every broker scored again."""
    rng = random.Random(seed)
    overall: dict[int, list[float]] = {b.broker_id: [] for b in brokers}
    for _ in range(METHODOLOGY.bootstrap_samples):
        drawn = [0] * days
        for _ in range(days):
            drawn[rng.randrange(days)] += 1
        resampled = []
        for b in brokers:
            instruments = []
            for s in b.instruments:
                present = [(i, st) for i, st in enumerate(daily.get((b.broker_id, s.symbol), ())) if st is not None]
                weights = [drawn[i] for i, _ in present]
                totals = {
                    f: sum(map(operator.mul, weights, [getattr(st, f) for _, st in present])) for f in DAILY_FIELDS
                }
                instruments.append(InstrumentStats(s.symbol, s.asset_class, s.pip_size, **totals))
            resampled.append(dataclasses.replace(b, instruments=tuple(instruments)))
        for r in score_all(resampled, check=False, detail=False):
            overall[r.broker_id].append(r.overall)
    lo_q, hi_q = METHODOLOGY.band_percentiles

    def percentile(values, q):
        ordered = sorted(values)
        pos = (len(ordered) - 1) * q / 100.0
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    return {b: (round(percentile(v, lo_q), 2), round(percentile(v, hi_q), 2)) for b, v in overall.items()}


def test_the_band_is_exactly_what_adding_each_instruments_drawn_days_gives():
    wide = 0
    for seed in range(40):
        brokers, daily, days = _market(seed)
        bands = bootstrap_bands(brokers=brokers, daily=daily, days=days, seed=f"as-of-{seed}")
        assert bands == _bands_day_by_day(brokers, daily, days, f"as-of-{seed}"), seed
        wide += sum(lo < hi for lo, hi in bands.values())
    assert wide > 40  # the draws do move scores: equal bands are not equal by being empty


def test_the_overall_score_reads_no_field_the_bootstrap_leaves_out():
    assert set(DAILY_FIELDS) - set(BOOTSTRAP_FIELDS) == {"sum_mean_sq"}
    for seed in range(10):
        brokers, _, _ = _market(seed)
        zeroed = [
            dataclasses.replace(
                b,
                instruments=tuple(dataclasses.replace(s, sum_mean_sq=0.0) for s in b.instruments),
            )
            for b in brokers
        ]
        before = [(r.broker_id, r.overall, r.confidence) for r in score_all(brokers, check=False, detail=False)]
        after = [(r.broker_id, r.overall, r.confidence) for r in score_all(zeroed, check=False, detail=False)]
        assert before == after


def test_the_daily_fields_are_every_measure_of_an_instrument():
    names = {f.name for f in dataclasses.fields(InstrumentStats)}
    assert names == {"symbol", "asset_class", "pip_size", "reference_spread", *DAILY_FIELDS}
