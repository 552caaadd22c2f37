"""The fault test: ingest and aggregate on a throwaway Redis (AOF) and a throwaway PostgreSQL cluster while
processes are killed and servers restarted; every accepted quote must end up in exactly one 1-minute bar.

Faults, one after the other, each as soon as the previous one is recovered from: kill -9 of the aggregator
(3x) and of an ingestor (2x), Redis restarts (2x), PostgreSQL restarts (2x: a clean one and a crash), and a
Redis outage with an ingestor killed (and restarted, as a supervisor would) inside it. Killed processes are
started again at once by the test, as a supervisor would; the surviving ones get no help. After each fault
every process must be back to work (an ingestor: a batch confirmed by Redis; the aggregator: a commit)
within 10 s of the fault ending (a server back up); after a kill, within 10 s of the kill itself, the new
process's Python and Django start-up included (timed and reported apart: about 1.3 s at a load average
of 5 on the 2-core machine; a machine at a load of 20-35 once took 24-48 s, and this test then fails, as
it should: a supervisor's restart would be that slow too). Each fault's report also has the seconds from
the fault itself (the kill, or the server going down) until every process was at work again: for the
Redis outage that includes the outage the test holds open. A restarted process's own "at work" line
splits its start into the interpreter and Django, its set-up, and its first batch (wall and CPU seconds).

What the ingestors accepted comes from their audit logs (`ingest --audit-log`): a batch is accepted once
Redis confirmed it ("ok") or the write-ahead file holds it ("wal"). A batch made but neither confirmed nor
written to the file when its process was killed was never accepted; it may or may not have reached Redis,
so it may be counted once or not at all, never twice. Run with -s to see the figures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings

from marketdata import keys
from marketdata.models import FeedConfig
from marketdata.services import feed_configs_ensure
from testing.support import wait_for

from .faultkit import PostgresCluster, RedisServer, kill9

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHARDS = 4
PREFIX = "faults"
INGESTORS = {"a": ["northwind-markets", "alpenbank-trading"], "b": ["kestrel-fx", "rheinwerk-broker"]}
INSTRUMENTS = ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD"]
RECOVERY_LIMIT_S = 10.0
STEADY_BATCHES = 100  # batches each ingestor gets confirmed between two faults (about 8 s here)
AT_WORK = re.compile(r"^at work .*$", re.MULTILINE)  # marketdata/management/commands/_startup.py
PHASE = re.compile(r"(django|set-up|first work) ([\d.]+) s/([\d.]+) s CPU")


@dataclass
class Service:
    """A manage.py process the test supervises: started again after a kill, logs in a file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", *self.args, "--skip-checks"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    def kill9(self) -> None:
        assert self.proc is not None
        kill9(self.proc)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(60)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        """The latest start got through Python and Django start-up (the command printed its first line)."""
        return self.log.read_text().count(self.ready_line) >= self.starts

    @property
    def ready_line(self) -> str:
        return "aggregating shards" if self.args[0] == "aggregate" else "ingesting "

    def start_timing(self) -> dict[str, float]:
        """The latest start's phases, from the line the command writes when it is first at work (wall and CPU s)."""
        lines = AT_WORK.findall(self.log.read_text())
        assert len(lines) >= self.starts, f"{self.name}: no 'at work' line for start {self.starts}"
        phases = {phase: (float(wall), float(cpu)) for phase, wall, cpu in PHASE.findall(lines[-1])}
        out = {}
        for phase, key in (("django", "django"), ("set-up", "setup"), ("first work", "first_work")):
            out[f"{key}_s"], out[f"{key}_cpu_s"] = phases[phase]
        out["own_s"] = out["setup_s"] + out["first_work_s"]  # after Django: what the command itself does
        return out


