"""Personal messages to a logged-in trader's open WebSockets (alert toasts), apart from the quote fan-out.

Whoever has something for one user publishes a JSON text with a "type" on `user_channel(user_id)`; each
daphne process holds ONE pub/sub connection, pattern-subscribed to every user's channel, and hands the text
to that user's consumers in this process. The volume is tiny (a few messages per user per hour), so the
quote hub's batching and conflation are not needed here.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from django.conf import settings

from common.redis import redis_async_new

logger = logging.getLogger(__name__)


def user_channel(user_id: int, prefix: str | None = None) -> str:
    return f"{prefix if prefix is not None else settings.CACHE_KEY_PREFIX}:notify:user:{user_id}"


class Receiver(Protocol):
    async def deliver(self, item: str) -> None: ...


class UserNotifier:
    def __init__(self, *, redis_url: str, prefix: str) -> None:
        self.redis_url = redis_url
        self.head = user_channel(0, prefix)[: -len("0")]
        self.users: dict[int, set[Receiver]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def attach(self, user_id: int, receiver: Receiver) -> None:
        self.users.setdefault(user_id, set()).add(receiver)
        if self._task is None:
            self._ready.clear()
            self._task = asyncio.ensure_future(self._run())
        await asyncio.wait_for(self._ready.wait(), timeout=5)

    async def detach(self, user_id: int, receiver: Receiver) -> None:
        members = self.users.get(user_id)
        if members is not None:
            members.discard(receiver)
            if not members:
                del self.users[user_id]
        if not self.users and self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        redis: Any = redis_async_new(url=self.redis_url, decode_responses=True, socket_timeout=None)
        pubsub = redis.pubsub()
        try:
            await pubsub.psubscribe(self.head + "*")
            while True:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=None)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("user notifications lost Redis; retrying")
                    await asyncio.sleep(1.0)
                    continue
                if message is None:
                    continue
                if message["type"] == "psubscribe":
                    self._ready.set()
                elif message["type"] == "pmessage":
                    await self._on_message(message["channel"], message["data"])
        finally:
            await pubsub.aclose()
            await redis.aclose()

    async def _on_message(self, channel: str, data: str) -> None:
        try:
            user_id = int(channel[len(self.head) :])
        except ValueError:
            return
        for receiver in list(self.users.get(user_id, ())):
            try:
                await receiver.deliver(data)
            except Exception:
                logger.exception("could not deliver a notification")


_notifiers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, UserNotifier] = weakref.WeakKeyDictionary()


def notifier_get() -> UserNotifier:
    """The notifier of the running event loop (one per daphne process)."""
    loop = asyncio.get_running_loop()
    found = _notifiers.get(loop)
    if found is None:
        found = _notifiers[loop] = UserNotifier(redis_url=settings.REDIS_URL, prefix=settings.CACHE_KEY_PREFIX)
    return found
