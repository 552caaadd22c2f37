"""The one door to Twisted, autobahn and daphne internals. Nothing else in the project touches them.

The live fan-out writes pre-framed WebSocket frames straight to a client's socket, measures how
many bytes a client has not taken yet (how slow clients are found), and skips daphne's keep-alive
ping on connections it is writing to. None of that has a public API, so it reads private fields of
the versions pinned in requirements.txt (PINNED below).

Guarded twice:
- ``selfcheck()`` runs once per web process at start-up (config.asgi; in any other process on its
  first live connection) and checks every field this module relies on against the installed
  libraries. A missing one is logged loudly, counted in the metrics (``live_transport_missing``) and
  switches the fast path off for the whole process.
- ``attach()`` checks the same fields on each real connection before using them.

Without the fast path everything goes through the public paths, which stay tested: the ASGI
``send`` (or autobahn's public ``sendMessage``) for writing, and Twisted's public producer API
(``registerProducer``: Twisted pauses a producer whose consumer's buffer is full) for slow-client
detection, so a missing field never makes a slow client look fast.
"""

from __future__ import annotations

import functools
import inspect
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from live.counters import COUNTERS

logger = logging.getLogger(__name__)

PINNED = {"Twisted": "26.10.0", "autobahn": "26.10.2", "daphne": "4.2.3", "channels": "4.3.2"}


def metrics_incr(name: str, amount: int = 1) -> None:
    """Count straight into the shared counters: only for the once-per-process self-check."""
    try:
        from common import metrics

        metrics.incr(name, amount)
    except Exception:  # a counter must never take the fan-out down (e.g. Redis unreachable)
        logger.warning("could not count %s", name)


# -- the start-up self-check -----------------------------------------------------------------------
def _twisted_server() -> Any:
    """A real (unconnected to any reactor) Twisted TCP server transport, to look at its fields."""
    from twisted.internet import tcp

    a, b = socket.socketpair()
    b.close()
    reactor = SimpleNamespace(addReader=lambda _fd: None, removeReader=lambda _fd: None)
    server = SimpleNamespace(_realPortNumber=0)
    try:
        return tcp.Server(a, SimpleNamespace(), ("127.0.0.1", 0), server, 0, reactor)  # type: ignore[arg-type]
    finally:
        a.close()


def _has(obj: Any, *names: str) -> bool:
    return all(hasattr(obj, name) for name in names)


def _check_tcp_server_class() -> bool:
    from twisted.internet import tcp

    return isinstance(getattr(tcp, "Server", None), type)


def _check_tcp_write_buffer() -> bool:
    return _has(_twisted_server(), "dataBuffer", "offset", "_tempDataLen")


def _check_tcp_state_flags() -> bool:
    return _has(_twisted_server(), "TLS", "connected", "disconnecting")


def _check_tcp_socket() -> bool:
    return isinstance(getattr(_twisted_server(), "socket", None), socket.socket)


def _check_autobahn_open_state() -> bool:
    from autobahn.websocket.protocol import WebSocketProtocol

    return isinstance(getattr(WebSocketProtocol, "STATE_OPEN", None), int)


def _check_autobahn_compress_flag() -> bool:
    from autobahn.websocket.protocol import WebSocketProtocol

    return "self._perMessageCompress =" in inspect.getsource(WebSocketProtocol._connectionMade)


def _check_daphne_send_partial() -> bool:
    from daphne.server import Server

    return "send=partial(self.handle_reply, protocol)" in inspect.getsource(Server.create_application)


def _check_daphne_last_ping() -> bool:
    from daphne.ws_protocol import WebSocketProtocol

    return "self.last_ping" in inspect.getsource(WebSocketProtocol.check_timeouts)


def _check_channels_real_send() -> bool:
    from channels.sessions import CookieMiddleware, InstanceSessionWrapper

    del CookieMiddleware  # imported only to be sure the module is the one we know
    return "self.real_send = send" in inspect.getsource(InstanceSessionWrapper)


