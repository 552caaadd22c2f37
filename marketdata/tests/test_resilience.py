"""Faults one at a time, on real PostgreSQL and Redis: database errors in the aggregator and in the
ingestor's status writes, the write-ahead file and the database-write journal (with a kill -9 during a
PostgreSQL outage), and what Redis keeps through a restart or a crash."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
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
from marketdata.management.commands.ingest import _reject_sink, _status_sink
from marketdata.models import FeedConfig, FeedStatusChange, QuoteRejectionCount, SpreadBar
from marketdata.selectors import symbol_maps
from marketdata.services import feed_configs_ensure, us_to_dt
from marketdata.validation import QuoteValidator
from marketdata.wal import DbWriteJournal, WalLockedError, WriteAheadLog, db_journal_path, db_journal_peek
from simulator.profiles import BROKER_PROFILES
from testing.support import await_for, subprocess_env, wait_for

from .faultkit import PostgresCluster, RedisServer, kill9

PREFIX = settings.CACHE_KEY_PREFIX
ROOT = Path(__file__).resolve().parents[2]
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


def test_the_database_write_journal_keeps_what_is_not_marked_done_and_cuts_off_a_torn_record(tmp_dir):
    journal = DbWriteJournal(tmp_dir / "x.wal.db-writes")
    journal.append([(1, "s", ["kestrel-fx", "up", 10, "a"]), (2, "r", [[["kestrel-fx", "crossed", 3]], 11])], sync=True)
    journal.done(1)
    journal.append([(3, "s", ["kestrel-fx", "down", 12, "b"])], sync=False)
    with open(journal.path, "ab") as f:
        f.write(b"\x00\x00\x01\x00torn")  # a kill in the middle of the next record
    assert [w[0] for w in db_journal_peek(journal.path)] == [2, 3]
    assert journal.read() == [(2, "r", [[["kestrel-fx", "crossed", 3]], 11]), (3, "s", ["kestrel-fx", "down", 12, "b"])]
    with pytest.raises(WalLockedError):
        DbWriteJournal(journal.path)
    journal.close()


def test_database_writes_are_journalled_and_the_journal_is_emptied_once_the_database_has_them(demo_committed, tmp_dir):
    validator = QuoteValidator(symbols=symbol_maps(brokers=["kestrel-fx"]))
    wal = tmp_dir / "ingest.wal"

    async def scenario(away: str) -> None:
        ing = Ingestor(
            redis_url=settings.REDIS_URL,
            prefix=PREFIX,
            shards=SHARDS,
            validator=validator,
            status_sink=_status_sink,
            reject_sink=_reject_sink,
            wal_path=wal,
        )
        for kind in (FeedEventKind.CONNECTED, FeedEventKind.DISCONNECTED, FeedEventKind.CONNECTED):
            ing._on_event(StatusEvent("kestrel-fx", kind, now_us(), "test"))
            await asyncio.sleep(0.001)
        validator.by_broker[("kestrel-fx", "crossed")] += 4
        ing._report_rejections()
        # Journalled before it is tried: all four are on disk while the first cannot be written.
        assert [w[1] for w in db_journal_peek(db_journal_path(wal))] == ["s", "s", "s", "r"]
        await await_for(lambda: ing.stats.db_errors >= 1, timeout=30, what="a failed write")
        await asyncio.to_thread(_rename_in_thread, away, "marketdata_feedstatuschange")
        await await_for(lambda: ing.db_pending == 0, timeout=30, what="the queued writes")
        assert db_journal_path(wal).stat().st_size == 0
        await ing.stop()

    with _table_away("marketdata_feedstatuschange") as away:
        asyncio.run(scenario(away))
    assert [c.status for c in FeedStatusChange.objects.filter(broker__slug="kestrel-fx").order_by("at")] == [
        "up",
        "down",
        "up",
    ]
    assert QuoteRejectionCount.objects.get(broker__slug="kestrel-fx", reason="crossed").count == 4


def _ingestor_killed_after_its_commits(wal: Path, validator: QuoteValidator, enqueue) -> Ingestor:
    """An ingestor whose journalled writes all reach the database, but which "dies" before the journal hears of
    it: its journal is never marked done nor emptied, as after a kill -9 between a commit and the mark."""

    async def scenario() -> Ingestor:
        ing = Ingestor(
            redis_url=settings.REDIS_URL,
            prefix=PREFIX,
            shards=SHARDS,
            validator=validator,
            status_sink=_status_sink,
            reject_sink=_reject_sink,
            wal_path=wal,
        )
        assert ing.db_journal is not None
        ing.db_journal.done = lambda seq: None  # type: ignore[method-assign]
        ing.db_journal.clear = lambda: None  # type: ignore[method-assign]
        enqueue(ing)
        await await_for(lambda: ing.db_pending == 0, timeout=30, what="the writes committed")
        await ing.stop()
        return ing

    return asyncio.run(scenario())


def _replay(wal: Path) -> Ingestor:
    """A fresh ingestor (a new process: its own validator) on the same files: it writes again what the journal
    holds, then stops."""
    validator = QuoteValidator(symbols={})

    async def scenario() -> Ingestor:
        ing = Ingestor(
            redis_url=settings.REDIS_URL,
            prefix=PREFIX,
            shards=SHARDS,
            validator=validator,
            status_sink=_status_sink,
            reject_sink=_reject_sink,
            wal_path=wal,
        )
        ing._db_kick()
        await await_for(lambda: ing.db_pending == 0, timeout=30, what="the replayed writes")
        await ing.stop()
        return ing

    return asyncio.run(scenario())


def _rejected(broker: str) -> int:
    return sum(QuoteRejectionCount.objects.filter(broker__slug=broker).values_list("count", flat=True))


def test_a_rejection_count_committed_just_before_a_kill_is_not_added_again_when_the_journal_is_replayed(
    demo_committed, tmp_dir
):
    validator = QuoteValidator(symbols=symbol_maps(brokers=["kestrel-fx"]))
    wal = tmp_dir / "ingest.wal"

    def reject(ing: Ingestor) -> None:
        validator.by_broker[("kestrel-fx", "crossed")] += 4
        ing._report_rejections()

    _ingestor_killed_after_its_commits(wal, validator, reject)
    assert _rejected("kestrel-fx") == 4
    assert [w[1] for w in db_journal_peek(db_journal_path(wal))] == ["r"]  # committed, never marked done

    again = _replay(wal)
    assert again.stats.db_replayed == 1 and again.stats.db_written == 1
    assert _rejected("kestrel-fx") == 4  # not 8
    assert db_journal_path(wal).stat().st_size == 0


def test_a_replay_that_joins_a_committed_rejection_write_with_a_new_one_adds_only_the_new_one(demo_committed, tmp_dir):
    validator = QuoteValidator(symbols=symbol_maps(brokers=["kestrel-fx"]))
    wal = tmp_dir / "ingest.wal"

    def reject(ing: Ingestor) -> None:
        validator.by_broker[("kestrel-fx", "crossed")] += 4
        ing._report_rejections()

    first = _ingestor_killed_after_its_commits(wal, validator, reject)
    [(seq, _kind, args)] = db_journal_peek(db_journal_path(wal))
    # The same process journalled a second count of the same hour and was killed before it was tried.
    journal = DbWriteJournal(db_journal_path(wal))
    journal.append([(seq + 1, "r", [[["kestrel-fx", "crossed", 3]], int(args[1]) + 1, first.producer])], sync=True)
    journal.close()

    again = _replay(wal)
    assert again.stats.db_replayed == 2 and again.stats.db_written == 1  # both in one call
    assert _rejected("kestrel-fx") == 7  # 4 once, and the 3


def test_a_status_change_committed_just_before_a_kill_is_not_recorded_again_when_the_journal_is_replayed(
    demo_committed, tmp_dir
):
    validator = QuoteValidator(symbols=symbol_maps(brokers=["kestrel-fx"]))
    wal = tmp_dir / "ingest.wal"
    at = now_us()

    def changes(ing: Ingestor) -> None:
        ing._on_event(StatusEvent("kestrel-fx", FeedEventKind.CONNECTED, at, "test"))
        ing._on_event(StatusEvent("kestrel-fx", FeedEventKind.DISCONNECTED, at + 1000, "test"))

    _ingestor_killed_after_its_commits(wal, validator, changes)
    history = list(FeedStatusChange.objects.filter(broker__slug="kestrel-fx").values_list("status", "at"))
    assert [w[1] for w in db_journal_peek(db_journal_path(wal))] == ["s", "s"]

    again = _replay(wal)
    assert again.stats.db_replayed == 2
    assert list(FeedStatusChange.objects.filter(broker__slug="kestrel-fx").values_list("status", "at")) == history
    assert [s for s, _ in history] == ["down", "up"]


def test_rejection_counts_queued_across_an_hour_boundary_land_in_their_own_hours(demo_committed):
    validator = QuoteValidator(symbols=symbol_maps(brokers=["kestrel-fx"]))
    hour = 3_600_000_000
    this_hour = now_us() // hour * hour

    async def scenario(away: str) -> None:
        ing = Ingestor(
            redis_url=settings.REDIS_URL, prefix=PREFIX, shards=SHARDS, validator=validator, reject_sink=_reject_sink
        )
        for at, n in ((this_hour - hour + 5, 2), (this_hour - 5, 3), (this_hour + 5, 7)):
            ing._db_enqueue("r", [[["kestrel-fx", "crossed", n]], at])
        await await_for(lambda: ing.stats.db_errors >= 1, timeout=30, what="a failed write")
        await asyncio.to_thread(_rename_in_thread, away, "marketdata_quoterejectioncount")
        await await_for(lambda: ing.db_pending == 0, timeout=30, what="the queued writes")
        await ing.stop()

    with _table_away("marketdata_quoterejectioncount") as away:
        asyncio.run(scenario(away))
    rows = QuoteRejectionCount.objects.filter(broker__slug="kestrel-fx").order_by("hour")
    assert [r.count for r in rows] == [5, 7]
    assert rows[1].hour == us_to_dt(this_hour)


def _db_rows(url: str, broker: str) -> tuple[set[tuple[str, datetime]], int]:
    """(status, at) of the broker's status history and its rejection total, read from the database at url."""

    with psycopg.connect(url, connect_timeout=2) as conn:
        statuses = conn.execute(
            "SELECT s.status, s.at FROM marketdata_feedstatuschange s JOIN brokers_broker b ON b.id = s.broker_id "
            "WHERE b.slug = %s",
            [broker],
        ).fetchall()
        total = conn.execute(
            "SELECT coalesce(sum(r.count), 0) FROM marketdata_quoterejectioncount r "
            "JOIN brokers_broker b ON b.id = r.broker_id WHERE b.slug = %s",
            [broker],
        ).fetchone()
    return set(statuses), int(total[0]) if total else 0


