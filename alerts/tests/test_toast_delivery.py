"""A message on a trader's own channel reaches that trader's open /ws/spreads/ socket, and nobody else's."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from config.asgi import application
from live.notify import user_channel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _cookie(user):
    client = Client()
    client.force_login(user)
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode())


async def _connect(cookie):
    ws = WebsocketCommunicator(application, "/ws/spreads/", headers=[(b"origin", b"http://testserver"), cookie])
    connected, _ = await ws.connect(timeout=10)
    assert connected
    snapshot = json.loads(await ws.receive_from(timeout=10))
    assert snapshot["type"] == "snapshot"
    return ws


async def test_an_alert_reaches_only_its_traders_socket(market):
    from asgiref.sync import sync_to_async

    alice = await sync_to_async(User.objects.create_user)("alice", password="pw-long-enough-1")
    bob = await sync_to_async(User.objects.create_user)("bob", password="pw-long-enough-2")
    ws_alice = await _connect(await sync_to_async(_cookie)(alice))
    ws_bob = await _connect(await sync_to_async(_cookie)(bob))
    conn = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        toast = json.dumps({"type": "alert", "message": "acme EURUSD spread 3.0 pips"})
        assert await conn.publish(user_channel(alice.pk), toast) == 1  # one process subscribed
        assert json.loads(await ws_alice.receive_from(timeout=5)) == json.loads(toast)
        assert await ws_bob.receive_nothing(timeout=0.3)
    finally:
        await conn.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
        await ws_alice.disconnect()
        await ws_bob.disconnect()


def _documented_alert() -> tuple[dict[str, object], set[str]]:
    """The alert example and the kinds listed in docs/websocket-protocol.md."""
    import re
    from pathlib import Path

    doc = (Path(settings.BASE_DIR) / "docs" / "websocket-protocol.md").read_text()
    section = doc.split("### `alert`", 1)[1].split("\n## ", 1)[0]
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))  # type: ignore[union-attr]
    kind_row = next(line for line in section.splitlines() if line.startswith("| `kind` |"))
    return example, set(re.findall(r"`([a-z_]+)` \(", kind_row))


async def test_the_alert_the_process_sends_arrives_as_the_protocol_documents_it(market):
    from asgiref.sync import sync_to_async

    from alerts.engine import Fired
    from alerts.evaluator import toast_message
    from alerts.models import Alert

    example, kinds = _documented_alert()
    assert kinds == set(Alert.Kind.values)
    trader = await sync_to_async(User.objects.create_user)("carol", password="pw-long-enough-3")
    ws = await _connect(await sync_to_async(_cookie)(trader))
    conn = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        fired = Fired(1, trader.pk, "spread_above", "acme", "EURUSD", "e", 1767225600124001, 1, "acme EURUSD 3.0")
        await conn.publish(user_channel(trader.pk), toast_message(fired))
        received = json.loads(await ws.receive_from(timeout=5))
    finally:
        await conn.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
        await ws.disconnect()
    assert received.keys() == example.keys()
    assert {k: type(v) for k, v in received.items()} == {k: type(v) for k, v in example.items()}
    assert received["type"] == example["type"] == "alert"
    assert received["kind"] in kinds