CHECKS: dict[str, Callable[[], bool]] = {
    "twisted.tcp.Server": _check_tcp_server_class,
    "twisted.Server.dataBuffer/offset/_tempDataLen": _check_tcp_write_buffer,
    "twisted.Server.TLS/connected/disconnecting": _check_tcp_state_flags,
    "twisted.Server.socket": _check_tcp_socket,
    "autobahn.WebSocketProtocol.STATE_OPEN": _check_autobahn_open_state,
    "autobahn.WebSocketProtocol._perMessageCompress": _check_autobahn_compress_flag,
    "daphne.Server.create_application(send=partial)": _check_daphne_send_partial,
    "daphne.WebSocketProtocol.last_ping": _check_daphne_last_ping,
    "channels.InstanceSessionWrapper.real_send": _check_channels_real_send,
}


@dataclass
class _State:
    checked: bool = False
    missing: tuple[str, ...] = ()
    turned_off: bool = False  # LIVE_TRANSPORT_FAST=0: the public paths by choice

    @property
    def fast(self) -> bool:
        return self.checked and not self.missing and not self.turned_off


STATE = _State()


def selfcheck(*, count: bool = True, enabled: bool = True) -> tuple[str, ...]:
    """Check every private field this module uses; return the names of those missing.

    Runs once per web process (config.asgi). Anything missing turns the fast path off, loudly.
    ``enabled=False`` (LIVE_TRANSPORT_FAST=0) uses the public paths without looking.
    """
    STATE.turned_off = not enabled
    if not enabled:
        STATE.checked, STATE.missing = True, ()
        logger.info("live transport: fast path turned off (LIVE_TRANSPORT_FAST=0); public send path")
        return ()
    missing = []
    for name, check in CHECKS.items():
        try:
            ok = check()
        except Exception:
            ok = False
        if not ok:
            missing.append(name)
    STATE.checked, STATE.missing = True, tuple(missing)
    if missing:
        logger.error(
            "LIVE TRANSPORT SELF-CHECK FAILED: %s missing (pinned: %s). Falling back to the public "
            "send path and producer-based slow-client detection; fan-out is slower until this is fixed.",
            ", ".join(missing),
            PINNED,
        )
        if count:
            metrics_incr("live_transport_missing", len(missing))
    return STATE.missing


# -- one connection --------------------------------------------------------------------------------
def _server_protocol(send: Any) -> Any:
    """Daphne's WebSocket protocol behind an ASGI send callable, or None (e.g. test communicators).

    Daphne hands each application ``partial(server.handle_reply, protocol)``; Channels' session
    middleware wraps it as ``real_send``.
    """
    for _ in range(6):
        if isinstance(send, functools.partial):
            for arg in send.args:
                if hasattr(arg, "sendMessage") and hasattr(arg, "transport"):
                    return arg
            return None
        owner = getattr(send, "__self__", None)
        send = getattr(owner, "real_send", None)
        if send is None:
            return None
    return None


class _PauseWatch:
    """A Twisted streaming producer that notes when the transport's buffer is full (public API only).

    Twisted's HTTP channel stays registered as the transport's producer after the WebSocket upgrade,
    so the watch takes its place and passes every call on to it.
    """

    def __init__(self, hold_bytes: int, previous: Any = None) -> None:
        self.hold_bytes = hold_bytes
        self.previous = previous
        self.paused = False

    def pauseProducing(self) -> None:
        self.paused = True
        if self.previous is not None:
            self.previous.pauseProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        if self.previous is not None:
            self.previous.resumeProducing()

    def stopProducing(self) -> None:
        self.paused = False
        if self.previous is not None:
            self.previous.stopProducing()


