"""The live board says what is true: "Live" only while quotes arrive, "Delayed" when they stop while the
socket is open, "Reconnecting" when the socket is closed; the logged-out copy says when it was made and
refreshes itself."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.contrib.auth.models import User
from django_redis import get_redis_connection

from brokers.models import BrokerInstrument
from marketdata import keys
from testing.daphne import daphne_server, daphne_start, daphne_stop, daphne_wait
from testing.support import subprocess_env

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def publish(broker: str, instrument: str, bid: float, seq: int) -> None:
    now = time.time_ns() // 1000
    ask = bid + 0.0001
    data = json.dumps(
        {"broker": broker, "instrument": instrument, "bid": bid, "ask": ask, "spread": ask - bid}
        | {"bid_size": 1e6, "ask_size": 1e6, "ts_broker": now, "ts_ingest": now, "seq": seq}
    )
    conn = get_redis_connection("default")
    conn.hset(keys.latest_hash(), keys.field(broker, instrument), data)
    conn.publish(keys.live_channel(instrument), data)


def state(page) -> str:
    return page.locator("#live-conn").get_attribute("data-state") or ""


def test_the_board_says_live_then_delayed_then_reconnecting_as_quotes_stop_and_the_server_goes(demo, browser_page):
    User.objects.create_user("trader", password="watch-the-spreads-1")
    broker = BrokerInstrument.objects.filter(instrument__symbol="EURUSD").values_list("broker__slug", flat=True)[0]
    server = daphne_start(subprocess_env())
    try:
        daphne_wait(server)
        page = browser_page
        page.goto(server.url + "/accounts/login/?next=/live/")
        page.get_by_label("Username").fill("trader")
        page.get_by_label("Password").fill("watch-the-spreads-1")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/live/$"))

        publish(broker, "EURUSD", 1.1, 1)
        page.wait_for_selector("#live-conn[data-state='live']", timeout=10_000)
        # No more quotes: the socket is open, but the board no longer claims to be live.
        page.wait_for_selector("#live-conn[data-state='delayed']", timeout=15_000)
        assert "Delayed" in page.locator("#live-conn").inner_text()
        publish(broker, "EURUSD", 1.1001, 2)
        page.wait_for_selector("#live-conn[data-state='live']", timeout=10_000)

        daphne_stop(server)
        page.wait_for_selector("#live-conn[data-state='reconnecting']", timeout=10_000)
        assert "Reconnecting" in page.locator("#live-conn").inner_text()
    finally:
        daphne_stop(server)


def test_the_logged_out_copy_says_when_it_was_made_and_refreshes_itself(demo, browser_page):
    # Regenerated in a thread of the server (as in the single-process demo), since no Celery worker runs here.
    with daphne_server(subprocess_env(PAGECACHE_BACKGROUND="thread")) as live_site:
        _public_copy_refreshes(live_site, browser_page)


def _public_copy_refreshes(live_site: str, browser_page) -> None:
    broker = BrokerInstrument.objects.filter(instrument__symbol="EURUSD").values_list("broker__slug", flat=True)[0]
    conn = get_redis_connection("default")
    conn.hset(keys.status_hash(), broker, json.dumps({"broker": broker, "status": "up", "since": 1}))
    page = browser_page
    page.goto(live_site + "/live/")
    assert "No quotes yet" not in page.content()  # a feed is up
    first = page.locator("#live-public time[data-asof]").get_attribute("datetime")
    page.wait_for_function("() => /s ago/.test(document.querySelector('[data-asof-age]').textContent)")
    publish(broker, "EURUSD", 1.23456, 1)
    # Without a reload: the page fetches the regenerated copy and shows the new quote and its time.
    page.wait_for_function(
        "sel => document.querySelector(sel)?.textContent === '1.23456'",
        arg=f'#live-public td[data-k="{broker}:EURUSD"] .bid',
        timeout=30_000,
    )
    assert page.locator("#live-public time[data-asof]").get_attribute("datetime") != first
