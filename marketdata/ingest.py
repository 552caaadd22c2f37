"""Ingestor runtime: feeds -> validation -> live path (pub/sub + latest hashes) and durable path (stream).

Both paths are written once per event-loop tick in one Redis pipeline: each accepted quote is
serialised once to JSON for the live path, and all of a tick's quotes for a shard go into ONE stream
entry. Nothing here touches the database except feed status history and rejection counters, which are
written from one worker thread so the quote path never waits on PostgreSQL. Those writes are queued in
order and retried with backoff until PostgreSQL takes them: a database restart or outage delays them, it
does not lose them. With a write-ahead file each of them is also journalled beside it before it is tried
(marketdata/wal.py, DbWriteJournal), so a kill of the ingestor, during an outage or not, loses none either:
the next start writes what the journal still holds. The journal is written with a plain write() (a kill
cannot lose that), and fsynced too from the first failed write on, while the database is away.

If Redis is unavailable, durable batches are kept (in order) and retried; when the backlog reaches
`max_backlog` quotes the feeds are paused rather than dropping accepted quotes. With a write-ahead file
(`wal_path`, see marketdata/wal.py) a failed flush also appends the unconfirmed batches to that file and
fsyncs it, so a crash during a Redis outage loses nothing accepted: the next start sends them again. A
quote is durable (accepted for good) once Redis confirmed its batch or the file holds it; with Redis up the
file is not written at all. Live-path messages of a failed flush are dropped: they are a real-time view,
and the next quote supersedes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import IO, Any

import msgpack  # type: ignore[import-untyped]
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
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
from marketdata.wal import DbWrite, DbWriteJournal, WalBatch, WriteAheadLog, db_journal_path

logger = logging.getLogger(__name__)

# One call per chunk of live messages: ARGV[1] is a msgpack array of (channel, field, json) triples; each
# message is published on its channel and stored under its field of the latest-quote hash (KEYS[1]).
# Packing the whole chunk in C (msgpack) instead of passing 3 arguments per quote matters: redis-py's
# asyncio client encodes every command argument in Python, which cost more than all of Redis's work.
PUBLISH_MANY = """
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
# Journalled rejection writes, as (writer: the producer id of the process that counted them, its write's number,
# counts per (broker, reason)), all of one hour, and at µs (runs in a thread). The sink adds each write once:
# a write made again from the journal after a kill, whose commit had happened, is recognised by its number.
RejectSink = Callable[[list[tuple[str, int, dict[tuple[str, str], int]]], int], None]


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
    wal_written: int = 0  # quotes made durable in the write-ahead file (Redis unreachable)
    wal_replayed: int = 0  # quotes read back from it at start
    db_written: int = 0  # status and rejection writes that reached the database
    db_errors: int = 0  # failed attempts (retried with backoff)
    db_replayed: int = 0  # writes read back from the journal at start (not yet in the database then)
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
        wal_path: str | os.PathLike[str] | None = None,
        audit_path: str | os.PathLike[str] | None = None,
    ) -> None:
        # One quick retry (a pooled connection left dead by a Redis restart); beyond that flush() fails at once
        # and the batches go to the write-ahead file, instead of waiting out redis-py's default backoff.
        self.redis = redis_async_new(
            url=redis_url, socket_timeout=5, socket_connect_timeout=2, retry=AsyncRetry(NoBackoff(), 1)
        )
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
        # (producer, shard, batch no, quotes) not yet confirmed by Redis, oldest first; the first _in_wal of
        # them are in the write-ahead file.
        self._backlog: deque[WalBatch] = deque()
        self._backlog_quotes = 0
        self._in_wal = 0
        self.wal = WriteAheadLog(wal_path) if wal_path is not None else None
        # Test and audit hook: one JSON line per batch made ("batch", with counts per broker, instrument and
        # minute), confirmed by Redis ("ok") or made durable in the write-ahead file ("wal").
        self._audit: IO[str] | None = open(audit_path, "a", buffering=1) if audit_path is not None else None  # noqa: SIM115
        if self.wal is not None:
            replay = self.wal.read()
            if replay:
                self._backlog.extend(replay)
                self._in_wal = len(replay)
                self._backlog_quotes = self.stats.wal_replayed = sum(len(b[3]) for b in replay)
                logger.warning("%s: sending again %d quotes kept in an outage", self.wal.path, self._backlog_quotes)
        # Status and rejection writes, in order, retried until the database takes them (one thread: one connection);
        # with a write-ahead file each is journalled beside it first, and what a killed process left is queued again.
        self._db_queue: deque[DbWrite] = deque()
        self._db_seq = 0
        self._db_failing = False  # the last write failed: journal appends are fsynced until one succeeds
        self.db_journal = (
            DbWriteJournal(db_journal_path(wal_path))
            if wal_path is not None and (status_sink is not None or reject_sink is not None)
            else None
        )
        if self.db_journal is not None:
            pending = self.db_journal.read()
            if pending:
                self._db_queue.extend(pending)
                self._db_seq = pending[-1][0]
                self.stats.db_replayed = len(pending)
                logger.warning("%s: writing again %d database writes", self.db_journal.path, len(pending))
            elif self.db_journal.size:
                self.db_journal.clear()
        self._db_wake: asyncio.Event | None = None
        self._db_task: asyncio.Task[None] | None = None
        self._db_executor: ThreadPoolExecutor | None = None
        self._live: list[str] = []  # flat: channel, field, json, channel, field, json, ...
        self._depth: dict[str, str] = {}
        # Feeds of a broker's other accounts: their own latest hash, depth and channel (the live channels carry
        # feed accounts). Flat like _live: channel, field, json, ...
        self._account_live: list[str] = []
        self._account_depth: dict[str, str] = {}
        # (broker, account) feeds whose quotes go on the live channels although they carry an account: the
        # broker's feed account when its configuration names it (run(live=...)). Account 0 always does.
        self._live_feeds: set[tuple[str, int]] = set()
        self._flush_scheduled = False
        self._flush_lock = asyncio.Lock()
        self._flushed = asyncio.Event()
        self.at_work = asyncio.Event()  # set once a first batch is durable (start-up timing)
        self._status: dict[str, tuple[FeedStatus, int]] = {}
        self._last_seen: dict[str, int] = {}
        self._shard_of: dict[str, int] = {}
        self._channels: dict[str, str] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._rejects_reported: Counter[tuple[str, str]] = Counter()
        self._publish_many = self.redis.register_script(PUBLISH_MANY)

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
            if q.account and (q.broker, q.account) not in self._live_feeds:
                fld = keys.account_field(q.broker, inst, q.account)
                channel = keys.account_channel(inst, q.account, self.prefix)
                self._account_live += (channel, fld, quote_live_message(q, ts_ingest))
                if q.depth is not None:
                    self._account_depth[fld] = depth_message(q.depth, q.ts_broker)
            else:
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
                    batch = (self.producer, shard, self._batch_no[shard], quotes)
                    self._backlog.append(batch)
                    self._backlog_quotes += len(quotes)
                    self._pending[shard] = []
                    if self._audit is not None:
                        self._audit_batch(batch)
            live, self._live = self._live, []
            depth, self._depth = self._depth, {}
            account_live, self._account_live = self._account_live, []
            account_depth, self._account_depth = self._account_depth, {}
            if not self._backlog and not live and not account_live:
                return
            pipe = self.redis.pipeline(transaction=False)
            batches = list(self._backlog)
            for producer, shard, batch_no, quotes in batches:
                pipe.xadd(keys.tick_stream(shard, self.prefix), entry_encode(producer, batch_no, quotes))
            if live:
                latest = keys.latest_hash(self.prefix)
                step = 3 * PUBLISH_CHUNK
                for i in range(0, len(live), step):
                    payload = msgpack.packb(live[i : i + step], use_bin_type=True)
                    await self._publish_many(keys=[latest], args=[payload], client=pipe)
            if depth:
                pipe.hset(keys.depth_hash(self.prefix), mapping=depth)
            if account_live:
                # The alert process evaluates alerts on these accounts on their own quotes (alerts/evaluator.py).
                account_latest = keys.account_latest_hash(self.prefix)
                step = 3 * PUBLISH_CHUNK
                for i in range(0, len(account_live), step):
                    payload = msgpack.packb(account_live[i : i + step], use_bin_type=True)
                    await self._publish_many(keys=[account_latest], args=[payload], client=pipe)
            if account_depth:
                pipe.hset(keys.account_depth_hash(self.prefix), mapping=account_depth)
            try:
                await pipe.execute()
            except (RedisError, OSError, AttributeError) as exc:  # redis-py: AttributeError on a torn connection
                # Durable batches stay in the backlog and are re-sent (the aggregator drops duplicates
                # by producer batch number); the live view just moves on.
                self.stats.flush_errors += 1
                self.stats.live_dropped += len(live) // 3
                if self.stats.flush_errors % 100 == 1:
                    logger.warning("Redis flush failed (%s); %d quotes held for retry", exc, self._backlog_quotes)
                self._wal_append()
                return
            finally:
                # execute() loads the Lua script before its own clean-up: a failure there would leave the
                # pipeline holding a pooled connection (and, over a long outage, exhaust the pool).
                with contextlib.suppress(RedisError, OSError, AttributeError):
                    await pipe.reset()
            for _ in batches:
                _, _, _, quotes = self._backlog.popleft()
                self._backlog_quotes -= len(quotes)
                self.stats.durable_written += len(quotes)
            self._in_wal = max(0, self._in_wal - len(batches))
            if self._audit is not None:
                self._audit_line("ok", batches)
            if self.wal is not None and not self._backlog and self.wal.size:
                self.wal.clear()  # every batch in it is confirmed by Redis
            self.stats.flushes += 1
            self._flushed.set()
            self.at_work.set()

    def _wal_append(self) -> None:
        """Redis did not confirm: make the batches not yet on disk durable there (fsync) before going on."""
        if self.wal is None or self._in_wal >= len(self._backlog):
            return
        new = list(self._backlog)[self._in_wal :]
        try:
            self.wal.append(new)
        except OSError:
            logger.exception("could not write %s; %d quotes only in memory", self.wal.path, self._backlog_quotes)
            return
        self._in_wal = len(self._backlog)
        self.stats.wal_written += sum(len(b[3]) for b in new)
        self.at_work.set()
        if self._audit is not None:
            self._audit_line("wal", new)

    def _audit_batch(self, batch: WalBatch) -> None:
        assert self._audit is not None
        counts = Counter((q[0], q[1], q[6] - q[6] % 60_000_000) for q in batch[3])
        row = [[b, i, m, n] for (b, i, m), n in counts.items()]
        self._audit.write(json.dumps({"e": "batch", "b": list(batch[:3]), "c": row}) + "\n")

    def _audit_line(self, event: str, batches: list[WalBatch]) -> None:
        assert self._audit is not None
        self._audit.write(json.dumps({"e": event, "b": [list(b[:3]) for b in batches]}) + "\n")

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
            self._db_enqueue("s", [broker, str(status), at, detail])

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
            if self._backlog and not self._flush_lock.locked():  # retry even when no new quote comes
                self._spawn_flush()

    def _report_rejections(self) -> None:
        counts = Counter(self.validator.by_broker)
        delta = counts - self._rejects_reported
        if not delta:
            return
        self._rejects_reported = counts
        if self.reject_sink is not None:
            rows = [[b, reason, n] for (b, reason), n in sorted(delta.items())]
            self._db_enqueue("r", [rows, now_us(), self.producer])
        task = asyncio.ensure_future(self._publish_rejections(dict(delta)))
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    # -- database writes (status history, rejection counts): journalled, queued, retried, never dropped ----
    def _db_enqueue(self, kind: str, args: list[Any]) -> None:
        self._db_seq += 1
        write: DbWrite = (self._db_seq, kind, args)
        if self.db_journal is not None:
            try:
                self.db_journal.append([write], sync=self._db_failing)
            except OSError:
                logger.exception("could not write %s; a database write is only in memory", self.db_journal.path)
        self._db_queue.append(write)
        self._db_kick()

    def _db_kick(self) -> None:
        if self._db_task is None or self._db_task.done():
            self._db_wake = asyncio.Event()
            self._db_executor = self._db_executor or ThreadPoolExecutor(1, thread_name_prefix="ingest-db")
            self._db_task = asyncio.ensure_future(self._db_writer())
        assert self._db_wake is not None
        self._db_wake.set()

    @property
    def db_pending(self) -> int:
        """Status and rejection writes not yet in the database."""
        return len(self._db_queue)

    def _db_head(self) -> tuple[int, Callable[[], None]]:
        """The next database call: the queue's first write, with the rejection counts of the same hour after it
        summed into one call. Returns how many queued writes it covers, and the call."""
        _seq, kind, args = self._db_queue[0]
        if kind == "s":
            assert self.status_sink is not None
            broker, status, at, detail = args
            return 1, functools.partial(self.status_sink, str(broker), FeedStatus(status), int(at), str(detail))
        assert self.reject_sink is not None
        hour = int(args[1]) // 3_600_000_000
        writes: list[tuple[str, int, dict[tuple[str, str], int]]] = []
        at = int(args[1])
        for seq, k, a in self._db_queue:
            if k != "r" or int(a[1]) // 3_600_000_000 != hour:
                break
            counts: Counter[tuple[str, str]] = Counter()
            for broker, reason, n in a[0]:
                counts[(str(broker), str(reason))] += int(n)
            writer = str(a[2]) if len(a) > 2 else ""  # none in a journal written before writes carried one
            writes.append((writer, seq, dict(counts)))
            at = max(at, int(a[1]))
        return len(writes), functools.partial(self.reject_sink, writes, at)

    async def _db_writer(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._db_wake is not None
        attempt = 0
        while True:
            if not self._db_queue:
                self._db_wake.clear()
                await self._db_wake.wait()
                continue
            covered, call = self._db_head()
            try:
                await loop.run_in_executor(self._db_executor, call)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down or restarting: keep the write, try again later
                self.stats.db_errors += 1
                if not self._db_failing:
                    self._db_failing = True
                    if self.db_journal is not None:  # what it holds now survives a crash of the machine too
                        with contextlib.suppress(OSError):
                            self.db_journal.sync()
                delay = backoff_delay(attempt, base=0.25, cap=5.0)
                attempt += 1
                logger.warning("status/rejection write failed (%r); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._db_failing = False
            self.stats.db_written += 1
            last = 0
            for _ in range(covered):  # only this task pops, so the head is still what was written
                last = self._db_queue.popleft()[0]
            if self.db_journal is not None:
                try:
                    if self._db_queue:
                        self.db_journal.done(last)
                    else:
                        self.db_journal.clear()
                except OSError:
                    logger.exception("could not mark %s; its writes may be made again", self.db_journal.path)

    async def _publish_rejections(self, delta: dict[tuple[str, str], int]) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            for (broker, reason), n in delta.items():
                pipe.hincrby(keys.rejects_hash(self.prefix), f"{broker}:{reason}", n)
            await pipe.execute()
        except (RedisError, OSError, AttributeError):
            pass  # the database copy (reject_sink) is the record; this is a live convenience

    # -- feeds -------------------------------------------------------------------------------------
    async def run_feed(self, adapter: FeedAdapter, *, rng: random.Random | None = None, account: int = 0) -> None:
        """Run one feed forever: reconnect with backoff and jitter, never let one feed's error escape.

        ``account``: the broker's account type this feed carries (0: its default account); its quotes are
        stamped with it. A broker's feed status is shared by its account feeds.
        """
        broker = adapter.broker
        attempt = 0
        while not self._stop.is_set():
            try:
                async for item in adapter.connect():
                    if isinstance(item, StatusEvent):
                        self._on_event(item, account)
                        if item.kind == FeedEventKind.CONNECTED:
                            attempt = 0
                        continue
                    if item.account != account:
                        item = replace(item, account=account)
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
            self.validator.reset_sequence(broker, account)
            self.stats.reconnects += 1
            delay = backoff_delay(attempt, rng=rng)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)

    def _on_event(self, event: StatusEvent, account: int = 0) -> None:
        self._last_seen[event.broker] = now_us()
        if event.kind == FeedEventKind.CONNECTED:
            self.validator.reset_sequence(event.broker, account)
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

    async def run(
        self,
        adapters: list[FeedAdapter],
        *,
        until: asyncio.Event | None = None,
        accounts: list[int] | None = None,
        live: list[bool] | None = None,
    ) -> None:
        """Run the feeds; ``accounts[i]`` is the account type adapters[i] carries (default: 0 for all), and
        ``live[i]`` says that feed is its broker's feed account, streamed on the live channels (account 0 is)."""
        for adapter, account, streamed in zip(adapters, accounts or [], live or [], strict=False):
            if streamed and account:
                self._live_feeds.add((adapter.broker, account))
        if self._backlog:
            self._spawn_flush()  # batches read back from the write-ahead file
        if self._db_queue:
            self._db_kick()  # database writes read back from the journal
        watcher = asyncio.ensure_future(self._watch_staleness())
        feed_accounts = accounts or [0] * len(adapters)
        feeds = [
            asyncio.ensure_future(self.run_feed(a, account=acc)) for a, acc in zip(adapters, feed_accounts, strict=True)
        ]
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
        # Do not lose what was accepted: try to get the backlog into Redis before leaving. With a write-ahead
        # file a few tries will do: what is left is in the file and goes out on the next start.
        for attempt in range(3 if self.wal is not None else 20):
            await self.flush()
            if not self.backlog:
                break
            await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        if self.backlog and self.wal is not None:
            logger.warning("stopping with %d quotes in %s, sent on the next start", self.backlog, self.wal.path)
        elif self.backlog:
            logger.error("stopping with %d accepted quotes not written to Redis", self.backlog)
        self._report_rejections()
        # Give queued database writes a while (a database outage may outlast it: then they stay in the journal
        # for the next start, or without one are logged as lost).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._db_drained(), timeout=2.0 if self.db_journal is not None else 10.0)
        if self.db_pending and self.db_journal is not None:
            logger.warning(
                "stopping with %d status/rejection writes in %s, made on the next start",
                self.db_pending,
                self.db_journal.path,
            )
        elif self.db_pending:
            logger.error("stopping with %d status/rejection writes not in the database", self.db_pending)
        if self._db_task is not None:
            self._db_task.cancel()
            await asyncio.gather(self._db_task, return_exceptions=True)
        if self._db_executor is not None:
            self._db_executor.shutdown(wait=True)
            self._db_executor = None
        if self.wal is not None:
            self.wal.close()
        if self.db_journal is not None:
            with contextlib.suppress(OSError):
                self.db_journal.sync()
            self.db_journal.close()
        if self._audit is not None:
            self._audit.close()
        await self.redis.aclose()

    async def _db_drained(self) -> None:
        while self.db_pending:
            await asyncio.sleep(0.05)
