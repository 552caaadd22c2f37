"""The one-command demo runs on SQLite: the backfill and the aggregator work there too (real Redis)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from django.conf import settings

from marketdata import keys
from marketdata.aggregation import SpreadAggregator, rollup_rows
from marketdata.codec import entry_encode

from .test_aggregation import simulated_quotes

ROOT = Path(__file__).resolve().parents[2]
HOUR_US = 3_600_000_000


def _manage(env, *args, timeout=180):
    done = subprocess.run(
        [sys.executable, "manage.py", *args, "--skip-checks"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def _bars(db_path, resolution, *, account_bars=False):
    """Bars of the default accounts (or, with account_bars, of the accounts quoted on feeds of their own)."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT b.slug || ':' || coalesce(s.account_id, 0), i.symbol, s.start, s.open, s.high, s.low, s.close, "
            "s.mean, s.count, s.dev_min, s.dev_max, s.duration FROM marketdata_spreadbar s "
            "JOIN brokers_broker b ON b.id = s.broker_id JOIN brokers_instrument i ON i.id = s.instrument_id "
            "WHERE s.resolution = ? AND (s.account_id IS NULL) = ?",
            [resolution, not account_bars],
        ).fetchall()
    out = {}
    for slug, symbol, start, *values in rows:
        ts = datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp()
        key = slug if account_bars else slug.rsplit(":", 1)[0]
        out[(key, symbol, round(ts * 1_000_000))] = values
    return out


def _same(got, want):
    names = ("open", "high", "low", "close", "mean", "count", "dev_min", "dev_max", "duration")
    for name, value in zip(names, got, strict=True):
        assert value == pytest.approx(getattr(want, name), rel=1e-9, abs=1e-15), name


@pytest.mark.slow
def test_a_backfill_and_an_aggregation_pass_write_bars_on_sqlite(tmp_path):
    db_path = tmp_path / "db.sqlite3"
    prefix = f"{settings.CACHE_KEY_PREFIX}sq"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{db_path}",
        "CACHE_KEY_PREFIX": prefix,
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": "x" * 50,
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
    }
    _manage(env, "migrate", "--noinput", "-v0")
    _manage(env, "seed_demo")
    out = _manage(env, "simulate", "--days", "0.25", "--quotes-per-minute", "0.5", "--no-progress")
    assert "Simulated 0.25 days" in out

    for account_bars in (False, True):  # the default accounts', and those of accounts on feeds of their own
        minute, hourly, daily = (_bars(db_path, r, account_bars=account_bars) for r in ("1m", "1h", "1d"))
        assert minute and hourly and daily
        assert len({start for _, _, start in hourly}) == 6  # every hour of the window
        assert sum(v[5] for v in hourly.values()) == sum(v[5] for v in daily.values()) > 0
        # The SQLite roll-up of the 1-minute bars gives the same hourly bars as the Python definition.
        hour_of_minutes = {}
        for (b, i, start), v in minute.items():
            hour_of_minutes.setdefault((b, i, start - start % HOUR_US), []).append(v[5])
        for key, counts in hour_of_minutes.items():
            assert hourly[key][5] == sum(counts), key

    # An aggregation pass over the tick stream, in the current hour (after the backfilled window).
    r = redis.Redis.from_url(settings.REDIS_URL)
    hour = int(time.time()) * 1_000_000 // HOUR_US * HOUR_US
    quotes = simulated_quotes(minutes=2, rate=2.0, start=hour)
    shards = settings.LIVE_STREAM_SHARDS
    expected = {s: SpreadAggregator() for s in range(shards)}
    try:
        per_shard: dict[int, list] = {s: [] for s in range(shards)}
        for q in quotes:
            per_shard[keys.shard_of(q[1], shards)].append((*q[:4], 1.0, 1.0, q[4], q[4] + 100, q[4] + 200, 0))
        for shard, batch in per_shard.items():
            for n, start in enumerate(range(0, len(batch), 50), start=1):
                chunk = batch[start : start + 50]
                r.xadd(keys.tick_stream(shard, prefix), entry_encode("producer-sq", n, chunk))
                for q in chunk:
                    expected[shard].add(q[0], q[1], q[2], q[3], q[6])
        out = _manage(env, "aggregate", "--exit-when-idle", "1.5", "--rollup-every", "0.01")
        assert "shard locks skipped" in out
        for shard in range(shards):
            assert r.xpending(keys.tick_stream(shard, prefix), keys.AGGREGATOR_GROUP)["pending"] == 0
    finally:
        for key in r.scan_iter(f"{prefix}:*"):
            r.delete(key)

    rows = [row for agg in expected.values() for row in agg.take_rows()]
    minute = _bars(db_path, "1m")
    for row in rows:
        _same(minute[(row.broker, row.instrument, row.start_us)], row)
    assert sum(minute[(w.broker, w.instrument, w.start_us)][5] for w in rows) == len(quotes)
    hourly = _bars(db_path, "1h")
    for row in rollup_rows(rows, bucket_us=HOUR_US):
        _same(hourly[(row.broker, row.instrument, row.start_us)], row)
