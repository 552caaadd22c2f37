"""Every public page: status, key content, bounded queries, and bad query strings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from brokers.models import Broker
from testing.support import without_script_loader
from trustmetrics.models import TrustScore

pytestmark = pytest.mark.django_db


def get_uncached(client: Client, url: str):
    """Render the page for real: the page cache is emptied by the autouse fixture before each test."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    return response, len(queries)


def test_home_lists_entry_points_and_an_empty_state_before_any_score(client, demo):
    response, _ = get_uncached(client, "/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Browse all brokers" in body
    assert "No trust scores have been computed yet" in body


def test_home_ranks_the_top_brokers_by_their_latest_score(client, demo):
    from django.utils import timezone

    now = timezone.now()
    for slug, score in [("kestrel-fx", 91.0), ("northwind-markets", 88.0), ("coral-reef-trading", 30.0)]:
        broker = Broker.objects.get(slug=slug)
        TrustScore.objects.create(
            broker=broker,
            computed_at=now,
            methodology_version="t",
            overall=score,
            label="x",
            confidence=1,
            components={},
        )
    # An older, higher score must not count: only the latest one does.
    TrustScore.objects.create(
        broker=Broker.objects.get(slug="coral-reef-trading"),
        computed_at=now - timedelta(days=1),
        methodology_version="t",
        overall=99.0,
        label="x",
        confidence=1,
        components={},
    )
    body = client.get("/").content.decode()
    assert body.index("Kestrel FX") < body.index("Northwind Markets") < body.index("Coral Reef Trading")


def test_directory_lists_active_brokers_in_a_bounded_number_of_queries(client, demo):
    response, queries = get_uncached(client, "/brokers/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "13 brokers match" in body  # the 14th is suspended
    assert "Vanguard Pacific FX" not in body
    assert queries <= 13  # listing, licences, platforms, accounts, the EURUSD cost (fixed, not per broker)


def test_directory_filters_by_regulator_tier_platform_instrument_and_account_type(client, demo):
    body = client.get("/brokers/?regulator=fca").content.decode()
    assert "Northwind Markets" in body and "Kestrel FX" in body and "Alpenbank Trading" not in body

    # "Tier <= N": an offshore-only broker answers tier 3 but not tier 2; a tier-1 broker answers both.
    body = client.get("/brokers/?tier=3").content.decode()
    assert "Coral Reef Trading" in body and "Alpenbank Trading" in body
    body = client.get("/brokers/?tier=2").content.decode()
    assert "Coral Reef Trading" not in body and "Alpenbank Trading" in body

    body = client.get("/brokers/?platform=ninjatrader").content.decode()
    assert "1 broker matches" in body and "Meridian Prime" in body

    body = client.get("/brokers/?instrument=BTCUSD&spread_type=raw").content.decode()
    assert "Meridian Prime" not in body and "Kestrel FX" in body and "Coral Reef Trading" not in body


def test_directory_sorts_by_deposit_and_name(client, demo):
    body = client.get("/brokers/?sort=deposit").content.decode()
    assert body.index("Sakura Securities FX") < body.index("Coral Reef Trading") < body.index("Alpenbank Trading")
    body = client.get("/brokers/?sort=name").content.decode()
    assert body.index("Alpenbank Trading") < body.index("Table Bay Markets")


def test_directory_answers_bad_filter_values_with_a_400_and_a_message(client, demo):
    response = client.get("/brokers/?tier=9&sort=%00drop")
    assert response.status_code == 400
    assert "Some filters could not be applied" in response.content.decode()


def test_directory_ignores_unknown_parameters(client, demo):
    response = client.get("/brokers/?utm_source=x&sort=name")
    assert response.status_code == 200


def test_profile_shows_licences_accounts_and_empty_states(client, demo):
    response, queries = get_uncached(client, "/brokers/northwind-markets/")
    assert response.status_code == 200
    body = response.content.decode()
    for text in (
        "FRN 401234",
        "ASIC",
        "Raw",
        "MetaTrader 5",
        "PayPal",
        "EURUSD",
        "Not scored yet",
        "No spreads recorded yet",
    ):
        assert text in body
    assert queries <= 18  # + the cost table (spread window, rates, instruments, swaps, feed account), releases


def test_profile_query_count_does_not_grow_with_data(client, demo):
    _, small = get_uncached(client, "/brokers/sakura-securities-fx/")
    _, large = get_uncached(client, "/brokers/northwind-markets/")
    assert small == large


def test_profile_shows_measured_spreads_in_pips(client, demo):
    from django.utils import timezone

    from marketdata.models import SpreadBar

    broker = Broker.objects.get(slug="northwind-markets")
    eurusd = broker.instruments.get(symbol="EURUSD")
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    for resolution in ("1h", "1d"):
        SpreadBar.objects.create(
            broker=broker,
            instrument=eurusd,
            resolution=resolution,
            start=start,
            open=0.0001,
            high=0.0003,
            low=0.0001,
            close=0.0001,
            mean=0.00012,
            count=3600,
            dev_min=-0.00001,
            dev_max=0.00002,
        )
    body = client.get("/brokers/northwind-markets/").content.decode()
    assert "No spreads recorded yet" not in body
    assert "1.20" in body  # 0.00012 / pip 0.0001


def test_unknown_profile_is_a_styled_404(client, demo):
    response = client.get("/brokers/no-such-broker/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
    assert "Browse all brokers" in response.content.decode()


def test_compare_highlights_the_best_value_per_row(client, demo):
    response, queries = get_uncached(client, "/compare/?brokers=alpenbank-trading,coral-reef-trading,kestrel-fx")
    assert response.status_code == 200
    body = response.content.decode()
    row = body[body.index("Minimum deposit (USD)") :]
    row = row[: row.index("</tr>")]
    # Coral Reef's $10 minimum is the lowest deposit.
    cells = row.split("<td")[1:]
    assert 'class="best"' in cells[1] and 'class="best"' not in cells[0] and 'class="best"' not in cells[2]
    assert queries <= 11


def test_compare_with_one_broker_asks_for_another_with_it_ticked(client, demo):
    response = client.get("/compare/?brokers=northwind-markets")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Choose at least one more broker" in body
    assert 'value="northwind-markets" checked' in body


def test_compare_without_brokers_shows_the_picker(client, demo):
    response = client.get("/compare/")
    assert response.status_code == 200
    assert "Choose 2 to 4 brokers" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (",,", "at least two"),
        ("a,b,c,d,e", "Unknown broker"),
        ("northwind-markets,kestrel-fx,alpenbank-trading,lionsgate-capital,cypress-trade", "at most 4"),
        ("northwind-markets,%3Cscript%3E", "Unknown broker"),
    ],
)
def test_compare_answers_bad_selections_with_a_400_and_a_message(client, demo, query, message):
    response = client.get(f"/compare/?brokers={query}")
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert "<script>" not in without_script_loader(body)


def test_compare_sent_without_javascript_and_no_broker_chosen_says_so(client, demo):
    bare = client.get("/compare/")  # cached: the blank choice must not be answered with this copy
    assert client.get("/compare/")["X-Page-Cache"] == "hit"
    for query in ("brokers=", "brokers=+", "brokers=&utm_source=x"):
        response = client.get(f"/compare/?{query}")
        assert response.status_code == 400, query
        assert "No broker chosen" in response.content.decode(), query
        assert '<details class="filters-panel picker-panel" open>' in response.content.decode()
    assert "No broker chosen" not in bare.content.decode()
    assert "No broker chosen" not in client.get("/compare/").content.decode()  # nor the other way round
    # The form sends the hidden field blank, so unticking every box reads as no choice, not the last one.
    shown = client.get("/compare/?brokers=kestrel-fx,northwind-markets").content.decode()
    assert '<input type="hidden" name="brokers" value="">' in shown


def test_compare_picker_without_javascript_redirects_to_the_shareable_url(client, demo):
    response = client.get("/compare/?pick=kestrel-fx&pick=northwind-markets")
    assert response.status_code == 302
    assert response["Location"] == "/compare/?brokers=kestrel-fx,northwind-markets"


def test_server_errors_render_the_styled_500_page(client, settings):
    from config.views import server_error

    response = server_error(None)  # type: ignore[arg-type]
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_bad_query_strings_are_counted(client, demo):
    from common import metrics

    before = metrics.get("bad_query")
    client.get("/brokers/?tier=x")
    client.get("/compare/?brokers=x")
    assert metrics.get("bad_query") == before + 2


def test_static_files_have_hashed_names_and_far_future_caching(client, demo):
    import re

    # The stylesheets are written into the pages (pagecache/inline.py); scripts are linked.
    body = client.get("/compare/").content.decode()
    script = re.search(r'src="(/static/js/compare\.[0-9a-f]{12}\.js)"', body)
    assert script, "script link is not a hashed name"
    response = client.get(script.group(1), HTTP_ACCEPT_ENCODING="gzip, br")
    assert response.status_code == 200
    assert "max-age=31536000" in response["Cache-Control"]
    assert "immutable" in response["Cache-Control"]
    assert response["Content-Encoding"] in ("gzip", "br")