@dataclass
class Progress:
    """When each process last showed work, sampled by a thread: ingestors' "ok" lines, aggregator commits."""

    audits: dict[str, Path]
    db_url: str
    seen: dict[str, float] = field(default_factory=dict)
    confirmed: Counter[str] = field(default_factory=Counter)  # batches Redis confirmed, per ingestor
    wal_lines: Counter[str] = field(default_factory=Counter)
    _offsets: dict[str, int] = field(default_factory=dict)
    _checkpoint: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    failure: str = ""

    def _sample(self) -> None:
        now = time.monotonic()
        for name, path in self.audits.items():
            if not path.exists():
                continue
            with open(path, "rb") as f:
                f.seek(self._offsets.get(name, 0))
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._offsets[name] = self._offsets.get(name, 0) + len(complete)
            for line in complete.splitlines():
                event = json.loads(line)["e"]
                if event == "ok":
                    self.seen[name] = now
                    self.confirmed[name] += 1
                elif event == "wal":
                    self.wal_lines[name] += 1
        try:
            with psycopg.connect(self.db_url, connect_timeout=1) as conn:
                row = conn.execute(
                    "SELECT coalesce(string_agg(last_id, ',' ORDER BY stream), '') FROM marketdata_aggregatorcheckpoint"
                ).fetchone()
        except psycopg.Error:
            return  # PostgreSQL is down: no news
        if row and row[0] != self._checkpoint:
            self._checkpoint = row[0]
            self.seen["aggregator"] = now

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample()
            except Exception as exc:  # shown by recovery_s: a dead sampler must not look like dead processes
                self.failure = repr(exc)
                raise
            self._stop.wait(0.1)

    def confirmed_more(self, n: int) -> Callable[[], bool]:
        """A condition: every ingestor has had n more batches confirmed by Redis than now."""
        start = {name: self.confirmed[name] for name in self.audits}
        return lambda: all(self.confirmed[name] >= start[name] + n for name in self.audits)

    def recovered_since(self, t: float) -> bool:
        names = [*self.audits, "aggregator"]
        return all(self.seen.get(n, 0.0) > t for n in names)

    def recovery_s(self, t: float, alive: Callable[[], bool]) -> float:
        """Seconds from t until the last process showed work again (alive() raises when one has died)."""
        try:
            wait_for(lambda: alive() and self.recovered_since(t), timeout=60, what="every process back to work")
        except AssertionError as exc:
            seen = {n: round(at - t, 1) for n, at in self.seen.items()}
            raise AssertionError(f"{exc}; last work (s after the fault): {seen}; sampler: {self.failure}") from None
        return max(self.seen[n] for n in [*self.audits, "aggregator"]) - t


