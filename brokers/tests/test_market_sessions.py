"""Spread history by trading session on broker profiles, from 1-hour bars, in bounded queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from brokers.models import Broker
from brokers.selectors import broker_spread_history
from marketdata.models import SpreadBar

from .test_pages import get_uncached

pytestmark = pytest.mark.django_db


def _bar(broker, instrument, start, *, mean, duration=3600.0, count=100, resolution="1h"):
    SpreadBar.objects.create(
        broker=broker,
        instrument=instrument,
        resolution=resolution,
        start=start,
        open=mean,
        high=mean,
        low=mean,
        close=mean,
        mean=mean,
        count=count,
        dev_min=0.0,
        dev_max=0.0,
        duration=duration,
    )


def _session_bars(broker, day):
    """EURUSD 1-hour bars on `day`: two Asian hours of different lengths, one per other session, one
    after 22:00 (no session) and one too old to count."""
    eurusd = broker.instruments.get(symbol="EURUSD")
    at = lambda hour: day.replace(hour=hour)  # noqa: E731
    _bar(broker, eurusd, at(3), mean=0.0001, duration=3600, count=100)
    _bar(broker, eurusd, at(2), mean=0.0003, duration=1800, count=10)
    _bar(broker, eurusd, at(8), mean=0.0002)
    _bar(broker, eurusd, at(12), mean=0.0002)
    _bar(broker, eurusd, at(13), mean=0.0003)
    _bar(broker, eurusd, at(16), mean=0.0003)
    _bar(broker, eurusd, at(17), mean=0.0004)
    _bar(broker, eurusd, at(21), mean=0.0004)
    _bar(broker, eurusd, at(22), mean=0.0090)
    _bar(broker, eurusd, at(4) - timedelta(days=8), mean=0.0050)
    return eurusd


def test_each_session_averages_only_its_own_utc_hours_of_the_last_7_days_weighted_by_time(demo):
    broker = Broker.objects.get(slug="northwind-markets")
    now = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
    _session_bars(broker, datetime(2026, 3, 8, tzinfo=UTC))
    rows = {row.instrument.symbol: row for row in broker_spread_history(broker=broker, now=now)}
    sessions = rows["EURUSD"].sessions
    # Asian: (1.0 pip x 3600 s + 3.0 pips x 1800 s) / 5400 s; weighting by quotes would give 1.18.
    assert sessions["asian"] == pytest.approx(5 / 3)
    assert sessions["london"] == pytest.approx(2.0)
    assert sessions["overlap"] == pytest.approx(3.0)
    assert sessions["newyork"] == pytest.approx(4.0)
    assert rows["GBPUSD"].sessions == {}
    # The 22:00 bar is in the 7-day window but in no session.
    week = rows["EURUSD"].windows["7d"]
    assert week is not None and week.pips is not None and week.pips > 4.0


def test_sessions_ignore_bars_older_than_7_days_while_the_30_day_window_still_answers(demo):
    broker = Broker.objects.get(slug="northwind-markets")
    eurusd = _session_bars(broker, datetime(2026, 3, 8, tzinfo=UTC))
    _bar(broker, eurusd, datetime(2026, 3, 8, tzinfo=UTC), mean=0.0002, resolution="1d")
    rows = broker_spread_history(broker=broker, now=datetime(2026, 3, 16, 12, tzinfo=UTC))
    row = next(row for row in rows if row.instrument.symbol == "EURUSD")
    assert row.sessions == {}
    assert list(row.windows) == ["30d"]
    assert row.windows["30d"].pips == pytest.approx(2.0)
    # Only 8.5 days of data exist: the 30-day window says so instead of passing for 30 days.
    assert row.windows["30d"].coverage_text == "8.5 of 30 days"


def test_the_profile_shows_the_session_table_in_bounded_queries(client, demo):
    broker = Broker.objects.get(slug="northwind-markets")
    day = (timezone.now() - timedelta(days=2)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    eurusd = _session_bars(broker, day)
    _bar(broker, eurusd, day, mean=0.00012, resolution="1d", duration=0.0)
    response, queries = get_uncached(client, f"/brokers/{broker.slug}/")
    body = response.content.decode()
    assert "Mean spread in pips by trading session (UTC), last 7 days" in body
    table = body[body.index("by trading session") :]
    row = table[table.index('<th scope="row">EURUSD</th>') :]
    row = row[: row.index("</tr>")]
    assert [cell.split("</td>")[0] for cell in row.split("<td>")[1:]] == ["1.67", "2.00", "3.00", "4.00"]
    assert "London/New York overlap" in body
    assert queries <= 18  # the cost table and the last releases are a fixed number of reads too


def test_a_profile_without_bars_keeps_its_empty_state_and_no_session_table(client, demo):
    body = client.get("/brokers/northwind-markets/").content.decode()
    assert "No spreads recorded yet" in body
    assert "by trading session" not in body
