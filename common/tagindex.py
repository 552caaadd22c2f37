"""Which cached entries carry which tag: a Redis set per tag, shared by every process, or a dict in
the one-process fallback (USE_REDIS=0). The page cache and the API's answer cache each keep one, in
their own namespace (common.cachetags names the tags)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from common.redis import redis_sync


class RedisTagIndex:
    def __init__(self, *, namespace: str, slack_s: int) -> None:
        self.namespace = namespace
        self.slack_s = slack_s

    def _name(self, tag: str) -> str:
        return f"{settings.CACHE_KEY_PREFIX}:{self.namespace}:{tag}"

    def add(self, tags: Iterable[str], key: str, ttl: int) -> None:
        pipe = redis_sync().pipeline(transaction=False)
        for tag in tags:
            pipe.sadd(self._name(tag), key)
            # A set outlives its newest entry a little; entries expire on their own meanwhile.
            pipe.expire(self._name(tag), ttl + self.slack_s)
        pipe.execute()

    def members(self, tags: Iterable[str]) -> set[str]:
        names = [self._name(t) for t in tags]
        if not names:
            return set()
        return _decoded(redis_sync().sunion(names))

    def pop(self, tags: Iterable[str]) -> set[str]:
        """The members, and the sets emptied in the same step (an entry added after is kept for next time)."""
        names = [self._name(t) for t in tags]
        if not names:
            return set()
        pipe = redis_sync().pipeline(transaction=True)
        pipe.sunion(names)
        pipe.delete(*names)
        return _decoded(pipe.execute()[0])


class LocalTagIndex:
    def __init__(self) -> None:
        self._tags: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def add(self, tags: Iterable[str], key: str, ttl: int) -> None:
        with self._lock:
            for tag in tags:
                self._tags.setdefault(tag, set()).add(key)

    def members(self, tags: Iterable[str]) -> set[str]:
        with self._lock:
            return set().union(*(self._tags.get(t, set()) for t in tags))

    def pop(self, tags: Iterable[str]) -> set[str]:
        with self._lock:
            return set().union(*(self._tags.pop(t, set()) for t in tags))


def _decoded(members: Any) -> set[str]:
    return {m.decode() if isinstance(m, bytes) else m for m in members}


def tag_index_new(*, namespace: str, slack_s: int = 0) -> RedisTagIndex | LocalTagIndex:
    return RedisTagIndex(namespace=namespace, slack_s=slack_s) if settings.USE_REDIS else LocalTagIndex()
