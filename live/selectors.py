"""Reads of the live app: a trader's saved board choice."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache

from live.models import BoardPreference

BOARD_CHOICE_CACHE_S = 3600  # services.board_preference_set() forgets the cached copy on every change


@dataclass(frozen=True)
class BoardChoice:
    instruments: list[str]  # empty: every instrument
    brokers: list[str]  # empty: every broker


def board_choice_cache_key(*, user_id: int | str) -> str:
    return f"live:board-choice:{user_id}"


def board_preference_get(*, user: AbstractBaseUser | AnonymousUser) -> BoardChoice:
    if not user.is_authenticated:
        return BoardChoice(instruments=[], brokers=[])
    pref = BoardPreference.objects.filter(user_id=user.pk).first()
    if pref is None:
        return BoardChoice(instruments=[], brokers=[])
    return BoardChoice(instruments=list(pref.instruments), brokers=list(pref.brokers))


def board_choice_cached_get(*, user_id: int | str) -> BoardChoice:
    """The same choice for the WebSocket handshake, from the cache: a reconnect storm of a thousand
    traders costs no database query each (only a trader's first connect after a change does)."""
    key = board_choice_cache_key(user_id=user_id)
    found = cache.get(key)
    if isinstance(found, dict):
        return BoardChoice(instruments=list(found["instruments"]), brokers=list(found["brokers"]))
    pref = BoardPreference.objects.filter(user_id=user_id).first()
    choice = (
        BoardChoice(instruments=list(pref.instruments), brokers=list(pref.brokers))
        if pref is not None
        else BoardChoice(instruments=[], brokers=[])
    )
    cache.set(key, {"instruments": choice.instruments, "brokers": choice.brokers}, BOARD_CHOICE_CACHE_S)
    return choice
