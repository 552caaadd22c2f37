"""Event reports: generated from the bars once the window closes, idempotent, served as regenerated pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from brokers.models import Broker
from brokers.services import demo_seed
from events import services, tasks
from events.models import EventReport, EventReportRow
from marketdata.models import EconomicEvent
from testing.support import without_script_loader
from trustmetrics.synthetic_load import synthetic_market_write

START = datetime(2026, 11, 5, tzinfo=UTC)
NFP_AT = datetime(2026, 11, 6, 12, 30, tzinfo=UTC)
AFTER = NFP_AT + timedelta(hours=2)
SYMBOLS = ["EURUSD", "USDJPY", "GER40"]  # GER40 is not moved by USD news


def market() -> EconomicEvent:
    demo_seed()
    synthetic_market_write(
        start=START, days=2, symbols=SYMBOLS, news_before=timedelta(minutes=60), news_after=timedelta(minutes=30)
    )
    return EconomicEvent.objects.get(name="US Non-Farm Payrolls", scheduled_at=NFP_AT)


@pytest.mark.django_db
def test_a_report_covers_every_broker_on_the_instruments_the_release_moves():
    nfp = market()
    report = services.event_report_generate(event_id=nfp.pk, now=AFTER)
    assert report is not None
    symbols = set(report.rows.values_list("instrument__symbol", flat=True))
    assert symbols == {"EURUSD", "USDJPY"}  # GER40 follows EUR news, not USD
    assert report.brokers_measured == Broker.objects.filter(event_rows__report=report).distinct().count() >= 10
    row = report.rows.filter(instrument__symbol="EURUSD").exclude(calm_pips=None).first()
    assert row is not None and row.peak_pips is not None and row.calm_pips is not None
    assert row.peak_pips > row.calm_pips
    assert len(report.series["EURUSD"][Broker.objects.get(pk=row.broker_id).slug]) == 45


@pytest.mark.django_db
def test_the_cost_at_the_peak_is_all_in_on_the_feed_account_as_the_profile_prices_a_spread():
    """Spread cost at the peak spread plus the feed account's round-turn commission, with the contract size and
    USD conversion the profile's cost table uses (one formula: marketdata.costs.all_in_round_turn)."""
    from marketdata.costs import all_in_round_turn, contract_size, quote_currency, usd_conversion
    from marketdata.selectors import conversion_rates, feed_accounts

    nfp = market()
    report = services.event_report_generate(event_id=nfp.pk, now=AFTER)
    assert report is not None
    brokers = list(Broker.objects.prefetch_related("account_types"))
    feeds = feed_accounts(brokers=brokers)
    rates = conversion_rates()
    rows = list(report.rows.exclude(peak_pips=None).select_related("instrument", "account"))
    assert rows
    commissions = set()
    for row in rows:
        inst, feed = row.instrument, feeds[row.broker_id]
        assert feed is not None and row.account_id == feed.pk
        conversion = usd_conversion(
            currency=quote_currency(symbol=inst.symbol, asset_class=inst.asset_class), rates=rates
        )
        expected = all_in_round_turn(
            spread_pips=row.peak_pips,
            pip_size=float(inst.pip_size),
            lot_units=contract_size(symbol=inst.symbol, asset_class=inst.asset_class),
            usd_per_quote=conversion.usd_per_unit,
            commission=float(feed.commission_per_lot),
        )
        assert row.peak_cost_usd == pytest.approx(expected.all_in_usd, abs=0.006)
        assert row.commission_usd == pytest.approx(float(feed.commission_per_lot))
        assert row.peak_spread_cost_usd == pytest.approx(expected.spread_cost_usd, abs=0.006)
        commissions.add(row.commission_usd or 0.0)
    assert any(c > 0 for c in commissions)  # some feed accounts charge a commission: it is in the cost
    page = Client().get(reverse("events:detail", args=[nfp.pk])).content.decode()
    priced = next(r for r in rows if r.commission_usd and r.peak_cost_usd)
    assert priced.account is not None
    assert f"${priced.peak_cost_usd:,.2f}" in page and f"{priced.account.name} account" in page


@pytest.mark.django_db
def test_the_broker_that_widens_most_in_news_is_the_most_stressed():
    nfp = market()
    report = services.event_report_generate(event_id=nfp.pk, now=AFTER)
    assert report is not None and report.worst_broker is not None and report.best_broker is not None
    from simulator.profiles import BROKER_PROFILES

    widening = {slug: p.news_widening for slug, p in BROKER_PROFILES.items()}
    assert widening[report.worst_broker.slug] > widening[report.best_broker.slug]


@pytest.mark.django_db
def test_no_report_while_the_release_window_is_still_open():
    nfp = market()
    assert services.event_report_generate(event_id=nfp.pk, now=NFP_AT + timedelta(minutes=10)) is None
    assert not EventReport.objects.exists()


