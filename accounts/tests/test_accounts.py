"""Accounts: sign-up without enumeration, log-in with limits (django-axes), log-out, password change and reset."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from common import metrics
from live.models import BoardPreference

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def trader() -> User:
    return User.objects.create_user("trader", email="trader@example.com", password=PASSWORD)


def _link(message, path):
    found = re.search(r"https?://[^/\s]+(" + path + r"\S+/)", str(message.body))
    assert found, message.body
    return found.group(1)


def test_a_visitor_signs_up_activates_by_mail_and_lands_on_the_live_board_logged_in(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/accounts/signup/",
            {"username": "newbie", "email": "New@Example.com", "password1": PASSWORD, "password2": PASSWORD},
        )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/signup/sent/"
    user = User.objects.get(username="newbie")
    assert user.email == "new@example.com"
    assert not user.is_active
    assert [m.to for m in mail.outbox] == [["new@example.com"]]
    link = _link(mail.outbox[0], "/accounts/signup/activate/")
    activated = client.get(link)
    assert activated.status_code == 302
    assert activated["Location"] == "/live/"
    assert client.get("/live/").context["user"] == user
    client.post("/accounts/logout/")
    assert client.get(link).status_code == 400  # the link works once


def test_sign_up_answers_the_same_for_a_registered_email_and_mails_its_owner_instead(
    client, trader, django_capture_on_commit_callbacks
):
    def sign_up(username, email):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/accounts/signup/",
                {"username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD},
                follow=True,
            )

    fresh = sign_up("someone", "someone@example.com")
    taken = sign_up("other", "TRADER@example.com")
    assert taken.status_code == fresh.status_code == 200
    assert taken.redirect_chain == fresh.redirect_chain
    assert taken.content.replace(b"someone", b"other") == fresh.content.replace(b"someone", b"other")
    assert not User.objects.filter(username="other").exists()
    owner_mail = mail.outbox[-1]
    assert owner_mail.to == ["trader@example.com"]
    assert "no new account was made" in str(owner_mail.body)
    assert "/accounts/password/reset/" in str(owner_mail.body)
    assert metrics.get("signup_existing_email") == 1


def test_sign_up_refuses_mismatched_passwords(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "other", "email": "x@example.com", "password1": PASSWORD, "password2": PASSWORD + "x"},
    )
    assert response.status_code == 400
    assert not User.objects.filter(username="other").exists()


def test_log_in_and_log_out(client, trader):
    response = client.post("/accounts/login/", {"username": "trader", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/live/"
    assert b"Signed in as" in client.get("/live/").content
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert b"Signed in as" not in client.get("/accounts/login/").content


def log_in(client, username, password, *, ip="198.51.100.7", path="/accounts/login/", **extra):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def test_wrong_passwords_lock_that_account_from_that_address_only(client, trader, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "trader", "wrong").status_code == 200
    assert log_in(client, "trader", "wrong").status_code == 429
    locked = log_in(client, "trader", PASSWORD)
    assert locked.status_code == 429
    assert b"Too many failed log-in attempts" in locked.content
    assert "_auth_user_id" not in client.session
    # The owner, from their usual network, is not locked out by the guesser.
    assert log_in(client, "trader", PASSWORD, ip="203.0.113.20").status_code == 302
    assert metrics.get("login_failed") >= settings.AXES_FAILURE_LIMIT
    assert metrics.get("login_rate_limited") >= 1


def test_an_address_trying_many_accounts_hits_the_higher_per_address_limit(client, trader, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.LOGIN_IP_FAILURE_LIMIT = 6
    for n in range(5):  # two tries on each of several accounts: below both limits
        assert log_in(client, f"user{n // 2}", "wrong").status_code == 200
    assert log_in(client, "user9", "wrong").status_code == 429
    assert log_in(client, "trader", PASSWORD).status_code == 429
    assert log_in(client, "trader", PASSWORD, ip="203.0.113.20").status_code == 302


def test_logging_in_to_an_own_account_does_not_reset_the_address_count(client, trader, settings):
    User.objects.create_user("guesser", password=PASSWORD)
    settings.AXES_FAILURE_LIMIT = 3
    settings.LOGIN_IP_FAILURE_LIMIT = 4
    for n in range(3):
        log_in(client, f"victim{n}", "wrong")
    assert log_in(client, "guesser", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    assert log_in(client, "victim9", "wrong").status_code == 429


def test_the_right_password_after_a_few_wrong_ones_clears_the_account_count(client, trader, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "trader", "wrong")
    assert log_in(client, "trader", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "trader", "wrong").status_code == 200
    assert log_in(client, "trader", PASSWORD).status_code == 302


def test_a_lock_is_a_cool_off_that_ends(client, trader, settings):
    from axes.models import AccessAttempt

    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "trader", "wrong")
    assert log_in(client, "trader", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert log_in(client, "trader", PASSWORD).status_code == 302


def test_the_admin_log_in_has_the_same_limit(client, settings):
    User.objects.create_superuser("boss", "boss@example.com", PASSWORD)
    admin_login = f"/{settings.ADMIN_URL}login/"
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "boss", "wrong", path=admin_login).status_code == 200
    assert log_in(client, "boss", "wrong", path=admin_login).status_code == 429
    assert log_in(client, "boss", PASSWORD, path=admin_login).status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_client_cannot_spoof_its_address_with_x_forwarded_for(client, trader, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "trader", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert log_in(client, "trader", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200").status_code == 429


def test_behind_a_trusted_proxy_each_client_is_counted_apart(client, trader, settings):
    settings.TRUSTED_PROXY_IPS = ["10.0.0.0/8"]
    proxy = "10.1.2.3"
    for _ in range(settings.AXES_FAILURE_LIMIT):
        # The client's own claim (left) is ignored; the address the proxy saw (right) counts.
        log_in(client, "trader", "wrong", ip=proxy, HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.9")
    assert log_in(client, "trader", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.9").status_code == 429
    assert log_in(client, "trader", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.20").status_code == 302


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
