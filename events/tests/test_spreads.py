"""Spread history pages: series over 24 h / 7 d / 30 d, hour-of-day profile against peers, session percentiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from brokers.services import demo_seed
from events.spreadstats import bucket_means, hour_profile, peer_hour_profile, session_percentiles
from testing.support import without_script_loader
from trustmetrics.synthetic_load import synthetic_market_write

T = datetime(2026, 11, 2, tzinfo=UTC)


def test_bucket_means_average_within_each_bucket():
    points = [(T, 1.0), (T + timedelta(minutes=5), 3.0), (T + timedelta(minutes=10), 5.0)]
    assert bucket_means(points, bucket_s=600) == [(T.timestamp(), 2.0), (T.timestamp() + 600, 5.0)]


def test_hour_profile_and_peer_median():
    mine = hour_profile([(T + timedelta(hours=1), 2.0), (T + timedelta(days=1, hours=1), 4.0)])
    assert mine[1] == 3.0 and mine[0] is None
    peers = peer_hour_profile([[1.0] * 24, [3.0] * 24, [None] * 24])
    assert peers[5] == 2.0


def test_session_percentiles_use_utc_session_hours():
    points = [(T + timedelta(hours=9, minutes=m), float(m)) for m in range(100)]
    sessions = session_percentiles(points)
    assert sessions["london"]["p50"] == pytest.approx(49.5)
    assert sessions["london"]["p99"] == pytest.approx(98.01)
    assert sessions["asian"]["p50"] is None


@pytest.mark.django_db
def test_the_spread_page_draws_three_spans_the_hour_profile_and_a_percentile_table(client):
    demo_seed()
    now = datetime.now(tz=UTC)
    start = (now - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    synthetic_market_write(start=start, days=3, symbols=["EURUSD"], news_after=timedelta(minutes=60))
    response = client.get(reverse("spreads:detail", kwargs={"slug": "kestrel-fx", "symbol": "EURUSD"}))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('role="img"') >= 3  # 7 d, 30 d and the hour profile at least
    assert "median of the other brokers" in html
    assert "<caption>1-minute mean spreads in pips, last 7 days (UTC sessions)</caption>" in html
    assert "<script>" not in without_script_loader(html)
    profile = client.get(reverse("brokers:profile", kwargs={"slug": "kestrel-fx"})).content.decode()
    assert reverse("spreads:detail", kwargs={"slug": "kestrel-fx", "symbol": "EURUSD"}) in profile


@pytest.mark.django_db
def test_an_instrument_the_broker_does_not_list_is_not_found(client):
    demo_seed()
    assert client.get(reverse("spreads:detail", kwargs={"slug": "kestrel-fx", "symbol": "NOPE"})).status_code == 404
