"""Slow-client dropping through the real stack: daphne in a subprocess, real sockets, real Redis.

A client that stops reading must be dropped with close code 4008 once its unsent bytes stay over
the limit, and must not hold back a client that keeps up on the same server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from brokers.models import Instrument
from common import metrics
from marketdata import keys
from testing.daphne import daphne_server
from testing.support import subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)

HOLD_BYTES = 16 * 1024
DROP_AFTER_S = 0.5


class RawClient:
    """A minimal WebSocket client on a plain socket, so the test decides exactly when it reads."""

    def __init__(self, base_url: str, cookie: str, *, rcvbuf: int | None = None) -> None:
        url = urlsplit(base_url)
        self.sock = socket.socket()
        if rcvbuf is not None:  # before connect(): it caps the TCP window the server may fill
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect((url.hostname, url.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws/spreads/?instruments=EURUSD HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: {base_url}\r\nCookie: {cookie}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the handshake"
            head += chunk
        status, _, self.buf = head.partition(b"\r\n\r\n")
        assert b" 101 " in status.split(b"\r\n", 1)[0], status

    def frames(self, *, timeout: float) -> Iterator[tuple[int, bytes]]:
        """(opcode, payload) of every frame until the connection ends or the timeout passes."""
        deadline = time.monotonic() + timeout
        buf = bytearray(self.buf)
        while time.monotonic() < deadline:
            while len(buf) >= 2:
                length, pos = buf[1] & 0x7F, 2
                if length == 126:
                    length, pos = int.from_bytes(buf[2:4], "big"), 4
                elif length == 127:
                    length, pos = int.from_bytes(buf[2:10], "big"), 10
                if len(buf) < pos + length:
                    break
                yield buf[0] & 0x0F, bytes(buf[pos : pos + length])
                del buf[: pos + length]
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 16)
            except TimeoutError:
                return
            if not chunk:
                return
            buf += chunk

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["fast", "public"])
def slow_site(request: pytest.FixtureRequest, transactional_db: None) -> Iterator[tuple[str, str]]:
    """daphne on this test's database and Redis prefix, with a small slow-client limit.

    Twice: with the direct socket path (private library fields, live/transport.py), and with the
    public paths only (autobahn's sendMessage, Twisted's producer API for the backlog).
    """
    Instrument.objects.create(
        symbol="EURUSD", name="Euro", asset_class="fx_major", pip_size=Decimal("0.0001"), display_precision=5
    )
    user = User.objects.create_user("slowpoke", password=None)
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    env = subprocess_env(
        LIVE_SLOW_HOLD_BYTES=str(HOLD_BYTES),
        LIVE_SLOW_DROP_S=str(DROP_AFTER_S),
        LIVE_TRANSPORT_FAST="1" if request.param == "fast" else "0",
    )
    with daphne_server(env) as url:
        yield url, cookie


def quote(broker: str, seq: int) -> str:
    now = time.time_ns() // 1000
    bid = 1.1 + (seq % 1000) * 1e-5
    return json.dumps(
        {
            "broker": broker,
            "instrument": "EURUSD",
            "bid": bid,
            "ask": bid + 1e-4,
            "spread": 1e-4,
            "bid_size": 1e6,
            "ask_size": 1e6,
            "ts_broker": now,
            "ts_ingest": now,
            "seq": seq,
        }
    )


def test_a_client_that_stops_reading_is_dropped_with_4008_and_does_not_hold_back_others(slow_site):
    url, cookie = slow_site
    conn = redis.Redis.from_url(settings.REDIS_URL)
    dropped_before = metrics.get("ws_dropped_slow")
    slow = RawClient(url, cookie, rcvbuf=4096)  # connects, then never reads until the end
    fast = RawClient(url, cookie)
    fast_seen: list[int] = []
    fast_codes: list[int] = []

    def keep_reading() -> None:
        for opcode, payload in fast.frames(timeout=60):
            if opcode == 8:
                fast_codes.append(int.from_bytes(payload[:2], "big"))
                return
            if payload.startswith(b'{"type":"quotes"'):
                fast_seen.extend(q["seq"] for q in json.loads(payload)["quotes"])

    reader = threading.Thread(target=keep_reading, daemon=True)
    reader.start()

    # 500 distinct broker+instrument keys per round (no conflation within a round), ~125 KB each,
    # until the server has counted the drop (counters reach Redis every few seconds).
    seq = 0
    deadline = time.monotonic() + 30
    while metrics.get("ws_dropped_slow") == dropped_before:
        assert time.monotonic() < deadline, "the slow client was never dropped"
        pipe = conn.pipeline(transaction=False)
        for i in range(500):
            seq += 1
            pipe.publish(keys.live_channel("EURUSD"), quote(f"b{i:03d}", seq))
        pipe.execute()
        time.sleep(0.05)
    assert metrics.get("ws_dropped_slow") == dropped_before + 1

    # The reader that kept up is still served, and promptly.
    marker = seq + 1
    conn.publish(keys.live_channel("EURUSD"), quote("b000", marker))
    wait_until = time.monotonic() + 10
    while marker not in fast_seen and time.monotonic() < wait_until:
        time.sleep(0.01)
    assert marker in fast_seen
    assert fast_codes == []

    # The slow client, reading at last, finds its connection ended by the server: the 4008 close
    # frame if it got out before the server gave up on the closing handshake, else EOF or a reset.
    codes = []
    try:
        for opcode, payload in slow.frames(timeout=15):
            if opcode == 8:
                codes.append(int.from_bytes(payload[:2], "big"))
                break
    except ConnectionResetError:
        codes.append(-1)
    assert codes in ([4008], [-1], []), codes
    if not codes:  # frames() returned: either EOF (ended) or the timeout (not ended: a failure)
        slow.sock.settimeout(1)
        with contextlib.suppress(ConnectionResetError):
            assert slow.sock.recv(1) == b"", "the slow connection is still open"
    slow.close()
    fast.sock.shutdown(socket.SHUT_RDWR)  # ends the reader thread's recv() before the socket goes
    reader.join(timeout=5)
    fast.close()
    conn.close()
