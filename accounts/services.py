"""Writes of the accounts app."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, User
from django.db import transaction

from accounts.models import BoardPreference


@transaction.atomic
def user_signup(*, username: str, email: str, password: str) -> User:
    return User.objects.create_user(username=username, email=email, password=password)


def board_preference_set(*, user: AbstractBaseUser, instruments: list[str], brokers: list[str]) -> BoardPreference:
    pref, _ = BoardPreference.objects.update_or_create(
        user_id=user.pk, defaults={"instruments": list(instruments), "brokers": list(brokers)}
    )
    return pref
