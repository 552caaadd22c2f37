"""Faults one at a time, on real PostgreSQL and Redis: database errors in the aggregator and in the
ingestor's status writes, the write-ahead file, and what Redis keeps through a restart or a crash."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from common.ticks import FeedEventKind, StatusEvent, now_us
from marketdata import keys
from marketdata.aggregator import BACKOFF_BASE_S, StreamAggregator
from marketdata.codec import entry_decode, entry_encode
from marketdata.feeds.simulator import SimulatorFeed
from marketdata.ingest import Ingestor
from marketdata.management.commands.ingest import _status_sink
from marketdata.models import FeedStatusChange, SpreadBar
from marketdata.selectors import symbol_maps
from marketdata.validation import QuoteValidator
from marketdata.wal import WalLockedError, WriteAheadLog
from testing.support import await_for, wait_for

from .faultkit import RedisServer

PREFIX = settings.CACHE_KEY_PREFIX
SHARDS = settings.LIVE_STREAM_SHARDS


def _rename(table: str, to: str) -> None:
    with connection.cursor() as cur:
        cur.execute(f"ALTER TABLE {table} RENAME TO {to}")


def _rename_in_thread(table: str, to: str) -> None:
    try:
        _rename(table, to)
    finally:
        connection.close()


@contextlib.contextmanager
def _table_away(table: str) -> Iterator[str]:
    """A real, persistent database error: the table is renamed (and put back at the end whatever happens)."""
    away = f"{table}_away"
    _rename(table, away)
    try:
        yield away
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", [away])
            if cur.fetchone()[0] is not None:
                cur.execute(f"ALTER TABLE {away} RENAME TO {table}")


def _quotes(broker: str, instrument: str, n: int, t0: int) -> list[tuple]:
    return [(broker, instrument, 1.1, 1.1002, 1.0, 1.0, t0 + i, t0 + i, t0 + i, i) for i in range(n)]


def _bar_total() -> int:
    return sum(SpreadBar.objects.filter(resolution="1m").values_list("count", flat=True))


@pytest.fixture
def tmp_dir():
    with tempfile.TemporaryDirectory(prefix="bw-resilience-") as d:
        yield Path(d)


def test_a_persistent_database_error_makes_the_aggregator_back_off_and_it_resumes_when_the_error_clears(
    demo_committed,
):
    with contextlib.ExitStack() as stack:
        _aggregator_through_a_persistent_error(stack)


def _aggregator_through_a_persistent_error(stack: contextlib.ExitStack) -> None:
    r = redis.Redis.from_url(settings.REDIS_URL)
    now = time.time_ns() // 1000
    shard = keys.shard_of("EURUSD", SHARDS)
    r.xadd(keys.tick_stream(shard), entry_encode("p1", 1, _quotes("northwind-markets", "EURUSD", 30, now)))
    away = stack.enter_context(_table_away("marketdata_aggregatorcheckpoint"))  # every load and commit fails
    agg = StreamAggregator(redis_url=settings.REDIS_URL, prefix=PREFIX, shards=list(range(SHARDS)), block_ms=100)
    error_times: list[float] = []
    stopping = threading.Event()

    def run() -> None:
        orig = agg._recover

        def recover(exc: BaseException) -> None:
            error_times.append(time.monotonic())
            orig(exc)

        agg._recover = recover  # type: ignore[method-assign]  # observe, the real recovery still runs
        try:
            agg.run(stop=stopping.is_set)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_for(lambda: agg.stats.errors >= 5, timeout=30, what="five failed attempts")
        # Not a tight loop: each retry waited out its backoff, and the backoff grows.
        gaps = [b - a for a, b in itertools.pairwise(error_times)]
        waits = agg.stats.backoff_s
        assert all(gap >= wait * 0.95 for gap, wait in zip(gaps, waits, strict=False)), (gaps, waits)
        assert waits[0] >= 0.5 * BACKOFF_BASE_S and waits[3] > waits[0]
        assert thread.is_alive()  # it did not exit
        _rename(away, "marketdata_aggregatorcheckpoint")
        wait_for(lambda: _bar_total() == 30, timeout=30, what="the bars once the database works again")
    finally:
        stopping.set()
        thread.join(30)
    assert not thread.is_alive()


def test_status_writes_wait_out_a_database_outage_and_none_is_lost(demo_committed):
    validator = QuoteValidator(symbols=symbol_maps(brokers=["kestrel-fx"]))
    with _table_away("marketdata_feedstatuschange") as away:
        ing = asyncio.run(_status_scenario(validator, away))
    written = [c.status for c in FeedStatusChange.objects.filter(broker__slug="kestrel-fx").order_by("at")]
    assert written == ["up", "down", "up"]
    assert ing.stats.db_written == 3


async def _status_scenario(validator: QuoteValidator, away: str) -> Ingestor:
    ing = Ingestor(
        redis_url=settings.REDIS_URL,
        prefix=PREFIX,
        shards=SHARDS,
        validator=validator,
        status_sink=_status_sink,
        stale_after_s=2,
    )
    # What a feed reports when it connects, drops and reconnects, while the table is away.
    for kind in (FeedEventKind.CONNECTED, FeedEventKind.DISCONNECTED, FeedEventKind.CONNECTED):
        ing._on_event(StatusEvent("kestrel-fx", kind, now_us(), "test"))
        await asyncio.sleep(0.001)  # distinct timestamps
    await await_for(lambda: ing.stats.db_errors >= 2, timeout=30, what="failed writes")
    assert ing.db_pending == 3  # kept, not dropped
    await asyncio.to_thread(_rename_in_thread, away, "marketdata_feedstatuschange")
    await await_for(lambda: ing.db_pending == 0, timeout=30, what="the queued writes")
    await ing.stop()
    return ing


def test_the_write_ahead_file_cuts_off_a_torn_record_and_keeps_the_whole_ones(tmp_dir):
    wal = WriteAheadLog(tmp_dir / "x.wal")
    wal.append([("p", 0, 1, [["b", "EURUSD", 1.0, 1.1]]), ("p", 1, 1, [["b", "GBPUSD", 1.2, 1.3]])])
    whole = wal.size
    with open(tmp_dir / "x.wal", "ab") as f:
        f.write(b"\x00\x00\x01\x00garbage")  # a crash in the middle of the next record
    assert [b[:3] for b in wal.read()] == [("p", 0, 1), ("p", 1, 1)]
    assert (tmp_dir / "x.wal").stat().st_size == whole
    wal.close()


def test_a_second_ingestor_cannot_use_the_same_write_ahead_file(tmp_dir):
    first = WriteAheadLog(tmp_dir / "x.wal")
    with pytest.raises(WalLockedError):
        WriteAheadLog(tmp_dir / "x.wal")
    first.close()
    WriteAheadLog(tmp_dir / "x.wal").close()  # free again once the holder is gone


def _stream_quotes(url: str, producer_filter: set[str] | None = None) -> dict[tuple[str, int, int], int]:
    r = redis.Redis.from_url(url)
    out: dict[tuple[str, int, int], int] = {}
    for shard in range(SHARDS):
        for _id, fields in r.xrange(keys.tick_stream(shard, PREFIX)):
            producer, n, quotes = entry_decode(fields)
            if producer_filter is None or producer in producer_filter:
                out[(producer, shard, n)] = len(quotes)
    return out


def test_quotes_accepted_during_a_redis_outage_survive_a_crash_of_the_ingestor_and_reach_the_stream_once(
    demo_committed, tmp_dir
):
    server = RedisServer(tmp_dir / "redis")
    server.start()
    wal_path = tmp_dir / "ingest.wal"
    validator = QuoteValidator(symbols=symbol_maps(brokers=["northwind-markets"]))

    async def crashed_during_outage():
        ing = Ingestor(redis_url=server.url, prefix=PREFIX, shards=SHARDS, validator=validator, wal_path=wal_path)
        feed = SimulatorFeed("northwind-markets", {"quotes_per_s": 20, "tick_ms": 20})
        task = asyncio.ensure_future(ing.run_feed(feed))
        await await_for(lambda: ing.stats.durable_written > 0, timeout=30, what="quotes in Redis")
        server.stop()
        await await_for(lambda: ing.stats.wal_written > 200, timeout=30, what="quotes kept in the file")
        # The crash: no stop(), no last flush; the process's file lock goes with it.
        for t in [task, *ing._tasks]:
            t.cancel()
        await asyncio.gather(task, *ing._tasks, return_exceptions=True)
        assert ing.wal is not None
        ing.wal.close()
        return ing

    first = asyncio.run(crashed_during_outage())
    accepted_in_wal = first.stats.wal_written
    server.start()

    async def restarted():
        ing = Ingestor(redis_url=server.url, prefix=PREFIX, shards=SHARDS, validator=validator, wal_path=wal_path)
        assert ing.stats.wal_replayed == accepted_in_wal
        await ing.flush()
        await ing.stop()
        return ing

    try:
        second = asyncio.run(restarted())
        in_stream = _stream_quotes(server.url, {first.producer})
    finally:
        server.kill()
    assert second.backlog == 0 and wal_path.stat().st_size == 0  # emptied once Redis confirmed
    # Everything the first ingestor accepted is in the stream, each batch once (a batch may also have landed
    # before the outage was noticed: the aggregator drops the copy by its batch number).
    assert sum(in_stream.values()) == first.stats.durable_written + accepted_in_wal


def test_a_batch_sent_again_from_the_write_ahead_file_is_counted_once(demo_committed, tmp_dir):
    now = time.time_ns() // 1000
    shard = keys.shard_of("EURUSD", SHARDS)
    batches = [("old", shard, n, _quotes("northwind-markets", "EURUSD", 10, now + n * 1000)) for n in (1, 2, 3)]
    r = redis.Redis.from_url(settings.REDIS_URL)
    for producer, _shard, n, quotes in batches[:2]:  # these two had landed before the crash
        r.xadd(keys.tick_stream(shard), entry_encode(producer, n, quotes))
    wal = WriteAheadLog(tmp_dir / "ingest.wal")
    wal.append(batches)  # all three were in the file
    wal.close()

    async def replay():
        ing = Ingestor(
            redis_url=settings.REDIS_URL,
            prefix=PREFIX,
            shards=SHARDS,
            validator=QuoteValidator(symbols={}),
            wal_path=tmp_dir / "ingest.wal",
        )
        await ing.flush()
        await ing.stop()

    asyncio.run(replay())
    agg = StreamAggregator(redis_url=settings.REDIS_URL, prefix=PREFIX, shards=[shard])
    agg.run(stop=lambda: False, exit_when_idle=1.0)
    assert _bar_total() == 30
    assert agg.stats.skipped_entries == 2


def test_the_write_ahead_file_is_not_written_while_redis_is_up(demo_committed, tmp_dir):
    validator = QuoteValidator(symbols=symbol_maps(brokers=["northwind-markets"]))

    async def scenario():
        ing = Ingestor(
            redis_url=settings.REDIS_URL, prefix=PREFIX, shards=SHARDS, validator=validator, wal_path=tmp_dir / "w"
        )
        feed = SimulatorFeed("northwind-markets", {"quotes_per_s": 20, "tick_ms": 20})
        task = asyncio.ensure_future(ing.run_feed(feed))
        await await_for(lambda: ing.stats.durable_written > 500, timeout=30, what="quotes in Redis")
        await ing.stop([task])
        return ing

    ing = asyncio.run(scenario())
    assert ing.stats.wal_written == 0 and (tmp_dir / "w").stat().st_size == 0


def _xadd_for(r: redis.Redis, stream: str, seconds: float) -> list[tuple[bytes, float]]:
    """Append entries for `seconds`; returns (id, when appended) for each."""
    out: list[tuple[bytes, float]] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.append((r.xadd(stream, {"n": len(out)}), time.monotonic()))
    return out


def test_redis_with_aof_everysec_keeps_the_stream_through_a_restart_and_a_crash_loses_at_most_its_last_seconds(
    tmp_dir,
):
    server = RedisServer(tmp_dir / "aof", aof=True, fsync="everysec")
    bare = RedisServer(tmp_dir / "bare", aof=False)
    server.start()
    bare.start()
    try:
        r = redis.Redis(port=server.port)
        written = _xadd_for(r, "s", 0.5)
        server.stop()  # clean: Redis fsyncs the AOF on the way out
        server.start()
        assert r.xlen("s") == len(written)
        written += _xadd_for(r, "s", 3.0)
        server.kill()  # a crash: what the last fsync (about once a second) did not cover is gone
        killed_at = time.monotonic()
        server.start()
        kept = {entry_id for entry_id, _ in r.xrange("s")}
        lost_ages = [killed_at - at for entry_id, at in written if entry_id not in kept]
        assert all(age < 2.0 for age in lost_ages), max(lost_ages)  # Redis's bound for everysec: 2 s
        assert len(kept) >= len(written) - len(lost_ages)

        b = redis.Redis(port=bare.port)
        _xadd_for(b, "s", 0.2)
        bare.stop()
        bare.start()
        assert b.xlen("s") == 0  # without persistence a restart, even a clean one, loses the stream
    finally:
        server.kill()
        bare.kill()
