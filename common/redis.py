"""Redis clients for the whole project: every one connects and reads with a timeout, from a bounded pool.

A frozen Redis then costs a caller at most REDIS_TIMEOUT_S, never minutes, and a process never holds
more than REDIS_MAX_CONNECTIONS connections to it. Settings are read when a client is made, not at
import. The sync client is Django's cache connection (django-redis, configured in settings); async
clients belong to one event loop each.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

# Everything that means "Redis did not answer": connection refused or reset, timeouts, a Redis that is
# loading or read-only after a failover. redis-py's ConnectionError is not an OSError.
REDIS_DOWN: tuple[type[BaseException], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def _options(**overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.REDIS_CONNECT_TIMEOUT_S,
        "socket_timeout": settings.REDIS_TIMEOUT_S,
        "max_connections": settings.REDIS_MAX_CONNECTIONS,
        "health_check_interval": 30,
    }
    options.update(overrides)
    return options


def redis_sync() -> Any:
    """The shared synchronous client (django-redis's pool for the default cache)."""
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def redis_new(*, url: str | None = None, **overrides: Any) -> Any:
    """A synchronous client of its own (for long blocking reads, e.g. the aggregator's XREADGROUP)."""
    return redis.Redis.from_url(url or settings.REDIS_URL, **_options(**overrides))


def redis_async_new(*, url: str | None = None, **overrides: Any) -> Any:
    """An asyncio client of its own, bound to the running event loop."""
    return aioredis.Redis.from_url(url or settings.REDIS_URL, **_options(**overrides))


_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def redis_async() -> Any:
    """The shared asyncio client of the running event loop (one bounded pool per loop)."""
    loop = asyncio.get_running_loop()
    client = _shared.get(loop)
    if client is None:
        client = _shared[loop] = redis_async_new()
    return client