def _readable(url: str, broker: str) -> tuple[set[tuple[str, datetime]], int] | None:
    try:
        return _db_rows(url, broker)
    except psycopg.Error:  # down or restarting
        return None


@pytest.mark.slow
def test_status_and_rejection_writes_of_a_database_outage_survive_a_kill_of_the_ingestor(demo_committed, tmp_dir):
    """A real ingestor process on a PostgreSQL cluster of its own: the database stops, feed status changes and
    rejections go on, the ingestor is killed with SIGKILL; the next one writes every one of them."""
    broker = "palmetto-global"  # the simulator's most malformed quotes: rejections every second
    feed_configs_ensure()
    FeedConfig.objects.filter(broker__slug=broker).update(
        params={
            "instruments": list(BROKER_PROFILES[broker].instruments[:4]),
            "quotes_per_s": 50,
            "tick_ms": 50,
            "outages": [[a, 0.4] for a in range(3, 3600, 2)],  # down and up again every 2 s
        }
    )
    pg = PostgresCluster(tmp_dir / "pg")
    pg.start()
    wal = tmp_dir / "ingest.wal"
    journal = db_journal_path(wal)
    log = tmp_dir / "ingest.log"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        db = settings.DATABASES["default"]
        url = pg.copy_database(source_url=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}", name="j")
        env = subprocess_env(DATABASE_URL=url, LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")

        def start() -> subprocess.Popen[bytes]:
            with open(log, "ab") as out:
                cmd = [sys.executable, "manage.py", "ingest", "--broker", broker, "--wal", str(wal), "--skip-checks"]
                procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
            return procs[-1]

        first = start()

        def writing() -> bool:
            rows = _readable(url, broker)
            return rows is not None and len(rows[0]) >= 3 and rows[1] > 0

        wait_for(writing, timeout=180, what="status and rejection rows from the first ingestor")
        before = _db_rows(url, broker)
        pg.stop("fast")

        def journalled() -> bool:
            kinds = [w[1] for w in db_journal_peek(journal)]
            return kinds.count("s") >= 2 and "r" in kinds

        wait_for(journalled, timeout=60, what="status changes and rejections journalled during the outage")
        kill9(first)
        held = DbWriteJournal(journal)  # the kill released it
        pending = held.read()
        held.close()
        statuses = {(str(a[1]), us_to_dt(int(a[2]))) for _, kind, a in pending if kind == "s"}
        rejected = sum(int(n) for _, kind, a in pending if kind == "r" for _b, _r, n in a[0])
        assert len(statuses) >= 2 and rejected > 0

        pg.start()
        second = start()  # as a supervisor would

        def replayed() -> bool:
            rows = _readable(url, broker)
            return rows is not None and statuses <= rows[0]

        wait_for(replayed, timeout=180, what="the journalled writes in the database")
        after = _db_rows(url, broker)
        assert after[1] >= before[1] + rejected  # none lost (the second ingestor adds its own too)
        assert "writing again" in log.read_text()
        second.terminate()
        assert second.wait(60) == 0
    except BaseException:
        print(log.read_text()[-5000:] if log.exists() else "(no log)")
        raise
    finally:
        for proc in procs:
            if proc.poll() is None:
                kill9(proc)
        pg.destroy()
