"""Daily score history: backfilled from data up to each day only, with digests, bands and explained moves."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import F
from django.urls import reverse

from brokers.models import Broker, Instrument
from brokers.services import demo_seed
from marketdata.models import SpreadBar
from simulator.instruments import SPECS
from testing.support import without_script_loader
from trustmetrics import selectors, services
from trustmetrics.methodology import METHODOLOGY
from trustmetrics.models import TrustDailyInput, TrustScore
from trustmetrics.scoring import DAILY_FIELDS
from trustmetrics.synthetic_load import synthetic_market_write

START = datetime(2026, 11, 2, tzinfo=UTC)
DAYS = 6
NOW = START + timedelta(days=DAYS, hours=3)
SYMBOLS = ["EURUSD", "USDJPY", "XAUUSD"]


@pytest.fixture
def market(db):
    demo_seed()
    synthetic_market_write(start=START, days=DAYS, symbols=SYMBOLS)


def test_the_backfill_stores_one_score_per_broker_and_day_with_version_digest_and_band(market):
    run = services.trust_backfill(days=DAYS, now=NOW)
    brokers = Broker.objects.count()
    assert run.stored == brokers * DAYS
    midnights = sorted(set(TrustScore.objects.values_list("computed_at", flat=True)))
    assert midnights == [START + timedelta(days=n) for n in range(1, DAYS + 1)]
    for score in TrustScore.objects.all():
        assert score.methodology_version == METHODOLOGY.version
        assert len(score.inputs_digest) == 64
        assert score.band_low is not None and score.band_high is not None
        assert score.band_low <= score.band_high


def test_a_rerun_stores_nothing_and_keeps_every_digest(market):
    services.trust_backfill(days=DAYS, now=NOW)
    before = dict(TrustScore.objects.values_list("pk", "inputs_digest"))
    run = services.trust_backfill(days=DAYS, now=NOW)
    assert run.stored == 0 and run.skipped == DAYS
    assert dict(TrustScore.objects.values_list("pk", "inputs_digest")) == before


def test_a_past_day_is_scored_only_from_data_up_to_that_day(market):
    services.trust_backfill(days=DAYS, now=NOW)
    day3 = START + timedelta(days=3)
    first = dict(TrustScore.objects.filter(computed_at=day3).values_list("broker_id", "inputs_digest"))
    TrustScore.objects.all().delete()
    # Later data changes a lot: the score as of day 3 must not see it.
    SpreadBar.objects.filter(start__gte=day3).update(mean=F("mean") * 5, dev_max=F("mean") * 30)
    from trustmetrics.models import TrustDailyInput

    TrustDailyInput.objects.filter(day__gte=day3.date()).delete()
    services.trust_backfill(days=DAYS, now=NOW)
    again = dict(TrustScore.objects.filter(computed_at=day3).values_list("broker_id", "inputs_digest"))
    assert again == first
    last = START + timedelta(days=DAYS)
    assert TrustScore.objects.filter(computed_at=last).exclude(inputs_digest__in=first.values()).exists()


def test_a_move_records_the_components_that_moved_and_the_measured_cause(market):
    northwind = Broker.objects.get(slug="northwind-markets")
    last_day = START + timedelta(days=DAYS - 1)
    SpreadBar.objects.filter(broker=northwind, start__gte=last_day, dev_count__gt=0).update(dev_max=F("mean") * 20)
    services.trust_backfill(days=DAYS, now=NOW)
    score = TrustScore.objects.get(broker=northwind, computed_at=START + timedelta(days=DAYS))
    assert score.moves, score.reason
    integrity = next(m for m in score.moves if m["component"] == "price_integrity")
    assert integrity["change"] <= -1
    assert integrity["cause"].startswith("off-market in ")
    assert "Price integrity: off-market in" in score.reason


def test_stability_moves_name_the_release_and_instrument(market):
    services.trust_backfill(days=DAYS, now=NOW)
    causes = [
        m["cause"]
        for moves in TrustScore.objects.filter(computed_at=START + timedelta(days=5)).values_list("moves", flat=True)
        for m in moves
        if m["component"] == "stability"
    ]
    assert any("at US Non-Farm Payrolls on 6 Nov" in c for c in causes), causes


def test_the_command_backfills_and_the_profile_shows_the_daily_chart_and_change_log(market, client):
    call_command("trust_backfill", "--days", "3")
    assert TrustScore.objects.values("computed_at").distinct().count() == 3
    services.trust_backfill(days=DAYS, now=NOW)
    html = client.get(reverse("brokers:profile", kwargs={"slug": "northwind-markets"})).content.decode()
    assert "data-trust-chart" in html
    assert 'aria-labelledby="changes-heading"' in html
    assert "Uncertainty band" in html
    assert "<script>" not in without_script_loader(html)


def test_the_daily_inputs_store_exactly_the_sums_read_from_the_bars(market):
    days = [(START + timedelta(days=n)).date() for n in range(DAYS)]
    sums = selectors.trust_daily_sums(days=days, as_of=NOW)
    assert services.trust_daily_inputs_refresh(days=days, as_of=NOW) == len(sums) > 0
    stored = {
        (b, i, d): dict(zip(DAILY_FIELDS, values, strict=True))
        for b, i, d, *values in TrustDailyInput.objects.values_list("broker_id", "instrument_id", "day", *DAILY_FIELDS)
    }
    assert stored.keys() == sums.keys()
    for key, values in sums.items():
        for f in DAILY_FIELDS:
            # Counts exactly; sums to the last digits (PostgreSQL may add a day's floats in another order when
            # it reads them again), which a lost digit or a swapped column would not meet.
            assert stored[key][f] == pytest.approx(values[f], rel=1e-12, abs=0), (key, f)
    assert set(TrustDailyInput.objects.values_list("methodology_version", flat=True)) == {METHODOLOGY.version}


def _bars_rewritten_in_another_order(seed: int) -> None:
    """Delete every bar and insert the same bars again in a shuffled order (new ids, another physical order)."""
    import random

    bars = list(SpreadBar.objects.order_by("pk"))
    random.Random(seed).shuffle(bars)
    SpreadBar.objects.all().delete()
    for bar in bars:
        bar.pk = None
    SpreadBar.objects.bulk_create(bars, batch_size=5000)


def test_rebuilding_the_daily_inputs_from_the_same_bars_gives_the_same_digests(market):
    # PostgreSQL adds a group's floats in the order it reads the rows, and Python added the judged off-market hours
    # in a set's order: the same bars read in another order gave other last digits, so another inputs digest.
    def digests() -> dict[int, str]:
        TrustScore.objects.all().delete()
        run = services.trust_scores_compute(as_of=NOW, full=True)
        assert run.stored > 0
        return dict(TrustScore.objects.filter(computed_at=NOW).values_list("broker_id", "inputs_digest"))

    first = digests()
    daily = set(TrustDailyInput.objects.values_list("broker_id", "instrument_id", "day", *DAILY_FIELDS))
    for seed in (1, 2):
        _bars_rewritten_in_another_order(seed)
        assert digests() == first
        assert set(TrustDailyInput.objects.values_list("broker_id", "instrument_id", "day", *DAILY_FIELDS)) == daily


def test_the_cost_is_scored_against_the_instruments_reference_spread_as_the_admin_sets_it(market):
    eur = Instrument.objects.get(symbol="EURUSD")
    assert eur.reference_spread_pips == Decimal(str(SPECS["EURUSD"].spread_pips))  # the demo's market
    first = services.trust_scores_compute(as_of=NOW)
    Instrument.objects.filter(symbol__in=SYMBOLS).update(reference_spread_pips=F("reference_spread_pips") * 2)
    second = services.trust_scores_compute(as_of=NOW + timedelta(minutes=5))
    before = {r.broker_id: r for r in first.results}
    after = {r.broker_id: r for r in second.results}
    for broker_id, result in after.items():
        # Twice the reference halves every ratio: the same broker, cheaper against the reference.
        assert result.inputs["cost_ratio"] == pytest.approx(
            before[broker_id].inputs["cost_ratio"] / 2, rel=1e-3
        )  # stored to 4 places
        assert result.components["cost"] >= before[broker_id].components["cost"]
    assert any(after[b].components["cost"] > before[b].components["cost"] for b in after)
    digests = dict(TrustScore.objects.filter(computed_at=NOW).values_list("broker_id", "inputs_digest"))
    later = dict(
        TrustScore.objects.filter(computed_at=NOW + timedelta(minutes=5)).values_list("broker_id", "inputs_digest")
    )
    assert all(digests[b] != later[b] for b in digests)  # the reference is part of what was scored


def test_without_reference_spreads_the_cost_is_scored_against_the_market_median(market):
    Instrument.objects.update(reference_spread_pips=None)
    results = services.trust_scores_compute(as_of=NOW).results
    ratios = sorted(r.inputs["cost_ratio"] for r in results)
    middle = math.sqrt(METHODOLOGY.cost_band.good * METHODOLOGY.cost_band.bad)
    assert ratios[len(ratios) // 2] == pytest.approx(middle, rel=0.05)  # the median broker sits in the middle
