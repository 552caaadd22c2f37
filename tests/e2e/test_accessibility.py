"""Every page works on a phone and for everyone: axe-core finds nothing on any page at 1366x900 or 390x844,
and on a phone the directory shows brokers in the first screen while wide tables keep their labels.

One demo world, one daphne and one chromium for the whole module (CI's time budget); the pages are
parameters. axe-core comes from npm (package.json, installed by scripts/_common.sh) and is injected with
Playwright into Debian's chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django_redis import get_redis_connection

from marketdata import keys
from testing.daphne import daphne_server
from testing.demo_world import TRADER, DemoWorld, demo_world_build
from testing.support import subprocess_env

# Each test reads only; the module commits the demo world once (see `world`).
pytestmark = [pytest.mark.browser, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
EVENT = "{event}"  # filled in from the demo world

PUBLIC = [
    "/",
    "/brokers/",
    "/brokers/?regulator=fca&tier=1&negative_balance_protection=on&sort=cost",
    "/brokers/?max_deposit=lots",  # an invalid filter: the error summary and the open panel
    "/brokers/northwind-markets/",
    "/brokers/kestrel-fx/",
    "/brokers/vanguard-pacific-fx/",  # suspended
    "/compare/",
    "/compare/?brokers=kestrel-fx,northwind-markets",
    "/compare/?brokers=kestrel-fx,northwind-markets,coral-reef-trading,alpenbank-trading",
    "/methodology/",
    "/events/",
    EVENT,
    "/spreads/kestrel-fx/EURUSD/",
    "/live/",
    "/execution/?instrument=EURUSD&side=buy&size=1&unit=lots",
    "/accounts/login/",
    "/accounts/signup/",
]
LOGGED_IN = [
    "/live/",
    "/execution/?instrument=EURUSD&side=buy&size=10&unit=lots",
    "/account/alerts/",
    "/account/api-keys/",
    "/accounts/password/change/",
]
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[DemoWorld]:
    """The demo world, committed once for the module, flushed afterwards."""
    with django_db_blocker.unblock():
        built = demo_world_build()
    yield built
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def site(world: DemoWorld) -> Iterator[str]:
    with daphne_server(subprocess_env()) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (scripts/test.sh does)")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="module")
def pages(browser: Any, site: str) -> Iterator[dict[tuple[str, bool], Any]]:
    """One page per viewport and log-in state, made on first use (the logged-in ones log in once)."""
    made: dict[tuple[str, bool], Any] = {}
    yield made
    for page in made.values():
        page.context.close()


def _page(pages: dict[tuple[str, bool], Any], browser: Any, site: str, viewport: str, logged_in: bool) -> Any:
    if (viewport, logged_in) not in pages:
        # axe is injected as a script tag, which the site's strict CSP would (rightly) refuse.
        context = browser.new_context(viewport=VIEWPORTS[viewport], bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(10_000)
        if logged_in:
            page.goto(site + "/accounts/login/")
            page.get_by_label("Username").fill(TRADER[0])
            page.get_by_label("Password").fill(TRADER[1])
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/live/")
        pages[(viewport, logged_in)] = page
    return pages[(viewport, logged_in)]


@pytest.fixture(autouse=True)
def _market() -> None:
    """Live quotes (one stale, to show the grey cells) and order-book depth, before every test: the
    shared autouse fixture empties this session's Redis keys between tests."""
    conn = get_redis_connection("default")
    now = time.time_ns() // 1000
    brokers = ["alpenbank-trading", "coral-reef-trading", "kestrel-fx", "northwind-markets", "cypress-trade"]
    for i, broker in enumerate(brokers):
        for symbol, bid, pip in (("EURUSD", 1.1, 0.0001), ("GBPUSD", 1.27, 0.0001), ("USDJPY", 151.2, 0.01)):
            stale = broker == "cypress-trade" and symbol == "GBPUSD"
            ts = now - (60_000_000 if stale else 0)
            spread = (6 + i % 3) * pip / 10
            quote = {
                "broker": broker,
                "instrument": symbol,
                "bid": bid,
                "ask": bid + spread,
                "spread": spread,
                "bid_size": 1e6,
                "ask_size": 1e6,
                "ts_broker": ts,
                "ts_ingest": ts,
                "seq": 1,
            }
            conn.hset(keys.latest_hash(), keys.field(broker, symbol), json.dumps(quote))
        # Two brokers tie for the best fill: the page lists both names, separated.
        ask = 1.10006 if i < 2 else 1.10008 + i * 0.00001
        depth = {"bids": [[1.1, 5e6]], "asks": [[ask, 5e6]], "ts": now}
        conn.hset(keys.depth_hash(), keys.field(broker, "EURUSD"), json.dumps(depth))


def _axe_violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in result["violations"]
    ]


