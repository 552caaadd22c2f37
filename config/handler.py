"""Django's ASGI handler: a pool of request threads instead of one new thread per request, and the
middleware run synchronously in one hop to that thread.

Django runs each ASGI request in a ThreadSensitiveContext, and asgiref gives each such context a
ThreadPoolExecutor of its own: every request that reaches Django starts a thread for its view and
another to join it when it ends. Thread.start() waits, on the event loop, until the new thread has run,
which means waiting for the GIL behind whatever renders: under load a stall sampler caught the loop held
20-120 ms at a time in Thread.start(), and with it every cached page and live client of the process.

Here a request borrows an idle single-thread executor from a pool (asgiref's public
ThreadSensitiveContext(executor=...), which runs one call at a time on one thread) and gives it back when
its response is sent, as a threaded WSGI server reuses its threads. When every pooled thread is busy, the
request goes Django's own way: nothing waits for a thread to come free.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class ExecutorPool:
    """Single-thread executors lent out one request at a time; the last returned is the next lent (warm)."""

    def __init__(self, *, size: int) -> None:
        self.size = size
        self._idle = [ThreadPoolExecutor(max_workers=1, thread_name_prefix="request") for _ in range(size)]
        self.overflow = 0  # requests that found every pooled thread busy

    def take(self) -> ThreadPoolExecutor | None:
        if self._idle:
            return self._idle.pop()
        self.overflow += 1
        return None

    def give(self, executor: ThreadPoolExecutor) -> None:
        self._idle.append(executor)


class PooledASGIHandler(ASGIHandler):
    def __init__(self, *, threads: int) -> None:
        super().__init__()
        self.pool = ExecutorPool(size=threads)

    def load_middleware(self, is_async: bool = False) -> None:
        """One synchronous middleware chain (every view of this site is synchronous), run by
        get_response_async() in one hop to the request's thread. Django's async chain hops to that thread
        and back for each MiddlewareMixin's process_request and process_response: with this site's
        fifteen middleware, a cached API answer took ~25 hops, each a wait for the GIL, and ran at 160
        requests a second (bench.api) though it costs 1.5 ms of CPU."""
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        return response

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        executor = self.pool.take() if scope["type"] == "http" else None
        if executor is None:
            await super().__call__(scope, receive, send)
            return
        try:
            # handle() awaits every task it starts, so nothing of this request outlives the context.
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.pool.give(executor)


def pooled_asgi_application() -> PooledASGIHandler:
    """get_asgi_application() with settings.WEB_REQUEST_THREADS pooled request threads."""
    import django
    from django.conf import settings

    django.setup(set_prefix=False)
    return PooledASGIHandler(threads=settings.WEB_REQUEST_THREADS)
