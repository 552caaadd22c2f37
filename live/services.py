"""Writes of the live app: a trader's saved board choice."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from live.models import BoardPreference


def board_preference_set(*, user: AbstractBaseUser, instruments: list[str], brokers: list[str]) -> BoardPreference:
    pref, _ = BoardPreference.objects.update_or_create(
        user_id=user.pk, defaults={"instruments": list(instruments), "brokers": list(brokers)}
    )
    return pref