class Connection:
    """How the hub writes to one client and measures its backlog.

    ``fast`` is the direct path (private fields, checked); otherwise ``write()`` returns False and the
    caller uses ``deliver()`` through public APIs.
    """

    def __init__(self, send: Any, *, hold_bytes: int) -> None:
        if not STATE.checked:
            # A process that did not start through config.asgi (a test server, a benchmark's own ASGI
            # app) checks on its first connection, instead of silently taking the slow public path.
            from django.conf import settings

            selfcheck(enabled=settings.LIVE_TRANSPORT_FAST)
        try:
            self.protocol = _server_protocol(send)
        except Exception:
            self.protocol = None
        self.fast = STATE.fast and self.protocol is not None and self._instance_ok(self.protocol)
        self._watch: _PauseWatch | None = None
        transport = getattr(self.protocol, "transport", None)
        if not self.fast and transport is not None and hasattr(transport, "registerProducer"):
            try:
                previous = getattr(transport, "producer", None)
                if previous is not None:
                    transport.unregisterProducer()
                self._watch = _PauseWatch(hold_bytes, previous)
                transport.registerProducer(self._watch, True)
            except Exception:
                logger.exception("live transport: cannot watch this connection's buffer; slow clients go unseen")
                COUNTERS.incr("live_transport_unwatched")
                self._watch = None

    @staticmethod
    def _instance_ok(protocol: Any) -> bool:
        transport = getattr(protocol, "transport", None)
        if transport is not None and getattr(transport, "connected", None) == 0:
            # The client left before its connect handler ran (a storm of connects and drops): Twisted has
            # already removed the closed socket's fields. Nothing is missing and nothing will be written.
            return False
        ok = (
            transport is not None
            and _has(protocol, "state", "STATE_OPEN", "_perMessageCompress", "last_ping")
            and _has(transport, "TLS", "_tempDataLen", "dataBuffer", "offset", "disconnecting", "connected", "socket")
        )
        if not ok:
            logger.error("live transport: a connection lacks the fields the self-check found; public path for it")
            COUNTERS.incr("live_transport_instance_fallback")  # on the event loop: never a Redis call here
        return ok

    @property
    def measurable(self) -> bool:
        return self.fast or self._watch is not None

    def backlog(self) -> int:
        """Bytes written but not yet taken by the client (the public path: over the hold mark while paused)."""
        if self.fast:
            transport = self.protocol.transport
            return int(transport._tempDataLen + len(transport.dataBuffer) - transport.offset)
        if self._watch is not None:
            return self._watch.hold_bytes + 1 if self._watch.paused else 0
        return 0

    def write(self, frames: list[bytes]) -> bool:
        """Write pre-framed frames now. False: the fast path is off, use deliver()."""
        protocol = self.protocol
        if not self.fast or protocol._perMessageCompress is not None:
            return False  # permessage-deflate frames are compressed by autobahn: deliver()
        if protocol.state != protocol.STATE_OPEN:
            return True  # closing: nothing more to write
        # One send() for all of them: a syscall each cost a client's batch as many wakeups of its reader.
        _socket_write(protocol.transport, frames[0] if len(frames) == 1 else b"".join(frames))
        # Daphne pings every connection ping_interval after its last ping, from one timer: clients
        # that connected together (a restart, a benchmark) get thousands of pings in one loop turn,
        # each through Twisted's slow write path (py-spy: 29% of a server's time at 5,000 clients).
        # A connection we are writing to needs no keep-alive ping; one that falls silent still gets
        # them, and a dead peer under a flowing feed is reaped by the slow-client policy.
        protocol.last_ping = time.time()
        return True

    def send_text(self, text: str) -> bool:
        """Send through autobahn's public sendMessage when the protocol is known. False: use ASGI send."""
        protocol = self.protocol
        if protocol is None or not hasattr(protocol, "sendMessage"):
            return False
        if getattr(protocol, "state", None) != getattr(protocol, "STATE_OPEN", object()):
            return True
        protocol.sendMessage(text.encode(), False)
        return True


def _socket_write(transport: Any, frame: bytes) -> None:
    """Write a frame to a Twisted TCP transport, straight to the socket when nothing is queued.

    Twisted's transport.write() only appends to a buffer and registers the socket for writability;
    the bytes leave on a later loop turn and the registration is removed again, which costs two
    epoll_ctl calls, an epoll wakeup and the reactor's dispatch per message. When Twisted holds
    nothing for this connection, one non-blocking send() does the same job now; whatever the kernel
    does not take (a slow client) is handed to Twisted, which queues it in order and is how slow
    clients are measured. Anything that is not a plain TCP transport (TLS) goes through write().
    """
    from twisted.internet import tcp

    plain_tcp: Any = tcp.Server  # Any: Twisted's write() is untyped
    if (
        type(transport) is not plain_tcp
        or transport.TLS
        or transport._tempDataLen
        or len(transport.dataBuffer) > transport.offset
        or transport.disconnecting
        or not transport.connected
    ):
        transport.write(frame)
        return
    try:
        sent = transport.socket.send(frame)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        transport.write(frame)  # Twisted's own write notices the broken connection and closes it
        return
    if sent < len(frame):
        transport.write(frame[sent:])
