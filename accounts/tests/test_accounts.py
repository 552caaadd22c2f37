"""Accounts: sign-up, log-in with rate limiting, log-out, password change and reset, the board choice."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command

from accounts.ratelimit import USER_LIMIT
from common import metrics
from live.models import BoardPreference

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def trader() -> User:
    return User.objects.create_user("trader", email="trader@example.com", password=PASSWORD)


def test_a_visitor_signs_up_and_lands_on_the_live_board_logged_in(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "newbie", "email": "New@Example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == "/live/"
    user = User.objects.get(username="newbie")
    assert user.email == "new@example.com"
    assert user.check_password(PASSWORD)
    assert client.get("/live/").context["user"] == user


def test_sign_up_refuses_mismatched_passwords_and_a_taken_email(client, trader):
    response = client.post(
        "/accounts/signup/",
        {"username": "other", "email": "TRADER@example.com", "password1": PASSWORD, "password2": PASSWORD + "x"},
    )
    assert response.status_code == 400
    assert b"already exists" in response.content
    assert not User.objects.filter(username="other").exists()


def test_log_in_and_log_out(client, trader):
    response = client.post("/accounts/login/", {"username": "trader", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/live/"
    assert b"Signed in as" in client.get("/live/").content
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert b"Signed in as" not in client.get("/accounts/login/").content


def test_log_in_is_blocked_after_too_many_failures_even_with_the_right_password(client, trader):
    for _ in range(USER_LIMIT):
        response = client.post("/accounts/login/", {"username": "trader", "password": "wrong"})
        assert response.status_code == 200
        assert b"Too many" not in response.content
    response = client.post("/accounts/login/", {"username": "trader", "password": PASSWORD})
    assert b"Too many failed log-in attempts" in response.content
    assert "_auth_user_id" not in client.session
    assert metrics.get("login_rate_limited") == 1
    assert metrics.get("login_failed") == USER_LIMIT


def test_a_successful_log_in_resets_the_failure_count_of_the_account(client, trader):
    for _ in range(USER_LIMIT - 1):
        client.post("/accounts/login/", {"username": "trader", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "trader", "password": PASSWORD}).status_code == 302
    client.post("/accounts/logout/")
    client.post("/accounts/login/", {"username": "trader", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "trader", "password": PASSWORD}).status_code == 302


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
