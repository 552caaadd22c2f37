"""The pure evaluator core: episodes, "for Y seconds", cool-down, watchlists, feeds, scores, reports."""

from __future__ import annotations

import pytest

from alerts.engine import EVENT_REPORT, FEED_DOWN, SCORE_MOVE, SPREAD_ABOVE, Engine, Rule

PIPS = {"EURUSD": 0.0001, "USDJPY": 0.01}
S = 1_000_000  # µs


def spread_rule(rule_id=1, *, brokers=("acme",), instruments=("EURUSD",), pips=2.0, for_s=0.0, user_id=7):
    return Rule(
        rule_id, user_id, SPREAD_ABOVE, frozenset(brokers), frozenset(instruments), threshold_pips=pips, for_s=for_s
    )


def engine(*rules, cooldown_s=60.0):
    e = Engine(cooldown_s=cooldown_s)
    e.load(list(rules), pip_sizes=PIPS)
    return e


def quote(e, pips, t, broker="acme", instrument="EURUSD"):
    bid = 1.1
    return e.on_quote(broker, instrument, bid, bid + pips * PIPS[instrument], t, t)


def test_a_spread_crossing_notifies_once_per_episode():
    e = engine(spread_rule(pips=2.0))
    assert quote(e, 1.0, 1 * S) == []
    fired = quote(e, 3.0, 2 * S)
    assert [(f.rule_id, f.user_id, f.broker, f.instrument) for f in fired] == [(1, 7, "acme", "EURUSD")]
    assert "3.0 pips" in fired[0].message
    assert quote(e, 4.0, 3 * S) == []  # the same episode
    assert quote(e, 2.5, 4 * S) == []


def test_exactly_at_the_threshold_is_not_above():
    e = engine(spread_rule(pips=2.0))
    assert quote(e, 2.0, S) == []


def test_after_the_cool_down_a_new_episode_notifies_again_but_not_within_it():
    e = engine(spread_rule(pips=2.0), cooldown_s=60)
    assert len(quote(e, 3.0, 1 * S)) == 1
    quote(e, 1.0, 2 * S)  # episode over
    assert quote(e, 3.0, 10 * S) == []  # new episode, within the cool-down
    quote(e, 1.0, 11 * S)
    assert len(quote(e, 3.0, 70 * S)) == 1


def test_spread_must_stay_above_for_the_seconds_asked():
    e = engine(spread_rule(pips=2.0, for_s=5))
    assert quote(e, 3.0, 10 * S) == []
    assert e.on_timer(14 * S) == []
    assert len(e.on_timer(15 * S)) == 1
    assert e.on_timer(30 * S) == []


def test_a_spread_that_falls_back_before_the_seconds_are_up_never_notifies():
    e = engine(spread_rule(pips=2.0, for_s=5))
    quote(e, 3.0, 10 * S)
    quote(e, 1.0, 12 * S)
    assert e.on_timer(20 * S) == []
    quote(e, 3.0, 21 * S)  # a new episode: its own five seconds
    assert e.on_timer(25 * S) == []
    assert len(e.on_timer(26 * S)) == 1


def test_any_broker_of_a_watchlist_and_any_instrument():
    e = engine(spread_rule(brokers=("acme", "zeta"), instruments=(), pips=10.0))
    assert quote(e, 11.0, S, broker="other") == []
    fired = quote(e, 11.0, S, broker="zeta", instrument="USDJPY")
    assert [(f.broker, f.instrument) for f in fired] == [("zeta", "USDJPY")]


def test_many_alerts_on_one_instrument_each_notify_at_their_own_level():
    e = engine(*(spread_rule(i, pips=float(i)) for i in range(1, 11)), cooldown_s=0)
    assert {f.rule_id for f in quote(e, 3.5, S)} == {1, 2, 3}
    assert {f.rule_id for f in quote(e, 7.5, 2 * S)} == {4, 5, 6, 7}
    assert quote(e, 5.5, 3 * S) == []  # 6 and 7 end their episodes
    assert {f.rule_id for f in quote(e, 8.5, 4 * S)} == {6, 7, 8}


def test_reloading_keeps_an_episode_under_way():
    rule = spread_rule(pips=2.0)
    e = engine(rule, cooldown_s=0)  # only the episode may hold the second notification back
    assert len(quote(e, 3.0, S)) == 1
    e.load([rule], pip_sizes=PIPS)
    assert quote(e, 3.5, 2 * S) == []


