"""The pure scoring core: no database, milliseconds."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest

from trustmetrics.methodology import METHODOLOGY
from trustmetrics.scoring import (
    BrokerInputs,
    FeedStats,
    InstrumentStats,
    LicenceInput,
    ProfileInput,
    ScoringInputError,
    band_points,
    explain_move,
    feed_stats,
    off_market_hours,
    off_market_penalty,
    regulation_points,
    score_all,
)

SYMBOLS = [("EURUSD", "fx_major", 0.0001), ("USDJPY", "fx_major", 0.01), ("XAUUSD", "metal", 0.01)]
PROFILE = ProfileInput(year_founded=2010, company_type="private", has_description=True, has_website=True)
TIER1 = (LicenceInput(tier=1, status="active"),)


def stats(
    symbol,
    asset,
    pip,
    *,
    spread=1.0,
    hours=120,
    excursion=0.3,
    off=0,
    news=20,
    widen=2.0,
    cv=0.1,
    dev_hours=None,
    reference=0.0,
):
    mean = spread * pip
    dev_hours = hours if dev_hours is None else dev_hours
    return InstrumentStats(
        symbol=symbol,
        asset_class=asset,
        pip_size=pip,
        reference_spread=reference * pip,
        hours=hours,
        sum_mean=mean * hours,
        sum_mean_sq=(mean * mean) * (1 + cv * cv) * hours,
        quotes=hours * 3600,
        dev_hours=dev_hours,
        sum_excursion=excursion * dev_hours,
        off_market_hours=off,
        off_market_sum_excursion=excursion * off,
        news_minutes=news,
        news_sum_mean=mean * widen * news,
    )


def broker(broker_id, *, licences=TIER1, feed=None, commission=0.0, **kw):
    return BrokerInputs(
        broker_id=broker_id,
        licences=licences,
        profile=PROFILE,
        as_of_year=2026,
        commission_per_lot=commission,
        instruments=tuple(stats(s, a, p, **kw) for s, a, p in SYMBOLS),
        feed=feed,
    )


def by_id(results):
    return {r.broker_id: r for r in results}


def market(**special):
    """Five average brokers plus broker 9 with the given differences."""
    return [broker(i) for i in range(1, 6)] + [broker(9, **special)]


def test_identical_brokers_get_identical_scores():
    results = score_all([broker(i) for i in range(1, 5)])
    assert len({(r.overall, tuple(r.components.values())) for r in results}) == 1


def test_it_is_deterministic_whatever_the_input_order():
    brokers = market(spread=1.4, widen=3.0)
    assert score_all(brokers) == score_all(list(reversed(brokers)))


def test_a_cheaper_broker_scores_higher_on_cost():
    results = by_id(score_all(market(spread=0.6)))
    assert results[9].components["cost"] > results[1].components["cost"] + 10


def test_commission_counts_against_fx_cost():
    results = by_id(score_all(market(commission=7.0)))
    assert results[9].components["cost"] < results[1].components["cost"] - 5


def test_an_off_market_broker_loses_price_integrity_points():
    results = by_id(score_all(market(excursion=2.0, off=24)))
    assert results[9].components["price_integrity"] < results[1].components["price_integrity"] - 20
    assert results[9].inputs["off_market_share"] == pytest.approx(0.2)


def test_price_integrity_counts_only_hours_where_a_consensus_was_measured():
    # Same deviations per measured hour; broker 9 simply had no consensus for half its hours.
    results = by_id(score_all(market(dev_hours=60, off=0)))
    assert results[9].inputs["excursion_ratio"] == pytest.approx(1.0)
    # Its deviations are as good as anyone's; fewer hours with a consensus only lower its confidence (2.0).
    assert results[9].inputs["consensus_share"] == pytest.approx(0.5)
    assert results[9].confidence < results[1].confidence
    # Off-market share is out of the measured hours, not all hours.
    results = by_id(score_all(market(dev_hours=60, off=12)))
    assert results[9].inputs["off_market_share"] == pytest.approx(0.2)


def test_a_few_off_market_hours_are_allowed_for_chance_and_many_take_every_point():
    assert off_market_penalty(0.0) == 0
    assert off_market_penalty(METHODOLOGY.off_market_share_free) == 0
    assert 0 < off_market_penalty(0.2) < 1
    assert off_market_penalty(METHODOLOGY.off_market_share_zero) == 1
    assert off_market_penalty(0.9) == 1


def test_off_market_hours_are_judged_against_the_other_brokers_in_the_same_hour():
    calm = [(1, "EURUSD", 0, 0.0001), (2, "EURUSD", 0, 0.00012), (3, "EURUSD", 0, 0.00009), (4, "EURUSD", 0, 0.0005)]
    # In a volatile hour everybody strays further: the same 0.0005 is normal there.
    wild = [(1, "EURUSD", 1, 0.0004), (2, "EURUSD", 1, 0.0006), (3, "EURUSD", 1, 0.0003), (4, "EURUSD", 1, 0.0005)]
    # Too few peers to judge anybody.
    alone = [(1, "USDJPY", 0, 0.01), (4, "USDJPY", 0, 0.5)]
    assert off_market_hours(calm + wild + alone) == {(4, "EURUSD", 0)}


def test_off_market_hours_reject_impossible_deviations():
    with pytest.raises(ScoringInputError, match="impossible deviation"):
        off_market_hours([(1, "EURUSD", 0, float("nan"))])


def test_a_broker_widening_in_news_loses_stability_points():
    results = by_id(score_all(market(widen=6.0)))
    assert results[9].components["stability"] < results[1].components["stability"] - 20
    assert results[9].components["cost"] == results[1].components["cost"]


def test_feed_outages_lose_reliability_points():
    day = 86400.0
    good = FeedStats(observed_s=7 * day, up_s=7 * day, stale_s=0, down_s=0, disconnects=0)
    bad = FeedStats(observed_s=7 * day, up_s=6.7 * day, stale_s=0.1 * day, down_s=0.2 * day, disconnects=9)
    brokers = [broker(i, feed=good) for i in range(1, 6)] + [broker(9, feed=bad)]
    results = by_id(score_all(brokers))
    assert results[1].inputs["reliability_parts"]["availability"] == 100
    assert results[9].inputs["reliability_parts"]["availability"] == 0  # 4 % of the time out: past the 2 %
    share = METHODOLOGY.reliability_parts["availability"]
    assert results[9].components["reliability"] == pytest.approx(results[1].components["reliability"] - 100 * share)


def test_reliability_parts_nobody_measures_count_as_neutral_not_as_perfect():
    # No frozen detection, no execution records: those parts are neutral, so availability weighs what it says.
    result = by_id(score_all(market()))[1]
    parts = result.inputs["reliability_parts"]
    assert parts["availability"] == 100 and parts["frozen"] is None and parts["latency"] is None
    weights = METHODOLOGY.reliability_parts
    expected = 100 * weights["availability"] + METHODOLOGY.neutral * (sum(weights.values()) - weights["availability"])
    assert result.components["reliability"] == pytest.approx(expected / sum(weights.values()))


def test_gaps_in_prices_lose_reliability_and_confidence():
    results = by_id(score_all(market(hours=60)))
    assert results[9].confidence < results[1].confidence
    assert results[9].components["reliability"] < results[1].components["reliability"]


def test_a_tier_one_licence_beats_no_licence_with_equal_market_data():
    results = by_id(score_all(market(licences=())))
    assert results[9].components["regulation"] == 0
    assert results[1].overall > results[9].overall


def test_suspended_and_unverified_licences_count_less():
    active = regulation_points([LicenceInput(3, "active")])
    assert regulation_points([LicenceInput(3, "suspended")]) == 0
    assert 0 < regulation_points([LicenceInput(3, "unverified")]) < active


def test_the_strongest_licence_counts_and_further_ones_add_nothing():
    # 2.2: a client's money sits with one entity under one licence; the group's other licences do not protect it.
    assert regulation_points([LicenceInput(1, "active"), LicenceInput(2, "active")]) == regulation_points(TIER1) == 100
    assert regulation_points([LicenceInput(2, "active"), LicenceInput(3, "active")]) == METHODOLOGY.tier_points[2]
    assert regulation_points([LicenceInput(3, "active"), LicenceInput(1, "suspended")]) == METHODOLOGY.tier_points[3]


def test_a_broker_without_data_scores_neutral_with_zero_confidence():
    empty = BrokerInputs(broker_id=9, licences=TIER1, profile=PROFILE, as_of_year=2026)
    results = by_id(score_all([broker(1), broker(2), empty]))
    assert results[9].confidence == 0
    assert results[9].label == "Provisional"
    for key in ("cost", "stability", "price_integrity", "reliability"):
        assert results[9].components[key] == METHODOLOGY.neutral


def test_little_history_means_low_confidence():
    results = score_all([broker(i, hours=6) for i in range(1, 4)])
    assert all(r.confidence == pytest.approx(6 / 72, abs=1e-4) for r in results)


def test_a_little_extra_data_moves_scores_only_a_little():
    before = by_id(score_all(market(spread=1.3, widen=3.0)))
    after = by_id(score_all(market(spread=1.3, widen=3.0, hours=121)))
    for broker_id, result in before.items():
        assert abs(after[broker_id].overall - result.overall) < 1.0


def test_overall_is_the_weighted_sum_of_components():
    result = score_all(market(spread=0.8))[-1]
    assert result.overall == pytest.approx(
        sum(result.components[k] * w for k, w in METHODOLOGY.weights.items()), abs=0.01
    )


def test_band_points_map_good_to_100_and_bad_to_0():
    band = METHODOLOGY.cost_band
    assert band_points(band.good, band) == 100
    assert band_points(band.bad * 2, band) == 0
    assert 0 < band_points(1.0, band) < 100


def test_it_rejects_impossible_inputs_with_a_clear_error():
    with pytest.raises(ScoringInputError, match="unknown regulator tier 7"):
        score_all([broker(1, licences=(LicenceInput(7, "active"),))])
    bad = dataclasses.replace(broker(1), instruments=(stats("EURUSD", "fx_major", 0.0001, hours=-1),))
    with pytest.raises(ScoringInputError, match="impossible statistics for EURUSD"):
        score_all([bad])
    too_many = dataclasses.replace(broker(1), instruments=(stats("EURUSD", "fx_major", 0.0001, dev_hours=10, off=11),))
    with pytest.raises(ScoringInputError, match="more off-market hours than measured hours for EURUSD"):
        score_all([too_many])
    strays = dataclasses.replace(stats("EURUSD", "fx_major", 0.0001, off=5), off_market_sum_excursion=1e9)
    with pytest.raises(ScoringInputError, match="impossible off-market deviations for EURUSD"):
        score_all([dataclasses.replace(broker(1), instruments=(strays,))])
    with pytest.raises(ScoringInputError, match="only once"):
        score_all([broker(1), broker(1)])


def test_a_big_move_records_which_components_moved():
    before = score_all(market())[-1]
    after = by_id(score_all(market(excursion=3.0, off=24)))[9]
    reason = explain_move(previous_overall=before.overall, previous_components=before.components, result=after)
    assert reason.startswith(f"Overall {before.overall:.1f} → {after.overall:.1f}")
    assert "Price integrity" in reason
    assert "Cost" not in reason
    assert explain_move(previous_overall=after.overall, previous_components=after.components, result=after) == ""


def test_feed_stats_count_time_in_each_state_and_disconnects():
    changes = [(-50.0, "up"), (100.0, "stale"), (150.0, "up"), (200.0, "down"), (260.0, "up"), (900.0, "down")]
    feed = feed_stats(changes=changes, start=0.0, end=1000.0)
    assert feed == FeedStats(observed_s=1000, up_s=790, stale_s=50, down_s=160, disconnects=2)


def test_feed_stats_before_any_change_observe_nothing():
    assert feed_stats(changes=[(500.0, "up")], start=0.0, end=1000.0) == FeedStats(500, 500, 0, 0, 0)
    assert feed_stats(changes=[], start=0.0, end=1000.0) is None
    with pytest.raises(ScoringInputError, match="unknown feed status 'sideways'"):
        feed_stats(changes=[(1.0, "sideways")], start=0.0, end=10.0)


def test_news_moves_instruments_that_name_the_currency_and_index_cfds_of_their_home_economy():
    m = METHODOLOGY
    assert m.moves_with("EURUSD", "USD") and m.moves_with("XAUUSD", "USD") and m.moves_with("EURUSD", "EUR")
    assert not m.moves_with("EURGBP", "USD")
    assert m.moves_with("US500", "USD") and not m.moves_with("US500", "EUR")
    assert m.moves_with("GER40", "EUR") and not m.moves_with("GER40", "USD")


# Methodology 2.0


def test_a_broker_dark_during_news_does_not_get_the_best_stability():
    # Broker 9 quotes only 2 of the 20 news minutes the others quote, and widens not at all in those.
    results = by_id(score_all(market(news=2, widen=1.0)))
    assert results[9].inputs["news_coverage"] == pytest.approx(0.1)
    assert results[9].components["stability"] < min(results[i].components["stability"] for i in range(1, 6))


def test_heavy_off_market_quoting_caps_the_score_below_good_whatever_the_rest():
    results = by_id(score_all(market(off=40, spread=0.4)))
    assert results[9].inputs["critical"] == ["off-market in 33% of measured hours"]
    assert results[9].overall <= METHODOLOGY.critical_cap
    assert results[9].label not in ("Good", "Excellent")


def test_a_suspended_licence_caps_the_score_below_good():
    licences = (LicenceInput(tier=1, status="active"), LicenceInput(tier=2, status="suspended"))
    results = by_id(score_all(market(licences=licences, spread=0.4)))
    assert results[9].inputs["critical"] == ["a suspended licence"]
    assert results[9].overall <= METHODOLOGY.critical_cap


def test_a_licence_not_checked_in_the_register_counts_at_half():
    checked = regulation_points([LicenceInput(tier=1, status="active", verified_days_ago=10)])
    never = regulation_points([LicenceInput(tier=1, status="active", verified_days_ago=None)])
    assert never == pytest.approx(checked * METHODOLOGY.unchecked_licence_factor)
    long_ago = METHODOLOGY.licence_verified_days + METHODOLOGY.licence_decay_days
    assert regulation_points([LicenceInput(tier=1, status="active", verified_days_ago=long_ago)]) == pytest.approx(
        never
    )


def test_a_register_check_ageing_by_a_day_moves_regulation_by_a_sliver_not_half_a_licence():
    limit = METHODOLOGY.licence_verified_days

    def points(age):
        return regulation_points([LicenceInput(tier=1, status="active", verified_days_ago=age)])

    assert points(limit) == points(0)
    steps = [points(age) - points(age + 1) for age in range(limit - 5, limit + METHODOLOGY.licence_decay_days + 5)]
    # A day takes at most the ramp's share of the licence: half its points spread over the decay days.
    per_day = METHODOLOGY.tier_points[1] * (1 - METHODOLOGY.unchecked_licence_factor) / METHODOLOGY.licence_decay_days
    assert all(0 <= step <= per_day + 1e-9 for step in steps)
    assert per_day < 1  # a sliver of a 100-point licence, not half of it
    assert points(limit + METHODOLOGY.licence_decay_days // 2) < points(limit)


def test_malformed_quotes_cost_reliability_points():
    clean = broker(1)
    dirty = dataclasses.replace(broker(9), rejected_quotes=120 * 3600 * 3 // 10)  # ~9 % of quotes rejected
    results = by_id(score_all([clean, broker(2), broker(3), dirty]))
    assert results[9].inputs["malformed_share"] > 0.05
    assert results[9].components["reliability"] < results[1].components["reliability"] - 10


def test_thin_quoting_lowers_confidence():
    thin = dataclasses.replace(
        broker(9), instruments=tuple(dataclasses.replace(s, quotes=s.hours) for s in broker(9).instruments)
    )
    results = by_id(score_all([broker(1), broker(2), thin]))
    assert results[9].inputs["quote_density"] < 0.5
    assert results[9].confidence < results[1].confidence / 2


def test_a_regulation_move_is_explained_by_the_register_checks():
    from trustmetrics.scoring import move_details

    checked = (LicenceInput(tier=1, status="active"), LicenceInput(tier=2, status="active"))
    unchecked = (LicenceInput(tier=1, status="active", verified_days_ago=None), LicenceInput(tier=2, status="active"))
    before = by_id(score_all(market(licences=checked)))[9]
    after = by_id(score_all(market(licences=unchecked)))[9]
    moves = move_details(previous_components=before.components, previous_inputs=before.inputs, result=after)
    regulation = next(m for m in moves if m["component"] == "regulation")
    assert regulation["change"] < -1
    assert regulation["cause"] == "1 licence(s) no longer checked against the register in 90 days"


# Stability: a little more data moves every score only a little (methodology 2.1's off-market ramp)


def test_the_off_market_cap_is_a_ramp_not_a_switch():
    from trustmetrics.scoring import off_market_cap

    m = METHODOLOGY
    assert off_market_cap(0.0) == 100
    assert off_market_cap(m.critical_off_market_share) == pytest.approx(m.critical_cap)
    assert off_market_cap(0.9) == pytest.approx(m.critical_cap)
    # Either side of the published threshold the cap differs by the ramp's slope, not by a cliff.
    below, above = off_market_cap(m.critical_off_market_share - 0.005), off_market_cap(m.critical_off_market_share)
    assert 0 < below - above < 1.0


def test_a_broker_just_under_the_heavy_off_market_share_is_capped_almost_as_much():
    # 19 of 120 measured hours off-market (16 %) against 24 of 120 (20 %): close shares, close caps.
    light = by_id(score_all(market(off=19, spread=0.4)))[9]
    heavy = by_id(score_all(market(off=24, spread=0.4)))[9]
    assert heavy.overall <= METHODOLOGY.critical_cap
    assert heavy.label not in ("Good", "Excellent")
    assert 0 < light.overall - heavy.overall < 8


def _instrument(draw, st, symbol, asset, pip, off_share, star):
    """One instrument's week; a star broker is excellent at everything but its off-market share."""
    hours = draw(st.integers(min_value=160 if star else 48, max_value=168))
    dev_hours = hours if star else draw(st.integers(min_value=hours // 2, max_value=hours))
    spread = draw(st.floats(min_value=0.5, max_value=0.7 if star else 3.0)) * pip
    cv = draw(st.floats(min_value=0.02, max_value=0.1 if star else 0.5))
    excursion = draw(st.floats(min_value=0.1, max_value=0.3 if star else 3.0)) * pip
    news = draw(st.integers(min_value=20 if star else 0, max_value=60))
    widen = draw(st.floats(min_value=1.0, max_value=1.5 if star else 6.0))
    return InstrumentStats(
        symbol=symbol,
        asset_class=asset,
        pip_size=pip,
        hours=hours,
        sum_mean=spread * hours,
        sum_mean_sq=spread * spread * (1 + cv * cv) * hours,
        quotes=hours * draw(st.integers(min_value=1, max_value=3600)),
        dev_hours=dev_hours,
        sum_excursion=excursion * dev_hours,
        off_market_hours=round(dev_hours * off_share),
        news_minutes=news,
        news_sum_mean=spread * widen * news,
    )


STRONG_PROFILE = ProfileInput(
    year_founded=1990,
    company_type="listed",
    has_description=True,
    has_website=True,
    has_headquarters=True,
    account_count=2,
    platform_count=2,
    funding_count=3,
    instrument_count=20,
    segregated_funds=True,
    negative_balance_protection=True,
)


def _extra(draw, st, s: InstrumentStats, share: float) -> InstrumentStats:
    """At most ``share`` more data of the same kind: hours, measured hours and news minutes grow by that
    share at most; the new hours' spreads and deviations are like the broker's own (any of them may be
    off-market)."""
    hours = int(s.hours * share)
    dev = draw(st.sampled_from([min(hours, int(s.dev_hours * share)), 0]))
    news = int(s.news_minutes * share)
    mean = s.mean_spread * draw(st.floats(min_value=0.5, max_value=2.0))
    excursion = (s.sum_excursion / s.dev_hours if s.dev_hours else 0.0) * draw(st.floats(min_value=0.0, max_value=5.0))
    widen = (s.news_sum_mean / s.news_minutes / s.mean_spread) if s.news_minutes else 1.0
    return InstrumentStats(
        symbol=s.symbol,
        asset_class=s.asset_class,
        pip_size=s.pip_size,
        hours=hours,
        sum_mean=mean * hours,
        sum_mean_sq=mean * mean * hours,
        quotes=hours * (s.quotes // s.hours),
        dev_hours=dev,
        sum_excursion=excursion * dev,
        off_market_hours=draw(st.sampled_from([dev, 0, dev // 2])),
        news_minutes=news,
        news_sum_mean=mean * widen * draw(st.floats(min_value=0.5, max_value=2.0)) * news,
    )


def _market_and_more(draw, st):
    share = draw(st.one_of(st.just(0.02), st.floats(min_value=0.0, max_value=0.02)))
    before, after = [], []
    for broker_id in range(1, draw(st.integers(min_value=3, max_value=7)) + 1):
        star = draw(st.booleans())
        licences = tuple(
            LicenceInput(
                tier=draw(st.sampled_from([1, 1, 2, 3])),
                status=draw(st.sampled_from(["active", "active", "suspended"])),
            )
            for _ in range(draw(st.integers(min_value=0, max_value=2)))
        )
        if star:
            licences = (LicenceInput(tier=1, status="active"),)
        # Any share, and often one just under the heavy share, where a switch would flip.
        heavy = METHODOLOGY.critical_off_market_share
        off_share = draw(st.one_of(st.floats(min_value=0.0, max_value=1.0), st.floats(heavy - 0.02, heavy)))
        instruments = tuple(_instrument(draw, st, s, a, p, off_share, star) for s, a, p in SYMBOLS)
        observed = 7 * 86400.0
        down = 0.0 if star else observed * draw(st.floats(min_value=0.0, max_value=0.05))
        feed = FeedStats(observed_s=observed, up_s=observed - down, stale_s=0.0, down_s=down, disconnects=3)
        extra_s = observed * share
        extra_down = extra_s * draw(st.floats(min_value=0.0, max_value=1.0))
        more_feed = FeedStats(
            observed_s=observed + extra_s,
            up_s=observed - down + extra_s - extra_down,
            stale_s=0.0,
            down_s=down + extra_down,
            disconnects=3,
        )
        b = BrokerInputs(
            broker_id=broker_id,
            licences=licences,
            profile=STRONG_PROFILE if star else draw(st.sampled_from([PROFILE, STRONG_PROFILE])),
            as_of_year=2026,
            commission_per_lot=0.0 if star else draw(st.floats(min_value=0.0, max_value=10.0)),
            instruments=instruments,
            feed=feed,
        )
        before.append(b)
        after.append(
            dataclasses.replace(
                b, instruments=tuple(s + _extra(draw, st, s, share) for s in instruments), feed=more_feed
            )
        )
    return share, before, after


# Published with the methodology: at most this many points per unit share of extra data.
POINTS_PER_SHARE_OF_EXTRA_DATA = METHODOLOGY.stability_points_per_extra_share


def test_a_little_more_data_of_the_same_kind_never_moves_a_score_by_more_than_the_published_bound():
    from hypothesis import HealthCheck, given, settings, target
    from hypothesis import strategies as st

    @st.composite
    def markets(draw):
        return _market_and_more(draw, st)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(markets())
    def check(case):
        share, before, after = case
        old, new = by_id(score_all(before)), by_id(score_all(after))
        worst = max(abs(new[b].overall - r.overall) for b, r in old.items())
        target(worst - POINTS_PER_SHARE_OF_EXTRA_DATA * share)
        for broker_id, r in old.items():
            move = abs(new[broker_id].overall - r.overall)
            assert move <= POINTS_PER_SHARE_OF_EXTRA_DATA * share + 0.02, (broker_id, share, move)

    check()


# Frozen feeds, outages at releases, execution quality, rate-independent price integrity (2.1)


def test_a_price_standing_still_while_the_consensus_moves_is_frozen_but_a_quiet_market_is_not():
    from trustmetrics.scoring import frozen_seconds

    moving = [(float(t), 1.1000, 1.1000 + 0.00001 * t) for t in range(0, 61)]  # the others move 6 pips
    quiet = [(float(t), 1.1000, 1.1000) for t in range(0, 61)]  # nobody moves: a repeated quote is fine
    short = [(float(t), 1.1000, 1.1000 + 0.00001 * t) for t in range(0, 20)]  # a 19 s pause is not frozen
    assert frozen_seconds(moving, min_s=30, move=0.0002) == [(0.0, 60.0)]
    assert frozen_seconds(quiet, min_s=30, move=0.0002) == []
    assert frozen_seconds(short, min_s=30, move=0.0002) == []
    ticking = [(float(t), 1.1000 + 0.00001 * t, 1.1000 + 0.00001 * t) for t in range(0, 61)]
    assert frozen_seconds(ticking, min_s=30, move=0.0002) == []


def _feed(day, **kw):
    return FeedStats(observed_s=7 * day, up_s=7 * day, stale_s=0, down_s=0, disconnects=0, **kw)


def test_frozen_prices_cost_reliability_points():
    day = 86400.0
    brokers = [broker(i, feed=_feed(day)) for i in range(1, 6)] + [broker(9, feed=_feed(day, frozen_s=0.05 * 7 * day))]
    results = by_id(score_all(brokers))
    assert results[9].inputs["feed"]["frozen_share"] == pytest.approx(0.05)
    assert results[9].components["reliability"] < results[1].components["reliability"] - 10


def test_an_outage_at_a_release_costs_more_than_the_same_outage_in_a_quiet_hour():
    day = 86400.0
    quiet = FeedStats(observed_s=7 * day, up_s=7 * day - 1200, stale_s=0, down_s=1200, disconnects=1, news_s=3600)
    at_news = dataclasses.replace(quiet, news_out_s=1200)
    brokers = [broker(i, feed=_feed(day, news_s=3600)) for i in range(1, 5)]
    results = by_id(score_all([*brokers, broker(8, feed=quiet), broker(9, feed=at_news)]))
    availability = {b: results[b].inputs["reliability_parts"]["availability"] for b in (1, 8, 9)}
    # Release-window time counts twice: the same 20 minutes cost about twice as much at a release.
    lost_quiet, lost_at_news = availability[1] - availability[8], availability[1] - availability[9]
    assert lost_quiet > 5
    assert lost_at_news == pytest.approx(METHODOLOGY.news_outage_weight * lost_quiet, rel=0.05)


def test_slow_and_shallow_execution_costs_reliability_points():
    from trustmetrics.scoring import ExecutionStats

    fast = ExecutionStats(latency_ms=40, depth_1=1.0, depth_5=1.0, depth_10=0.9)
    slow = ExecutionStats(latency_ms=400, depth_1=0.8, depth_5=0.1, depth_10=0.0)
    brokers = [dataclasses.replace(broker(i), execution=fast) for i in range(1, 6)]
    results = by_id(score_all([*brokers, dataclasses.replace(broker(9), execution=slow)]))
    assert results[9].inputs["latency_ratio"] == pytest.approx(400.0)  # 2.4: milliseconds, on a fixed band
    fast_parts, slow_parts = results[1].inputs["reliability_parts"], results[9].inputs["reliability_parts"]
    assert slow_parts["latency"] == 0 and fast_parts["latency"] == 100  # 40 ms or less: every point
    assert slow_parts["depth"] == pytest.approx(30.0) and fast_parts["depth"] == pytest.approx(96.67, abs=0.01)
    weights = METHODOLOGY.reliability_parts
    lost = (100 * weights["latency"] + (96.67 - 30.0) * weights["depth"]) / sum(weights.values())
    assert results[9].components["reliability"] == pytest.approx(results[1].components["reliability"] - lost, abs=0.05)
    with pytest.raises(ScoringInputError, match="impossible execution statistics"):
        score_all([dataclasses.replace(broker(1), execution=ExecutionStats(-1, 1, 1, 1))])


def _integrity_at_rates(rate_of_9: int, *, normalise: bool) -> tuple[float, float]:
    """Price integrity of broker 9 when only its recording rate differs: every broker's mid strays from the
    consensus by the same Gaussian noise; an hour's excursion is the largest of its n quotes' deviations."""
    import random

    from trustmetrics.scoring import normalised_excursion

    rng = random.Random(5)
    sigma = {1: 1.0, 2: 1.1, 3: 0.9, 4: 1.2, 5: 1.0, 9: 1.0}
    brokers = []
    for broker_id, s in sigma.items():
        n = rate_of_9 if broker_id == 9 else 600
        instruments = []
        for symbol, asset, pip in SYMBOLS:
            total = 0.0
            for _ in range(48):
                excursion = max(abs(rng.gauss(0, s * pip * 0.3)) for _ in range(n))
                total += normalised_excursion(excursion, n) if normalise else excursion
            base = stats(symbol, asset, pip, hours=48)
            instruments.append(dataclasses.replace(base, sum_excursion=total, quotes=48 * n))
        brokers.append(dataclasses.replace(broker(broker_id), instruments=tuple(instruments)))
    result = by_id(score_all(brokers))[9]
    return result.components["price_integrity"], result.inputs["excursion_ratio"]


def test_price_integrity_does_not_depend_on_how_often_quotes_were_recorded():
    rates = (60, 600, 3600)
    normalised = [_integrity_at_rates(r, normalise=True) for r in rates]
    points, ratios = [p for p, _ in normalised], [r for _, r in normalised]
    assert max(points) - min(points) <= 5, normalised
    assert max(ratios) / min(ratios) < 1.05, normalised  # the deviation measure itself, not only the component
    # The raw largest deviation grows with the rate: sqrt(2 ln n) is 2.9 at 60 quotes and 4.0 at 3,600.
    raw = [_integrity_at_rates(r, normalise=False) for r in rates]
    assert raw[2][1] / raw[0][1] > 1.2, raw
    assert raw[0][0] > raw[2][0], raw


def test_the_peer_median_leaves_out_exactly_the_broker_itself_even_among_ties():
    import random
    import statistics

    from trustmetrics.scoring import _median_without

    rng = random.Random(1)
    for _ in range(2000):
        values = sorted(rng.choice([rng.random(), 0.5, 1.0]) for _ in range(rng.randint(2, 9)))
        own = rng.choice(values)
        others = list(values)
        others.remove(own)
        assert _median_without(values, own) == statistics.median(others)
    assert _median_without([1.0], 1.0) is None


# 2.2: one peer reference, each trait counted once, critical failures where the validation rule puts them


def test_every_broker_is_compared_with_the_same_market_median():
    # Six brokers 1.0 ... 2.5 pips apart by equal ratios: cost points must fall by equal steps. A median of the
    # *other* brokers is the next value up for the third and the next down for the fourth, pushing them apart.
    spreads = [1.0 * 1.2**k for k in range(6)]
    results = by_id(score_all([broker(i + 1, spread=sp) for i, sp in enumerate(spreads)]))
    cost = [results[i + 1].components["cost"] for i in range(6)]
    steps = [a - b for a, b in itertools.pairwise(cost)]
    band = METHODOLOGY.cost_band
    expected = 100 * math.log(1.2) / math.log(band.bad / band.good)
    assert all(step == pytest.approx(expected, abs=0.02) for step in steps), cost


def test_an_off_market_hour_counts_once_not_again_in_the_ordinary_deviation():
    base = market()
    judged = []
    for b in base:
        if b.broker_id != 9:
            judged.append(b)
            continue
        # 20 of 120 hours off-market with deviations 30 times the ordinary ones, the rest ordinary.
        instruments = tuple(
            dataclasses.replace(
                s, sum_excursion=s.sum_excursion + 20 * 30 * 0.3, off_market_hours=20, off_market_sum_excursion=20 * 9.3
            )
            for s in b.instruments
        )
        judged.append(dataclasses.replace(b, instruments=instruments))
    results = by_id(score_all(judged))
    assert results[9].inputs["excursion_ratio"] == pytest.approx(results[1].inputs["excursion_ratio"], rel=0.01)
    assert results[9].inputs["off_market_share"] == pytest.approx(20 / 120, abs=1e-4)
    share = METHODOLOGY.integrity_off_market_share
    lost = 100 * share * (20 / 120) / METHODOLOGY.off_market_share_zero
    assert results[9].components["price_integrity"] == pytest.approx(
        results[1].components["price_integrity"] - lost, abs=0.05
    )


def test_off_market_only_at_releases_costs_integrity_points_but_is_no_critical_failure():
    def releases(b, off):
        instruments = tuple(dataclasses.replace(s, news_hours=4, news_off_market_hours=off) for s in b.instruments)
        return dataclasses.replace(b, instruments=instruments)

    brokers = [releases(b, 4 if b.broker_id == 9 else 0) for b in market(off=12)]
    results = by_id(score_all(brokers))
    assert results[9].inputs["release_off_market_share"] == 1.0
    assert results[9].inputs["critical"] == []  # 12 of 120 hours: not heavy off-market quoting
    lost = 100 * METHODOLOGY.integrity_off_market_share * METHODOLOGY.news_off_market_weight
    clean = by_id(score_all([releases(b, 0) for b in market(off=12)]))[9]
    assert results[9].components["price_integrity"] == pytest.approx(
        clean.components["price_integrity"] - lost, abs=0.05
    )


def test_critical_failures_cap_licences_and_market_at_the_validation_rules_level():
    from trustmetrics.scoring import critical_floor, off_market_cap, transparency_points

    transparency = transparency_points(PROFILE, 2026)
    floor = critical_floor(transparency=transparency)
    assert floor == pytest.approx(METHODOLOGY.critical_part_cap + 0.15 * transparency)
    assert critical_floor(transparency=100) < 65  # never Good, whatever the profile
    licences = (LicenceInput(tier=1, status="active"), LicenceInput(tier=2, status="suspended"))
    suspended = by_id(score_all(market(licences=licences, spread=0.4)))[9]
    assert suspended.overall == pytest.approx(floor, abs=0.01)
    assert suspended.inputs["cap"] == pytest.approx(floor, abs=0.01)
    # The off-market ramp passes below Good at the heavy share and goes on at the same slope to the floor.
    assert off_market_cap(METHODOLOGY.critical_off_market_share, floor=floor) == pytest.approx(METHODOLOGY.critical_cap)
    assert off_market_cap(0.3, floor=floor) == pytest.approx(floor)
    heavy = by_id(score_all(market(off=40, spread=0.4)))[9]
    assert heavy.overall == pytest.approx(floor, abs=0.01)


def test_a_broker_dark_at_every_release_keeps_only_the_neutral_widening_part():
    results = by_id(score_all(market(news=0, spread=1.0)))
    widest = by_id(score_all(market(widen=40.0)))[9]
    dark = results[9]
    assert dark.inputs["news_coverage"] == 0
    expected = METHODOLOGY.neutral * (1 - METHODOLOGY.news_coverage_share)
    assert dark.components["stability"] == pytest.approx(expected, abs=0.5)
    # Going dark never beats quoting, however wide: the widest broker keeps its coverage part.
    assert dark.components["stability"] < widest.components["stability"]


def test_a_frozen_price_costs_like_no_price():
    day = 86400.0
    week = 7 * day
    frozen = [broker(i, feed=_feed(day, frozen_s=0.0)) for i in range(1, 6)]
    half = broker(8, feed=_feed(day, frozen_s=0.01 * week))
    full = broker(9, feed=_feed(day, frozen_s=METHODOLOGY.frozen_zero_share * week))
    results = by_id(score_all([*frozen, half, full]))
    assert results[1].inputs["reliability_parts"]["frozen"] == 100
    assert results[8].inputs["reliability_parts"]["frozen"] == pytest.approx(50)
    assert results[9].inputs["reliability_parts"]["frozen"] == 0
    assert METHODOLOGY.frozen_zero_share == METHODOLOGY.outage_zero_share


def test_one_brokers_extra_hour_is_no_gap_for_the_others():
    results = by_id(score_all([broker(i) for i in range(1, 6)] + [broker(9, hours=121)]))
    assert all(results[i].inputs["reliability_parts"]["availability"] == 100 for i in (1, 9))
    short = by_id(score_all([broker(i) for i in range(1, 6)] + [broker(9, hours=119)]))[9]
    assert short.inputs["reliability_parts"]["availability"] < 100


def test_off_market_hours_as_common_as_the_market_medians_are_chance_and_cost_nothing():
    # Every broker flagged in 6 of 120 hours (chance at a low recording rate); broker 9 in 18.
    results = by_id(score_all([broker(i, off=6) for i in range(1, 6)] + [broker(9, off=18)]))
    clean = by_id(score_all([broker(i) for i in range(1, 6)] + [broker(9, off=18)]))
    assert results[1].components["price_integrity"] == clean[1].components["price_integrity"]
    share = METHODOLOGY.integrity_off_market_share
    lost = 100 * share * (18 / 120 - 6 / 120) / (METHODOLOGY.off_market_share_zero - 6 / 120)
    assert results[9].components["price_integrity"] == pytest.approx(
        results[1].components["price_integrity"] - lost, abs=0.2
    )


def test_the_component_texts_quote_the_numbers_the_engine_uses():
    m = METHODOLOGY
    stability = m.component("stability").details
    assert f"Widening ({round(100 * (1 - m.news_coverage_share))} %)" in stability
    assert f"Quoting ({round(100 * m.news_coverage_share)} %)" in stability
    integrity = m.component("price_integrity").details
    assert f"Off-market ({round(100 * m.integrity_off_market_share)} %)" in integrity
    assert f"Ordinary deviation ({round(100 * (1 - m.integrity_off_market_share))} %)" in integrity
    assert f"all of them at {round(100 * m.off_market_share_zero)} %" in integrity
    reliability = m.component("reliability").details
    total = sum(m.reliability_parts.values())
    for key, title in (
        ("availability", "Availability"),
        ("frozen", "Frozen"),
        ("latency", "Latency"),
        ("depth", "Depth"),
    ):
        assert f"{title} ({round(100 * m.reliability_parts[key] / total)} %)" in reliability
    assert f"{100 * m.outage_zero_share:.0f} % of the time takes every point" in reliability
    assert f"({100 * m.frozen_zero_share:.0f} % takes every point)" in reliability
    assert m.news_outage_weight == 2 and "counted twice" in reliability


def _measured(b, *, frozen=0.0, latency_ms=50.0, depth=(1.0, 1.0, 1.0)):
    """The broker with 2.3's quote measures on every instrument: frozen share, typical latency, touch shares."""
    n = 1000
    return dataclasses.replace(
        b,
        instruments=tuple(
            dataclasses.replace(
                s,
                frozen_s=frozen * 3600.0,
                frozen_judged_s=3600.0,
                latency_count=n,
                latency_log_sum=n * math.log1p(latency_ms),
                depth_count=n,
                depth_1=round(n * depth[0]),
                depth_5=round(n * depth[1]),
                depth_10=round(n * depth[2]),
            )
            for s in b.instruments
        ),
    )


def test_the_quotes_frozen_latency_and_depth_measures_score_reliability_and_take_precedence():
    day = 86400.0
    # The feed statistics say nothing is frozen; the quotes' own measures say otherwise and win.
    steady = [_measured(broker(i, feed=_feed(day, frozen_s=0.0))) for i in range(1, 6)]
    frozen = _measured(broker(7, feed=_feed(day, frozen_s=0.0)), frozen=0.015)
    slow = _measured(broker(8, feed=_feed(day)), latency_ms=500.0)
    shallow = _measured(broker(9, feed=_feed(day)), depth=(0.5, 0.0, 0.0))
    results = by_id(score_all([*steady, frozen, slow, shallow]))
    parts = {k: results[k].inputs["reliability_parts"] for k in (1, 7, 8, 9)}
    assert results[7].inputs["frozen_share"] == pytest.approx(0.015)
    assert parts[7]["frozen"] == pytest.approx(100 * (1 - 0.015 / METHODOLOGY.frozen_zero_share))
    assert parts[1]["frozen"] == 100
    assert results[8].inputs["latency_ms"] == pytest.approx(500.0)
    assert parts[8]["latency"] < parts[1]["latency"] - 40
    assert parts[9]["depth"] == pytest.approx(100 / 6, abs=1e-3) and parts[1]["depth"] == 100
    for k in (7, 8, 9):
        assert results[k].components["reliability"] < results[1].components["reliability"] - 5


def test_impossible_quote_measures_are_refused():
    b = _measured(broker(1))
    worse = dataclasses.replace(b.instruments[0], frozen_s=2 * b.instruments[0].frozen_judged_s + 1)
    with pytest.raises(ScoringInputError):
        score_all([dataclasses.replace(b, instruments=(worse, *b.instruments[1:]))])
    deeper = dataclasses.replace(b.instruments[0], depth_10=b.instruments[0].depth_count + 1)
    with pytest.raises(ScoringInputError):
        score_all([dataclasses.replace(b, instruments=(deeper, *b.instruments[1:]))])


# 2.4: each market measure on a fixed scale of the broker's own, so its points move only when it does.


def test_a_brokers_cost_points_do_not_move_when_the_other_brokers_spreads_do():
    mine = broker(9, spread=1.2, reference=1.0)
    tight = by_id(score_all([*(broker(i, spread=0.9, reference=1.0) for i in range(1, 6)), mine]))
    wide = by_id(score_all([*(broker(i, spread=2.5, reference=1.0) for i in range(1, 6)), mine]))
    assert tight[9].components["cost"] == wide[9].components["cost"]
    assert tight[9].inputs["cost_ratio"] == pytest.approx(1.2)
    band = METHODOLOGY.cost_band
    assert tight[9].components["cost"] == pytest.approx(band_points(1.2, band), abs=0.01)
    assert band_points(band.good, band) == 100 and band_points(band.bad, band) == 0


def test_an_instrument_without_a_reference_spread_is_costed_against_the_market_median():
    results = by_id(score_all([broker(i, spread=1.0 + i / 10) for i in range(1, 6)]))
    assert results[3].components["cost"] == pytest.approx(METHODOLOGY.neutral)  # the median broker: the middle
    assert results[1].components["cost"] > results[3].components["cost"] > results[5].components["cost"]


def test_news_widening_is_scored_on_the_brokers_own_ratio_not_the_others():
    calm = by_id(score_all([*(broker(i, widen=1.5) for i in range(1, 6)), broker(9, widen=3.0)]))
    wild = by_id(score_all([*(broker(i, widen=6.0) for i in range(1, 6)), broker(9, widen=3.0)]))
    assert calm[9].components["stability"] == wild[9].components["stability"]
    assert calm[9].inputs["news_widening_ratio"] == pytest.approx(3.0)
    steady = by_id(score_all([broker(1, widen=1.0), broker(2, widen=8.0)]))
    coverage = 100 * METHODOLOGY.news_coverage_share  # both quoted every news minute
    assert steady[1].components["stability"] == pytest.approx(100.0)
    assert steady[2].components["stability"] == pytest.approx(coverage)


def test_the_ordinary_deviation_is_measured_against_the_broker_following_the_consensus_closest():
    results = by_id(score_all([broker(1, excursion=0.2), *(broker(i, excursion=0.4) for i in range(2, 6))]))
    assert results[1].inputs["excursion_ratio"] == pytest.approx(1.0)
    assert results[2].inputs["excursion_ratio"] == pytest.approx(2.0)
    honest = 100.0  # off-market part: no off-market hour
    share = METHODOLOGY.integrity_off_market_share
    assert results[1].components["price_integrity"] == pytest.approx(100.0)
    expected = share * honest + (1 - share) * band_points(2.0, METHODOLOGY.excursion_band)
    assert results[2].components["price_integrity"] == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("reference", [-1.0, math.inf, math.nan])
def test_an_impossible_reference_spread_is_refused(reference):
    bad = dataclasses.replace(broker(1), instruments=(stats("EURUSD", "fx_major", 0.0001, reference=reference),))
    with pytest.raises(ScoringInputError, match="impossible statistics for EURUSD"):
        score_all([bad])
