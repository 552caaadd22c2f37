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


def signup_token_email(*, token: str) -> str | None:
    """The address a sign-up link was mailed to, if the link is genuine and not older than a password reset's."""
    try:
        email = signing.loads(token, salt=SIGNUP_SALT, max_age=settings.PASSWORD_RESET_TIMEOUT)
    except signing.BadSignature:  # also SignatureExpired
        return None
    return email if isinstance(email, str) else None
