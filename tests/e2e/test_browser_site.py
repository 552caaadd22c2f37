"""A visitor in a real browser: directory, filter, profile, compare."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_visitor_filters_the_directory_opens_a_profile_and_compares(demo, live_site, browser_page):
    page = browser_page
    page.goto(live_site + "/")
    page.get_by_role("link", name="Browse all brokers").first.click()
    page.wait_for_url(re.compile(r"/brokers/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Brokers"
    assert page.locator("table.directory tbody tr").count() == 13

    page.get_by_text("Filter and sort").click()  # folded away: the brokers come first
    page.get_by_label("Active licence from", exact=True).select_option("fca")
    page.get_by_label("Platform").select_option("ctrader")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"regulator=fca"))
    assert "platform=ctrader" in page.url  # the filtered view is a shareable URL
    rows = page.locator("table.directory tbody tr")
    assert rows.count() == 1
    assert "Kestrel FX" in rows.first.inner_text()

    page.get_by_role("link", name="Kestrel FX").click()
    page.wait_for_url(re.compile(r"/brokers/kestrel-fx/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Kestrel FX"
    assert page.get_by_role("heading", name="Licences").is_visible()
    licences = page.locator("section", has=page.get_by_role("heading", name="Licences"))
    # Sections below a phone's first screen are laid out only when scrolled near (content-visibility),
    # and innerText needs the layout: read it where a visitor would, on screen.
    licences.scroll_into_view_if_needed()
    expect(licences).to_contain_text("AFSL 416789", use_inner_text=True)

    page.get_by_role("link", name=re.compile("Compare Kestrel FX with")).click()
    page.wait_for_url(re.compile(r"/compare/\?brokers=kestrel-fx"))
    # One broker is not a comparison yet: the page asks for another and keeps the choice ticked.
    assert "at least one more" in page.get_by_role("status").inner_text()
    assert page.get_by_label("Kestrel FX").is_checked()
    page.get_by_label("Northwind Markets").check()
    page.get_by_label("Coral Reef Trading").check()
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(r"brokers=coral-reef-trading,kestrel-fx,northwind-markets|brokers=kestrel-fx"))
    table = page.locator("table.compare")
    assert table.is_visible()
    headers = table.locator("thead th").all_inner_texts()
    assert {"Kestrel FX", "Northwind Markets", "Coral Reef Trading"} <= {h.strip() for h in headers}
    deposit_row = table.locator("tr", has=page.get_by_role("rowheader", name="Minimum deposit (USD)"))
    best = deposit_row.locator("td.best")
    assert best.count() == 1 and "10" in best.inner_text()

    # The picker never allows a fifth broker.
    page.get_by_text("Change brokers").click()  # folded away once brokers are compared
    for name in ("Alpenbank Trading", "Cypress Trade"):
        box = page.get_by_label(name)
        if box.is_enabled():
            box.check()
    assert page.get_by_label("Lionsgate Capital").is_disabled()
