"""Writes of the live app: a trader's saved board choice."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction

from live.models import BoardPreference
from live.selectors import board_choice_cache_key


def board_preference_set(*, user: AbstractBaseUser, instruments: list[str], brokers: list[str]) -> BoardPreference:
    pref, _ = BoardPreference.objects.update_or_create(
        user_id=user.pk, defaults={"instruments": list(instruments), "brokers": list(brokers)}
    )
    # After the commit, so a connect in between cannot cache the old choice again.
    key = board_choice_cache_key(user_id=user.pk)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))
    return pref