@pytest.fixture
def servers(demo_committed: object) -> Iterator[tuple[RedisServer, PostgresCluster, str, Path]]:
    """A throwaway Redis with AOF and a throwaway PostgreSQL cluster holding a copy of the demo database."""
    # A few instruments per feed: each process builds its reference markets before the first quote, and a
    # restarted ingestor must be quoting again within seconds on a loaded machine.
    feed_configs_ensure()
    FeedConfig.objects.filter(broker__slug__in=[b for bs in INGESTORS.values() for b in bs]).update(
        params={"instruments": INSTRUMENTS, "quotes_per_s": 10, "tick_ms": 100}
    )
    tmp = Path(tempfile.mkdtemp(prefix="bw-fault-"))
    red = RedisServer(tmp / "redis")
    pg = PostgresCluster(tmp / "pg")
    try:
        red.start()
        pg.start()
        db = settings.DATABASES["default"]
        source = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        url = pg.copy_database(source_url=source, name="faults")
        yield red, pg, url, tmp
    finally:
        red.kill()
        pg.destroy()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _audited(paths: list[Path]) -> tuple[Counter[tuple[str, str, int]], Counter[tuple[str, str, int]], int]:
    """(accepted, unconfirmed) quote counts per broker, instrument and minute, and batches kept in the WAL."""
    counts: dict[tuple[Any, ...], list[list[Any]]] = {}
    state: dict[tuple[Any, ...], set[str]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec["e"] == "batch":
                counts[tuple(rec["b"])] = rec["c"]
                state.setdefault(tuple(rec["b"]), set())
            else:
                for b in rec["b"]:
                    state.setdefault(tuple(b), set()).add(rec["e"])
    accepted: Counter[tuple[str, str, int]] = Counter()
    unconfirmed: Counter[tuple[str, str, int]] = Counter()
    for key, rows in counts.items():
        target = accepted if state[key] else unconfirmed
        for broker, instrument, minute, n in rows:
            target[(str(broker), str(instrument), int(minute))] += int(n)
    in_wal = sum(1 for st in state.values() if "wal" in st)
    return accepted, unconfirmed, in_wal


def _recorded(db_url: str) -> Counter[tuple[str, str, int]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT b.slug, i.symbol, s.start, s.count FROM marketdata_spreadbar s "
            "JOIN brokers_broker b ON b.id = s.broker_id JOIN brokers_instrument i ON i.id = s.instrument_id "
            "WHERE s.resolution = '1m'"
        ).fetchall()
    return Counter({(b, i, int(start.timestamp() * 1_000_000)): n for b, i, start, n in rows})


def _drained(url: str) -> bool:
    r = redis.Redis.from_url(url)
    for shard in range(SHARDS):
        stream = keys.tick_stream(shard, PREFIX)
        groups = r.xinfo_groups(stream) if r.exists(stream) else []
        if not groups or int(groups[0]["pending"]) or int(groups[0].get("lag") or 0):
            return False
    return True


def test_every_accepted_quote_is_in_exactly_one_bar_through_kills_and_server_restarts(servers):
    red, pg, db_url, tmp = servers
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": db_url,
        "REDIS_URL": red.url,
        "CACHE_KEY_PREFIX": PREFIX,
        "LIVE_STREAM_SHARDS": str(SHARDS),
        "SECRET_KEY": "x" * 50,
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "INGEST_WAL_DIR": str(tmp / "wal"),
        "PYTHONUNBUFFERED": "1",  # the ready lines reach the log at once
    }
    audits = {name: tmp / f"audit-{name}.jsonl" for name in INGESTORS}
    ingestors = {
        name: Service(
            f"ingest-{name}",
            ["ingest", *[a for b in brokers for a in ("--broker", b)], "--audit-log", str(audits[name])],
            env,
            tmp / f"ingest-{name}.log",
        )
        for name, brokers in INGESTORS.items()
    }
    aggregator = Service("aggregate", ["aggregate", "--rollup-every", "0"], env, tmp / "aggregate.log")
    progress = Progress(audits=audits, db_url=db_url)
    sampler = threading.Thread(target=progress.run, daemon=True)
    sampler.start()
    # fault, injection s (kill and restart, or server down and up), process start-up s, back to work s after
    # them, s from the fault itself until every process was at work again, and a restarted process's phases
    recovery: list[tuple[str, float, float, float, float, dict[str, float]]] = []

    def all_alive() -> bool:
        for service in [*ingestors.values(), aggregator]:
            if not service.alive():
                raise AssertionError(f"{service.name} exited: {service.log.read_text()[-3000:]}")
        return True

    def fault(name: str, inject: Callable[[], Service | None]) -> None:
        # Quotes flow normally for a while before each fault (a few minutes in all, as the issue asks),
        # measured in confirmed batches, not seconds, so a slow machine runs the same scenario.
        wait_for(progress.confirmed_more(STEADY_BATCHES), timeout=120, what="quotes flowing before the fault")
        began = time.monotonic()
        restarted = inject()
        ended = time.monotonic()
        startup = 0.0
        if restarted is not None:  # a new process: its Python and Django start-up is the machine's, not ours
            startup = wait_for(restarted.ready, timeout=120, what=f"{restarted.name} started")
        back = progress.recovery_s(ended + startup, all_alive)
        phases: dict[str, float] = {}
        if restarted is not None:
            wait_for(lambda: len(AT_WORK.findall(restarted.log.read_text())) >= restarted.starts, timeout=30)
            phases = restarted.start_timing()
        recovery.append((name, ended - began, startup, back, ended + startup + back - began, phases))

    def restart_killed(service: Service) -> Callable[[], Service]:
        def inject() -> Service:
            service.kill9()
            service.start()
            return service

        return inject

    def redis_restart() -> None:
        red.stop()
        red.start()

    def pg_restart(mode: str) -> Callable[[], None]:
        def inject() -> None:
            pg.stop(mode)
            pg.start()

        return inject

    def redis_outage_with_an_ingestor_kill() -> None:
        a = ingestors["a"]
        red.stop()
        before = progress.wal_lines["a"]
        wait_for(lambda: progress.wal_lines["a"] > before, timeout=30, what="ingestor a writing its WAL")
        a.kill9()
        a.start()
        after_restart = progress.wal_lines["a"]
        wait_for(lambda: progress.wal_lines["a"] > after_restart, timeout=60, what="the new ingestor a in its WAL")
        red.start()

    try:
        for service in [*ingestors.values(), aggregator]:
            service.start()
        progress.recovery_s(time.monotonic(), all_alive)  # all at work
        fault("aggregator kill -9 (1)", restart_killed(aggregator))
        fault("ingestor a kill -9", restart_killed(ingestors["a"]))
        fault("Redis restart (1)", redis_restart)
        fault("PostgreSQL restart, clean", pg_restart("fast"))
        fault("aggregator kill -9 (2)", restart_killed(aggregator))
        fault("ingestor b kill -9", restart_killed(ingestors["b"]))
        fault("Redis restart (2)", redis_restart)
        fault("PostgreSQL restart, crash", pg_restart("immediate"))
        fault("aggregator kill -9 (3)", restart_killed(aggregator))
        fault("Redis outage, ingestor a kill -9 inside", redis_outage_with_an_ingestor_kill)
        # Nothing was restarted but what the test killed: the survivors carried on by themselves.
        assert aggregator.starts == 4 and ingestors["a"].starts == 3 and ingestors["b"].starts == 2
        assert all(s.alive() for s in [*ingestors.values(), aggregator])
        for service in ingestors.values():
            assert service.stop() == 0
        wait_for(lambda: _drained(red.url), timeout=60, what="the aggregator caught up")
        assert aggregator.stop() == 0
    except BaseException:
        for service in [*ingestors.values(), aggregator]:
            print(f"--- {service.name}:\n{service.log.read_text()[-3000:]}")
        raise
    finally:
        progress._stop.set()
        for service in [*ingestors.values(), aggregator]:
            if service.alive():
                service.kill9()

    accepted, unconfirmed, in_wal = _audited(list(audits.values()))
    recorded = _recorded(db_url)
    cells = set(accepted) | set(unconfirmed) | set(recorded)
    lost = sum(max(0, accepted[c] - recorded[c]) for c in cells)
    duplicated = sum(max(0, recorded[c] - accepted[c] - unconfirmed[c]) for c in cells)
    report: dict[str, Any] = {
        "accepted": sum(accepted.values()),
        "unconfirmed_at_a_kill": sum(unconfirmed.values()),
        "recorded": sum(recorded.values()),
        "lost": lost,
        "duplicated": duplicated,
        "batches_kept_in_wal": in_wal,
        "recovery_s": {
            name: {
                "injected": round(inj, 1),
                "startup": round(up, 1),
                "back_to_work": round(back, 2),
                "from_fault": round(total, 2),
                **({"restarted": phases} if phases else {}),
            }
            for name, inj, up, back, total, phases in recovery
        },
        "load_average": os.getloadavg()[0],
    }
    print("\nFAULTS " + json.dumps(report, indent=1))
    assert report["accepted"] > 1000 and in_wal > 0
    assert lost == 0 and duplicated == 0, report
    # From the fault's end (a server back up, a killed process started again) to every process at work,
    # and for a kill from the kill itself: the new process's start-up counts (issue 17: within 10 s of
    # each fault, with no outside restart but the supervisor's, which this test plays at once).
    assert all(back <= RECOVERY_LIMIT_S for _, _, _, back, _, _ in recovery), report
    assert all(inj + up + back <= RECOVERY_LIMIT_S for _, inj, up, back, _, phases in recovery if phases), report
    wal_replays = (tmp / "ingest-a.log").read_text().count("sending again")
    assert wal_replays >= 1, "the restarted ingestor sent its write-ahead file again"
