"""The web launcher's memory hygiene: after a burst, freed memory goes back to the system."""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

import pytest

from config import web


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc are Linux's")
def test_a_collection_hands_memory_freed_in_the_middle_of_the_heap_back_to_the_system():
    # As after a burst: many buffers (over pymalloc's 512 bytes, so from malloc), most freed, a few
    # still alive here and there, which keeps the heap from shrinking by itself.
    buffers = [bytes(1500) for _ in range(150_000)]
    keep = buffers[::200]
    del buffers
    before = _rss_mb()
    web.Collector(trim=web.heap_trimmer(), trim_interval_s=0, full_interval_s=30)()  # young, then the trim
    after = _rss_mb()
    assert before - after > 100, f"RSS {before:.0f} MB -> {after:.0f} MB"
    assert len(keep) == 750


def test_daphnes_reaper_of_finished_connections_runs_every_tenth_of_a_second():
    """At thousands of requests a second, a once-a-second reaper freed them all at once and held the
    event loop 30-40 ms each second (bench.pages' p99)."""
    import time

    from twisted.internet import reactor as installed

    reactor: Any = installed  # Twisted's zope interfaces read as unbound functions to mypy

    server_class = web.reaping_server_class(interval_s=web.REAP_INTERVAL_S)
    server = server_class(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    server.connections = {}  # what run() sets up
    server.application_checker()
    mine = [c for c in reactor.getDelayedCalls() if getattr(c, "func", None) == server.application_checker]
    try:
        assert len(mine) == 1, "exactly one next run: no chains piling up"
        assert mine[0].getTime() - time.time() <= web.REAP_INTERVAL_S + 0.05
    finally:
        for call in mine:
            call.cancel()


def _generations_collected(collector: web.Collector, steps: list[Any]) -> list[int]:
    """Run each step (a callable, or None for a plain call of the collector) and list what was collected."""
    generations: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            generations.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        for step in steps:
            if step is not None:
                step()
            collector()
    finally:
        gc.callbacks.remove(seen)
    return generations


def _clocked_collector(**options: Any) -> tuple[web.Collector, Any]:
    """A Collector on a clock and a count of closed WebSockets of the test's; at(t, closed) sets both."""
    now, closed = [0.0], [0]
    collector = web.Collector(
        trim=lambda: None,
        trim_interval_s=5,
        full_interval_s=30,
        closed=lambda: closed[0],
        clock=lambda: now[0],
        **options,
    )

    def at(t: float, total: int) -> Any:
        return lambda: (now.__setitem__(0, t), closed.__setitem__(0, total))

    return collector, at


def test_a_full_collection_follows_many_closed_websockets_and_otherwise_waits_its_turn():
    collector, at = _clocked_collector(full_after_closed=200, settle_closed=1000)
    # nothing closed: young; 199 closed: not yet; a storm of connections and drops: full; nothing since: young
    steps = [None, at(0.1, 199), at(0.2, 450), at(0.3, 450)]
    assert _generations_collected(collector, steps) == [1, 1, 2, 1]


def test_a_smaller_storm_of_closed_websockets_is_collected_once_it_is_over():
    collector, at = _clocked_collector(full_after_closed=200, settle_closed=50, settle_s=1.0)
    steps = [at(0.2, 60), at(0.4, 120), at(1.0, 120), at(1.5, 120), at(1.7, 120)]  # 120 closed, then none for 1 s
    steps += [at(2.0, 150), at(3.2, 150), at(3.4, 150)]  # 30 more: too few to be worth a full one
    assert _generations_collected(collector, steps) == [1, 1, 1, 2, 1, 1, 1, 1]


def test_every_call_collects_the_young_generations_and_everything_only_once_its_interval_has_passed():
    """Young collections every 0.1 s (after each reap): each walks only what arrived since the previous
    one, so a storm of connections is walked in slices (one walk every 5 s of 1,000 connections' objects
    held the loop 60-140 ms, bench.live's calm p99); the heap is trimmed and everything collected less often."""
    now = [0.0]
    trims: list[float] = []
    collector = web.Collector(
        trim=lambda: trims.append(now[0]), trim_interval_s=5, full_interval_s=30, clock=lambda: now[0]
    )

    def at(t: float) -> Any:
        return lambda: now.__setitem__(0, t)

    steps = [at(t) for t in (0.2, 0.4, 4.8, 5.0, 5.2, 10.2, 29.8, 30.0, 30.2)]
    assert _generations_collected(collector, steps) == [1, 1, 1, 1, 1, 1, 1, 2, 1]
    assert trims == [5.0, 10.2, 29.8]


def test_the_young_generations_are_collected_right_after_each_reap_once_finished_requests_are_gone():
    """On a timer of its own a collection walked the finished requests still waiting in daphne's table:
    3 ms on average, up to 12, at 5,500 cached pages a second."""
    from daphne.http_protocol import WebRequest
    from twisted.internet import reactor as installed

    reactor: Any = installed
    seen: list[int] = []
    server_class = web.reaping_server_class(
        interval_s=web.REAP_INTERVAL_S, after_reap=lambda: seen.append(len(server.connections))
    )
    server = server_class(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])

    class Done:
        def done(self) -> bool:
            return True

        def exception(self) -> None:
            return None

    finished = WebRequest.__new__(WebRequest)
    server.connections = {finished: {"application_instance": Done(), "disconnected": 1.0}}
    try:
        server.application_checker()
    finally:
        for call in reactor.getDelayedCalls():
            if getattr(call, "func", None) == server.application_checker:
                call.cancel()
    assert seen == [0], "called once, after the finished request was let go"


def test_the_web_server_counts_closed_websockets_not_http_requests():
    from daphne.http_protocol import WebRequest
    from daphne.ws_protocol import WebSocketProtocol

    server_class = web.reaping_server_class(interval_s=web.REAP_INTERVAL_S)
    server = server_class(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    socket, request = WebSocketProtocol.__new__(WebSocketProtocol), WebRequest.__new__(WebRequest)
    server.connections = {socket: {}, request: {}}
    before = web.ClosedSockets.count
    server.protocol_disconnected(request)
    server.protocol_disconnected(socket)
    assert web.ClosedSockets.count == before + 1


def test_the_web_server_writes_no_access_log_unless_asked_to():
    """The nginx edge writes one per request; daphne's cost cached pages about 4 % of their CPU."""
    logger = object()
    endpoints = ["tcp:port=0:interface=127.0.0.1"]
    quiet = web.reaping_server_class(interval_s=web.REAP_INTERVAL_S, access_log=False)
    assert quiet(application=None, endpoints=endpoints, action_logger=logger).action_logger is None
    loud = web.reaping_server_class(interval_s=web.REAP_INTERVAL_S, access_log=True)
    assert loud(application=None, endpoints=endpoints, action_logger=logger).action_logger is logger


def test_twisteds_own_access_log_is_switched_off_once_the_server_runs():
    """Daphne sends Twisted's log to nowhere, but Twisted still formatted each request's line first."""
    import io

    from daphne.http_protocol import HTTPFactory

    server_class = web.reaping_server_class(interval_s=web.REAP_INTERVAL_S)
    server = server_class(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    server.http_factory = HTTPFactory(server)  # what run() does
    written = io.StringIO()
    server.http_factory.logFile = written  # what startFactory() does (the Twisted log)
    server.twisted_access_log_off()
    server.http_factory.log(object())  # a request it would fail to format: never formatted
    assert written.getvalue() == ""
