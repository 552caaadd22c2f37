"""Best execution in a real browser: a visitor submits the form, a trader watches it follow the depth."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.contrib.auth.models import User
from django_redis import get_redis_connection

from brokers.models import BrokerInstrument
from execution.tests.test_execution_consistency import _money, _qty
from marketdata import keys

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def put_depth(broker: str, bids: list[list[float]], asks: list[list[float]], age_s: float = 0.0) -> None:
    body = json.dumps({"bids": bids, "asks": asks, "ts": time.time_ns() // 1000 - int(age_s * 1e6)})
    get_redis_connection("default").hset(keys.depth_hash(), keys.field(broker, "EURUSD"), body)


@pytest.fixture(autouse=True)
def _clear_depth():
    yield
    get_redis_connection("default").delete(keys.depth_hash())


def test_a_visitor_gets_the_result_and_a_trader_sees_it_move(demo, live_site, browser_page):
    User.objects.create_user("trader", password="best-execution-1")
    a, b = (
        BrokerInstrument.objects.filter(instrument__symbol="EURUSD")
        .order_by("broker__name")
        .values_list("broker__slug", flat=True)[:2]
    )
    page = browser_page
    page.goto(live_site + "/execution/")
    page.get_by_label("Instrument").select_option("EURUSD")
    page.get_by_label("Sell").check()
    page.get_by_label("Size", exact=True).fill("10")
    page.get_by_label("Size unit").select_option("lots")
    put_depth(a, [[1.1000, 2e6]], [[1.1002, 2e6]])
    put_depth(b, [[1.0999, 2e6]], [[1.1003, 2e6]])
    page.get_by_role("button", name="Calculate").click()
    page.wait_for_url(re.compile(r"/execution/\?.*size=10"))
    best = page.locator("tr.exec-row.best")
    assert best.get_attribute("data-broker") == a  # sells 1m at 1.1000 against b's 1.0999
    assert "Prices as of this page load" in page.locator("#exec-status").inner_text()
    # Mobile first: at 390 px the page itself never scrolls sideways (the table and the header's section
    # links scroll in their own boxes).
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => !e.closest('.table-scroll, .main-nav') && e.getBoundingClientRect().right > innerWidth + 1)
            .map(e => e.tagName + '.' + e.className)"""
    )
    assert wide == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.get_by_role("link", name="Log in", exact=True).last.click()
    page.get_by_label("Username").fill("trader")
    page.get_by_label("Password").fill("best-execution-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/execution/\?"))
    page.wait_for_function("() => /updated/.test(document.querySelector('#exec-status .label').textContent)")

    # Depth is only fresh for 5 s, so every step rewrites a's too (the page and log-in take a while).
    put_depth(a, [[1.1000, 2e6]], [[1.1002, 2e6]])
    put_depth(b, [[1.1001, 2e6]], [[1.1003, 2e6]])  # b now bids higher: b is best
    page.wait_for_function(
        "b => document.querySelector('tr.exec-row.best')?.dataset.broker === b", arg=b, timeout=5_000
    )
    assert "1.10010" in page.locator("tr.exec-row.best").inner_text()

    put_depth(a, [[1.1000, 2e6]], [[1.1002, 2e6]])
    put_depth(b, [[1.1001, 2e6]], [[1.1003, 2e6]], age_s=60)  # b's feed stops: stale, excluded
    page.wait_for_function(
        "b => document.querySelector(`tr[data-broker='${b}']`)?.textContent.includes('Stale depth')", arg=b
    )
    assert page.locator("tr.exec-row.best").get_attribute("data-broker") == a
    assert "Depth up to" in page.locator("#exec-age").inner_text()

    # The live rows show the JSON's figures as the server renders them, a partial fill's penalty included.
    put_depth(a, [[1.1000, 2e6]], [[1.1002, 2e6]])
    put_depth(b, [[1.1001, 300_000.5]], [[1.1003, 2e6]])  # sells 3 lots of the 10: partial, with a penalty
    page.wait_for_function(
        "b => document.querySelector(`tr[data-broker='${b}']`)?.classList.contains('partial')", arg=b
    )
    shown = page.evaluate(
        """() => [...document.querySelectorAll('tr.exec-row.status-ok')].map(tr => [tr.dataset.broker + '|' +
            tr.dataset.account, Object.fromEntries([...tr.querySelectorAll('[data-figure]')]
            .map(e => [e.dataset.figure, e.textContent.trim()]))])"""
    )
    answer = page.evaluate(
        "url => fetch(url).then(r => r.json())", page.locator("#exec-result").get_attribute("data-api")
    )
    rows = {f"{r['broker']}|{r['account']}": r for r in answer["brokers"]}
    assert {key for key, _ in shown} == {key for key, r in rows.items() if r["status"] == "ok"}
    for key, cells in shown:
        row = rows[key]
        for name in ("spread_cost_usd", "commission_usd", "all_in_usd", "penalty_usd", "all_in_with_penalty_usd"):
            assert cells[name] == _money(row[name]), (key, name)
        assert cells["filled_units"] == _qty(row["filled_units"]) and cells["split_size"] == _qty(row["split_size"])
        assert cells.get("unfilled_units", "0") == _qty(row["unfilled_units"])
    partial = rows[next(key for key in rows if key.startswith(b + "|"))]
    assert partial["partial"] and partial["penalty_usd"] > 0


def test_a_size_off_an_accounts_lot_grid_is_flagged_as_it_is_typed_and_still_after_calculate_without_js(
    demo, live_site, browser_page
):
    # Alpenbank's Premium account trades whole 0.1 lots from 1 lot (brokers.services.DEMO_LOT_RULES).
    page = browser_page
    page.goto(live_site + "/execution/")
    page.wait_for_function("() => document.documentElement.dataset.afterPaint === 'done'")
    hint = page.locator("#size-hint")
    assert hint.is_hidden()
    page.get_by_label("Instrument").select_option("EURUSD")
    page.get_by_label("Size unit").select_option("lots")
    page.get_by_label("Size", exact=True).fill("1.05")
    text = hint.inner_text()  # before Calculate
    assert "Alpenbank Trading (Premium)" in text and "Nearest sizes they take: 1 lot or 1.1 lots" in text
    assert "size-hint" in (page.get_by_label("Size", exact=True).get_attribute("aria-describedby") or "")
    assert hint.get_attribute("aria-live") == "polite"
    page.get_by_label("Size", exact=True).fill("2")
    assert hint.is_hidden()  # every account takes 2 lots
    page.get_by_label("Size unit").select_option("units")
    page.get_by_label("Size", exact=True).fill("50,000")  # half a lot: below Premium's and Sakura's minimums
    assert "Below the minimum order of 1 lot: Alpenbank Trading (Premium)" in hint.inner_text()

    # Without JavaScript nothing is said before Calculate, and the server's note says it after.
    context = page.context.browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    try:
        nojs = context.new_page()
        nojs.goto(live_site + "/execution/?instrument=EURUSD&side=buy&size=1.05&unit=lots")
        assert nojs.locator("#size-hint").is_hidden()
        put_depth("alpenbank-trading", [[1.1000, 2e6]], [[1.1002, 2e6]])
        nojs.reload()
        assert "Alpenbank Trading (Premium)" in nojs.locator("#size-advice").inner_text()
    finally:
        context.close()
