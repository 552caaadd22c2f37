"""The ingestor and aggregator on real Redis and PostgreSQL, including the faults they must survive."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.db import connection

from brokers.models import Broker
from common.ticks import FeedStatus
from marketdata import keys
from marketdata.aggregation import SpreadAggregator
from marketdata.codec import entry_encode
from marketdata.feeds.simulator import SimulatorFeed
from marketdata.ingest import Ingestor, backoff_delay
from marketdata.models import AggregatorCheckpoint, FeedStatusChange, SpreadBar
from marketdata.selectors import symbol_maps
from marketdata.services import feed_status_record, us_to_dt
from marketdata.validation import QuoteValidator
from testing.support import await_for

from .test_aggregation import simulated_quotes

ROOT = Path(__file__).resolve().parents[2]
PREFIX = settings.CACHE_KEY_PREFIX


def _validator(*brokers):
    return QuoteValidator(symbols=symbol_maps(brokers=list(brokers)))


def _ingestor(validator, *, redis_url=None, status_sink=None):
    return Ingestor(
        redis_url=redis_url or settings.REDIS_URL,
        prefix=PREFIX,
        shards=settings.LIVE_STREAM_SHARDS,
        validator=validator,
        status_sink=status_sink,
        stale_after_s=2,
    )


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(1)
    delays = [backoff_delay(a, base=0.5, cap=8, rng=rng) for a in range(10)]
    assert 0.25 <= delays[0] < 0.75
    assert 2.0 <= delays[3] < 6.0
    assert all(4.0 <= d < 12.0 for d in delays[5:])
    assert len(set(delays)) == len(delays)


def test_accepted_quotes_reach_the_live_channel_latest_and_depth_hashes_and_the_stream(demo_committed):
    validator = _validator("northwind-markets")

    async def scenario():
        sub = aioredis.Redis.from_url(settings.REDIS_URL)
        pubsub = sub.pubsub()
        await pubsub.subscribe(keys.live_channel("EURUSD"))
        ing = _ingestor(validator)
        feed = SimulatorFeed(
            "northwind-markets", {"quotes_per_s": 20, "tick_ms": 20, "instruments": ["EURUSD", "GBPUSD"]}
        )
        done = asyncio.Event()
        asyncio.get_running_loop().call_later(1.5, done.set)
        await ing.run([feed], until=done)
        messages = []
        for _ in range(5000):  # drain; a subscribe confirmation also reads as None
            m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if m is not None:
                messages.append(json.loads(m["data"]))
            elif messages:
                break
        await sub.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
        return ing, messages

    ing, messages = asyncio.run(scenario())
    assert ing.stats.accepted > 20
    assert messages and all(m["instrument"] == "EURUSD" for m in messages)
    m = messages[-1]
    assert set(m) == {
        "broker",
        "instrument",
        "bid",
        "ask",
        "spread",
        "bid_size",
        "ask_size",
        "ts_broker",
        "ts_ingest",
        "seq",
    }
    assert m["spread"] == pytest.approx(m["ask"] - m["bid"]) and m["ts_ingest"] >= m["ts_broker"]
    r = redis.Redis.from_url(settings.REDIS_URL)
    latest, depth_raw = (
        r.hget(keys.latest_hash(), "northwind-markets:EURUSD"),
        r.hget(keys.depth_hash(), "northwind-markets:GBPUSD"),
    )
    assert latest is not None and depth_raw is not None
    assert json.loads(latest)["broker"] == "northwind-markets"
    depth = json.loads(depth_raw)
    assert len(depth["bids"]) == len(depth["asks"]) == 5
    in_streams = sum(r.xlen(keys.tick_stream(s)) for s in range(settings.LIVE_STREAM_SHARDS))
    assert in_streams >= 1 and ing.stats.durable_written == ing.stats.accepted


def test_a_feed_that_disconnects_is_reconnected_and_its_status_history_shows_the_gap(demo_committed):
    def sink(broker, status, at, detail):
        feed_status_record(broker_slug=broker, status=str(status), at=us_to_dt(at), detail=detail)
        connection.close()

    validator = _validator("kestrel-fx")

    outage_s = 1.2

    async def scenario():
        ing = _ingestor(validator, status_sink=sink)
        feed = SimulatorFeed("kestrel-fx", {"quotes_per_s": 5, "tick_ms": 20, "outages": [[0.6, outage_s]]})
        done = asyncio.Event()

        async def until_back_up():
            # Stop once the feed is back (backoff has jitter, so no fixed run time fits every draw).
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if ing.stats.reconnects >= 1 and ing.status_of("kestrel-fx") == FeedStatus.UP:
                    break
                await asyncio.sleep(0.05)
            done.set()

        watcher = asyncio.create_task(until_back_up())
        await ing.run([feed], until=done)
        await watcher
        return ing, feed

    ing, feed = asyncio.run(scenario())
    assert ing.stats.reconnects >= 1
    # Status rows are written from a thread: give it time on a busy machine.
    deadline = time.monotonic() + 10
    while FeedStatusChange.objects.filter(broker__slug="kestrel-fx").count() < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    history = list(FeedStatusChange.objects.filter(broker__slug="kestrel-fx").order_by("at"))
    statuses = [h.status for h in history]
    assert statuses[:3] == ["up", "down", "up"], statuses
    # The feed is back only after the forced outage ends, and at most three reconnect attempts fit in the
    # outage (the shortest draws are 0.25, 0.5 and 1 s), so the first attempt after it comes at most one
    # attempt-2 delay later; one second more for a busy machine.
    outage_end = us_to_dt(feed.forced[0][1])
    longest_wait = 0.5 * 2**2 * 1.5  # backoff_delay(2) at its largest jitter
    back_after = (history[2].at - outage_end).total_seconds()
    assert history[1].at < outage_end and 0 <= back_after <= longest_wait + 1.0, back_after
    assert ing.status_of("kestrel-fx") == FeedStatus.UP


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_server(port, directory):
    # As in production (deploy/redis.conf): the tick streams in an append-only file, fsynced every second.
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
    proc = subprocess.Popen(
        [*args, "--appendonly", "yes", "--appendfsync", "everysec"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def test_the_ingestor_survives_a_redis_restart_and_loses_no_accepted_quote(demo_committed, tmp_path):
    port = _free_port()
    server = _redis_server(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"

    validator = _validator("northwind-markets", "alpenbank-trading")

    async def scenario():
        nonlocal server
        ing = _ingestor(validator, redis_url=url)
        feeds = [
            SimulatorFeed(b, {"quotes_per_s": 10, "tick_ms": 20}) for b in ("northwind-markets", "alpenbank-trading")
        ]
        tasks = [asyncio.ensure_future(ing.run_feed(f)) for f in feeds]
        for _ in range(200):  # the first quotes wait for the reference markets to be generated
            await asyncio.sleep(0.05)
            if ing.stats.durable_written:
                break
        first = ing.stats.durable_written
        await await_for(lambda: ing.stats.durable_written > first, what="more quotes written")
        written_before = ing.stats.durable_written
        server.kill()
        server.wait()
        # Held, not dropped:
        await await_for(lambda: ing.stats.flush_errors > 0 and ing.backlog > 0, what="a held backlog")
        server = _redis_server(port, tmp_path)
        await await_for(lambda: ing.backlog == 0, timeout=30, what="the backlog drained")
        assert all(not t.done() for t in tasks)  # no feed crashed
        await ing.stop(tasks)
        return ing, written_before

    try:
        ing, before = asyncio.run(scenario())
    finally:
        server.kill()
        server.wait()
    assert ing.backlog == 0
    assert ing.stats.durable_written == ing.stats.accepted > before > 0


def _subprocess_env():
    env = dict(os.environ)
    db = settings.DATABASES["default"]
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        CACHE_KEY_PREFIX=PREFIX,
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY="x" * 50,
        DEBUG="0",
        LOG_LEVEL="WARNING",
    )
    return env


def _aggregate(*extra):
    return subprocess.Popen(
        [sys.executable, "manage.py", "aggregate", "--skip-checks", "--count", "4", "--rollup-every", "0", *extra],
        cwd=ROOT,
        env=_subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_kill_9_of_the_aggregator_mid_batch_then_restart_gives_the_bars_of_an_uninterrupted_run(demo_committed):
    quotes = simulated_quotes(minutes=3, rate=4.0)
    r = redis.Redis.from_url(settings.REDIS_URL)
    shards = settings.LIVE_STREAM_SHARDS
    expected_aggs = {s: SpreadAggregator() for s in range(shards)}
    batches: dict[int, list] = {s: [] for s in range(shards)}
    for q in quotes:
        batches[keys.shard_of(q[1], shards)].append((q[0], q[1], q[2], q[3], 1.0, 1.0, q[4], q[4] + 100, q[4] + 200, 0))
    for shard, qs in batches.items():
        for n, start in enumerate(range(0, len(qs), 10), start=1):
            chunk = qs[start : start + 10]
            r.xadd(keys.tick_stream(shard), entry_encode("producer-a", n, chunk))
            if n == 3:  # a batch re-sent after a network error must not count twice
                r.xadd(keys.tick_stream(shard), entry_encode("producer-a", n, chunk))
            for q in chunk:
                expected_aggs[shard].add(q[0], q[1], q[2], q[3], q[6])
        r.xadd(keys.tick_stream(shard), {"garbage": "1"})  # malformed entries are skipped, not fatal
    expected = {}
    for agg in expected_aggs.values():
        expected.update({(b.broker, b.instrument, b.start_us): b for b in agg.take_rows()})

    for _ in range(3):
        proc = _aggregate()
        deadline = time.monotonic() + 30
        while AggregatorCheckpoint.objects.count() < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(random.uniform(0.0, 0.08))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    progress = sum(int(cp.state.get("agg", {}).get("quotes", 0)) for cp in AggregatorCheckpoint.objects.all())
    assert 0 < progress < len(quotes), "the kills should land mid-stream"
    final = _aggregate("--exit-when-idle", "1.5")
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()[-2000:]

    bars = SpreadBar.objects.filter(resolution="1m").select_related("broker", "instrument")
    got = {(b.broker.slug, b.instrument.symbol, int(b.start.timestamp() * 1_000_000)): b for b in bars}
    assert set(got) == set(expected)
    for key, want in expected.items():
        bar = got[key]
        assert bar.count == want.count, key
        for name in ("open", "high", "low", "close", "mean", "dev_min", "dev_max", "duration"):
            assert getattr(bar, name) == pytest.approx(getattr(want, name), rel=1e-12, abs=1e-15), (key, name)
    assert sum(b.count for b in got.values()) == len(quotes)
    for shard in range(shards):
        assert r.xpending(keys.tick_stream(shard), keys.AGGREGATOR_GROUP)["pending"] == 0
    assert Broker.objects.count() == 14


def test_the_live_message_carries_every_field_of_the_quote_as_json():
    from common.ticks import Quote, quote_live_message

    q = Quote('we"ird', "EURUSD", 1.08501, 1.08507, 1e6, 2.5e5, 1_780_000_000_000_001, 1_780_000_000_000_101, 77)
    assert json.loads(quote_live_message(q, 5)) == {
        "broker": 'we"ird',
        "instrument": "EURUSD",
        "bid": 1.08501,
        "ask": 1.08507,
        "spread": 1.08507 - 1.08501,
        "bid_size": 1e6,
        "ask_size": 2.5e5,
        "ts_broker": 1_780_000_000_000_001,
        "ts_ingest": 5,
        "seq": 77,
    }
