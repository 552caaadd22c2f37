"""Every table a page shows has a visible CSV download, and the CSV holds that table's figures (same selectors)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import time
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone
from django_redis import get_redis_connection

from api.schemas import (
    ACCOUNTS_CSV,
    COMPARE_CSV,
    DAILY_SCORES_CSV,
    EVENTS_CSV,
    EXECUTION_CSV,
    LICENCES_CSV,
    METHODOLOGY_COMPANY_TYPES_CSV,
    METHODOLOGY_COMPONENTS_CSV,
    METHODOLOGY_REFERENCE_SPREADS_CSV,
    METHODOLOGY_STATUSES_CSV,
    METHODOLOGY_TIERS_CSV,
    METHODOLOGY_TRANSPARENCY_CSV,
    RELEASES_CSV,
    REPORTS_CSV,
    SCORES_CSV,
    SPREAD_HOURS_CSV,
    VALIDATION_CSV,
)
from brokers import selectors
from brokers.models import AccountType, Broker, BrokerInstrument, Instrument
from events import selectors as event_selectors
from marketdata import keys
from marketdata.models import FeedConfig, SpreadBar
from trustmetrics import selectors as trust_selectors
from trustmetrics.methodology import METHODOLOGY
from trustmetrics.models import TrustValidation

pytestmark = pytest.mark.django_db

LINK = re.compile(r'<p class="csv-link"><a href="([^"]+)" download type="text/csv">Download ([^<]+) as CSV</a></p>')


def links(client, path: str) -> dict[str, str]:
    """The page's CSV downloads: what each says it downloads -> its address."""
    page = client.get(path)
    assert page.status_code == 200, path
    return {what: html.unescape(href) for href, what in LINK.findall(page.content.decode())}


def download(client, href: str) -> list[dict[str, str]]:
    response = client.get(href)
    assert response.status_code == 200, (href, response.content[:300])
    assert response["Content-Type"].startswith("text/csv")
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(content.decode())))


def num(text: str) -> float | None:
    return None if text == "" else float(text)


def test_the_directory_links_its_csv_with_the_pages_filters_and_it_lists_the_same_brokers(client, measured):
    found = links(client, reverse("brokers:directory") + "?tier=1&sort=deposit&regulator=")
    href = found["this list"]
    assert "tier=1" in href and "sort=deposit" in href and "format=csv" in href
    rows = download(client, href)
    page = selectors.broker_directory(filters=selectors.DirectoryFilters(tier=1, sort="deposit"))
    assert [r["slug"] for r in rows] == [e.broker.slug for e in page]
    for row, entry in zip(rows, page, strict=True):
        assert num(row["all_in_eurusd_usd"]) == (entry.cost.all_in_usd if entry.cost else None)


def test_the_compare_table_downloads_with_every_cell_of_the_page(client, measured):
    slugs = ["kestrel-fx", "northwind-markets", "coral-reef-trading"]
    found = links(client, reverse("brokers:compare") + "?brokers=" + ",".join(slugs))
    rows = download(client, found["this comparison"])
    assert list(rows[0]) == list(COMPARE_CSV)
    brokers, table = selectors.broker_compare(slugs=slugs)
    expected = []
    for row in table:
        for b, (value, note, best) in zip(brokers, row.cells, strict=True):
            shown = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            expected.append([row.label, b.slug, shown, "true" if best else "false", note])
    got = [[r["row"], r["broker"], r["value"], r["best"], r["note"]] for r in rows]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine[:2] == theirs[:2] and mine[3:] == theirs[3:]
        if theirs[2] and theirs[2] not in ("true", "false"):
            try:
                assert float(mine[2]) == pytest.approx(float(theirs[2]))
            except ValueError:
                assert mine[2] == theirs[2]
        else:
            assert mine[2] == theirs[2]
    assert any(r["best"] == "true" for r in rows)


def test_a_compare_of_fewer_than_two_or_unknown_brokers_is_a_400_json_error(client, measured):
    for asked in ("kestrel-fx", "kestrel-fx,nobody"):
        response = client.get("/api/v1/compare", {"brokers": asked, "format": "csv"})
        assert response.status_code == 400
        assert "brokers" in response.json()["fields"]


