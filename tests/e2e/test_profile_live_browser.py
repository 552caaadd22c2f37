"""A broker's profile, a shared cached page: its live quotes reach a trader in a real browser, and an
anonymous visitor's browser does not even fetch their script ({% signed_in_only %})."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from tests.e2e.test_live_board_browser import publish

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROFILE = "/brokers/kestrel-fx/"


def test_the_profiles_live_quotes_reach_a_trader_and_cost_a_visitor_nothing(demo, live_site, browser_page):
    User.objects.create_user("profile-trader", password="watch-one-broker-1")
    publish("kestrel-fx", "EURUSD", 1.10000, 1.10020, 1)
    page = browser_page
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))

    page.goto(live_site + PROFILE)  # anonymous: the shared copy
    page.wait_for_load_state("load")
    assert not [url for url in fetched if "/js/live." in url]
    assert page.locator(".broker-live-invite").is_visible()

    page.goto(live_site + "/accounts/login/?next=" + PROFILE)
    page.get_by_label("Username").fill("profile-trader")
    page.get_by_label("Password").fill("watch-one-broker-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(PROFILE) + "$"))
    page.wait_for_selector(".broker-live .live-conn[data-state='live'], .broker-live .live-conn[data-state='delayed']")
    assert page.locator('.broker-live tr[data-instrument="EURUSD"] .bid').inner_text() == "1.10000"
    assert not page.locator(".broker-live-invite").is_visible()
