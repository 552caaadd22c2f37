"""The API's answer cache: JSON bodies in the shared cache, indexed by the cache tags of what they show.

An answer is stored under a key of its path and canonical query, with the tags of the figures it
shows (common.cachetags: ``broker:<id>``, ``broker-list``, ``events``, ...). When the pages with a
tag are revalidated (an admin edit, a new score, a new event report), the answers with that tag are
dropped in the same call (api.apps registers the listener), so the next request renders the new figure.

A render that was under way while its figures changed must not store what it read before the change:
every revalidation bumps a generation number first, and an answer is kept only if the generation is
the same after it was stored as before it was rendered (see :func:`answer_store`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import TypedDict, cast

from django.core.cache import cache

from common.tagindex import tag_index_new

CACHE_VERSION = 2
GENERATION_KEY = f"api:{CACHE_VERSION}:generation"


class Answer(TypedDict):
    body: bytes
    etag: str
    at: float
    tags: list[str]


def answer_key(digest: str) -> str:
    return f"api:{CACHE_VERSION}:{digest}"


def answer_get(key: str) -> Answer | None:
    value = cache.get(key)
    if isinstance(value, dict) and {"body", "etag", "at"} <= value.keys():
        return cast(Answer, value)
    return None  # a miss, or an entry of another shape (an older release): rendered again


def generation() -> int:
    return int(cache.get(GENERATION_KEY) or 0)


def answer_store(key: str, answer: Answer, *, ttl: int, rendered_in_generation: int) -> bool:
    """Keep the answer unless a revalidation happened since ``rendered_in_generation`` was read.

    Stored first, then the generation is read again: a revalidation that bumps it before that read is
    seen (and the answer dropped here); one that bumps it after finds the answer in the tag index and
    drops it itself. Either way no answer rendered before a change outlives the change.
    """
    cache.set(key, answer, ttl)
    tag_index.add(answer["tags"], key, ttl)
    if generation() != rendered_in_generation:
        cache.delete(key)
        return False
    return True


def answers_drop(tags: Iterable[str]) -> int:
    """Drop every stored answer carrying one of the tags. Returns how many keys were dropped."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # first revalidation since the cache was empty
        if not cache.add(GENERATION_KEY, 1, None):
            cache.incr(GENERATION_KEY)
    keys = tag_index.pop(tags)
    if keys:
        cache.delete_many(sorted(keys))
    return len(keys)


TAG_VERSION_TTL_S = 30 * 86_400


def _tag_version_key(tag: str) -> str:
    return f"api:{CACHE_VERSION}:tagversion:{tag}"


def tag_versions(tags: Iterable[str]) -> list[str]:
    """A token per tag (in sorted tag order) that is new after every revalidation of the tag: what a streamed
    answer's ETag stands on besides its rows (common.cachetags names what an edit changed).

    A tag without a token (never revalidated, expired, or Redis lost it) gets a fresh random one, never a
    constant: a token read after a loss cannot equal one from before it, so no old ETag matches again by
    chance. Without Redis at all every call gives fresh tokens (no 304, never a wrong one)."""
    keys = [_tag_version_key(t) for t in sorted(set(tags))]
    found = cache.get_many(keys)
    tokens = []
    for key in keys:
        token = found.get(key)
        if token is None:
            cache.add(key, secrets.token_hex(8), TAG_VERSION_TTL_S)
            token = cache.get(key) or secrets.token_hex(8)  # whoever added first; fresh when Redis is down
        tokens.append(str(token))
    return tokens


def tag_versions_bump(tags: Iterable[str]) -> None:
    """New tokens for these tags (called with every revalidation, in the process that makes it)."""
    fresh = {_tag_version_key(t): secrets.token_hex(8) for t in set(tags)}
    if fresh:
        cache.set_many(fresh, TAG_VERSION_TTL_S)


tag_index = tag_index_new(namespace=f"apitag:{CACHE_VERSION}", slack_s=60)
