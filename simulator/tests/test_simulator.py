"""The simulator is reproducible from a seed and its broker profiles' ground truth shows in the data."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, date, datetime

import pytest
from django.utils.text import slugify

from common.ticks import FeedEventKind, Quote, StatusEvent
from simulator.broker import BrokerFeedSimulator, outages_for_day
from simulator.calendar import EventIntensity, recurring_events
from simulator.instruments import SPECS
from simulator.market import ReferenceMarket
from simulator.profiles import BROKER_PROFILES
from simulator.world import BROKERS

T0 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp()) * 1_000_000  # a Monday
MIN = 60_000_000


def _sim(slug, *, seed=7, rate=2.0, instruments=("EURUSD",), events=None, start=T0):
    markets = {s: ReferenceMarket(s, seed=seed, events=events or []) for s in instruments}
    return BrokerFeedSimulator(
        BROKER_PROFILES[slug], markets, seed=seed, quotes_per_s=rate, start_us=start, instruments=list(instruments)
    )


def _quotes(items):
    return [i for i in items if isinstance(i, Quote) and math.isfinite(i.bid) and i.bid <= i.ask]


def test_profiles_cover_the_fourteen_demo_brokers_with_a_strict_quality_order():
    assert set(BROKER_PROFILES) == {slugify(str(b["name"])) for b in BROKERS}
    assert sorted(p.quality_rank for p in BROKER_PROFILES.values()) == list(range(1, 15))
    assert all(1 <= p.depth_levels <= 5 for p in BROKER_PROFILES.values())


def test_the_same_seed_gives_the_same_quotes_and_another_seed_does_not():
    a = list(_sim("kestrel-fx", seed=1).events(T0, T0 + 2 * MIN))
    b = list(_sim("kestrel-fx", seed=1).events(T0, T0 + 2 * MIN))
    c = list(_sim("kestrel-fx", seed=2).events(T0, T0 + 2 * MIN))
    assert a == b
    assert len(a) > 100
    assert a != c


def test_output_does_not_depend_on_how_time_is_cut_into_windows():
    whole = list(_sim("cypress-trade").events(T0, T0 + 3 * MIN))
    sim = _sim("cypress-trade")
    pieces = [i for k in range(18) for i in sim.events(T0 + k * 10_000_000, T0 + (k + 1) * 10_000_000)]
    assert whole == pieces


def test_reference_market_is_continuous_and_reproducible_across_days():
    m1, m2 = ReferenceMarket("EURUSD", seed=3), ReferenceMarket("EURUSD", seed=3)
    midnight = T0 + 86_400_000_000
    before, after = m1.mid_at(midnight - 1), m1.mid_at(midnight)
    assert abs(after - before) / before < 1e-4
    assert m1.mid_at(T0 + 12345) == m2.mid_at(T0 + 12345)


def _mean_spread(slug, *, seed=11, minutes=30, start=T0, events=None):
    qs = _quotes(_sim(slug, seed=seed, rate=2.0, events=events, start=start).events(start, start + minutes * MIN))
    return statistics.median(q.ask - q.bid for q in qs)


def test_spread_markup_follows_the_quality_ranking():
    best = [_mean_spread(s) for s in ("northwind-markets", "alpenbank-trading", "kestrel-fx")]
    worst = [_mean_spread(s) for s in ("coral-reef-trading", "palmetto-global", "vanguard-pacific-fx")]
    assert max(best) < min(worst)
    assert _mean_spread("northwind-markets") < _mean_spread("cypress-trade") < _mean_spread("vanguard-pacific-fx")


def test_coral_reef_widens_far_more_around_news_than_northwind():
    nfp = next(e for e in recurring_events(date(2026, 3, 1), date(2026, 3, 31)) if "Non-Farm" in e.name)
    start = nfp.at_us - MIN

    def widening(slug):
        calm = _mean_spread(slug, start=nfp.at_us - 180 * MIN, minutes=20, events=[nfp])
        news = _mean_spread(slug, start=start, minutes=4, events=[nfp])
        return news / calm

    assert widening("coral-reef-trading") > 3.0
    assert widening("northwind-markets") < 1.8
    assert widening("coral-reef-trading") > 2 * widening("northwind-markets")


def test_palmetto_quotes_off_market_far_more_often_than_a_tier_one_broker():
    def off_share(slug):
        qs = _quotes(_sim(slug, rate=5.0).events(T0, T0 + 20 * MIN))
        market = ReferenceMarket("EURUSD", seed=7)
        typical = SPECS["EURUSD"].spread_pips * SPECS["EURUSD"].pip
        off = [q for q in qs if abs((q.bid + q.ask) / 2 - market.mid_at(q.ts_broker)) > 4 * typical]
        return len(off) / len(qs)

    assert off_share("palmetto-global") > 0.02
    assert off_share("northwind-markets") == 0.0


def test_outages_are_frequent_for_vanguard_rare_for_northwind_and_kiwi_edge_s_cluster_at_the_asian_open():
    days = range(20_500, 20_530)

    def downtime(slug):
        return sum(e - s for d in days for s, e in outages_for_day(BROKER_PROFILES[slug], 42, d))

    assert downtime("vanguard-pacific-fx") > 20 * downtime("northwind-markets")
    kiwi = [s for d in days for s, _ in outages_for_day(BROKER_PROFILES["kiwi-edge-fx"], 42, d)]
    assert len(kiwi) > 30
    assert all((s // 3_600_000_000) % 24 in (21, 22, 23, 0) for s in kiwi)


def test_a_simulated_outage_appears_as_disconnect_then_reconnect_with_no_quotes_between():
    sim = _sim("vanguard-pacific-fx", rate=1.0)
    items = list(sim.events(T0, T0 + 86_400_000_000))
    downs = [i for i, x in enumerate(items) if isinstance(x, StatusEvent) and x.kind == FeedEventKind.DISCONNECTED]
    assert downs
    first = downs[0]
    up = next(i for i in range(first, len(items)) if isinstance(items[i], StatusEvent))
    nxt = next(i for i in range(first + 1, len(items)) if isinstance(items[i], StatusEvent))
    assert items[nxt].kind == FeedEventKind.CONNECTED
    assert all(not isinstance(x, Quote) for x in items[first + 1 : nxt])
    assert up == first


def test_depth_has_the_profile_s_number_of_levels_with_growing_sizes():
    for slug in ("northwind-markets", "cypress-trade", "palmetto-global"):
        q = _quotes(_sim(slug).events(T0, T0 + MIN))[0]
        assert q.depth is not None
        bids, asks = q.depth
        assert len(bids) == len(asks) == BROKER_PROFILES[slug].depth_levels
        assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
        assert [s for _, s in asks] == sorted(s for _, s in asks)


def test_stale_brokers_lag_the_reference_market_and_report_later():
    def lag(slug):
        qs = _quotes(_sim(slug, rate=5.0).events(T0, T0 + 10 * MIN))
        return statistics.mean(q.ts_recv - q.ts_broker for q in qs)

    assert lag("vanguard-pacific-fx") > 4 * lag("northwind-markets")


def test_calendar_has_non_farm_payrolls_on_the_first_friday_at_12_30_utc_and_intensity_peaks_there():
    events = recurring_events(date(2026, 1, 1), date(2026, 12, 31))
    nfp = [e for e in events if e.name == "US Non-Farm Payrolls"]
    assert len(nfp) == 12
    for e in nfp:
        at = datetime.fromtimestamp(e.at_us / 1e6, tz=UTC)
        assert at.weekday() == 4 and at.day <= 7 and (at.hour, at.minute) == (12, 30) and e.impact == "high"
    usd = EventIntensity(events, ("EUR", "USD"))
    jpy_only = EventIntensity(events, ("JPY",))
    assert usd(nfp[0].at_us) == 1.0
    assert usd(nfp[0].at_us + 60 * MIN) < 0.01
    assert jpy_only(nfp[0].at_us) == 0.0


def test_a_marked_up_account_quotes_the_same_market_wider_by_its_mark_up():
    from simulator.profiles import BROKER_PROFILES
    from simulator.world import account_markup

    profile = BROKER_PROFILES["northwind-markets"]

    def spreads(markup: float) -> list[float]:
        markets = {"EURUSD": ReferenceMarket("EURUSD", seed=1)}
        feed = BrokerFeedSimulator(
            profile, markets, seed=1, quotes_per_s=5, start_us=0, instruments=["EURUSD"], account_markup_pips=markup
        )
        return [q.spread for q in feed.events(0, 600_000_000) if isinstance(q, Quote) and q.spread > 0][:200]

    markup = account_markup("Northwind Markets", "Standard")
    raw, standard = spreads(0.0), spreads(markup)
    assert markup == 0.8
    assert sum(standard) / len(standard) - sum(raw) / len(raw) == pytest.approx(0.8 * 0.0001, abs=0.00002)
