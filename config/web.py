"""The web process: daphne with this project's garbage-collection policy.

    python -m config.web [daphne's arguments] config.asgi:application

Daphne keeps each finished request's objects until its reaper runs (once a second; here every 0.1 s,
reaping_server_class), so at thousands of requests a second they outlive the young generations, and
automatic collections (full ones
measured at 150-250 ms) stalled every request in flight: they set bench.pages' p99. Those objects
are freed by reference counting when daphne lets go, so in the web process automatic collection is
off: once the server runs, start-up objects are frozen out of collections, and the reactor collects
the little cyclic garbage there is on a timer (no thread): the young generations every
WEB_TRIM_INTERVAL_S seconds, everything every WEB_GC_INTERVAL_S seconds. A full collection walks every
object that outlived a young one, chiefly the live connections': measured at 100-200 ms with 500
WebSocket connections a process, a pause every client of the process shares, so it stays rare. It is
what frees the cycles a closed connection leaves behind (its task's exception and traceback) when the
connection outlived a young collection, so one also runs at the next tick once many WebSockets have
closed (Collector). After each collection the heap's free pages go
back to the system. Only this launcher does it: importing config.asgi (tests, other
tools) leaves a process's garbage collection alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys
from collections.abc import Callable
from typing import Any


def heap_trimmer() -> Callable[[], object]:
    """glibc's malloc_trim(0), or a no-op elsewhere (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return functools.partial(trim, 0)


class Collector:
    """Called on a timer: collect the young generations (all of them every full_every-th time, or once
    `full_after_closed` WebSockets have closed since the last full collection), then hand the heap's
    free pages back to the system. What a burst's frames and buffers took is freed by reference counting
    but, without the trim, kept by the allocator: RSS stayed at its burst peak (bench.live --burst).

    A closed WebSocket leaves cycles (its task's exception and traceback) that only a full collection
    frees: after bench.live's storm of 500 connections and drops, RSS stayed 10-25 MB over its bound
    until the next timed full collection, up to 30 s later. Collected as soon as that many have closed,
    they go within one timer tick; a quiet process, whose full collections walk every live connection
    (100-200 ms at 500 connections), still does one only every full_every-th time."""

    def __init__(
        self,
        *,
        trim: Callable[[], object],
        full_every: int,
        closed: Callable[[], int] = lambda: 0,
        full_after_closed: int = 200,
    ) -> None:
        self.trim = trim
        self.full_every = max(1, full_every)
        self.closed = closed
        self.full_after_closed = full_after_closed
        self.runs = 0
        self._closed_at_full = 0

    def __call__(self) -> None:
        self.runs += 1
        closed = self.closed()
        if self.runs % self.full_every == 0 or closed - self._closed_at_full >= self.full_after_closed:
            self._closed_at_full = closed
            gc.collect(2)
        else:
            gc.collect(1)
        self.trim()


class ClosedSockets:
    """WebSocket connections closed in this process (counted by the ReapingServer), for the Collector."""

    count = 0


def gc_tune(*, trim_interval_s: float, full_interval_s: float) -> None:
    """Automatic collection off; freeze once running; collect and trim on the reactor's timer."""
    from twisted.internet import reactor, task

    gc.disable()
    reactor.callWhenRunning(gc.freeze)
    collector = Collector(
        trim=heap_trimmer(),
        full_every=round(full_interval_s / trim_interval_s),
        closed=lambda: ClosedSockets.count,
    )
    task.LoopingCall(collector).start(trim_interval_s, now=False)


REAP_INTERVAL_S = 0.1


def reaping_server_class(*, interval_s: float) -> type:
    """Daphne's Server, its reaper of finished connections run every interval_s instead of every second.

    Daphne keeps every finished request in its connection table until application_checker, which it
    runs once a second, removes it; at 4,000 cached pages a second that one call freed 4,000 requests'
    objects at once and held the event loop for 30-40 ms, every second: what set bench.pages' p99
    (found with a stall sampler). Run ten times as often, each call has a tenth of the work. It also
    counts closed WebSockets for the Collector. Public names only: the methods daphne's protocols and
    reactor call, its CLI's ``server_class`` hook, and Twisted's getDelayedCalls() and
    DelayedCall.reset() to bring forward the second daphne schedules itself.
    """
    from daphne.server import Server
    from twisted.internet import reactor as installed

    reactor: Any = installed  # Twisted's zope interfaces read as unbound functions to mypy

    from daphne.ws_protocol import WebSocketProtocol

    class ReapingServer(Server):  # type: ignore[misc]
        def protocol_disconnected(self, protocol: Any) -> None:
            super().protocol_disconnected(protocol)
            if isinstance(protocol, WebSocketProtocol):
                ClosedSockets.count += 1

        def application_checker(self) -> None:
            super().application_checker()  # reaps, then schedules itself again in one second
            for call in reactor.getDelayedCalls():
                if call.active() and getattr(call, "func", None) == self.application_checker:
                    call.reset(interval_s)

    return ReapingServer


def main() -> None:
    import daphne.server  # noqa: F401 (installs the asyncio reactor that daphne runs on)
    from daphne.cli import CommandLineInterface

    from config.env import env_float

    gc_tune(
        trim_interval_s=env_float("WEB_TRIM_INTERVAL_S", 5.0, minimum=0.5),
        full_interval_s=env_float("WEB_GC_INTERVAL_S", 30.0, minimum=1.0),
    )
    stall_ms = env_float("WEB_STALL_REPORT_MS", 0.0, minimum=0.0)
    if stall_ms:
        from config.stalls import stall_sampler_start

        stall_sampler_start(threshold_s=stall_ms / 1000)
    CommandLineInterface.server_class = reaping_server_class(
        interval_s=env_float("WEB_REAP_INTERVAL_S", REAP_INTERVAL_S, minimum=0.01)
    )
    sys.argv[0] = "daphne"
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
