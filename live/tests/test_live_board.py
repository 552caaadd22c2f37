"""/live/: the public page (cached, last known spreads, invitation) and the trader's live board."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django_redis import get_redis_connection

from brokers.models import Broker
from marketdata import keys
from marketdata.selectors import feed_accounts
from testing.support import without_script_loader

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded() -> None:
    call_command("seed_demo", verbosity=0)


def put_latest(broker: str, instrument: str, bid: float, ask: float, age_s: float = 0.0) -> None:
    ts = time.time_ns() // 1000 - int(age_s * 1e6)
    data = {"broker": broker, "instrument": instrument, "bid": bid, "ask": ask, "spread": ask - bid}
    data.update(bid_size=1, ask_size=1, ts_broker=ts, ts_ingest=ts, seq=1)
    get_redis_connection("default").hset(keys.latest_hash(), keys.field(broker, instrument), json.dumps(data))


@pytest.fixture(autouse=True)
def _clear_latest():
    yield
    get_redis_connection("default").delete(keys.latest_hash(), keys.status_hash())


def two_brokers_quoting_eurusd() -> list[str]:
    from brokers.models import BrokerInstrument

    return list(
        BrokerInstrument.objects.filter(instrument__symbol="EURUSD")
        .order_by("broker__name")
        .values_list("broker__slug", flat=True)[:2]
    )


def test_anonymous_visitors_get_the_cached_last_known_spreads_and_an_invitation(client, seeded):
    a, b = two_brokers_quoting_eurusd()
    put_latest(a, "EURUSD", 1.10000, 1.10012)
    put_latest(b, "EURUSD", 1.10001, 1.10009)
    first = client.get("/live/")
    assert first.status_code == 200
    assert first["X-Page-Cache"] == "miss"
    body = first.content.decode()
    assert "Log in" in body and "Create a free account" in body
    assert f'data-k="{b}:EURUSD" class="q best"' in body  # 0.8 pips beats 1.2
    assert "1.2" in body and "0.8" in body
    assert "/ws/spreads/" not in body  # no live socket for anonymous visitors
    second = client.get("/live/")
    assert second["X-Page-Cache"] == "hit"
    assert second.content == first.content


def test_stale_quotes_are_greyed_and_never_best(client, seeded):
    a, b = two_brokers_quoting_eurusd()
    put_latest(a, "EURUSD", 1.10000, 1.10012)
    put_latest(b, "EURUSD", 1.10001, 1.10009, age_s=60)
    body = client.get("/live/").content.decode()
    assert f'data-k="{b}:EURUSD" class="q stale"' in body
    assert f'data-k="{a}:EURUSD" class="q best"' in body


def test_a_logged_in_trader_gets_the_live_board_never_the_shared_copy(client, seeded):
    client.get("/live/")  # fills the anonymous cache
    client.force_login(User.objects.create_user("t", password="long-enough-pass-1"))
    page = client.get("/live/")
    assert "X-Page-Cache" not in page
    body = page.content.decode()
    assert 'id="live-config"' in body
    assert "js/live" in body
    config = page.context["config"]
    assert len(config["instruments"]) == 20
    assert len(config["brokers"]) == 14
    assert config["instruments"][0]["pip"] > 0


def test_each_brokers_column_on_the_live_board_names_the_account_its_figures_belong_to(client, seeded):
    client.force_login(User.objects.create_user("t", password="long-enough-pass-1"))
    body = client.get("/live/").content.decode()
    brokers = list(Broker.objects.prefetch_related("account_types"))
    feeds = feed_accounts(brokers=brokers)
    for broker in brokers:
        header = re.search(rf'<th scope="col" data-broker="{broker.slug}">(.*?)</th>', body, re.S)
        assert header is not None, broker.slug
        account = feeds[broker.pk]
        assert account is not None and f'<span class="muted acct">{account.name} account</span>' in header.group(1)


def test_the_public_page_is_regenerated_by_url_like_other_cached_pages(seeded):
    from pagecache.isr import page_key, regenerate

    assert regenerate(page_key("/live/", ""), path="/live/", query="") == "rendered"


def test_the_broker_profile_snippet_renders_rows_for_each_instrument(seeded, rf):
    from django.template.loader import render_to_string

    from brokers.models import Broker

    broker = Broker.objects.order_by("pk").first()
    assert broker is not None
    html = render_to_string("live/_broker_live.html", {"broker": broker, "request": rf.get("/")})
    assert f'data-live-broker="{broker.slug}"' in html
    assert html.count("<tr data-instrument=") == broker.broker_instruments.count()
    assert "js/live" in html


def put_status(broker: str, status: str) -> None:
    get_redis_connection("default").hset(
        keys.status_hash(), broker, json.dumps({"broker": broker, "status": status, "since": 1})
    )


def test_the_public_copy_says_when_it_was_made_and_asks_to_be_refreshed(client, seeded):
    import datetime

    a, _ = two_brokers_quoting_eurusd()
    put_latest(a, "EURUSD", 1.10000, 1.10012)
    put_status(a, "up")
    before = datetime.datetime.now(tz=datetime.UTC).replace(microsecond=0)
    body = client.get("/live/").content.decode()
    made = body.split('<time datetime="', 1)[1].split('"', 1)[0]
    assert datetime.datetime.fromisoformat(made) >= before
    assert "1 of 1 feeds up" in body
    config = body.split('id="live-public-config" type="application/json">', 1)[1].split("<", 1)[0]
    assert json.loads(config)["refreshMs"] <= 10_000
    assert "<script>" not in without_script_loader(body)  # configuration as JSON data, code in static files (CSP)


def test_the_public_page_never_says_no_quotes_yet_while_a_feed_is_up(client, seeded):
    a, _ = two_brokers_quoting_eurusd()
    put_status(a, "up")
    body = client.get("/live/").content.decode()
    assert "No quotes yet" not in body
    assert "first quotes are on the way" in body


def test_with_no_feed_up_and_no_quotes_the_public_page_says_so(client, seeded):
    a, _ = two_brokers_quoting_eurusd()
    put_status(a, "down")
    body = client.get("/live/").content.decode()
    assert "No quotes yet: no market-data feed is up." in body
