"""Accounts: log-in, log-out, password change and reset, the board choice. Sign-up: test_signup.py; log-in
limits: test_login_limits.py."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command

from live.models import BoardPreference

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def trader() -> User:
    return User.objects.create_user("trader", email="trader@example.com", password=PASSWORD)


def test_log_in_and_log_out(client, trader):
    response = client.post("/accounts/login/", {"username": "trader", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/live/"
    assert b"Signed in as" in client.get("/live/").content
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert b"Signed in as" not in client.get("/accounts/login/").content


def test_password_change_needs_the_old_password(client, trader):
    client.force_login(trader)
    new = "another-long-password-7"
    bad = client.post(
        "/accounts/password/change/", {"old_password": "nope", "new_password1": new, "new_password2": new}
    )
    assert bad.status_code == 200
    good = client.post(
        "/accounts/password/change/", {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert good.status_code == 302
    trader.refresh_from_db()
    assert trader.check_password(new)


def test_password_reset_sends_a_working_one_time_link(client, trader, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = client.post("/accounts/password/reset/", {"email": "trader@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    found = re.search(r"http://[^/]+(/accounts/reset/\S+/)", str(mail.outbox[0].body))
    assert found, mail.outbox[0].body
    link = found.group(1)
    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"]
    new = "reset-password-long-3"
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302
    trader.refresh_from_db()
    assert trader.check_password(new)
    assert not client.get(link, follow=True).context["validlink"]


def test_a_trader_saves_the_board_choice_and_sees_only_that(client, trader):
    call_command("seed_demo", verbosity=0)
    client.force_login(trader)
    from brokers.models import Broker

    slugs = list(Broker.objects.values_list("slug", flat=True)[:2])
    response = client.post("/live/preferences/", {"instruments": ["GBPUSD", "EURUSD"], "brokers": slugs})
    assert response.status_code == 302
    pref = BoardPreference.objects.get(user=trader)
    assert sorted(pref.instruments) == ["EURUSD", "GBPUSD"]
    assert sorted(pref.brokers) == sorted(slugs)
    page = client.get("/live/")
    board = page.context["board"]
    assert [r.symbol for r in board.rows] == ["GBPUSD", "EURUSD"]  # in the order chosen
    assert sorted(b.slug for b in board.brokers) == sorted(slugs)
    assert "no-store" in page["Cache-Control"]


def test_an_unknown_instrument_in_the_board_choice_is_refused(client, trader):
    call_command("seed_demo", verbosity=0)
    client.force_login(trader)
    response = client.post("/live/preferences/", {"instruments": ["NOPE"]}, follow=True)
    assert b"could not be saved" in response.content
    assert not BoardPreference.objects.filter(user=trader).exists()


def test_the_board_choice_needs_a_login(client):
    response = client.post("/live/preferences/", {"instruments": ["EURUSD"]})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "path",
    ["/accounts/signup/", "/accounts/login/", "/accounts/logout/", "/accounts/password/reset/", "/admin/login/"],
)
def test_every_account_form_refuses_a_post_without_a_csrf_token(path):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(path, {"username": "trader", "password": "x", "email": "a@b.c"})
    assert response.status_code == 403


def test_password_reset_answers_the_same_for_known_and_unknown_emails(client, trader):
    known = client.post("/accounts/password/reset/", {"email": "trader@example.com"}, follow=True)
    unknown = client.post("/accounts/password/reset/", {"email": "nobody@example.com"}, follow=True)
    assert known.redirect_chain == unknown.redirect_chain
    assert known.content == unknown.content
    assert [m.to for m in mail.outbox] == [["trader@example.com"]]
