"""The web process: daphne with this project's garbage-collection policy.

    python -m config.web [daphne's arguments] config.asgi:application

Daphne keeps each finished request's objects until its reaper runs (once a second; here every 0.1 s,
reaping_server_class), so at thousands of requests a second they outlive the young generations, and
automatic collections (full ones
measured at 150-250 ms) stalled every request in flight: they set bench.pages' p99. Those objects
are freed by reference counting when daphne lets go, so in the web process automatic collection is
off: once the server runs, start-up objects are frozen out of collections, and the reactor collects
the little cyclic garbage there is on the reactor (no thread): the young generations right after each
run of daphne's reaper (every 0.1 s: each walks only what arrived since and still lives, a few ms even
in a storm of connections), everything every WEB_GC_INTERVAL_S seconds. A full collection walks every
object that outlived a young one, chiefly the live connections': measured at 100-200 ms with 500
WebSocket connections a process, a pause every client of the process shares, so it stays rare. It is
what frees the cycles a closed connection leaves behind (its task's exception and traceback) when the
connection outlived a young collection, so one also runs at the next tick once many WebSockets have
closed (Collector). Every WEB_TRIM_INTERVAL_S seconds the heap's free pages go
back to the system. Only this launcher does it: importing config.asgi (tests, other
tools) leaves a process's garbage collection alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys
import time
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
    """Called right after each run of daphne's reaper (every 0.1 s): collect the young generations, which
    hold only what was allocated since the previous call and is still alive, so each call is short however
    many objects arrived at once. A storm of 1,000 WebSocket connections (about 300,000 objects) walked by a
    collection every 5 s held the loop 60-140 ms; walked in slices every 0.1 s, a few ms each. Right after
    the reaper, the requests it just let go are gone: on its own 0.2 s timer a collection walked a tenth of a
    second's finished requests still in daphne's table, 3 ms on average and up to 12 at 5,500 cached
    pages a second (bench.pages), where every request in flight waits for it. Every
    full_interval_s, or once `full_after_closed` WebSockets have closed since the last full collection,
    collect everything instead; every trim_interval_s, hand the heap's free pages back to the system.
    What a burst's frames and buffers took is freed by reference counting but, without the trim, kept
    by the allocator: RSS stayed at its burst peak (bench.live --burst).

    A closed WebSocket leaves cycles (its task's exception and traceback) that only a full collection
    frees: after bench.live's storm of 500 connections and drops, RSS stayed 10-25 MB over its bound
    until the next timed full collection, up to 30 s later. Collected as soon as that many have closed,
    they go within one timer tick; so do those of a smaller storm (at least `settle_closed`) once it is
    over (no WebSocket closed for `settle_s`): the last 100-200 of bench.live's storm waited for the timer.
    A quiet process, whose full collections walk every live connection (100-200 ms at 500 connections),
    still does one only every full_interval_s."""

    def __init__(
        self,
        *,
        trim: Callable[[], object],
        trim_interval_s: float,
        full_interval_s: float,
        closed: Callable[[], int] = lambda: 0,
        full_after_closed: int = 200,
        settle_closed: int = 50,
        settle_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trim = trim
        self.trim_interval_s = trim_interval_s
        self.full_interval_s = full_interval_s
        self.closed = closed
        self.full_after_closed = full_after_closed
        self.settle_closed = settle_closed
        self.settle_s = settle_s
        self.clock = clock
        self._closed_at_full = self._closed_last = 0
        self._full_at = self._trimmed_at = self._closed_changed_at = clock()

    def __call__(self) -> None:
        now = self.clock()
        closed = self.closed()
        if closed != self._closed_last:
            self._closed_last, self._closed_changed_at = closed, now
        since_full = closed - self._closed_at_full
        storm_over = since_full >= self.settle_closed and now - self._closed_changed_at >= self.settle_s
        if now - self._full_at >= self.full_interval_s or since_full >= self.full_after_closed or storm_over:
            self._closed_at_full, self._full_at = closed, now
            gc.collect(2)
        else:
            gc.collect(1)
        if now - self._trimmed_at >= self.trim_interval_s:
            self._trimmed_at = now
            self.trim()


class ClosedSockets:
    """WebSocket connections closed in this process (counted by the ReapingServer), for the Collector."""

    count = 0


def gc_tune(*, trim_interval_s: float, full_interval_s: float) -> Collector:
    """Automatic collection off; freeze once running. Returns the Collector, for the reaper to call."""
    from twisted.internet import reactor

    gc.disable()
    reactor.callWhenRunning(gc.freeze)
    return Collector(
        trim=heap_trimmer(),
        trim_interval_s=trim_interval_s,
        full_interval_s=full_interval_s,
        closed=lambda: ClosedSockets.count,
    )


REAP_INTERVAL_S = 0.1


def reaping_server_class(
    *, interval_s: float, access_log: bool = True, after_reap: Callable[[], object] | None = None
) -> type:
    """Daphne's Server, its reaper of finished connections run every interval_s instead of every second.

    Daphne keeps every finished request in its connection table until application_checker, which it
    runs once a second, removes it; at 4,000 cached pages a second that one call freed 4,000 requests'
    objects at once and held the event loop for 30-40 ms, every second: what set bench.pages' p99
    (found with a stall sampler). Run ten times as often, each call has a tenth of the work. It also
    counts closed WebSockets for the Collector, and calls after_reap (the Collector) once each run has
    let the finished requests go. Public names only: the methods daphne's protocols and
    reactor call, its CLI's ``server_class`` hook, and Twisted's getDelayedCalls() and
    DelayedCall.reset() to bring forward the second daphne schedules itself.

    Without access_log it writes none: in production the nginx edge writes one per request (JSON, with
    the client's address), and daphne's, formatted and written on the event loop for every request, cost
    its cached pages about 4 % of their CPU. Twisted's own access log, which daphne sends to nowhere
    (verbosity below 2) or duplicates its own with, is switched off either way: each request's line was
    formatted and published only to be dropped (another 3 %).
    """
    from daphne.server import Server
    from twisted.internet import reactor as installed

    reactor: Any = installed  # Twisted's zope interfaces read as unbound functions to mypy

    from daphne.ws_protocol import WebSocketProtocol

    class ReapingServer(Server):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if not access_log:
                kwargs["action_logger"] = None
            super().__init__(*args, **kwargs)
            reactor.callWhenRunning(self.twisted_access_log_off)

        def twisted_access_log_off(self) -> None:
            # run() has made the factory and started listening (startFactory opened the log) by now.
            factory = getattr(self, "http_factory", None)
            if factory is not None:
                factory.logFile = None  # HTTPFactory.log() formats nothing without one

        def protocol_disconnected(self, protocol: Any) -> None:
            super().protocol_disconnected(protocol)
            if isinstance(protocol, WebSocketProtocol):
                ClosedSockets.count += 1

        def application_checker(self) -> None:
            super().application_checker()  # reaps, then schedules itself again in one second
            if after_reap is not None:
                after_reap()
            for call in reactor.getDelayedCalls():
                if call.active() and getattr(call, "func", None) == self.application_checker:
                    call.reset(interval_s)

    return ReapingServer


def main() -> None:
    import daphne.server  # noqa: F401 (installs the asyncio reactor that daphne runs on)
    from daphne.cli import CommandLineInterface

    from config.env import env_bool, env_float

    collector = gc_tune(
        trim_interval_s=env_float("WEB_TRIM_INTERVAL_S", 5.0, minimum=0.5),
        full_interval_s=env_float("WEB_GC_INTERVAL_S", 30.0, minimum=1.0),
    )
    stall_ms = env_float("WEB_STALL_REPORT_MS", 0.0, minimum=0.0)
    if stall_ms:
        from config.stalls import stall_sampler_start

        stall_sampler_start(threshold_s=stall_ms / 1000)
    CommandLineInterface.server_class = reaping_server_class(
        interval_s=env_float("WEB_REAP_INTERVAL_S", REAP_INTERVAL_S, minimum=0.01),
        # An --access-log given on the command line is honoured whatever the environment says.
        access_log=env_bool("WEB_ACCESS_LOG", False) or any(a.startswith("--access-log") for a in sys.argv[1:]),
        after_reap=collector,
    )
    sys.argv[0] = "daphne"
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
