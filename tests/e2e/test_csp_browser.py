"""Under the strict Content-Security-Policy the pages work in a real browser, and it reports no violation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Collects every violation the browser reports, from before the page's own code runs.
COLLECT = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


def test_the_pages_run_under_the_content_security_policy_without_a_violation(demo, live_site, browser_page):
    from trustmetrics.services import trust_scores_compute

    now = timezone.now()
    trust_scores_compute(as_of=now - timedelta(hours=1))
    trust_scores_compute(as_of=now)  # two points: the profile draws its chart, with its script and styles
    User.objects.create_user("trader", password="strict-policy-1")
    page = browser_page
    console = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(COLLECT)
    violations: dict[str, list[str]] = {}

    def visit(path: str) -> None:
        response = page.goto(live_site + path)
        assert response is not None and response.status == 200, path
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, (path, policy)
        page.wait_for_load_state("load")
        violations[path] = page.evaluate("window.__cspViolations")

    visit("/")
    visit("/brokers/")
    visit("/brokers/kestrel-fx/")
    # the chart's script, from a file, started by the inline loader (allowed by its hash) after the first paint
    page.wait_for_selector("html[data-after-paint='done']", state="attached")
    assert page.locator("script[src*='charts']").count() == 1
    visit("/compare/?brokers=kestrel-fx,northwind-markets")
    page.get_by_text("Change brokers").click()
    page.get_by_label("Coral Reef Trading").check()  # compare.js runs: the picker keeps working
    visit("/execution/?instrument=EURUSD&side=buy&size=10&unit=lots")

    visit("/accounts/login/")
    page.get_by_label("Username").fill("trader")
    page.get_by_label("Password").fill("strict-policy-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/live/$"))
    # live.js ran and its WebSocket connected ("delayed" until a quote comes)
    page.wait_for_selector("#live-conn[data-state='live'], #live-conn[data-state='delayed']")
    violations["/live/"] = page.evaluate("window.__cspViolations")
    visit("/execution/?instrument=EURUSD&side=buy&size=10&unit=lots")

    assert {p: v for p, v in violations.items() if v} == {}
    assert console == []
