"""Writes of the accounts app."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction


@transaction.atomic
def user_signup(*, username: str, email: str, password: str) -> User:
    return User.objects.create_user(username=username, email=email, password=password)
