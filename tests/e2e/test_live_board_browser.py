"""A trader in a real browser: logs in, opens the live board and watches cells change."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.contrib.auth.models import User
from django_redis import get_redis_connection

from brokers.models import BrokerInstrument
from marketdata import keys

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def publish(broker: str, instrument: str, bid: float, ask: float, seq: int) -> None:
    now = time.time_ns() // 1000
    data = json.dumps(
        {
            "broker": broker,
            "instrument": instrument,
            "bid": bid,
            "ask": ask,
            "spread": ask - bid,
            "bid_size": 1e6,
            "ask_size": 1e6,
            "ts_broker": now,
            "ts_ingest": now,
            "seq": seq,
        }
    )
    conn = get_redis_connection("default")
    conn.hset(keys.latest_hash(), keys.field(broker, instrument), data)
    conn.publish(keys.live_channel(instrument), data)


def test_a_trader_logs_in_and_watches_the_live_board_move(demo, live_site, browser_page):
    User.objects.create_user("trader", password="watch-the-spreads-1")
    a, b = (
        BrokerInstrument.objects.filter(instrument__symbol="EURUSD")
        .order_by("broker__name")
        .values_list("broker__slug", flat=True)[:2]
    )
    publish(a, "EURUSD", 1.10000, 1.10020, 1)  # in the snapshot
    page = browser_page
    page.goto(live_site + "/live/")
    assert "Log in to watch" in page.locator(".live-invite").inner_text()
    page.locator(".live-invite").get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill("trader")
    page.get_by_label("Password").fill("watch-the-spreads-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/live/$"))
    page.wait_for_selector("#live-conn[data-state='live']")

    cell_a = page.locator(f'td[data-k="{a}:EURUSD"]')
    cell_b = page.locator(f'td[data-k="{b}:EURUSD"]')
    assert cell_a.locator(".bid").inner_text() == "1.10000"  # from the snapshot
    assert cell_a.locator(".spr").inner_text() == "2.0"

    publish(b, "EURUSD", 1.10001, 1.10009, 2)
    page.wait_for_function(
        "sel => document.querySelector(sel)?.textContent === '1.10001'", arg=f'td[data-k="{b}:EURUSD"] .bid'
    )
    assert cell_b.locator(".spr").inner_text() == "0.8"
    assert "best" in (cell_b.get_attribute("class") or "")  # 0.8 pips beats 2.0
    assert "best" not in (cell_a.get_attribute("class") or "")

    for seq, bid in enumerate((1.10003, 1.10005, 1.10007), start=3):
        publish(a, "EURUSD", bid, bid + 0.00005, seq)
        page.wait_for_function(
            "([sel, want]) => document.querySelector(sel)?.textContent === want",
            arg=[f'td[data-k="{a}:EURUSD"] .bid', f"{bid:.5f}"],
        )
    assert "best" in (cell_a.get_attribute("class") or "")  # now 0.5 pips
    # The page measures ingest-to-browser latency from ts_ingest (refreshed once a second).
    page.wait_for_function("() => /ms$/.test(document.getElementById('live-latency').textContent)")
