"""Which cached pages carry which tag: a set per tag in Redis, or a dict in the one-process fallback."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from common.redis import redis_sync


class _RedisTagIndex:
    def _conn(self) -> Any:
        return redis_sync()

    def _name(self, tag: str) -> str:
        return f"{settings.CACHE_KEY_PREFIX}:pagetag:{tag}"

    def add(self, tags: Iterable[str], key: str, ttl: int) -> None:
        pipe = self._conn().pipeline(transaction=False)
        for tag in tags:
            pipe.sadd(self._name(tag), key)
            pipe.expire(self._name(tag), ttl)
        pipe.execute()

    def members(self, tags: Iterable[str]) -> set[str]:
        names = [self._name(t) for t in tags]
        if not names:
            return set()
        return {m.decode() if isinstance(m, bytes) else m for m in self._conn().sunion(names)}


class _LocalTagIndex:
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


tag_index: _RedisTagIndex | _LocalTagIndex = _RedisTagIndex() if settings.USE_REDIS else _LocalTagIndex()
