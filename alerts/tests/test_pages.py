"""The account page for watchlists and alerts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.models import Alert, Notification, Watchlist

pytestmark = pytest.mark.django_db


@pytest.fixture
def trader(client, django_user_model):
    user = django_user_model.objects.create_user("trader", password="pw-long-enough-1")
    client.force_login(user)
    return user


def test_the_alerts_page_needs_a_login(client):
    assert client.get("/account/alerts/").status_code == 302
    assert client.post("/account/alerts/new/", {}).status_code == 302


def test_a_trader_keeps_a_watchlist_and_sets_an_alert_on_it(client, trader, market):
    response = client.post("/account/alerts/watchlists/", {"name": "majors", "brokers": ["acme", "zeta"]})
    assert response.status_code == 302
    watchlist = Watchlist.objects.get(user=trader)
    assert sorted(watchlist.brokers.values_list("slug", flat=True)) == ["acme", "zeta"]
    response = client.post(
        "/account/alerts/new/",
        {
            "kind": "spread_above",
            "watchlist": watchlist.pk,
            "threshold_pips": "2.5",
            "for_seconds": "10",
            "email": "on",
        },
    )
    assert response.status_code == 302
    alert = Alert.objects.get(user=trader)
    assert alert.watchlist == watchlist
    assert (alert.threshold_pips, alert.for_seconds) == (Decimal("2.5"), 10)
    page = client.get("/account/alerts/").content.decode()
    assert "any broker in “majors”" in page


def test_a_spread_alert_without_a_level_or_with_both_broker_and_watchlist_is_refused(client, trader, market):
    watchlist = Watchlist.objects.create(user=trader, name="w")
    response = client.post(
        "/account/alerts/new/", {"kind": "spread_above", "broker": "acme", "watchlist": watchlist.pk}
    )
    assert response.status_code == 400
    errors = response.context["alert_form"].errors
    assert "threshold_pips" in errors and "broker" in errors
    assert not Alert.objects.exists()


def test_someone_elses_watchlist_cannot_be_used_or_deleted(client, trader, market, django_user_model):
    other = django_user_model.objects.create_user("other", password="pw-long-enough-2")
    theirs = Watchlist.objects.create(user=other, name="theirs")
    response = client.post("/account/alerts/new/", {"kind": "feed_down", "watchlist": theirs.pk})
    assert response.status_code == 400
    client.post(f"/account/alerts/watchlists/{theirs.pk}/delete/")
    assert Watchlist.objects.filter(pk=theirs.pk).exists()


def test_the_page_lists_past_alerts_latest_first(client, trader, market):
    for i, text in enumerate(("older-alert", "newer-alert")):
        Notification.objects.create(
            user=trader, kind="feed_down", message=text, episode=str(i), triggered_at=timezone.now() + timedelta(i)
        )
    page = client.get("/account/alerts/").content.decode()
    assert page.index("newer-alert") < page.index("older-alert")


def test_a_spread_alert_on_one_account_is_watched_at_that_accounts_mark_up_over_the_feed(client, trader, market):
    from alerts.selectors import alert_rules_active
    from brokers.models import AccountType

    acme = market["acme"]
    raw = AccountType.objects.create(broker=acme, name="Raw", spread_type="raw", commission_per_lot=7, min_deposit=0)
    standard = AccountType.objects.create(
        broker=acme,
        name="Standard",
        spread_type="standard",
        commission_per_lot=0,
        min_deposit=0,
        spread_markup_pips=Decimal("1.2"),
    )
    zeta_account = AccountType.objects.create(
        broker=market["zeta"], name="Zeta Std", spread_type="standard", commission_per_lot=0, min_deposit=0
    )
    fields = {"kind": "spread_above", "broker": "acme", "instrument": "EURUSD", "threshold_pips": "2"}
    refused = client.post("/account/alerts/new/", {**fields, "account": zeta_account.pk})
    assert refused.status_code == 400 and "account" in refused.context["alert_form"].errors
    on_score = client.post(
        "/account/alerts/new/", {"kind": "score_move", "broker": "acme", "score_points": "3", "account": standard.pk}
    )
    assert on_score.status_code == 400 and "account" in on_score.context["alert_form"].errors
    assert client.post("/account/alerts/new/", {**fields, "account": standard.pk}).status_code == 302
    assert client.post("/account/alerts/new/", {**fields, "account": raw.pk}).status_code == 302
    assert "(Standard account)" in client.get("/account/alerts/").content.decode()
    rules, _ = alert_rules_active()
    offsets = {r.account: r.offset_pips for r in rules}
    assert offsets == {"Standard": pytest.approx(1.2), "Raw": 0.0}  # Raw, the tightest, is acme's feed account
