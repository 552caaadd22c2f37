"""Requests that reach Django run on pooled threads, not on a new thread each (config/handler.py)."""

from __future__ import annotations

import threading

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync
from channels.testing import HttpCommunicator
from django.core.signals import request_finished

from config.handler import PooledASGIHandler

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


class _Threads:
    """The thread each request's thread-sensitive work ran on (request_finished runs there), by name: a new
    thread may be given the ident of one that has ended, never its name (each executor numbers its own)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, **_: object) -> None:
        self.seen.append(threading.current_thread().name)


async def _get(app: PooledASGIHandler, path: str = "/healthz") -> int:
    communicator = HttpCommunicator(app, "GET", path, headers=[(b"host", b"testserver")])
    response = await communicator.get_response(timeout=10)
    await communicator.wait(timeout=10)  # the request's end (response.close(), request_finished) included
    return int(response["status"])


async def test_successive_requests_reuse_a_pooled_thread_instead_of_starting_one_each():
    app, threads = PooledASGIHandler(threads=2), _Threads()
    request_finished.connect(threads, weak=False)
    try:
        statuses = [await _get(app) for _ in range(5)]
    finally:
        request_finished.disconnect(threads)
    assert statuses == [200] * 5
    assert len(set(threads.seen)) == 1, "one warm thread served them all"
    assert threads.seen[0] != threading.current_thread().name  # and not the event loop's
    assert app.pool.overflow == 0


async def test_with_every_pooled_thread_busy_a_request_is_served_django_s_own_way():
    app, threads = PooledASGIHandler(threads=1), _Threads()
    borrowed = app.pool.take()  # the only one, as if a slow request held it
    request_finished.connect(threads, weak=False)
    try:
        assert await _get(app) == 200
        assert await _get(app) == 200
    finally:
        request_finished.disconnect(threads)
        assert borrowed is not None
        app.pool.give(borrowed)
    assert app.pool.overflow == 2
    assert len(set(threads.seen)) == 2, "Django's own way: a new thread per request"


async def test_a_request_runs_its_middleware_and_view_in_one_hop_to_its_thread(monkeypatch):
    """Django's async middleware chain goes between the event loop and the request thread for the
    middleware around WhiteNoise (sync only) and for each MiddlewareMixin's process_request and
    process_response: a dozen hops for one cached API answer, each a wait for the GIL."""
    hops = [0]
    to_thread, to_loop = SyncToAsync.__call__, AsyncToSync.__call__

    async def counted_to_thread(self: SyncToAsync, *args: object, **kwargs: object) -> object:
        hops[0] += 1
        return await to_thread(self, *args, **kwargs)

    def counted_to_loop(self: AsyncToSync, *args: object, **kwargs: object) -> object:
        hops[0] += 1
        return to_loop(self, *args, **kwargs)

    app = PooledASGIHandler(threads=1)
    monkeypatch.setattr(SyncToAsync, "__call__", counted_to_thread)
    monkeypatch.setattr(AsyncToSync, "__call__", counted_to_loop)
    assert await _get(app, "/api/v1/brokers") == 200
    # request_started's receivers, the middleware chain with the view, and response.close().
    assert hops[0] <= 3, hops[0]
