"""The API's interactive docs (ninja's Swagger UI) work under the site's Content-Security-Policy."""

from __future__ import annotations

import pytest

from tests.e2e.test_csp_browser import COLLECT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_interactive_api_docs_render_every_operation_without_a_policy_violation(demo, live_site, browser_page):
    from api.endpoints import api

    page = browser_page
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(COLLECT)
    response = page.goto(live_site + "/api/v1/docs")
    assert response is not None and response.status == 200
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    # Swagger UI fetched the schema and drew one block per operation.
    operations = sum(len(methods) for methods in api.get_openapi_schema()["paths"].values())
    # (Polled from Python: a string predicate would be eval'd in the page, which the policy forbids.)
    page.locator(".opblock").nth(operations - 1).wait_for()
    assert page.locator(".opblock").count() == operations
    page.locator(".opblock-summary").first.click()  # an operation opens: the UI's own script works
    page.wait_for_selector(".opblock-body")
    assert page.evaluate("window.__cspViolations") == []
    assert console == []
