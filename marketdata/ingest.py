"""Ingestor runtime: feeds -> validation -> live path (pub/sub + latest hashes) and durable path (stream).

Both paths are written once per event-loop tick in one Redis pipeline: each accepted quote is
serialised once to JSON for the live path, and all of a tick's quotes for a shard go into ONE stream
entry. Nothing here touches the database except feed status history and rejection counters, which are
written from a worker thread so the quote path never waits on PostgreSQL.

If Redis is unavailable, durable batches are kept (in order) and retried; when the backlog reaches
`max_backlog` quotes the feeds are paused rather than dropping accepted quotes. Live-path messages
of a failed flush are dropped: they are a real-time view, and the next quote supersedes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack  # type: ignore[import-untyped]
from redis.exceptions import RedisError

from common.redis import redis_async_new
from common.ticks import (
    FeedEventKind,
    FeedStatus,
    Quote,
    StatusEvent,
    depth_message,
    now_us,
    quote_live_message,
    status_message,
)
from marketdata import keys
from marketdata.codec import WireQuote, entry_encode, wire
from marketdata.feeds.base import FeedAdapter, FeedDisconnected
from marketdata.validation import QuoteValidator, Reason

logger = logging.getLogger(__name__)

# One call per chunk of live messages: ARGV[1] is a msgpack array of (channel, field, json) triples; each
# message is published on its channel and stored under its field of the latest-quote hash (KEYS[1]).
# Packing the whole chunk in C (msgpack) instead of passing 3 arguments per quote matters: redis-py's
# asyncio client encodes every command argument in Python, which cost more than all of Redis's work.
_PUBLISH_MANY = """
local a = cmsgpack.unpack(ARGV[1])
local h = {}
for i = 1, #a, 3 do
    redis.call('PUBLISH', a[i], a[i + 2])
    h[#h + 1] = a[i + 1]
    h[#h + 1] = a[i + 2]
end
if #h > 0 then redis.call('HSET', KEYS[1], unpack(h)) end
return #a / 3
"""
PUBLISH_CHUNK = 1000  # quotes per call (Lua's unpack() takes at most a few thousand values)

StatusSink = Callable[[str, FeedStatus, int, str], None]  # broker, status, at µs, detail (runs in a thread)
RejectSink = Callable[[dict[tuple[str, str], int], int], None]  # counts, at µs (runs in a thread)


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0.5, 1.5) x min(cap, base * 2**attempt)."""
    r = rng or random
    return float(min(cap, base * (2**attempt)) * (0.5 + r.random()))


@dataclass
class IngestStats:
    accepted: int = 0
    rejected: int = 0
    flushes: int = 0
    flush_errors: int = 0
    reconnects: int = 0
    durable_written: int = 0
    live_dropped: int = 0
    status_changes: list[tuple[str, str, int]] = field(default_factory=list)


class Ingestor:
    def __init__(
        self,
        *,
        redis_url: str,
        prefix: str,
        shards: int,
        validator: QuoteValidator,
        status_sink: StatusSink | None = None,
        reject_sink: RejectSink | None = None,
        stale_after_s: float = 5.0,
        max_backlog: int = 2_000_000,
        live_path: bool = True,
    ) -> None:
        self.redis = redis_async_new(url=redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.prefix = prefix
        self.shards = shards
        self.validator = validator
        self.status_sink = status_sink
        self.reject_sink = reject_sink
        self.stale_after_us = int(stale_after_s * 1e6)
        self.max_backlog = max_backlog
        self.live_path = live_path
        self.producer = uuid.uuid4().hex[:12]
        self.stats = IngestStats()
        self._batch_no = [0] * shards
        self._pending: list[list[WireQuote]] = [[] for _ in range(shards)]
        self._backlog: deque[tuple[int, int, list[WireQuote]]] = deque()  # (shard, batch no, quotes) not yet in Redis
        self._backlog_quotes = 0
        self._live: list[str] = []  # flat: channel, field, json, channel, field, json, ...
        self._depth: dict[str, str] = {}
        self._flush_scheduled = False
        self._flush_lock = asyncio.Lock()
        self._flushed = asyncio.Event()
        self._status: dict[str, tuple[FeedStatus, int]] = {}
        self._last_seen: dict[str, int] = {}
        self._shard_of: dict[str, int] = {}
        self._channels: dict[str, str] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._rejects_reported: Counter[tuple[str, str]] = Counter()
        self._publish_many = self.redis.register_script(_PUBLISH_MANY)

    # -- quote path --------------------------------------------------------------------------------
    def accept(self, quote: Quote) -> bool:
        checked = self.validator.check(quote)
        if isinstance(checked, Reason):
            self.stats.rejected += 1
            return False
        q = checked
        ts_ingest = now_us()
        self.stats.accepted += 1
        self._last_seen[q.broker] = ts_ingest
        inst = q.instrument
        shard = self._shard_of.get(inst)
        if shard is None:
            shard = self._shard_of[inst] = keys.shard_of(inst, self.shards)
            self._channels[inst] = keys.live_channel(inst, self.prefix)
        self._pending[shard].append(wire(q, ts_ingest))
        if self.live_path:
            fld = f"{q.broker}:{inst}"
            self._live += (self._channels[inst], fld, quote_live_message(q, ts_ingest))
            if q.depth is not None:
                self._depth[fld] = depth_message(q.depth, q.ts_broker)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._spawn_flush)
        return True

    def _spawn_flush(self) -> None:
        self._flush_scheduled = False
        task = asyncio.ensure_future(self.flush())
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def flush(self) -> None:
        """Move this tick's quotes into Redis: one pipeline, one stream entry per shard."""
        async with self._flush_lock:
            for shard, quotes in enumerate(self._pending):
                if quotes:
                    self._batch_no[shard] += 1
                    self._backlog.append((shard, self._batch_no[shard], quotes))
                    self._backlog_quotes += len(quotes)
                    self._pending[shard] = []
            live, self._live = self._live, []
            depth, self._depth = self._depth, {}
            if not self._backlog and not live:
                return
            pipe = self.redis.pipeline(transaction=False)
            batches = list(self._backlog)
            for shard, batch_no, quotes in batches:
                pipe.xadd(keys.tick_stream(shard, self.prefix), entry_encode(self.producer, batch_no, quotes))
            if live:
                latest = keys.latest_hash(self.prefix)
                step = 3 * PUBLISH_CHUNK
                for i in range(0, len(live), step):
                    payload = msgpack.packb(live[i : i + step], use_bin_type=True)
                    await self._publish_many(keys=[latest], args=[payload], client=pipe)
            if depth:
                pipe.hset(keys.depth_hash(self.prefix), mapping=depth)
            try:
                await pipe.execute()
            except (RedisError, OSError, AttributeError) as exc:  # redis-py: AttributeError on a torn connection
                # Durable batches stay in the backlog and are re-sent (the aggregator drops duplicates
                # by producer batch number); the live view just moves on.
                self.stats.flush_errors += 1
                self.stats.live_dropped += len(live) // 3
                if self.stats.flush_errors % 100 == 1:
                    logger.warning("Redis flush failed (%s); %d quotes held for retry", exc, self._backlog_quotes)
                return
            for _ in batches:
                _, _, quotes = self._backlog.popleft()
                self._backlog_quotes -= len(quotes)
                self.stats.durable_written += len(quotes)
            self.stats.flushes += 1
            self._flushed.set()

    @property
    def backlog(self) -> int:
        return self._backlog_quotes + sum(len(p) for p in self._pending)

    # -- feed status -------------------------------------------------------------------------------
    def _set_status(self, broker: str, status: FeedStatus, at: int, detail: str) -> None:
        current = self._status.get(broker)
        if current is not None and current[0] == status:
            return
        self._status[broker] = (status, at)
        self.stats.status_changes.append((broker, str(status), at))
        logger.info("feed %s is %s (%s)", broker, status, detail)
        msg = status_message(broker, status, at)
        task = asyncio.ensure_future(self._publish_status(broker, msg))
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)
        if self.status_sink is not None:
            sink = self.status_sink
            fut = asyncio.get_running_loop().run_in_executor(None, sink, broker, status, at, detail)
            fut.add_done_callback(_log_failure)

    async def _publish_status(self, broker: str, msg: str) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(keys.status_hash(self.prefix), broker, msg)
            pipe.publish(keys.status_channel(self.prefix), msg)
            await pipe.execute()
        except (RedisError, OSError, AttributeError) as exc:
            logger.warning("could not publish status of %s: %s", broker, exc)

    def status_of(self, broker: str) -> FeedStatus | None:
        s = self._status.get(broker)
        return s[0] if s else None

    async def _watch_staleness(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(min(1.0, self.stale_after_us / 4e6))
            now = now_us()
            for broker, (status, _since) in list(self._status.items()):
                last = self._last_seen.get(broker, 0)
                if status == FeedStatus.UP and now - last > self.stale_after_us:
                    self._set_status(broker, FeedStatus.STALE, now, "no quotes or heartbeats")
            self._report_rejections()

    def _report_rejections(self) -> None:
        counts = Counter(self.validator.by_broker)
        delta = counts - self._rejects_reported
        if not delta:
            return
        self._rejects_reported = counts
        if self.reject_sink is not None:
            fut = asyncio.get_running_loop().run_in_executor(None, self.reject_sink, dict(delta), now_us())
            fut.add_done_callback(_log_failure)
        task = asyncio.ensure_future(self._publish_rejections(dict(delta)))
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def _publish_rejections(self, delta: dict[tuple[str, str], int]) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            for (broker, reason), n in delta.items():
                pipe.hincrby(keys.rejects_hash(self.prefix), f"{broker}:{reason}", n)
            await pipe.execute()
        except (RedisError, OSError, AttributeError):
            pass  # the database copy (reject_sink) is the record; this is a live convenience

    # -- feeds -------------------------------------------------------------------------------------
    async def run_feed(self, adapter: FeedAdapter, *, rng: random.Random | None = None) -> None:
        """Run one feed forever: reconnect with backoff and jitter, never let one feed's error escape."""
        broker = adapter.broker
        attempt = 0
        while not self._stop.is_set():
            try:
                async for item in adapter.connect():
                    if isinstance(item, StatusEvent):
                        self._on_event(item)
                        if item.kind == FeedEventKind.CONNECTED:
                            attempt = 0
                        continue
                    self.accept(item)
                    if self._backlog_quotes >= self.max_backlog:
                        await self._wait_backlog()
                    if self.status_of(broker) != FeedStatus.UP:
                        self._set_status(broker, FeedStatus.UP, now_us(), "quotes flowing")
                    if self._stop.is_set():
                        return
                detail = "feed ended"
            except FeedDisconnected as exc:
                detail = str(exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or bad data in an adapter must not kill the ingestor
                logger.exception("feed %s failed", broker)
                detail = f"error: {exc!r}"[:200]
            self._set_status(broker, FeedStatus.DOWN, now_us(), detail)
            self.validator.reset_sequence(broker)
            self.stats.reconnects += 1
            delay = backoff_delay(attempt, rng=rng)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)

    def _on_event(self, event: StatusEvent) -> None:
        self._last_seen[event.broker] = now_us()
        if event.kind == FeedEventKind.CONNECTED:
            self.validator.reset_sequence(event.broker)
            self._set_status(event.broker, FeedStatus.UP, event.at, event.detail or "connected")
        elif event.kind == FeedEventKind.DISCONNECTED:
            self._set_status(event.broker, FeedStatus.DOWN, event.at, event.detail or "disconnected")
        elif self.status_of(event.broker) == FeedStatus.STALE:
            self._set_status(event.broker, FeedStatus.UP, event.at, "heartbeat")

    async def _wait_backlog(self) -> None:
        while self._backlog_quotes >= self.max_backlog and not self._stop.is_set():
            self._flushed.clear()
            await self.flush()
            if self._backlog_quotes >= self.max_backlog:
                await asyncio.sleep(0.2)

    async def run(self, adapters: list[FeedAdapter], *, until: asyncio.Event | None = None) -> None:
        watcher = asyncio.ensure_future(self._watch_staleness())
        feeds = [asyncio.ensure_future(self.run_feed(a)) for a in adapters]
        try:
            await (until.wait() if until is not None else asyncio.gather(*feeds))
        finally:
            await self.stop(feeds + [watcher])

    async def stop(self, tasks: list[asyncio.Task[Any]] | None = None) -> None:
        self._stop.set()
        for t in tasks or []:
            t.cancel()
        await asyncio.gather(*(tasks or []), return_exceptions=True)
        await asyncio.gather(*list(self._tasks), return_exceptions=True)  # flushes already scheduled
        # Do not lose what was accepted: try hard to get the backlog into Redis before leaving.
        for attempt in range(20):
            await self.flush()
            if not self.backlog:
                break
            await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        if self.backlog:
            logger.error("stopping with %d accepted quotes not written to Redis", self.backlog)
        self._report_rejections()
        await self.redis.aclose()


def _log_failure(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        logger.error("status/rejection write failed: %r", fut.exception())
