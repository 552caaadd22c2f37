"""The hub's Redis subscription, read in a thread of its own.

Every daphne process reads every published quote. Read on the event loop, the subscription was read
once per loop turn, at most one socket read's worth (256 KB, about a thousand quotes) a turn: when
something else held the loop (a storm of handshakes and snapshots during a burst), Redis's output
buffer to that process grew to megabytes, seconds of quotes, and the process then worked through them
oldest first, sending clients quotes that newer ones had already replaced (bench.live --burst).

Here a thread blocks in recv() (the GIL is released there) and parses replies as they come; the event
loop takes everything read so far in one go, so after a busy spell the hub conflates all of it to the
newest quote per broker and instrument at once. The thread touches nothing of the hub: it appends to a
deque (thread-safe) and wakes the loop with call_soon_threadsafe, once per batch.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from common.redis import redis_connection

logger = logging.getLogger(__name__)

Batch = list[tuple[str, str]]


class SubscriptionReader:
    """One pattern subscription on one connection, read by one thread; made anew for each reconnect.

    `subscribed` resolves when Redis confirms the subscription; `ended` when the thread stops, with the
    error that stopped it. close() (from the loop) stops it: nothing is delivered after it returns.
    """

    def __init__(
        self,
        *,
        url: str,
        pattern: str,
        deliver: Callable[[Batch], None],
        loop: asyncio.AbstractEventLoop,
        connect_timeout_s: float,
    ) -> None:
        self.pattern = pattern
        self.deliver = deliver
        self.loop = loop
        self.subscribed: asyncio.Future[None] = loop.create_future()
        self.ended: asyncio.Future[None] = loop.create_future()
        self._conn: Any = redis_connection(
            url=url, socket_timeout=None, socket_connect_timeout=connect_timeout_s, decode_responses=True
        )
        self._queue: collections.deque[tuple[str, str]] = collections.deque()
        self._scheduled = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="live-hub-redis", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def waiting(self) -> int:
        """Messages read but not yet taken by the event loop: how far the loop is behind Redis."""
        return len(self._queue)

    def close(self) -> None:
        """Stop delivering and end the thread: shutting the socket down wakes its blocked recv()."""
        self._closed = True
        self._queue.clear()
        # redis-py's disconnect() shuts the socket down before closing it, which ends a recv() blocked
        # in the thread; the thread's next read then fails and it stops.
        with contextlib.suppress(Exception):
            self._conn.disconnect()

    # -- the thread --------------------------------------------------------------------------------
    def _run(self) -> None:
        conn = self._conn
        error: BaseException | None = None
        try:
            conn.connect()
            conn.send_command("PSUBSCRIBE", self.pattern)
            reply = conn.read_response()
            if not (isinstance(reply, list) and reply and reply[0] == "psubscribe"):
                raise ConnectionError(f"Redis answered the subscription with {reply!r}")
            self._to_loop(_resolve, self.subscribed)
            queue, read = self._queue, conn.read_response
            while not self._closed:
                reply = read()
                if isinstance(reply, list) and len(reply) == 4 and reply[0] == "pmessage":
                    queue.append((reply[2], reply[3]))
                    if not self._scheduled:
                        self._scheduled = True
                        self._to_loop(self._take)
        except BaseException as exc:
            error = exc
        finally:
            with contextlib.suppress(Exception):
                conn.disconnect()
            self._to_loop(self._end, error)

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self.loop.call_soon_threadsafe(callback, *args)

    # -- the event loop ----------------------------------------------------------------------------
    def _take(self) -> None:
        # Reset before draining: anything the thread appends from now on schedules another take.
        self._scheduled = False
        queue = self._queue
        batch = [queue.popleft() for _ in range(len(queue))]
        if batch and not self._closed:
            self.deliver(batch)

    def _end(self, error: BaseException | None) -> None:
        if not self.subscribed.done():  # it never subscribed: the error goes to whoever awaits that
            self.subscribed.set_exception(error or ConnectionError("the subscription ended before Redis confirmed it"))
            self.subscribed.exception()  # retrieved: nobody need await it after a timeout
            error = None
        if not self.ended.done():
            if error is None or self._closed:
                self.ended.set_result(None)
            else:
                self.ended.set_exception(error)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