def _visit(page: Any, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status in (200, 400), (url, response and response.status)
    page.wait_for_load_state("load")
    # What is folded away is part of the page too: open it, then check everything.
    for summary in page.locator("main details:not([open]) > summary").all():
        summary.click()


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("path", PUBLIC)
def test_a_public_page_has_no_accessibility_violations(path, viewport, world, site, browser, pages):
    page = _page(pages, browser, site, viewport, logged_in=False)
    _visit(page, site + path.replace(EVENT, world.event_report_path))
    violations = _axe_violations(page)
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("path", LOGGED_IN)
def test_a_traders_page_has_no_accessibility_violations(path, viewport, world, site, browser, pages):
    page = _page(pages, browser, site, viewport, logged_in=True)
    _visit(page, site + path)
    if path.startswith("/live/"):  # the board is filled over the WebSocket: check it with its quotes
        page.wait_for_selector("#live-grid td.q .bid")
    violations = _axe_violations(page)
    assert not violations, "\n".join(violations)


def test_on_a_phone_the_directory_shows_a_broker_in_the_first_screen(world, site, browser, pages):
    page = _page(pages, browser, site, "phone", logged_in=False)
    page.goto(site + "/brokers/")
    first = page.locator("table.directory tbody tr").first.get_by_role("link").first
    box = first.bounding_box()
    assert box is not None
    assert box["y"] + box["height"] <= VIEWPORTS["phone"]["height"], box
    # The filters are one tap away, and they work.
    page.get_by_text("Filter and sort").click()
    assert page.get_by_label("Active licence from", exact=True).is_visible()


def _first_column_stays_in_view(page: Any, table: str, *, header_row: bool = True) -> None:
    scroller = page.locator(f"{table}").locator("xpath=ancestor::div[contains(@class, 'table-scroll')]")
    label = page.locator(f"{table} tbody th").first
    last_cell = page.locator(f"{table} tbody tr").first.locator("td").last
    before = label.bounding_box()
    assert before is not None
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth"), "the table fits: nothing to scroll"
    scroller.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    page.wait_for_function(
        "([sel]) => { const el = document.querySelector(sel).closest('.table-scroll'); "
        "return el.scrollLeft + el.clientWidth >= el.scrollWidth - 1; }",
        arg=[table],
    )
    after = label.bounding_box()
    assert after is not None and abs(after["x"] - before["x"]) <= 1, (before, after)
    assert last_cell.bounding_box()["x"] < VIEWPORTS["phone"]["width"]
    if not header_row:
        return
    # and the header row sticks to the top of the table's box when the table scrolls down
    assert scroller.evaluate("el => el.scrollHeight > el.clientHeight"), "the table is not taller than its box"
    scroller.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    box = scroller.bounding_box()
    head = page.locator(f"{table} thead th").last.bounding_box()
    assert box is not None and head is not None and abs(head["y"] - box["y"]) <= 1, (box, head)
    assert scroller.evaluate("el => el.scrollTop") > 0  # it did scroll


def test_on_a_phone_the_live_board_keeps_its_first_column_in_view_when_scrolled_right(world, site, browser, pages):
    page = _page(pages, browser, site, "phone", logged_in=True)
    page.goto(site + "/live/")
    page.wait_for_selector("#live-grid td.q .bid")
    _first_column_stays_in_view(page, "#live-grid")


def test_on_a_phone_the_directory_keeps_the_broker_names_in_view_when_scrolled_right(world, site, browser, pages):
    page = _page(pages, browser, site, "phone", logged_in=False)
    page.goto(site + "/brokers/")
    _first_column_stays_in_view(page, "table.directory", header_row=False)


def test_on_a_phone_compare_keeps_its_first_column_in_view_when_scrolled_right(world, site, browser, pages):
    page = _page(pages, browser, site, "phone", logged_in=False)
    page.goto(site + "/compare/?brokers=kestrel-fx,northwind-markets,coral-reef-trading,alpenbank-trading")
    _first_column_stays_in_view(page, "table.compare")


def test_the_favicon_and_the_manifest_are_served(world, site):
    import urllib.request

    with urllib.request.urlopen(site + "/favicon.ico") as response:  # noqa: S310 (local server)
        assert response.status == 200 and response.read(4) == b"\x00\x00\x01\x00"
    html = urllib.request.urlopen(site + "/").read().decode()  # noqa: S310
    manifest = html.split('rel="manifest" href="')[1].split('"')[0]
    with urllib.request.urlopen(site + manifest) as response:  # noqa: S310
        assert json.loads(response.read())["icons"]


def _scripts_ran(page: Any) -> None:
    # The page's scripts start after its first paint (static/js/after-paint.js), which marks when they ran.
    page.wait_for_selector("html[data-after-paint='done']", state="attached")


def test_compare_with_no_broker_chosen_says_so(world, site, browser, pages):
    page = _page(pages, browser, site, "phone", logged_in=False)
    page.goto(site + "/compare/")
    _scripts_ran(page)
    page.get_by_role("button", name="Compare").click()
    assert "No broker chosen" in page.get_by_role("alert").inner_text()
    assert page.url == site + "/compare/"  # no reload to the same empty page


def test_the_browser_keeps_the_servers_relative_time_so_the_profile_does_not_shift(world, site, browser, pages):
    import urllib.request

    html = urllib.request.urlopen(site + "/brokers/kestrel-fx/").read().decode()  # noqa: S310 (local server)
    served = html.split('class="relative-time muted">')[1].split("</span>")[0]
    page = _page(pages, browser, site, "phone", logged_in=False)
    page.goto(site + "/brokers/kestrel-fx/")
    _scripts_ran(page)
    assert page.locator(".trust-section .relative-time").inner_text().strip() == served.strip()


def test_the_relative_time_keeps_one_box_whatever_its_words_so_nothing_shifts(world, site, browser, pages):
    page = _page(pages, browser, site, "phone", logged_in=False)
    page.goto(site + "/brokers/kestrel-fx/")
    _scripts_ran(page)
    words = page.locator(".trust-section .relative-time")
    after = page.locator(".trust-section .components")

    def boxes(text: str) -> tuple[Any, Any]:
        words.evaluate("(el, text) => { el.textContent = text; }", text)
        return words.bounding_box(), after.bounding_box()

    # The cached page may say "this minute" and the browser later "59 minutes ago": same place, same size.
    shortest, longest = boxes(" (this minute)"), boxes(" (59 minutes ago)")
    assert shortest == longest


@pytest.mark.parametrize("path", ["/compare/?brokers=kestrel-fx,northwind-markets", "/brokers/kestrel-fx/"])
def test_scripts_and_the_manifest_come_after_the_first_paint_and_nothing_shifts(path, world, site, browser):
    context = browser.new_context(viewport=VIEWPORTS["phone"])
    page = context.new_page()
    requests: list[Any] = []
    page.on("requestfinished", lambda r: requests.append(r))
    page.add_init_script(
        "window.__shifts = 0; new PerformanceObserver((l) => { for (const e of l.getEntries()) "
        "window.__shifts += e.value; }).observe({type: 'layout-shift', buffered: true});"
    )
    try:
        page.goto(site + path)
        _scripts_ran(page)
        painted = page.evaluate(
            "performance.timeOrigin + performance.getEntriesByName('first-contentful-paint')[0].startTime"
        )
        # The browser's own clock on both sides: when each request started, and when the page first painted.
        late = {r.url: r.timing["startTime"] for r in requests if r.url.endswith(".js")}
        assert late and all(t >= painted for t in late.values()), (painted, late)
        # The manifest link is in the head by then (Chrome fetches it by itself, unseen by this page's events).
        assert page.locator("head link[rel=manifest]").count() == 1
        assert page.evaluate("window.__shifts") == 0
    finally:
        context.close()


def test_on_a_phone_the_profile_lays_out_what_is_below_the_first_screen_only_when_it_comes_near(
    world, site, browser, pages
):
    page = _page(pages, browser, site, "phone", logged_in=False)
    page.goto(site + "/brokers/northwind-markets/")
    _scripts_ran(page)
    licences = page.locator("#licences-heading")
    skipped = "el => !el.checkVisibility({contentVisibilityAuto: true})"
    assert licences.evaluate(skipped), "the licences section is laid out before it is anywhere near the screen"
    assert not page.locator("h1").evaluate(skipped)
    licences.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => document.querySelector('#licences-heading').checkVisibility({contentVisibilityAuto: true})"
    )


CSV_PAGES = [
    "/brokers/?tier=1",
    "/brokers/kestrel-fx/",
    "/compare/?brokers=kestrel-fx,northwind-markets",
    "/events/",
    EVENT,
    "/spreads/kestrel-fx/EURUSD/",
    "/execution/?instrument=EURUSD&side=buy&size=1&unit=lots",
    "/methodology/",
]


@pytest.mark.parametrize("path", CSV_PAGES)
def test_on_a_phone_every_csv_download_can_be_tapped_and_downloads_csv(path, world, site, browser, pages):
    page = _page(pages, browser, site, "phone", logged_in=False)
    _visit(page, site + path.replace(EVENT, world.event_report_path))
    links = page.locator("main p.csv-link a")
    assert links.count() >= 1, path
    for link in links.all():
        link.scroll_into_view_if_needed()
        box = link.bounding_box()
        assert box is not None and box["height"] >= 44, (path, box)  # a tap target
        assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORTS["phone"]["width"], (path, box)
        status, kind = page.evaluate(
            "async (u) => { const r = await fetch(u); return [r.status, r.headers.get('content-type')]; }",
            link.get_attribute("href"),
        )
        assert status == 200 and kind.startswith("text/csv"), (path, link.get_attribute("href"), status)
