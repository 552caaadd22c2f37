"""Validation: on scenarios whose true order comes from the brokers' traits, the scores rank them alike.

The rule that gives the true order is ``trustmetrics.validation.ground_truth``: each trait (mark-up, news
widening, going dark at releases, off-market quoting, lag, frozen prices, outages, latency, depth) maps to a
penalty from 0 to 1, weighed by the methodology's component weights, plus a quarter for the strongest active
licence's tier; heavy off-market quoting or a suspended licence caps it at 0.45. The rule is the test's, written
before methodology 2.2 and left as it was; 2.2 changed the scores, not the rule. Pure: no database.
"""

from __future__ import annotations

import statistics

import pytest

from trustmetrics.validation import (
    NEW_BEHAVIOURS,
    Behaviour,
    ground_truth,
    random_scenario,
    reassigned_scenario,
    scenario_run,
    scenarios,
    spearman,
)

SCENARIOS = {s.key: s for s in scenarios()}


@pytest.mark.parametrize("key", ["reversed", "shuffled", "new-behaviours", "march-2027"])
def test_the_scores_rank_the_brokers_as_their_traits_do(key):
    result = scenario_run(SCENARIOS[key])
    table = "\n".join(f"{e:>2} {s:>2} {o:6.2f} {n}" for n, e, s, o in sorted(result.rows, key=lambda r: r[1]))
    assert result.spearman >= 0.9, f"{key}: rho={result.spearman}\n{table}"


def test_with_licences_reversed_a_suspended_licence_ranks_low_as_the_rule_says():
    # 2.1 capped a critical failure at 64.9, the middle of this flat field (the rule's 0.45 is 56.6 on the
    # score's scale): Sakura Securities FX, whose strongest licence is suspended, ranked 6th instead of 12th.
    rows = {name: (expected, scored) for name, expected, scored, _ in scenario_run(SCENARIOS["reversed"]).rows}
    expected, scored = rows["Sakura Securities FX"]
    assert expected >= 11 and abs(scored - expected) <= 1, rows


def test_licences_and_behaviour_are_uncorrelated_in_the_shuffled_scenarios():
    for key in ("shuffled", "march-2027"):
        brokers = SCENARIOS[key].brokers
        licence = [min((lic.tier for lic in lics), default=4) for _, lics, _ in brokers]
        markup = [b.markup for _, _, b in brokers]
        assert abs(spearman(licence, markup)) < 0.3


def test_the_other_period_has_its_own_releases():
    march, november = scenario_run(SCENARIOS["march-2027"]), scenario_run(SCENARIOS["shuffled"])
    assert march.period != november.period
    assert march.releases > 0 and november.releases > 0


def test_each_new_behaviour_scores_below_the_steady_broker_with_the_same_licences():
    from datetime import date

    from trustmetrics.scoring import LicenceInput
    from trustmetrics.validation import Scenario

    same = (LicenceInput(tier=1, status="active"),)
    steady = NEW_BEHAVIOURS[0][1]
    for name, b in NEW_BEHAVIOURS[1:5]:
        s = Scenario("pair", name, date(2026, 11, 9), 7, (("steady", same, steady), (name, same, b), *_peers(same)))
        rows = {n: o for n, _, _, o in scenario_run(s).rows}
        assert rows[name] < rows["steady"], (name, rows)
        assert ground_truth(same, b) < ground_truth(same, steady)


def _peers(licences):
    middling = Behaviour(1.6, 2.4, 0.0, 0.0, 0.0, 60, 0.005, 100, (1.0, 0.7, 0.4))
    return tuple((f"peer {i}", licences, middling) for i in range(4))


def test_scenarios_the_suite_does_not_contain_are_ranked_alike():
    rhos = [scenario_run(random_scenario(seed)).spearman for seed in range(100, 120)]
    # 2.4 reaches 0.9 on all 20 (2.3: 17, its misses markets whose brokers were all dear or all cheap, the rule's
    # cap absolute and the scores against the market's median; 2.1: 10). One below 0.9 is allowed: sampling.
    assert statistics.median(rhos) >= 0.97, rhos
    assert sum(r >= 0.9 for r in rhos) >= 19, rhos


def test_the_suites_own_bundles_handed_other_licences_in_other_weeks_are_ranked_alike():
    rhos = [scenario_run(reassigned_scenario(seed)).spearman for seed in range(20)]
    # 2.4 reaches 0.9 on all 20, lowest 0.944 (2.3 too, lowest 0.951: these seeds tell the two apart no more than
    # 50 seeds the page reports do, 49 against 47 of 50; the rule's harder cases are the random markets above).
    assert statistics.median(rhos) >= 0.97, rhos
    assert sum(r >= 0.9 for r in rhos) >= 19, rhos
    assert {s.key for s in scenarios()}.isdisjoint(reassigned_scenario(seed).key for seed in range(20))


def test_every_random_market_holds_a_release_that_moves_its_instruments():
    # A week without one shows nothing of how brokers behave at releases, yet the rule ranks by it.
    from trustmetrics.validation import observable_releases

    for seed in range(100, 160):
        s = random_scenario(seed)
        assert observable_releases(s.start, s.days) >= 1, s.start
