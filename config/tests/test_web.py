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
    web.Collector(trim=web.heap_trimmer(), full_every=6)()  # a young collection, then the trim
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


def test_a_full_collection_follows_many_closed_websockets_and_otherwise_waits_its_turn():
    generations: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            generations.append(info["generation"])

    closed = [0]
    collector = web.Collector(trim=lambda: None, full_every=6, closed=lambda: closed[0], full_after_closed=200)
    gc.callbacks.append(seen)
    try:
        collector()  # nothing closed: young
        closed[0] = 199
        collector()  # not yet
        closed[0] = 450  # a storm of connections and drops
        collector()
        collector()  # nothing more closed since that full one
    finally:
        gc.callbacks.remove(seen)
    assert generations == [1, 1, 2, 1]


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
