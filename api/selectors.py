"""Reads of the API app: keys. The figures themselves come from the pages' selectors (see api/endpoints.py)."""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache

from api.models import ApiKey

KEY_CACHE_S = 60


def api_key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _cache_key(digest: str) -> str:
    return f"apikey:{digest}"


def api_key_user_id(*, raw: str) -> int | None:
    """The user id of an active key, or None. Looked up in the shared cache first: every keyed request asks."""
    if not raw or len(raw) > 200:
        return None
    digest = api_key_digest(raw)
    found = cache.get(_cache_key(digest))
    if found is not None:
        return int(found) or None  # 0: known not to be a key
    row = ApiKey.objects.filter(digest=digest, revoked_at__isnull=True).values_list("user_id", flat=True).first()
    api_key_remember(digest=digest, user_id=row)
    return row


def api_key_remember(*, digest: str, user_id: int | None) -> None:
    """Cache what the database said, unless something is cached already. Only add(), never set(): a
    lookup that read the key as active just before it was revoked must not overwrite the revocation's
    mark (api_key_forget), or the revoked key would work for another KEY_CACHE_S."""
    cache.add(_cache_key(digest), user_id or 0, KEY_CACHE_S)


def api_key_forget(*, digest: str) -> None:
    """Mark the key as not a key in the cache (after the revocation commits), for as long as a stale lookup
    could still try to cache it as valid."""
    cache.set(_cache_key(digest), 0, KEY_CACHE_S)


def api_keys_for(*, user: AbstractBaseUser | AnonymousUser) -> list[ApiKey]:
    if not user.is_authenticated:
        return []
    return list(ApiKey.objects.filter(user_id=user.pk))
