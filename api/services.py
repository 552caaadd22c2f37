"""Writes of the API app: creating and revoking keys; dropping cached answers whose figures changed."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from api.cache import answers_drop, tag_versions_bump
from api.models import ApiKey
from api.selectors import api_key_digest, api_key_forget

KEY_PREFIX = "bw_"
MAX_ACTIVE_KEYS = 10


class ApiKeyError(Exception):
    pass


@transaction.atomic
def api_key_create(*, user: AbstractBaseUser, name: str) -> tuple[ApiKey, str]:
    """A new key and its secret. The secret is returned once and never stored."""
    if ApiKey.objects.filter(user_id=user.pk, revoked_at__isnull=True).count() >= MAX_ACTIVE_KEYS:
        raise ApiKeyError(f"You already have {MAX_ACTIVE_KEYS} active keys; revoke one first.")
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(user_id=user.pk, name=name.strip(), prefix=raw[:10], digest=api_key_digest(raw))
    return key, raw


@transaction.atomic
def api_key_revoke(*, user: AbstractBaseUser, key_id: int) -> ApiKey | None:
    """Revoke one of the user's keys (someone else's key is treated as missing)."""
    key = ApiKey.objects.select_for_update().filter(pk=key_id, user_id=user.pk).first()
    if key is None:
        return None
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    digest = key.digest
    # After the commit, or another process could cache the key as valid again in between.
    transaction.on_commit(lambda: api_key_forget(digest=digest))
    return key


def api_answers_revalidate(tags: frozenset[str]) -> None:
    """Drop the cached answers showing what changed, and renew the tags' tokens that streamed answers' ETags
    stand on (a common.cachetags listener: called with the tags)."""
    tag_versions_bump(tags)
    if settings.API_CACHE_S:
        answers_drop(tags)
