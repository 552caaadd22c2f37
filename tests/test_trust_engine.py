"""TrustMetrics on real PostgreSQL: a simulated week of the 14 ground-truth brokers, news included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from brokers.models import Broker, Licence
from brokers.services import demo_seed
from live.models import FeedStatusChange, SpreadBar
from live.simulator.profiles import BROKER_PROFILES
from trustmetrics import services
from trustmetrics.models import TrustDailyInput, TrustScore
from trustmetrics.synthetic_load import synthetic_market_write

# Monday 2 November 2026; the week holds US Non-Farm Payrolls on Friday 6 November at 12:30 UTC.
START = datetime(2026, 11, 2, tzinfo=UTC)
DAYS = 7
AS_OF = START + timedelta(days=DAYS)
SYMBOLS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCAD", "XAUUSD", "EURJPY", "NZDUSD"]

pytestmark = pytest.mark.django_db


def spearman(xs: list[float], ys: list[float]) -> float:
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        for rank, i in enumerate(order):
            out[i] = float(rank)
        return out

    rx, ry = ranks(xs), ranks(ys)
    n = len(xs)
    d2 = sum((a - b) ** 2 for a, b in zip(rx, ry, strict=True))
    return 1 - 6 * d2 / (n * (n * n - 1))


@pytest.fixture
def week():
    demo_seed()
    synthetic_market_write(start=START, days=DAYS, symbols=SYMBOLS)
    return {b.slug: b.pk for b in Broker.objects.all()}


def scores_by_slug(run):
    ids = {pk: slug for slug, pk in Broker.objects.values_list("slug", "pk")}
    return {ids[r.broker_id]: r for r in run.results}


def test_the_ranking_matches_the_ground_truth_quality_order(week):
    run = services.trust_scores_compute(as_of=AS_OF)
    scores = scores_by_slug(run)
    slugs = sorted(scores)
    rho = spearman([-scores[s].overall for s in slugs], [BROKER_PROFILES[s].quality_rank for s in slugs])
    table = sorted((-scores[s].overall, BROKER_PROFILES[s].quality_rank, s, scores[s].components) for s in slugs)
    assert rho >= 0.9, "\n".join(map(str, table))
    assert all(r.confidence > 0.8 for r in run.results if r.broker_id != week["vanguard-pacific-fx"])


def test_the_off_market_broker_loses_price_integrity_points(week):
    scores = scores_by_slug(services.trust_scores_compute(as_of=AS_OF))
    palmetto = scores["palmetto-global"].components["price_integrity"]
    clean = [slug for slug in scores if not BROKER_PROFILES[slug].off_market_rate]
    honest = [scores[slug].components["price_integrity"] for slug in clean]
    assert palmetto < min(honest) - 30


def test_the_broker_widening_in_non_farm_payrolls_loses_stability_points(week):
    scores = scores_by_slug(services.trust_scores_compute(as_of=AS_OF))
    coral = scores["coral-reef-trading"]
    assert coral.inputs["news_minutes"] > 0
    others = [s.components["stability"] for slug, s in scores.items() if slug != "coral-reef-trading"]
    assert coral.components["stability"] < min(others)


def test_brokers_with_dropouts_lose_reliability_points(week):
    scores = scores_by_slug(services.trust_scores_compute(as_of=AS_OF))
    steady = scores["northwind-markets"].components["reliability"]
    assert scores["vanguard-pacific-fx"].components["reliability"] < steady - 20
    assert scores["kiwi-edge-fx"].components["reliability"] < steady - 10
    assert scores["vanguard-pacific-fx"].inputs["feed"]["disconnects"] > 20


def test_with_equal_market_data_a_tier_one_licensed_broker_beats_an_unlicensed_one(week):
    # Kestrel's market data, two brokers: one keeps its tier-1 licences, the other loses them all.
    kestrel = Broker.objects.get(slug="kestrel-fx")
    twin = Broker.objects.get(pk=kestrel.pk)
    twin.pk = None
    twin.name, twin.slug = "Kestrel Twin", "kestrel-twin"
    twin.save()
    bars = list(SpreadBar.objects.filter(broker=kestrel))
    for bar in bars:
        bar.pk, bar.broker_id = None, twin.pk
    SpreadBar.objects.bulk_create(bars)
    changes = list(FeedStatusChange.objects.filter(broker=kestrel))
    for change in changes:
        change.pk, change.broker_id = None, twin.pk
    FeedStatusChange.objects.bulk_create(changes)
    for account in kestrel.account_types.all():
        account.pk, account.broker_id = None, twin.pk
        account.save()
    Licence.objects.filter(broker=kestrel).exclude(regulator__tier=1).delete()

    scores = {r.broker_id: r for r in services.trust_scores_compute(as_of=AS_OF).results}
    licensed, unlicensed = scores[kestrel.pk], scores[twin.pk]
    assert unlicensed.components["regulation"] == 0
    for key in ("cost", "stability", "price_integrity", "reliability"):
        assert licensed.components[key] == unlicensed.components[key]
    assert licensed.overall > unlicensed.overall + 15


def test_a_rerun_on_the_same_data_gives_identical_results_and_stores_nothing_twice(week):
    first = services.trust_scores_compute(as_of=AS_OF, full=True)
    again = services.trust_scores_compute(as_of=AS_OF, full=True)
    assert first.stored == 14
    assert again.already_done and again.stored == 0
    assert TrustScore.objects.count() == 14
    later = services.trust_scores_compute(as_of=AS_OF + timedelta(minutes=5))
    assert [(r.overall, r.components) for r in later.results] == [(r.overall, r.components) for r in first.results]
    assert TrustScore.objects.count() == 28
    assert later.changed == []  # nothing moved, so no page is revalidated


def test_incremental_runs_agree_with_a_full_rebuild(week):
    incremental = services.trust_scores_compute(as_of=AS_OF)
    assert len(incremental.days_refreshed) == 8  # nothing stored yet: every day is built
    rows = TrustDailyInput.objects.count()
    second = services.trust_scores_compute(as_of=AS_OF + timedelta(minutes=5))
    assert second.days_refreshed == [AS_OF.date() - timedelta(days=1), AS_OF.date()]
    assert TrustDailyInput.objects.count() == rows
    full = services.trust_scores_compute(as_of=AS_OF + timedelta(minutes=10), full=True)
    assert [r.overall for r in full.results] == [r.overall for r in second.results]


def test_a_little_extra_data_moves_scores_only_a_little(week):
    before = scores_by_slug(services.trust_scores_compute(as_of=AS_OF - timedelta(hours=2)))
    after = scores_by_slug(services.trust_scores_compute(as_of=AS_OF))
    moves = {slug: abs(after[slug].overall - before[slug].overall) for slug in before}
    assert max(moves.values()) < 2.0, moves


def test_a_big_move_is_explained_and_history_is_kept(week):
    services.trust_scores_compute(as_of=AS_OF)
    northwind = Broker.objects.get(slug="northwind-markets")
    # Northwind starts quoting far off the market for the last day.
    SpreadBar.objects.filter(broker=northwind, start__gte=AS_OF - timedelta(days=2)).update(dev_max=0.01)
    run = services.trust_scores_compute(as_of=AS_OF + timedelta(minutes=5))
    assert northwind.pk in run.changed
    history = list(TrustScore.objects.filter(broker=northwind).order_by("computed_at"))
    assert len(history) == 2
    assert history[1].overall < history[0].overall - 3
    assert "Price integrity" in history[1].reason
    assert history[0].reason == ""


def test_a_broker_without_data_gets_a_provisional_middling_score(week):
    SpreadBar.objects.filter(broker__slug="alpenbank-trading").delete()
    scores = scores_by_slug(services.trust_scores_compute(as_of=AS_OF))
    alpen = scores["alpenbank-trading"]
    assert alpen.confidence == 0
    assert alpen.label == "Provisional"
    assert alpen.components["cost"] == 50
