"""The one door to library internals (live/transport.py): every field it relies on is checked, and
without them the fan-out falls back to public APIs that still measure slow clients."""

from __future__ import annotations

import functools
import logging
from typing import Any

import pytest

from common import metrics
from live import transport


@pytest.fixture(autouse=True)
def _restore_state():
    saved = (transport.STATE.checked, transport.STATE.missing, transport.STATE.turned_off)
    yield
    transport.STATE.checked, transport.STATE.missing, transport.STATE.turned_off = saved


@pytest.mark.parametrize("name", sorted(transport.CHECKS))
def test_the_pinned_library_still_has(name):
    """One test per private field: an upgrade that drops one fails here, not silently in production."""
    assert transport.CHECKS[name]() is True


def test_the_self_check_passes_on_the_pinned_versions():
    assert transport.selfcheck(count=False) == ()
    assert transport.STATE.fast


def test_a_process_that_did_not_run_the_check_at_start_up_runs_it_on_its_first_connection(settings):
    settings.LIVE_TRANSPORT_FAST = True
    transport.STATE.checked, transport.STATE.missing, transport.STATE.turned_off = False, (), False

    async def send(message):
        return None

    transport.Connection(send, hold_bytes=1000)
    assert transport.STATE.checked and transport.STATE.fast


@pytest.mark.django_db
def test_a_missing_field_is_logged_loudly_counted_and_turns_the_fast_path_off(monkeypatch, caplog):
    monkeypatch.setitem(transport.CHECKS, "twisted.Server.socket", lambda: False)
    before = metrics.get("live_transport_missing")
    with caplog.at_level(logging.ERROR, logger="live.transport"):
        assert transport.selfcheck() == ("twisted.Server.socket",)
    assert "LIVE TRANSPORT SELF-CHECK FAILED" in caplog.text
    assert metrics.get("live_transport_missing") == before + 1
    assert not transport.STATE.fast


def test_a_check_that_raises_counts_as_missing(monkeypatch):
    def broken() -> bool:
        raise AttributeError("gone")

    monkeypatch.setitem(transport.CHECKS, "daphne.WebSocketProtocol.last_ping", broken)
    assert transport.selfcheck(count=False) == ("daphne.WebSocketProtocol.last_ping",)


class _Transport:
    """Stands in for a Twisted transport that offers only its public producer API."""

    def __init__(self, producer: Any = None) -> None:
        self.producer: Any = producer

    def registerProducer(self, producer, streaming):
        assert self.producer is None, "Twisted refuses a second producer"
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None


class _HTTPChannel:
    """Twisted's HTTP channel stays registered as producer after the WebSocket upgrade."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self):
        self.calls.append("pause")

    def resumeProducing(self):
        self.calls.append("resume")

    def stopProducing(self):
        self.calls.append("stop")


class _Protocol:
    STATE_OPEN = 3

    def __init__(self) -> None:
        self.transport = _Transport()
        self.state = self.STATE_OPEN
        self.sent: list[bytes] = []

    def sendMessage(self, payload, is_binary):
        self.sent.append(payload)


async def _handle_reply(protocol, message):
    return None


def test_without_the_fast_path_writes_go_through_public_send_and_a_full_buffer_still_reads_as_slow():
    transport.selfcheck(count=False, enabled=False)
    protocol = _Protocol()
    connection = transport.Connection(functools.partial(_handle_reply, protocol), hold_bytes=1000)
    assert not connection.fast
    assert connection.write([b"frame"]) is False  # the caller must deliver() instead
    assert connection.send_text('{"type":"quotes"}') is True
    assert protocol.sent == [b'{"type":"quotes"}']
    # Twisted pauses a registered producer when the transport's buffer is full.
    assert connection.backlog() == 0
    protocol.transport.producer.pauseProducing()
    assert connection.backlog() > 1000, "a full buffer must never read as an empty one"
    protocol.transport.producer.resumeProducing()
    assert connection.backlog() == 0


def test_a_connection_without_a_daphne_protocol_uses_the_asgi_send():
    transport.selfcheck(count=False)

    async def send(message):
        return None

    connection = transport.Connection(send, hold_bytes=1000)
    assert not connection.fast and connection.protocol is None
    assert connection.write([b"x"]) is False
    assert connection.send_text("x") is False


def test_the_buffer_watch_takes_the_http_channels_place_and_passes_every_call_on():
    transport.selfcheck(count=False, enabled=False)
    protocol = _Protocol()
    channel = _HTTPChannel()
    protocol.transport = _Transport(producer=channel)
    connection = transport.Connection(functools.partial(_handle_reply, protocol), hold_bytes=10)
    watch = protocol.transport.producer
    assert watch is not channel
    watch.pauseProducing()
    assert connection.backlog() > 10
    watch.resumeProducing()
    watch.stopProducing()
    assert channel.calls == ["pause", "resume", "stop"]


class _DaphneProtocol:
    """Stands in for daphne's protocol around a real (unconnected) Twisted TCP server transport."""

    STATE_OPEN = 3

    def __init__(self, *, last_ping: bool = True) -> None:
        self.transport = transport._twisted_server()
        self.state = self.STATE_OPEN
        self._perMessageCompress = None
        if last_ping:
            self.last_ping = 0.0

    def sendMessage(self, payload, is_binary):
        raise AssertionError("not on this path")


