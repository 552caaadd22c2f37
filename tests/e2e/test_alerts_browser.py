"""A trader sets a spread alert; quotes cross it; the page shows a toast and exactly one email goes out.

Real parts only: daphne with the live consumer, the alert process (`manage.py alerts`) as a subprocess,
Redis pub/sub between them, PostgreSQL, and Debian's chromium.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from alerts.models import Notification
from brokers.models import BrokerInstrument
from testing.support import subprocess_env, wait_for
from tests.e2e.test_live_board_browser import publish

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def alert_process(live_site) -> Iterator[Path]:
    """`python manage.py alerts` on this test's database and Redis prefix; yields the file with its output."""
    with tempfile.NamedTemporaryFile("w+b", suffix=".log", delete=False) as out:
        path = Path(out.name)
    env = subprocess_env(EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend", ALERTS_RELOAD_S="1")
    with path.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "alerts"], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            wait_for(lambda: b"alerts: evaluating" in path.read_bytes(), timeout=30, what="the alert process")
            yield path
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    path.unlink(missing_ok=True)


def test_a_trader_sets_an_alert_sees_the_toast_and_gets_one_email(demo, live_site, alert_process, browser_page):
    User.objects.create_user("trader", email="trader@example.com", password="watch-the-spreads-1")
    broker = BrokerInstrument.objects.filter(instrument__symbol="EURUSD").order_by("broker__name")[0].broker
    page = browser_page
    page.goto(live_site + "/accounts/login/?next=/account/alerts/")
    page.get_by_label("Username").fill("trader")
    page.get_by_label("Password").fill("watch-the-spreads-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/account/alerts/$"))

    page.get_by_label("Tell me when").select_option("spread_above")
    page.get_by_label("Broker", exact=True).select_option(broker.slug)
    page.get_by_label("Instrument").select_option("EURUSD")
    page.get_by_label("Spread above (pips)").fill("2")
    page.get_by_role("button", name="Set alert").click()
    page.wait_for_selector("text=Alert set.")

    page.goto(live_site + "/live/")
    # The socket is open: "live" once quotes flow, "delayed" while none has come yet.
    page.wait_for_selector("#live-conn[data-state='live'], #live-conn[data-state='delayed']")
    publish(broker.slug, "EURUSD", 1.10000, 1.10010, 1)  # 1 pip: below
    for seq, ask in enumerate((1.10030, 1.10040, 1.10035), start=2):  # 3, 4, 3.5 pips: one episode
        publish(broker.slug, "EURUSD", 1.10000, ask, seq)

    toast = page.locator(".toast")
    toast.wait_for()
    assert f"{broker.slug} EURUSD spread 3.0 pips" in toast.inner_text()
    assert page.locator(".toasts").get_attribute("aria-live") == "polite"

    wait_for(lambda: Notification.objects.filter(emailed_at__isnull=False).exists(), timeout=10, what="the email")
    output = alert_process.read_text(errors="replace")
    assert output.count("Subject: BrokerWatch alert") == 1
    assert "To: trader@example.com" in output
    assert Notification.objects.count() == 1

    page.goto(live_site + "/account/alerts/")
    assert "spread 3.0 pips" in page.locator("#alert-history").inner_text()
