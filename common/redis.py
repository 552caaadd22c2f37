"""Redis clients for the whole project: every one connects and reads with a timeout, from a bounded pool.

A frozen Redis then costs a caller at most REDIS_TIMEOUT_S, never minutes, and a process never holds
more than REDIS_MAX_CONNECTIONS connections to it. Settings are read when a client is made, not at
import. The sync client is Django's cache connection (django-redis, configured in settings); async
clients belong to one event loop each.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any, ClassVar

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django_redis.pool import ConnectionFactory
from redis.driver_info import DriverInfo

logger = logging.getLogger(__name__)

# Everything that means "Redis did not answer": connection refused or reset, timeouts, a Redis that is
# loading or read-only after a failover. redis-py's ConnectionError is not an OSError.
REDIS_DOWN: tuple[type[BaseException], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class RedisSkipped(redis.exceptions.ConnectionError):
    """Raised instead of calling Redis while the breaker is open."""


class RedisBreaker:
    """Fails fast for a moment after Redis did not answer, so one request pays one timeout, not ten.

    A web request touches the cache several times (page, freshness, generation, counters, session):
    against a frozen Redis each would wait REDIS_TIMEOUT_S. After one failure this process skips Redis
    for REDIS_RETRY_AFTER_S; the first call after that tries again. The state is a timestamp shared by
    every thread and event loop of the process (a plain float: a racing trip only moves it forward).
    """

    def __init__(self) -> None:
        self._down_until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self._down_until

    def check(self) -> None:
        if self.is_open():
            raise RedisSkipped("Redis did not answer a moment ago; failing fast")

    def trip(self, exc: BaseException) -> None:
        if isinstance(exc, RedisSkipped):
            return  # not a new failure: only a real one extends the pause
        was_open = self.is_open()
        self._down_until = time.monotonic() + settings.REDIS_RETRY_AFTER_S
        if not was_open:
            logger.warning("Redis did not answer (%s); skipping it for %.1f s", exc, settings.REDIS_RETRY_AFTER_S)

    def reset(self) -> None:
        self._down_until = 0.0


redis_breaker = RedisBreaker()


# Given to every client and connection: without it redis-py looks its own version up in the installed
# packages' metadata (importlib.metadata) for each new connection, a scan of site-packages that the stall
# sampler (config/stalls.py) caught holding the web process's event loop for 50 ms under load.
DRIVER_INFO = DriverInfo(lib_version=redis.__version__)


class BreakerConnection(redis.connection.Connection):
    """A connection that consults redis_breaker: the Django cache's pool uses it (settings.CACHES)."""

    def connect(self) -> None:
        redis_breaker.check()
        try:
            super().connect()
        except REDIS_DOWN as exc:
            redis_breaker.trip(exc)
            raise

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        redis_breaker.check()
        try:
            super().send_packed_command(command, check_health)
        except REDIS_DOWN as exc:
            redis_breaker.trip(exc)
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except REDIS_DOWN as exc:
            redis_breaker.trip(exc)
            raise


class BreakerConnectionPool(redis.BlockingConnectionPool):
    """A bounded pool (waits for a free connection rather than opening more) of BreakerConnections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("connection_class", redis.connection.Connection) is redis.connection.Connection:
            kwargs["connection_class"] = BreakerConnection
        kwargs.setdefault("driver_info", DRIVER_INFO)
        super().__init__(*args, **kwargs)


class SharedClientFactory(ConnectionFactory):  # type: ignore[misc]  # django-redis ships no types
    """django-redis's factory, with one redis.Redis per server for the whole process.

    Django gives every asyncio task its own cache object (the handler is an asgiref Local), and
    django-redis gave each cache object a redis.Redis of its own over the shared pool. Under daphne each
    WebSocket connection is a task, so 500 connections held 500 clients, each with its command callback
    table and seven event listeners: memory, and objects that every full garbage collection of the web
    process walked (bench.live). A redis.Redis over a pool is safe to share between threads and tasks;
    the pool stays the one bounded, process-wide pool it was.
    """

    _clients: ClassVar[dict[str, Any]] = {}

    def get_connection(self, params: dict[str, Any]) -> Any:
        key = params["url"]
        client = self._clients.get(key)
        if client is None:
            client = self._clients.setdefault(key, super().get_connection(params))
        return client


def _options(**overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "driver_info": DRIVER_INFO,
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
    """An asyncio client of its own, bound to the running event loop. Its pool is bounded and waits
    (up to the read timeout) for a free connection: redis-py's default pool raised "Too many
    connections" at the bound, which the breaker took for Redis being down."""
    pool: Any = aioredis.BlockingConnectionPool.from_url(
        url or settings.REDIS_URL, timeout=settings.REDIS_TIMEOUT_S, **_options(**overrides)
    )
    return aioredis.Redis.from_pool(pool)  # type: ignore[attr-defined]  # types-redis predates from_pool (5.0.1)


def redis_connection(*, url: str | None = None, **overrides: Any) -> Any:
    """One synchronous connection of its own, not yet connected, outside any pool (a subscription read
    in a thread of its own). The caller connects and disconnects it."""
    options = _options(**overrides)
    options["health_check_interval"] = 0  # a health-check PING is not allowed on a subscribed connection
    return redis.ConnectionPool.from_url(url or settings.REDIS_URL, **options).make_connection()


_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def redis_async() -> Any:
    """The shared asyncio client of the running event loop (one bounded pool per loop)."""
    loop = asyncio.get_running_loop()
    client = _shared.get(loop)
    if client is None:
        client = _shared[loop] = redis_async_new()
    return client