def test_a_feed_outage_notifies_once_until_it_is_up_again():
    e = engine(Rule(5, 7, FEED_DOWN, frozenset({"acme"}), frozenset()), cooldown_s=0)
    assert len(e.on_status("acme", "stale", S, S)) == 1
    assert e.on_status("acme", "down", 2 * S, 2 * S) == []
    assert e.on_status("acme", "up", 3 * S, 3 * S) == []
    assert len(e.on_status("acme", "down", 4 * S, 4 * S)) == 1
    assert e.on_status("zeta", "down", 4 * S, 4 * S) == []


def test_a_score_move_of_at_least_n_points_notifies():
    e = engine(Rule(6, 7, SCORE_MOVE, frozenset({"acme"}), frozenset(), score_points=5), cooldown_s=0)
    assert e.on_score("acme", 70.0, 74.9, 1, S) == []
    fired = e.on_score("acme", 70.0, 64.0, 2, S)
    assert len(fired) == 1 and "-6.0" in fired[0].message


def test_a_report_for_a_watched_broker_notifies():
    e = engine(Rule(8, 7, EVENT_REPORT, frozenset({"acme"}), frozenset()))
    assert len(e.on_report("acme", "nfp-2026-12", "US payrolls", S)) == 1
    assert e.on_report("zeta", "nfp-2026-12", "US payrolls", S) == []


def test_an_account_alert_compares_the_feed_spread_plus_the_accounts_mark_up_difference():
    # The Standard account is priced 1.5 pips over the feed account: a 1.0-pip feed spread is 2.5 there.
    standard = Rule(
        1, 7, SPREAD_ABOVE, frozenset({"acme"}), frozenset({"EURUSD"}), 2.0, account="Standard", offset_pips=1.5
    )
    raw = Rule(2, 8, SPREAD_ABOVE, frozenset({"acme"}), frozenset({"EURUSD"}), 2.0)
    e = engine(standard, raw)
    fired = quote(e, 1.0, 1 * S)
    assert [f.rule_id for f in fired] == [1]
    assert "Standard" in fired[0].message and "2.5 pips" in fired[0].message
    assert fired[0].value == pytest.approx(2.5)
    assert [f.rule_id for f in quote(e, 2.2, 2 * S)] == [2]
    assert quote(e, 0.4, 3 * S) == []  # 1.9 on Standard: both episodes over
    assert [f.rule_id for f in e.on_quote("acme", "EURUSD", 1.1, 1.1 + 0.6 * PIPS["EURUSD"], 200 * S, 200 * S)] == [1]


def test_an_account_alert_held_for_seconds_reports_the_accounts_spread():
    rule = Rule(1, 7, SPREAD_ABOVE, frozenset({"acme"}), frozenset({"EURUSD"}), 2.0, 5.0, account="Std", offset_pips=1)
    e = engine(rule)
    assert quote(e, 1.5, 10 * S) == []
    fired = e.on_timer(15 * S)
    assert len(fired) == 1 and "2.5 pips" in fired[0].message


def test_an_alert_on_an_account_with_its_own_feed_reads_that_accounts_quotes_not_the_feed_accounts():
    own = Rule(1, 7, SPREAD_ABOVE, frozenset({"acme"}), frozenset({"EURUSD"}), 2.0, account="Standard", account_id=42)
    any_instrument = Rule(2, 7, SPREAD_ABOVE, frozenset({"acme"}), frozenset(), 2.0, account="Standard", account_id=42)
    e = engine(own, any_instrument)
    # The feed account's quotes, however wide, do not concern an account measured on its own feed.
    assert quote(e, 5.0, 1 * S) == []
    assert e.on_account_quote("acme", 99, "EURUSD", 1.1, 1.1 + 5 * PIPS["EURUSD"], 2 * S, 2 * S) == []
    fired = e.on_account_quote("acme", 42, "EURUSD", 1.1, 1.1 + 2.4 * PIPS["EURUSD"], 3 * S, 3 * S)
    assert sorted(f.rule_id for f in fired) == [1, 2]
    assert all(f.broker == "acme" and f.value == pytest.approx(2.4) for f in fired)
    assert "Standard" in fired[0].message and "2.4 pips" in fired[0].message


def test_an_own_feed_account_alert_held_for_seconds_fires_from_the_timer_with_the_accounts_spread():
    rule = Rule(1, 7, SPREAD_ABOVE, frozenset({"acme"}), frozenset({"EURUSD"}), 2.0, 5.0, account="Std", account_id=3)
    e = engine(rule)
    assert e.on_account_quote("acme", 3, "EURUSD", 1.1, 1.1 + 2.5 * PIPS["EURUSD"], 10 * S, 10 * S) == []
    fired = e.on_timer(15 * S)
    assert len(fired) == 1 and fired[0].broker == "acme" and "2.5 pips" in fired[0].message