@pytest.mark.django_db
def test_generating_twice_keeps_the_first_report_and_adds_no_rows():
    nfp = market()
    first = services.event_report_generate(event_id=nfp.pk, now=AFTER)
    rows = EventReportRow.objects.count()
    second = services.event_report_generate(event_id=nfp.pk, now=AFTER + timedelta(hours=1))
    assert first is not None and second is not None and first.pk == second.pk
    assert EventReportRow.objects.count() == rows


@pytest.mark.django_db
def test_the_command_writes_every_missing_report_and_a_rerun_writes_none(capsys):
    market()
    call_command("events_report", "--days", "400")
    first = EventReport.objects.count()
    assert first >= 2  # NFP, Canada employment, ... in that week
    call_command("events_report", "--days", "400")
    assert EventReport.objects.count() == first
    assert "Event reports written: 0" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_report_page_shows_a_chart_and_a_table_per_instrument(client):
    nfp = market()
    services.event_report_generate(event_id=nfp.pk, now=AFTER)
    response = client.get(reverse("events:detail", kwargs={"event_id": nfp.pk}))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('role="img"') == 2
    assert "<caption>EURUSD at the release" in html
    assert "Back to calm" in html
    assert "<script>" not in without_script_loader(html)


@pytest.mark.django_db
def test_a_release_without_report_is_not_found(client):
    nfp = market()
    assert client.get(reverse("events:detail", kwargs={"event_id": nfp.pk})).status_code == 404


@pytest.mark.django_db
def test_storing_a_report_revalidates_the_cached_archive(client, django_capture_on_commit_callbacks):
    nfp = market()
    url = reverse("events:archive")
    assert "No release reports yet" in client.get(url).content.decode()
    assert client.get(url)["X-Page-Cache"] == "hit"
    with django_capture_on_commit_callbacks(execute=True):
        services.event_report_generate(event_id=nfp.pk, now=AFTER)
    assert client.get(url)["X-Page-Cache"] == "revalidated"  # rendered anew for the first request after it


@pytest.mark.django_db
def test_the_profile_shows_how_the_broker_held_up_at_its_last_releases(client):
    market()
    services.event_reports_missing_generate(days=400, now=START + timedelta(days=2))
    html = client.get(reverse("brokers:profile", kwargs={"slug": "kestrel-fx"})).content.decode()
    assert "How it held up at the last" in html
    assert "US Non-Farm Payrolls" in html


@pytest.mark.django_db
def test_the_beat_task_enqueues_one_report_per_due_release_after_commit(django_capture_on_commit_callbacks):
    nfp = market()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        due = tasks.event_reports_enqueue.run(lookback_days=60)
    assert due >= 1
    assert len(callbacks) == due
    # Called directly, the per-event task writes the report (a real worker runs the same function).
    tasks.event_report_generate.run(nfp.pk)
    assert EventReport.objects.filter(event=nfp).exists()


@pytest.mark.django_db(transaction=True)
def test_rows_stored_before_all_in_pricing_keep_their_spread_cost_and_do_not_claim_to_be_all_in():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("events", "0001_event_reports")]
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        MigrationExecutor(connection).migrate(before)
        state = [*before, *(n for n in latest if n[0] != "events")]  # every other app as it is now
        old = MigrationExecutor(connection).loader.project_state(state).apps
        broker = old.get_model("brokers", "Broker").objects.create(
            name="Old Report FX", slug="old-report-fx", website="https://old.example", year_founded=2001,
            headquarters_country="Cyprus", company_type="private", min_deposit=100, max_leverage=30,
        )  # fmt: skip
        eurusd = old.get_model("brokers", "Instrument").objects.create(
            symbol="EURUSD", name="Euro", asset_class="fx_major", pip_size="0.0001", display_precision=5
        )
        event = old.get_model("marketdata", "EconomicEvent").objects.create(
            name="US Non-Farm Payrolls", currency="USD", scheduled_at=NFP_AT, impact="high"
        )
        report = old.get_model("events", "EventReport").objects.create(event=event, generated_at=AFTER)
        old.get_model("events", "EventReportRow").objects.create(
            report=report, broker=broker, instrument=eurusd, calm_pips=0.8, peak_pips=1.23, peak_cost_usd=12.3
        )
    finally:
        MigrationExecutor(connection).migrate(latest)
    row = EventReportRow.objects.get()
    assert (row.peak_cost_usd, row.peak_spread_cost_usd, row.account_id) == (None, 12.3, None)
    page = Client().get(reverse("events:detail", args=[row.report.event_id])).content.decode()
    assert '$12.30 <span class="muted">spread only</span>' in page