@pytest.mark.django_db
def test_a_client_that_left_before_its_connect_handler_ran_is_not_counted_as_a_missing_field(caplog):
    from twisted.internet.abstract import FileDescriptor
    from twisted.python.failure import Failure

    from live.counters import COUNTERS

    transport.selfcheck(count=False)
    protocol = _DaphneProtocol()
    protocol.transport.reactor.removeWriter = lambda _fd: None
    # What Twisted does when the peer goes: its connectionLost marks the transport closed and deletes the socket.
    FileDescriptor.connectionLost(protocol.transport, Failure(ConnectionError("gone")))
    del protocol.transport.socket
    before = COUNTERS.values["live_transport_instance_fallback"]
    with caplog.at_level(logging.ERROR, logger="live.transport"):
        connection = transport.Connection(functools.partial(_handle_reply, protocol), hold_bytes=1000)
    assert not connection.fast
    assert COUNTERS.values["live_transport_instance_fallback"] == before
    assert "lacks the fields" not in caplog.text


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_connection_missing_a_field_is_counted_in_the_process_and_reaches_redis_off_the_event_loop(caplog):
    """On the event loop a count is a dict update: a Redis round trip there would hold every client (during
    an NFP burst's storm of connects and drops, such counts held the loop for up to 690 ms)."""
    from live.counters import COUNTERS, counters_flush

    transport.selfcheck(count=False)
    await counters_flush()  # whatever earlier tests counted
    shared_before = await _shared("live_transport_instance_fallback")
    before = COUNTERS.values["live_transport_instance_fallback"]
    with caplog.at_level(logging.ERROR, logger="live.transport"):
        connection = transport.Connection(
            functools.partial(_handle_reply, _DaphneProtocol(last_ping=False)), hold_bytes=1000
        )
    assert not connection.fast
    assert "lacks the fields" in caplog.text
    assert COUNTERS.values["live_transport_instance_fallback"] == before + 1
    assert await _shared("live_transport_instance_fallback") == shared_before  # nothing sent to Redis yet
    await counters_flush()
    assert await _shared("live_transport_instance_fallback") == shared_before + 1


async def _shared(name: str) -> int:
    from asgiref.sync import sync_to_async

    return await sync_to_async(metrics.get)(name)


def test_a_clients_batch_of_frames_leaves_in_one_write(monkeypatch):
    """A syscall per frame cost the server a send() and the client a wakeup each (bench.live: 45 % of a
    server's time in send() in calm); the frames, concatenated, are the same bytes on the wire."""
    writes: list[bytes] = []
    monkeypatch.setattr(transport, "_socket_write", lambda _transport, data: writes.append(data))
    protocol: Any = _Protocol()
    protocol._perMessageCompress = None
    protocol.last_ping = 0.0
    connection = object.__new__(transport.Connection)
    connection.protocol, connection.fast, connection._watch = protocol, True, None
    assert connection.write([b"one", b"two", b"three"]) is True
    assert connection.write([b"four"]) is True
    assert writes == [b"onetwothree", b"four"]
