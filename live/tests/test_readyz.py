"""/readyz: database, Redis, feeds, the aggregator's lag and this process's live hub, on the real services."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from django.test import Client
from django_redis import get_redis_connection

from live import hub as hub_module
from live.hub import Hub
from live.tests.test_hub import Recorder, _free_port
from marketdata import keys


def feed(broker: str, status: str) -> None:
    get_redis_connection("default").hset(
        keys.status_hash(), broker, json.dumps({"broker": broker, "status": status, "since": 1})
    )


def readyz() -> tuple[int, dict]:
    response = Client().get("/readyz")
    return response.status_code, response.json()


@pytest.mark.django_db
def test_it_is_ready_when_the_database_redis_a_feed_and_the_aggregator_are_fine() -> None:
    feed("acme", "up")
    feed("zeta", "down")
    status, body = readyz()
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["checks"]["feeds"] == {"ok": True, "up": 1, "stale": 0, "down": 1}
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert Client().get("/readyz")["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_it_is_unready_while_no_feed_is_up() -> None:
    feed("acme", "stale")
    status, body = readyz()
    assert status == 503
    assert body["checks"]["feeds"]["ok"] is False


@pytest.mark.django_db
def test_it_is_unready_while_the_aggregator_lags_behind_the_tick_stream() -> None:
    feed("acme", "up")
    r = get_redis_connection("default")
    stream = keys.tick_stream(0)
    r.xgroup_create(stream, keys.AGGREGATOR_GROUP, id="0", mkstream=True)
    old_ms = int(time.time() * 1000) - 120_000  # a batch two minutes old that no aggregator has read
    r.xadd(stream, {"b": b"x"}, id=f"{old_ms}-0")
    status, body = readyz()
    assert status == 503
    (shard,) = [s for s in body["checks"]["aggregator"]["shards"] if s["shard"] == 0]
    assert shard["lag"] == 1 and shard["behind_s"] > 100

    # Read but not yet committed: still behind.
    r.xreadgroup(keys.AGGREGATOR_GROUP, "agg-1", {stream: ">"}, count=10)
    assert readyz()[0] == 503
    r.xack(stream, keys.AGGREGATOR_GROUP, f"{old_ms}-0")
    status, body = readyz()
    assert status == 200, body


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_it_is_unready_while_this_processs_hub_has_clients_and_no_subscription() -> None:
    feed("acme", "up")
    loop = asyncio.get_running_loop()
    # A hub whose Redis is not there: it keeps trying, and keeps saying it is not subscribed.
    hub = hub_module._hubs[loop] = Hub(redis_url=f"redis://127.0.0.1:{_free_port()}/0", prefix="readyz")
    try:
        await hub.attach(Recorder(["EURUSD"]))
        hub.unsubscribed_since -= hub_module.UNSUBSCRIBED_GRACE_S  # as if it had been failing for a while
        status, body = await asyncio.to_thread(readyz)
        assert status == 503
        # Hubs of other tests' event loops may still be alive in this process: look for this one.
        hubs = body["checks"]["live_hub"]["hubs"]
        assert any(h["clients"] == 1 and h["subscribed"] is False for h in hubs), hubs
    finally:
        await hub.stop()
        del hub_module._hubs[loop]