def test_the_profile_links_its_spread_cost_and_daily_score_tables_and_they_hold_the_pages_figures(client, measured):
    broker = selectors.broker_profile(slug="kestrel-fx")
    found = links(client, broker.get_absolute_url())
    assert {"both spread tables", "the cost table", "the daily history", "the licences", "the accounts"} <= set(found)

    licences = download(client, found["the licences"])
    assert list(licences[0]) == list(LICENCES_CSV)
    assert [(r["regulator"], r["licence_number"], r["status"]) for r in licences] == [
        (lic.regulator.name, lic.licence_number, lic.status) for lic in broker.licences.all()
    ]
    accounts = download(client, found["the accounts"])
    assert list(accounts[0]) == list(ACCOUNTS_CSV)
    page_accounts = list(broker.account_types.all())
    assert [r["name"] for r in accounts] == [a.name for a in page_accounts]
    assert [Decimal(r["commission_per_lot"]) for r in accounts] == [a.commission_per_lot for a in page_accounts]
    feed = selectors.broker_costs(broker=broker).feed_account
    assert feed is not None
    assert [r["name"] for r in accounts if r["feed_account"] == "True"] == [feed.name]

    costs = download(client, found["the cost table"])
    page_costs = selectors.broker_costs(broker=broker).rows
    assert [(r["instrument"], r["account"]) for r in costs] == [(c.symbol, c.account) for c in page_costs]
    assert [num(r["all_in_usd"]) for r in costs] == pytest.approx([c.all_in_usd for c in page_costs])

    spreads = download(client, found["both spread tables"])
    page_spreads = selectors.broker_spread_history(broker=broker)
    assert [r["instrument"] for r in spreads] == [s.instrument.symbol for s in page_spreads]
    for row, s in zip(spreads, page_spreads, strict=True):
        assert num(row["mean_pips_7d"]) == pytest.approx(s.windows["7d"].pips)
        assert num(row["mean_pips_london"]) == pytest.approx(s.sessions.get("london"))

    daily = download(client, found["the daily history"])
    assert list(daily[0]) == list(DAILY_SCORES_CSV)
    page_daily = trust_selectors.trust_daily_history(broker_id=broker.pk)
    assert len(daily) == len(page_daily) >= 1
    assert [num(r["overall"]) for r in daily] == pytest.approx([s.overall for s in page_daily])


def test_the_spread_page_links_its_hour_of_day_and_percentile_tables_with_the_pages_figures(client, measured):
    broker = Broker.objects.get(slug="kestrel-fx")
    found = links(client, reverse("spreads:detail", args=[broker.slug, "EURUSD"]))
    hours = download(client, found["the hour-of-day table"])
    assert list(hours[0]) == list(SPREAD_HOURS_CSV)
    page = event_selectors.spread_history(
        broker=broker, instrument=Instrument.objects.get(symbol="EURUSD"), now=timezone.now()
    )
    assert [int(r["hour"]) for r in hours] == list(range(24))
    assert [num(r["pips"]) for r in hours] == pytest.approx(page.hours)
    assert [num(r["peers_median_pips"]) for r in hours] == pytest.approx(page.peers)
    assert page.account is not None
    assert {r["account"] for r in hours} == {page.account.name}
    percentiles = download(client, found["the percentiles"])
    assert [r["session"] for r in percentiles] == list(page.sessions)


@pytest.fixture
def two_feeds(measured):
    """kestrel-fx with a second account measured on a feed of its own, bars 0.8 pips wider than the feed's."""
    broker = Broker.objects.get(slug="kestrel-fx")
    feed = selectors.broker_costs(broker=broker).feed_account
    assert feed is not None
    other = AccountType.objects.filter(broker=broker).exclude(pk=feed.pk).first()
    assert other is not None
    FeedConfig.objects.get_or_create(broker=broker, account=None)
    FeedConfig.objects.create(broker=broker, account=other)
    bars = []
    for bar in SpreadBar.objects.filter(broker=broker, instrument__symbol="EURUSD"):
        bar.pk, bar.account = None, other
        bar.mean += 0.00008
        bars.append(bar)
    SpreadBar.objects.bulk_create(bars)
    return broker, feed, other


def test_the_spread_page_names_its_account_and_links_the_brokers_other_accounts(client, two_feeds):
    broker, feed, other = two_feeds
    path = reverse("spreads:detail", args=[broker.slug, "EURUSD"])
    body = client.get(path).content.decode()
    assert f"of the <strong>{html.escape(feed.name)}</strong> account" in body
    assert f'<strong aria-current="page">{html.escape(feed.name)}</strong>' in body
    other_link = f"{path}?{urlencode({'account': other.name})}"
    assert f'href="{html.escape(other_link)}"' in body

    on_other = client.get(other_link).content.decode()
    assert f"of the <strong>{html.escape(other.name)}</strong> account" in on_other
    found = {what: html.unescape(href) for href, what in LINK.findall(on_other)}
    hours = download(client, found["the hour-of-day table"])
    page = event_selectors.spread_history(
        broker=broker, instrument=Instrument.objects.get(symbol="EURUSD"), now=timezone.now(), account=other
    )
    assert {r["account"] for r in hours} == {other.name}
    assert [num(r["pips"]) for r in hours] == pytest.approx(page.hours)
    mine = event_selectors.spread_history(
        broker=broker, instrument=Instrument.objects.get(symbol="EURUSD"), now=timezone.now()
    )
    assert page.hours != mine.hours  # the other account's own bars, not the feed account's

    assert client.get(path, {"account": "No such account"}).status_code == 404


