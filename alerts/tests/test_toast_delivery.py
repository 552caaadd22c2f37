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
