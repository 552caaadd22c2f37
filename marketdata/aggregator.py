"""Durable path, consumer side: tick streams -> 1-minute SpreadBars in PostgreSQL, exactly once.

- One consumer group per shard stream. A shard is owned by one aggregator process at a time through a
  PostgreSQL advisory lock (a killed process's lock dies with its connection), so entries are folded in
  stream order and the checkpoint's last id is a correct watermark.
- Per batch: fold entries into the in-memory aggregator, then in ONE transaction upsert the touched bars
  (full values, not increments) and save the checkpoint (last id + aggregator state + producer batch
  numbers). Only after the commit are the entries XACKed and the stream trimmed.
- After a crash, a new owner claims the dead consumer's pending entries, reloads the checkpoint and
  skips entries at or below its last id; bars come out identical to an uninterrupted run.
- Faults: any error of PostgreSQL or Redis (a restart, an outage, a persistent error) drops this
  process's shards and its database connection (with it the advisory locks), waits with exponential
  backoff and jitter, and starts over from the committed checkpoints: it never exits on such an error and
  never retries in a tight loop. Nothing uncommitted is kept, so resuming is the crash-restart path.
- On SQLite (the one-command demo) there are no advisory locks: the process owns all its shards
  without a lock and says so in the log. Exactly-once commit/ack still holds; one aggregator only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from django.db import DatabaseError, InterfaceError, connection, transaction
from redis.backoff import NoBackoff
from redis.retry import Retry

from common.redis import redis_new
from common.ticks import now_us
from marketdata import keys
from marketdata.aggregation import SpreadAggregator
from marketdata.codec import entry_decode, stream_id, wire_account
from marketdata.ingest import backoff_delay
from marketdata.selectors import instrument_lot_units
from marketdata.services import bars_rollup, bars_upsert, checkpoint_load, checkpoint_save

logger = logging.getLogger(__name__)
PRUNE_US = 3_600_000_000
# What a restart, an outage or a broken connection of PostgreSQL or Redis raises: retried with backoff.
TRANSIENT: tuple[type[BaseException], ...] = (DatabaseError, InterfaceError, redis.RedisError, OSError)
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 4.0  # with jitter at most 6 s: back to work within seconds of the fault ending


@dataclass
class _Shard:
    stream: str
    agg: SpreadAggregator
    last_id: tuple[int, int] = (0, 0)
    producers: dict[str, int] = field(default_factory=dict)
    cursor: str = "0"  # "0": re-reading our pending entries; ">": new entries
    newest_ts: int = 0


@dataclass
class AggregatorStats:
    entries: int = 0
    quotes: int = 0
    skipped_entries: int = 0  # already counted (redelivery) or re-sent batches
    malformed: int = 0
    commits: int = 0
    errors: int = 0  # transient PostgreSQL/Redis errors survived
    backoff_s: list[float] = field(default_factory=list)  # the waits after them (the last 100)
    lag_us: list[int] = field(default_factory=list)


class StreamAggregator:
    def __init__(
        self,
        *,
        redis_url: str,
        prefix: str,
        shards: list[int],
        consumer: str | None = None,
        count: int = 200,
        block_ms: int = 500,
        rollup_every_s: float = 0.0,  # Celery beat owns the roll-ups (marketdata.tasks); >0 only without beat
        lag_every: int = 0,
    ) -> None:
        # Shard ownership needs PostgreSQL advisory locks. Elsewhere (SQLite, the one-command demo) this
        # process simply owns every shard it was given: run exactly ONE aggregator there.
        self.single_process = connection.vendor != "postgresql"
        if self.single_process:
            logger.warning(
                "%s database: no shard locks, this aggregator owns shards %s alone; run only one aggregator",
                connection.vendor,
                shards,
            )
        # Reads block up to block_ms: the read timeout must be longer than that.
        # One quick retry (a pooled connection left dead by a Redis restart); then run()'s backoff takes over.
        self.r = redis_new(url=redis_url, socket_timeout=5, socket_connect_timeout=2, retry=Retry(NoBackoff(), 1))
        self.prefix = prefix
        self.wanted = [keys.tick_stream(s, prefix) for s in shards]
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.count = count
        self.block_ms = block_ms
        self.rollup_every_s = rollup_every_s
        self.lag_every = lag_every
        self.owned: dict[str, _Shard] = {}
        self.stats = AggregatorStats()
        self._last_rollup = time.monotonic()
        self._last_lock_check = 0.0
        self.on_first_commit: Callable[[], None] | None = None  # start-up timing (the aggregate command)

    # -- ownership ---------------------------------------------------------------------------------
    def _lock_key(self, stream: str) -> int:
        return zlib.crc32(f"live-aggregator:{stream}".encode()) & 0x7FFFFFFF

    def _acquire(self) -> None:
        if self.single_process:
            for stream in self.wanted:
                if stream not in self.owned:
                    self._take_over(stream)
            return
        with connection.cursor() as cur:
            for stream in self.wanted:
                cur.execute("SELECT pg_try_advisory_lock(%s)", [self._lock_key(stream)])
                got = bool(cur.fetchone()[0])
                if got and stream not in self.owned:
                    self._take_over(stream)
                elif not got and stream in self.owned:
                    logger.warning("lost ownership of %s", stream)
                    del self.owned[stream]

    def _ensure_group(self, stream: str) -> None:
        try:
            self.r.xgroup_create(stream, keys.AGGREGATOR_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _take_over(self, stream: str) -> None:
        self._ensure_group(stream)
        # We hold the shard's lock, so any other consumer with pending entries here is dead: claim them.
        start = "0-0"
        while True:
            nxt, _claimed, *_ = self.r.xautoclaim(stream, keys.AGGREGATOR_GROUP, self.consumer, 0, start, count=1000)
            nxt = nxt.decode() if isinstance(nxt, bytes) else str(nxt)
            if nxt == "0-0":
                break
            start = nxt
        for info in self.r.xinfo_consumers(stream, keys.AGGREGATOR_GROUP):
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            if name != self.consumer and int(info["pending"]) == 0:
                self.r.xgroup_delconsumer(stream, keys.AGGREGATOR_GROUP, name)
        self.owned[stream] = self._load(stream)
        logger.info("aggregating %s as %s", stream, self.consumer)

    def _load(self, stream: str) -> _Shard:
        last_id, state = checkpoint_load(stream=stream)
        agg = SpreadAggregator(lot_units=instrument_lot_units())  # read at every take-over: new instruments count
        agg.load_state(state.get("agg", {}))
        shard = _Shard(stream, agg, stream_id(last_id), dict(state.get("producers", {})))
        shard.newest_ts = int(state.get("newest_ts", 0))
        return shard

    # -- processing --------------------------------------------------------------------------------
    def step(self) -> int:
        """Read, fold, commit, ack one batch. Returns the number of entries read (0: idle).

        A PostgreSQL or Redis error is survived here: nothing uncommitted is kept (see _recover), the error is
        counted in stats.errors, and run() waits out a backoff before the next step.
        """
        try:
            return self._step()
        except TRANSIENT as exc:
            self._recover(exc)
            return 0

    def _step(self) -> int:
        now = time.monotonic()
        if now - self._last_lock_check > 5.0 or not self.owned:
            self._acquire()
            self._last_lock_check = now
        if not self.owned:
            time.sleep(self.block_ms / 1000)
            return 0
        want = {s.stream: s.cursor for s in self.owned.values()}
        block = None if any(c == "0" for c in want.values()) else self.block_ms
        try:
            resp = self.r.xreadgroup(keys.AGGREGATOR_GROUP, self.consumer, want, count=self.count, block=block)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis lost the stream (restart without persistence): recreate
                for s in want:
                    self._ensure_group(s)
                return 0
            raise
        read = 0
        acks: dict[str, list[bytes]] = {}
        lags: list[int] = []
        for raw_stream, entries in resp or []:
            stream = raw_stream.decode() if isinstance(raw_stream, bytes) else raw_stream
            shard = self.owned[stream]
            if not entries and shard.cursor == "0":
                shard.cursor = ">"  # our pending entries are all done
                continue
            for entry_id, fields in entries:
                read += 1
                acks.setdefault(stream, []).append(entry_id)
                if fields is None:  # deleted while pending
                    continue
                self._fold(shard, entry_id, fields, lags)
        if not acks:
            self._maybe_rollup()
            return read
        # A failed commit raises: step() drops the shards, run() backs off, and the next step resumes from the
        # committed checkpoints; the entries stay pending (not acknowledged) until then.
        with transaction.atomic():
            for stream in acks:
                shard = self.owned[stream]
                bars_upsert(rows=shard.agg.take_rows())
                checkpoint_save(stream=stream, last_id="{}-{}".format(*shard.last_id), state=self._state(shard))
        self.stats.commits += 1
        if self.on_first_commit is not None:
            first, self.on_first_commit = self.on_first_commit, None
            first()
        if lags:
            done = now_us()
            self.stats.lag_us.extend(done - t for t in lags)
        for stream, ids in acks.items():
            self.r.xack(stream, keys.AGGREGATOR_GROUP, *ids)
            shard = self.owned[stream]
            self.r.xtrim(stream, minid="{}-{}".format(*shard.last_id), approximate=True)
        self._maybe_rollup()
        return read

    def _fold(self, shard: _Shard, entry_id: bytes, fields: dict[bytes, bytes], lags: list[int]) -> None:
        sid = stream_id(entry_id)
        if sid <= shard.last_id:
            self.stats.skipped_entries += 1
            return
        shard.last_id = sid
        try:
            producer, batch_no, quotes = entry_decode(fields)
        except ValueError:
            self.stats.malformed += 1
            logger.warning("skipping malformed entry %s in %s", entry_id, shard.stream)
            return
        if batch_no <= shard.producers.get(producer, 0):
            self.stats.skipped_entries += 1  # a batch the producer re-sent after an error
            return
        shard.producers[producer] = batch_no
        self.stats.entries += 1
        add = shard.agg.add
        every = self.lag_every
        newest = shard.newest_ts
        for i, q in enumerate(quotes):
            try:
                add(q[0], q[1], q[2], q[3], q[6], wire_account(q), q[8], q[4], q[5])
            except (IndexError, TypeError, ValueError):
                self.stats.malformed += 1
                continue
            if q[6] > newest:
                newest = q[6]
            if every and i % every == 0:
                lags.append(q[7])
        shard.newest_ts = newest
        self.stats.quotes += len(quotes)

    def _state(self, shard: _Shard) -> dict[str, Any]:
        shard.agg.prune(shard.newest_ts - PRUNE_US)
        return {"agg": shard.agg.state(), "producers": shard.producers, "newest_ts": shard.newest_ts}

    def _maybe_rollup(self) -> None:
        if self.rollup_every_s <= 0 or time.monotonic() - self._last_rollup < self.rollup_every_s:
            return
        self._last_rollup = time.monotonic()
        now = datetime.now(tz=UTC)
        try:
            bars_rollup(since=now - timedelta(hours=2), until=now)
        except Exception:
            logger.exception("roll-up failed; will retry")

    def run(self, *, stop: Callable[[], bool], exit_when_idle: float = 0.0) -> None:
        """Step until stop(): through PostgreSQL and Redis faults, with backoff, never a tight loop."""
        idle_since: float | None = None
        attempt = 0
        while not stop():
            errors = self.stats.errors
            n = self.step()
            if self.stats.errors > errors:
                delay = backoff_delay(attempt, base=BACKOFF_BASE_S, cap=BACKOFF_CAP_S)
                attempt += 1
                self.stats.backoff_s = [*self.stats.backoff_s[-99:], delay]
                logger.warning("resuming from the checkpoints in %.1f s", delay)
                _sleep_unless(stop, delay)
                continue
            attempt = 0
            if n:
                idle_since = None
            elif exit_when_idle:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= exit_when_idle:
                    return

    def _recover(self, exc: BaseException) -> None:
        """Forget everything not committed: the shards (re-taken from their checkpoints, their pending entries
        read again) and, after a database error, the connection (its advisory locks go with it; another
        aggregator may take the shards meanwhile). Reloading checkpoints now would ask the database that just
        failed: the next step does it."""
        self.stats.errors += 1
        where = "Redis" if isinstance(exc, redis.RedisError) else "PostgreSQL"
        logger.warning("%s error (%r); dropping uncommitted work", where, exc)
        self.owned.clear()
        self._last_lock_check = 0.0
        if not isinstance(exc, redis.RedisError):
            with contextlib.suppress(DatabaseError):  # a broken connection may fail to close; it is dropped anyway
                connection.close()


def _sleep_unless(stop: Callable[[], bool], seconds: float) -> None:
    end = time.monotonic() + seconds
    while not stop() and (left := end - time.monotonic()) > 0:
        time.sleep(min(0.1, left))
