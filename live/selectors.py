"""Reads of the live app: a trader's saved board choice."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from live.models import BoardPreference


@dataclass(frozen=True)
class BoardChoice:
    instruments: list[str]  # empty: every instrument
    brokers: list[str]  # empty: every broker


def board_preference_get(*, user: AbstractBaseUser | AnonymousUser) -> BoardChoice:
    if not user.is_authenticated:
        return BoardChoice(instruments=[], brokers=[])
    pref = BoardPreference.objects.filter(user_id=user.pk).first()
    if pref is None:
        return BoardChoice(instruments=[], brokers=[])
    return BoardChoice(instruments=list(pref.instruments), brokers=list(pref.brokers))
