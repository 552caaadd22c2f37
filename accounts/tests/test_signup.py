"""Sign-up by email only: it never says whether an address or a username is registered."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail

from common import metrics

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def trader() -> User:
    return User.objects.create_user("trader", email="trader@example.com", password=PASSWORD)


def _link(message) -> str:
    found = re.search(r"https?://[^/\s]+(/accounts/signup/confirm/\S+/)", str(message.body))
    assert found, message.body
    return found.group(1)


def sign_up(client, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post("/accounts/signup/", data, follow=True)


def test_a_visitor_signs_up_with_an_email_chooses_a_password_behind_the_link_and_lands_logged_in(
    client, django_capture_on_commit_callbacks
):
    sent = sign_up(client, django_capture_on_commit_callbacks, email="New@Example.com")
    assert sent.redirect_chain == [("/accounts/signup/sent/", 302)]
    assert not User.objects.exists()  # nothing is kept for an address nobody has confirmed
    assert [m.to for m in mail.outbox] == [["new@example.com"]]
    link = _link(mail.outbox[0])
    form = client.get(link)
    assert form.status_code == 200 and b"new@example.com" in form.content
    short = client.post(link, {"password1": "short", "password2": "short"})
    assert short.status_code == 400 and not User.objects.exists()
    done = client.post(link, {"password1": PASSWORD, "password2": PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/live/"
    user = User.objects.get()
    assert (user.username, user.email, user.is_active) == ("new@example.com", "new@example.com", True)
    assert client.get("/live/").context["user"] == user
    client.post("/accounts/logout/")
    assert client.post(link, {"password1": PASSWORD, "password2": PASSWORD}).status_code == 400  # once only
    # The address is the username; it may be typed in any case.
    assert client.post("/accounts/login/", {"username": "NEW@example.com", "password": PASSWORD}).status_code == 302


def test_sign_up_answers_the_same_for_a_registered_address_and_mails_its_owner_instead(
    client, trader, django_capture_on_commit_callbacks
):
    User.objects.create_user("old@example.com", email="", password=PASSWORD)  # an address as a username
    fresh = sign_up(client, django_capture_on_commit_callbacks, email="someone@example.com")
    answers = [
        sign_up(client, django_capture_on_commit_callbacks, email=email)
        for email in ("TRADER@example.com", "old@example.com")
    ]
    for taken in answers:
        assert taken.status_code == fresh.status_code == 200
        assert taken.redirect_chain == fresh.redirect_chain
        assert taken.content == fresh.content
    assert User.objects.count() == 2
    to_owners = mail.outbox[1:]
    assert [m.to for m in to_owners] == [["trader@example.com"], ["old@example.com"]]
    assert all("no new account was made" in str(m.body) for m in to_owners)
    assert "/accounts/password/reset/" in str(to_owners[0].body)
    assert metrics.get("signup_existing_email") == 2


def test_sign_up_asks_for_no_username_so_none_can_be_found_taken(client, trader, django_capture_on_commit_callbacks):
    page = client.get("/accounts/signup/")
    assert list(page.context["form"].fields) == ["email"]
    taken = sign_up(client, django_capture_on_commit_callbacks, email="a@example.com", username="trader")
    free = sign_up(client, django_capture_on_commit_callbacks, email="a@example.com", username="nobody-has-this")
    assert taken.redirect_chain == free.redirect_chain == [("/accounts/signup/sent/", 302)]
    assert taken.content == free.content


def test_a_sign_up_link_that_is_forged_or_out_of_date_is_refused(client, settings, django_capture_on_commit_callbacks):
    sign_up(client, django_capture_on_commit_callbacks, email="new@example.com")
    link = _link(mail.outbox[0])
    forged = link[:-3] + "xx/"  # the signature no longer matches
    assert client.get(forged).status_code == 400
    settings.PASSWORD_RESET_TIMEOUT = 0  # every link is out of date
    assert client.post(link, {"password1": PASSWORD, "password2": PASSWORD}).status_code == 400
    assert not User.objects.exists()


def test_an_address_an_earlier_sign_up_left_inactive_goes_to_whoever_opens_a_new_link(
    client, django_capture_on_commit_callbacks
):
    # The former sign-up made an inactive account with a chosen username and the visitor's password at once.
    User.objects.create_user("squatter", email="owner@example.com", password="squatters-password-1", is_active=False)
    sign_up(client, django_capture_on_commit_callbacks, email="owner@example.com")
    link = _link(mail.outbox[0])
    assert client.post(link, {"password1": PASSWORD, "password2": PASSWORD}).status_code == 302
    user = User.objects.get()
    assert user.is_active and user.username == "owner@example.com" and user.check_password(PASSWORD)