def test_the_methodology_validation_table_downloads_with_its_figures(client, demo):
    summary = {
        "version": METHODOLOGY.version,
        "scenarios": [
            {"key": "a", "title": "Mark-up only", "period": "week 1", "brokers": 8, "releases": 3, "spearman": 0.97},
            {"key": "b", "title": "Outages", "period": "week 2", "brokers": 9, "releases": 2, "spearman": 0.88},
        ],
        "held_out_count": 10,
        "held_out_median": 0.93,
        "held_out_min": 0.8,
        "held_out_p10": 0.85,
        "held_out_passing": 7,
    }
    TrustValidation.objects.create(methodology_version=METHODOLOGY.version, summary=summary, computed_at=timezone.now())
    found = links(client, reverse("trustmetrics:methodology"))
    rows = download(client, found["the validation table"])
    assert list(rows[0]) == list(VALIDATION_CSV)
    assert [(r["scenario"], num(r["spearman"]), r["meets_bar"]) for r in rows] == [
        ("Mark-up only", 0.97, "true"),
        ("Outages", 0.88, "false"),
    ]


def test_while_the_validation_figures_are_computed_the_api_says_pending_like_the_page(client, demo):
    assert client.get("/api/v1/methodology/validation").json()["pending"] is True
    assert download(client, "/api/v1/methodology/validation?format=csv") == []


@pytest.fixture
def depth(demo):
    conn = get_redis_connection("default")
    now = time.time_ns() // 1000
    slugs = list(
        BrokerInstrument.objects.filter(instrument__symbol="EURUSD", broker__status="active").values_list(
            "broker__slug", flat=True
        )
    )
    for i, slug in enumerate(slugs):
        ask, bid = round(1.10010 + i * 0.00001, 5), 1.09990
        book = {"bids": [[bid, 5_000_000.0]], "asks": [[ask, 5_000_000.0]], "ts": now}
        conn.hset(keys.depth_hash(), keys.field(slug, "EURUSD"), json.dumps(book))
    yield slugs
    conn.delete(keys.depth_hash())


def test_best_execution_links_its_table_and_the_csv_has_every_row_of_the_estimate(client, depth):
    params = {"instrument": "EURUSD", "side": "buy", "size": "2", "unit": "lots"}
    found = links(client, "/execution/?" + urlencode(params))
    href = found["this table (priced again at download)"]
    rows = download(client, href)
    assert list(rows[0]) == list(EXECUTION_CSV)
    estimate = client.get("/api/v1/execution?" + urlencode(params)).json()
    assert [(r["broker"], r["account"]) for r in rows] == [(b["broker"], b["account"]) for b in estimate["brokers"]]
    assert [num(r["all_in_usd"]) for r in rows] == pytest.approx([b["all_in_usd"] for b in estimate["brokers"]])
    again = client.get(href, HTTP_IF_NONE_MATCH=client.get(href)["ETag"])
    assert again.status_code == 304 and again["Cache-Control"] == "no-store"


def test_every_csv_column_is_documented_in_the_schema(client, measured):
    schema = client.get("/api/v1/openapi.json").json()["paths"]
    for path, columns in (
        ("/api/v1/compare", COMPARE_CSV),
        ("/api/v1/brokers/{slug}/spreads/{symbol}/hours", SPREAD_HOURS_CSV),
        ("/api/v1/brokers/{slug}/scores/daily", DAILY_SCORES_CSV),
        ("/api/v1/methodology/validation", VALIDATION_CSV),
        ("/api/v1/execution", EXECUTION_CSV),
        ("/api/v1/brokers/{slug}/licences", LICENCES_CSV),
        ("/api/v1/brokers/{slug}/accounts", ACCOUNTS_CSV),
        ("/api/v1/brokers/{slug}/releases", RELEASES_CSV),
        ("/api/v1/brokers/{slug}/scores", SCORES_CSV),
        ("/api/v1/events/reports", REPORTS_CSV),
        ("/api/v1/events", EVENTS_CSV),
    ):
        documented = schema[path]["get"]["responses"]["200"]["description"]
        assert all(f"`{name}`" in documented for name in columns), path


