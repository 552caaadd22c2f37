"""Log-in by email (in any case) or by username (as the admin wrote it), with the limits keyed by the account."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from accounts.login_limits import account_key
from accounts.selectors import login_username

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


def log_in(client, username: str, password: str = PASSWORD) -> bool:
    client.post("/accounts/login/", {"username": username, "password": password})
    return "_auth_user_id" in client.session


def test_a_username_with_capitals_and_an_at_sign_made_in_the_admin_logs_in_as_written(client):
    user = User.objects.create_user("Trader@Desk", password=PASSWORD)  # no email: the admin needs none
    assert log_in(client, "Trader@Desk")
    assert client.session["_auth_user_id"] == str(user.pk)


def test_such_a_username_may_also_be_typed_in_another_case(client):
    User.objects.create_user("Trader@Desk", password=PASSWORD)
    assert log_in(client, "trader@desk")


def test_an_account_made_by_sign_up_logs_in_with_its_email_in_any_case(client):
    User.objects.create_user("new@example.com", email="new@example.com", password=PASSWORD)
    assert log_in(client, "  NEW@Example.com ")


def test_an_older_account_logs_in_with_its_username_or_its_email_in_any_case(client):
    user = User.objects.create_user("oldtimer", email="Old.Timer@Example.com", password=PASSWORD)
    assert log_in(client, "oldtimer")
    client.post("/accounts/logout/")
    assert log_in(client, "old.timer@example.COM")
    assert client.session["_auth_user_id"] == str(user.pk)


def test_an_old_username_stays_case_sensitive(client):
    User.objects.create_user("oldtimer", password=PASSWORD)
    assert not log_in(client, "OldTimer")


def test_an_address_that_is_one_accounts_username_and_another_accounts_email_names_the_first(client):
    named = User.objects.create_user("a@b.example", email="", password=PASSWORD)
    User.objects.create_user("other", email="A@B.example", password="another-password-77")
    assert log_in(client, "A@B.EXAMPLE")
    assert client.session["_auth_user_id"] == str(named.pk)


def test_two_usernames_differing_only_in_case_each_log_in_as_written(client):
    upper = User.objects.create_user("Trader@Desk", password=PASSWORD)
    lower = User.objects.create_user("trader@desk", password="another-password-77")
    assert log_in(client, "Trader@Desk")
    assert client.session["_auth_user_id"] == str(upper.pk)
    client.post("/accounts/logout/")
    assert log_in(client, "trader@desk", "another-password-77")
    assert client.session["_auth_user_id"] == str(lower.pk)


def test_an_email_two_accounts_share_names_neither_unless_one_has_it_as_username(client):
    User.objects.create_user("one", email="shared@example.com", password=PASSWORD)
    User.objects.create_user("two", email="Shared@example.com", password=PASSWORD)
    assert not log_in(client, "shared@example.com")
    assert login_username(typed="shared@example.com") == "shared@example.com"  # left as typed: no account


def test_every_spelling_of_one_account_is_counted_as_that_account_by_the_limits():
    User.objects.create_user("Trader@Desk", email="desk@example.com", password=PASSWORD)
    spellings = ["Trader@Desk", "trader@desk", "TRADER@DESK", "desk@example.com", "Desk@Example.com"]
    assert {account_key(login_username(typed=s)) for s in spellings} == {account_key("Trader@Desk")}


def test_an_unknown_name_is_answered_and_counted_like_a_wrong_password(client):
    User.objects.create_user("trader", email="trader@example.com", password=PASSWORD)
    unknown = client.post("/accounts/login/", {"username": "Nobody@Example.com", "password": PASSWORD})
    wrong = client.post("/accounts/login/", {"username": "trader@example.com", "password": "wrong-password-1"})
    assert unknown.status_code == wrong.status_code == 200
    assert unknown.context["form"].errors == wrong.context["form"].errors
    assert login_username(typed="Nobody@Example.com") == "nobody@example.com"  # keyed as before
