"""News-event reports in the API: the archive and one report, as JSON and CSV, with the pages' figures."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from api.schemas import REPORT_CSV, REPORTS_CSV
from brokers.services import demo_seed
from events import selectors, services
from marketdata.models import EconomicEvent, SpreadBar
from pagecache.services import pages_revalidate_on_commit
from trustmetrics.synthetic_load import synthetic_market_write

pytestmark = pytest.mark.django_db

API = "/api/v1"
NFP_AT = datetime(2026, 11, 6, 12, 30, tzinfo=UTC)
AFTER = NFP_AT + timedelta(hours=2)


@pytest.fixture
def nfp(django_capture_on_commit_callbacks) -> EconomicEvent:
    demo_seed()
    synthetic_market_write(
        start=datetime(2026, 11, 5, tzinfo=UTC),
        days=2,
        symbols=["EURUSD", "USDJPY"],
        news_before=timedelta(minutes=60),
        news_after=timedelta(minutes=30),
    )
    with django_capture_on_commit_callbacks(execute=True):
        pages_revalidate_on_commit(tags=[])  # what seeding queued: done before the test caches anything
    return EconomicEvent.objects.get(name="US Non-Farm Payrolls", scheduled_at=NFP_AT)


def test_the_report_list_is_the_archive_pages(client, nfp):
    services.event_reports_missing_generate(days=400, now=AFTER)
    body = client.get(f"{API}/events/reports").json()
    page = list(selectors.event_report_list())
    assert len(page) >= 1
    assert [r["event_id"] for r in body] == [r.event_id for r in page]
    for got, report in zip(body, page, strict=True):
        assert got["name"] == report.event.name
        assert got["brokers_measured"] == report.brokers_measured
        assert got["calmest_broker"] == (report.best_broker.slug if report.best_broker else None)
        assert got["most_stressed_broker"] == (report.worst_broker.slug if report.worst_broker else None)
        assert got["url"] == f"/events/{report.event_id}/"


def test_a_report_has_every_row_of_its_page_in_the_pages_order(client, nfp):
    services.event_report_generate(event_id=nfp.pk, now=AFTER)
    body = client.get(f"{API}/events/{nfp.pk}/report").json()
    report, sections = selectors.event_report_detail(event_id=nfp.pk)
    assert body["event_id"] == nfp.pk
    assert body["brokers_measured"] == report.brokers_measured >= 10
    assert [s["instrument"] for s in body["instruments"]] == [s.instrument.symbol for s in sections]
    for got, section in zip(body["instruments"], sections, strict=True):
        assert [r["broker"] for r in got["rows"]] == [r.broker.slug for r in section.rows]
        for row, model in zip(got["rows"], section.rows, strict=True):
            assert row["calm_pips"] == model.calm_pips
            assert row["peak_pips"] == model.peak_pips
            assert row["stress_ratio"] == model.stress_ratio
            assert row["recovery_s"] == model.recovery_s
            # The page's all-in cost at the peak, on the account it names.
            assert row["peak_cost_usd"] == model.peak_cost_usd is not None
            assert row["commission_usd"] == model.commission_usd
            assert row["peak_spread_cost_usd"] == model.peak_spread_cost_usd
            assert model.account is not None and row["account"] == model.account.name


def test_reports_download_as_csv_with_the_documented_columns(client, nfp):
    services.event_report_generate(event_id=nfp.pk, now=AFTER)
    listing = client.get(f"{API}/events/reports?format=csv")
    assert listing["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(listing.streaming_content).decode())))
    assert rows[0] == list(REPORTS_CSV)
    assert rows[1][0] == str(nfp.pk)

    one = client.get(f"{API}/events/{nfp.pk}/report?format=csv")
    rows = list(csv.reader(io.StringIO(b"".join(one.streaming_content).decode())))
    assert rows[0] == list(REPORT_CSV)
    _, sections = selectors.event_report_detail(event_id=nfp.pk)
    assert len(rows) - 1 == sum(len(s.rows) for s in sections)
    assert {r[0] for r in rows[1:]} == {"EURUSD", "USDJPY"}


def test_a_release_without_a_report_and_a_bad_id_get_json_errors(client, nfp):
    missing = client.get(f"{API}/events/{nfp.pk}/report")
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("No report for release")
    huge = client.get(f"{API}/events/99999999999/report")
    assert huge.status_code == 422
    assert "event_id" in huge.json()["fields"]


def test_a_new_report_shows_in_the_list_at_once(client, nfp, django_capture_on_commit_callbacks):
    assert client.get(f"{API}/events/reports").json() == []
    assert client.get(f"{API}/events/reports")["X-Api-Cache"] == "hit"
    with django_capture_on_commit_callbacks(execute=True):
        services.event_report_generate(event_id=nfp.pk, now=AFTER)
    assert [r["event_id"] for r in client.get(f"{API}/events/reports").json()] == [nfp.pk]


def test_a_spread_history_has_the_spread_pages_session_percentiles(client, django_capture_on_commit_callbacks):
    from brokers.models import Broker, Instrument

    demo_seed()
    now = datetime.now(tz=UTC)
    start = (now - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    synthetic_market_write(start=start, days=3, symbols=["EURUSD"])
    broker, eurusd = Broker.objects.get(slug="kestrel-fx"), Instrument.objects.get(symbol="EURUSD")
    minute = now.replace(second=0, microsecond=0)
    SpreadBar.objects.bulk_create(  # 1-minute bars every 5 minutes over two days: every session has some
        SpreadBar(
            broker=broker,
            instrument=eurusd,
            resolution="1m",
            start=minute - timedelta(minutes=5 * k),
            open=m,
            high=m,
            low=m,
            close=m,
            mean=m,
            count=10,
            duration=60.0,
            dev_count=10,
            dev_min=0.0,
            dev_max=0.0,
        )
        for k in range(1, 577)
        if (m := 0.00001 * (1 + k % 13))
    )
    body = client.get(f"{API}/brokers/kestrel-fx/spreads/EURUSD").json()
    page = selectors.spread_history(broker=broker, instrument=eurusd, now=now)
    assert body["url"] == "/spreads/kestrel-fx/EURUSD/"
    assert body["hours"] == pytest.approx(page.hours)
    for name, figures in page.sessions.items():
        got = body["sessions"][name]
        assert got["minutes"] == figures["n"]
        assert (got["p50"], got["p95"], got["p99"]) == pytest.approx((figures["p50"], figures["p95"], figures["p99"]))
    assert all(s["p99"] is not None for s in body["sessions"].values())
    assert set(body["series"]) == {"24h", "7d", "30d"}

    rows = list(
        csv.reader(
            io.StringIO(
                b"".join(client.get(f"{API}/brokers/kestrel-fx/spreads/EURUSD?format=csv").streaming_content).decode()
            )
        )
    )
    assert rows[0] == ["session", "p50_pips", "p95_pips", "p99_pips", "minutes", "account", "as_of"]
    assert [r[0] for r in rows[1:]] == list(page.sessions)

    assert client.get(f"{API}/brokers/kestrel-fx/spreads/NOPE1").status_code == 404


def test_the_archive_and_a_report_page_link_their_csv_with_the_pages_rows(
    client, nfp, django_capture_on_commit_callbacks
):
    import html
    import re

    with django_capture_on_commit_callbacks(execute=True):
        services.event_report_generate(event_id=nfp.pk, now=AFTER)
    link = re.compile(r'<p class="csv-link"><a href="([^"]+)" download type="text/csv">Download ([^<]+) as CSV</a>')

    def linked(path: str) -> dict[str, str]:
        return {what: html.unescape(href) for href, what in link.findall(client.get(path).content.decode())}

    def rows(href: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(b"".join(client.get(href).streaming_content).decode())))

    listed = rows(linked("/events/")["this list"])
    assert [int(r["event_id"]) for r in listed] == [r.event_id for r in selectors.event_report_list()]
    _, sections = selectors.event_report_detail(event_id=nfp.pk)
    one = rows(linked(f"/events/{nfp.pk}/")["every table of this report"])
    assert [(r["instrument"], r["broker"]) for r in one] == [
        (s.instrument.symbol, row.broker.slug) for s in sections for row in s.rows
    ]
    assert [float(r["p95_pips"]) if r["p95_pips"] else None for r in one] == pytest.approx(
        [row.p95_pips for s in sections for row in s.rows]
    )
    # A profile's "how it held up at the last releases" table.
    broker = sections[0].rows[0].broker
    releases = rows(linked(broker.get_absolute_url())["this table"])
    expected = selectors.broker_last_releases(broker_id=broker.pk)
    assert [(int(r["event_id"]), int(r["rank"]), r["worst_instrument"]) for r in releases] == [
        (e.report.event_id, e.rank, e.worst_symbol or "") for e in expected
    ]


def test_report_csvs_carry_an_etag_answer_a_match_with_304_and_change_with_a_new_report(
    client, nfp, django_capture_on_commit_callbacks
):
    from brokers.models import Broker

    slug = Broker.objects.filter(status="active").order_by("name").values_list("slug", flat=True)[0]
    paths = [f"{API}/events/reports?format=csv", f"{API}/brokers/{slug}/releases?format=csv"]
    first = {p: client.get(p) for p in paths}
    for path, response in first.items():
        assert response["ETag"] and client.get(path, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    with django_capture_on_commit_callbacks(execute=True):
        services.event_report_generate(event_id=nfp.pk, now=AFTER)
    for path, response in first.items():
        again = client.get(path, HTTP_IF_NONE_MATCH=response["ETag"])
        assert again.status_code == 200 and again["ETag"] != response["ETag"], path
    report = f"{API}/events/{nfp.pk}/report?format=csv"
    tag = client.get(report)["ETag"]
    assert client.get(report, HTTP_IF_NONE_MATCH=tag).status_code == 304
