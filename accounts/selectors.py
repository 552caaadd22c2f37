"""Reads of the accounts app."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.db.models import Q

SIGNUP_SALT = "accounts.signup"


def account_of_email(*, email: str) -> User | None:
    """The account an address belongs to: its email, or its username (sign-up makes them the same)."""
    return User.objects.filter(Q(email__iexact=email) | Q(username__iexact=email)).order_by("pk").first()


def login_username(*, typed: str) -> str:
    """The username of the account a name typed at log-in designates, or the name as typed if none does.

    - A username written exactly so (old usernames, and names made in the admin such as "Trader@Desk")
      wins: an exact name is never ambiguous.
    - A name with "@" is an address, in any case: an account whose username (sign-up makes it the address)
      or whose email is that address, case-insensitively. If several share it, the one whose username it is,
      else none.
    - Otherwise (no account, or no single one) the name is returned as before: with "@", trimmed and lower
      cased. The log-in then fails as for a wrong password, and the limits key it as they always did.

    Every spelling of one account resolves to its username, so the limits (accounts.login_limits.account_key)
    count them as one account.
    """
    name = typed.strip()
    if User.objects.filter(username=name).exists():
        return name
    if "@" not in name:
        return typed
    found = list(
        User.objects.filter(Q(username__iexact=name) | Q(email__iexact=name)).values_list("username", flat=True)[:10]
    )
    by_username = [u for u in found if u.lower() == name.lower()]
    if len(by_username) == 1:
        return by_username[0]
    if len(found) == 1 and not by_username:
        return found[0]
    return name.lower()


def signup_token_email(*, token: str) -> str | None:
    """The address a sign-up link was mailed to, if the link is genuine and not older than a password reset's."""
    try:
        email = signing.loads(token, salt=SIGNUP_SALT, max_age=settings.PASSWORD_RESET_TIMEOUT)
    except signing.BadSignature:  # also SignatureExpired
        return None
    return email if isinstance(email, str) else None