def test_a_new_bar_does_not_change_a_cached_csv_until_its_pages_are_revalidated(client, measured):
    """The CSV and its ETag stay put while cached (as JSON answers do): a poller gets 304, not a new as_of."""
    path = "/api/v1/brokers/kestrel-fx/spreads?format=csv"
    first = client.get(path)
    broker = Broker.objects.get(slug="kestrel-fx")
    bar = SpreadBar.objects.filter(broker=broker).first()
    assert bar is not None
    bar.pk, bar.start, bar.mean = None, bar.start - timedelta(hours=1), bar.mean * 5
    bar.save()
    assert client.get(path, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304


METHODOLOGY_TABLES = {
    "the components and weights": ("components", METHODOLOGY_COMPONENTS_CSV),
    "the tier points": ("tiers", METHODOLOGY_TIERS_CSV),
    "the licence status factors": ("statuses", METHODOLOGY_STATUSES_CSV),
    "the company type shares": ("company_types", METHODOLOGY_COMPANY_TYPES_CSV),
    "the transparency points": ("transparency", METHODOLOGY_TRANSPARENCY_CSV),
    "the reference spreads": ("reference_spreads", METHODOLOGY_REFERENCE_SPREADS_CSV),
}


def test_every_methodology_reference_table_links_its_csv_with_the_pages_rows(client, demo):
    page = client.get(reverse("trustmetrics:methodology")).content.decode()
    found = links(client, reverse("trustmetrics:methodology"))
    tables = trust_selectors.trust_methodology_tables()
    for what, (name, columns) in METHODOLOGY_TABLES.items():
        rows = download(client, found[what])
        assert list(rows[0]) == list(columns), what
        assert {r["methodology_version"] for r in rows} == {METHODOLOGY.version}
        if name == "components":
            assert [(r["key"], r["title"], r["measured"]) for r in rows] == [
                (c.key, c.title, "true" if c.measured else "false") for c in tables.components
            ]
            for r in rows:  # the page's percentage, from the CSV's share
                shown = f"{round(float(r['weight']) * 100)}%"
                assert f'<th scope="row">{html.escape(r["title"])}</th><td>{shown}</td>' in page
            assert sum(float(r["weight"]) for r in rows) == pytest.approx(1.0)
            continue
        expected = getattr(tables, name)
        assert [(r["key"], r["name"], float(r["value"])) for r in rows] == [(e.key, e.name, e.value) for e in expected]
        for r in rows:  # each row as the page shows it
            assert f'<tr><th scope="row">{html.escape(r["name"])}</th><td>' in page, (what, r["name"])
    assert sum(float(r["value"]) for r in download(client, found["the transparency points"])) == pytest.approx(100)
    schema = client.get("/api/v1/openapi.json").json()["paths"]
    for name, (_, columns) in zip(
        ("components", "tiers", "licence-statuses", "company-types", "transparency", "reference-spreads"),
        METHODOLOGY_TABLES.values(),
        strict=True,
    ):
        documented = schema[f"/api/v1/methodology/{name}"]["get"]["responses"]["200"]["description"]
        assert all(f"`{column}`" in documented for column in columns), name


def test_a_methodology_table_as_json_has_the_csvs_rows_and_an_etag(client, demo):
    path = "/api/v1/methodology/licence-statuses"
    as_json = client.get(path)
    assert [(r["key"], r["value"]) for r in as_json.json()] == [
        (r["key"], float(r["value"])) for r in download(client, path + "?format=csv")
    ]
    assert client.get(path, HTTP_IF_NONE_MATCH=f"W/{as_json['ETag']}").status_code == 304


def test_an_instruments_new_reference_spread_reaches_the_cached_table_at_once(
    client, demo, django_capture_on_commit_callbacks
):
    from brokers.models import Instrument

    path = "/api/v1/methodology/reference-spreads"
    first = client.get(path)
    eur = next(r for r in first.json() if r["key"] == "EURUSD")
    assert client.get(path, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    with django_capture_on_commit_callbacks(execute=True):
        instrument = Instrument.objects.get(symbol="EURUSD")
        instrument.reference_spread_pips = Decimal("0.9")
        instrument.save()  # what the admin's save does
    again = client.get(path, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200
    assert next(r for r in again.json() if r["key"] == "EURUSD")["value"] == 0.9 != eur["value"]
    page = client.get(reverse("trustmetrics:methodology")).content.decode()
    assert '<tr><th scope="row">Euro / US Dollar</th><td>0.9</td></tr>' in page
