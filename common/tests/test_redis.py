"""The project's Redis clients and connections (common/redis.py)."""

from __future__ import annotations

import pytest
import redis.utils
from django.conf import settings

from common.redis import BreakerConnectionPool, redis_async_new, redis_connection, redis_new


@pytest.fixture
def version_lookups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts redis-py's look-ups of its own version in the installed packages' metadata."""
    calls: list[int] = []
    real = getattr(redis.utils, "get_lib_version")  # noqa: B009 (untyped in the stubs)

    def counted() -> str:
        calls.append(1)
        return real()

    monkeypatch.setattr(redis.utils, "get_lib_version", counted)
    return calls


def test_new_clients_and_connections_never_scan_the_package_metadata_for_redis_py_s_version(version_lookups):
    """importlib.metadata scans site-packages: on the web process's event loop it held every client."""
    redis_new().connection_pool.make_connection()
    redis_async_new().connection_pool.make_connection()
    redis_connection()
    BreakerConnectionPool.from_url(settings.REDIS_URL).make_connection()
    assert version_lookups == []


@pytest.mark.asyncio
async def test_an_asyncio_client_with_every_connection_busy_waits_for_one_instead_of_failing(settings):
    """A burst of requests on one event loop (fifty visitors whose page copy expired at once) asked
    its bounded pool for more connections than it holds: "Too many connections", taken for Redis being
    down, tripped the breaker for every user of Redis in the process for two seconds."""
    import asyncio
    import uuid

    settings.REDIS_MAX_CONNECTIONS = 2
    name = f"bw-test-{uuid.uuid4().hex[:12]}"
    client = redis_async_new(client_name=name)
    try:
        values = await asyncio.gather(*(client.ping() for _ in range(20)))
        assert values == [True] * 20
        opened = [c for c in redis_new().client_list() if c.get("name") == name]
        assert 1 <= len(opened) <= 2  # the bound holds: it waited rather than opening more
    finally:
        await client.aclose()
