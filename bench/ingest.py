"""Benchmark: sustained quotes/s through validation, live path, tick stream and aggregation into PostgreSQL.

    python -m bench.ingest [--quick] [--no-live]

Uses its own PostgreSQL database (bw_bench_ingest, created and migrated on first run) and its own
Redis key prefix. The ingestor runs in this process (asyncio), the aggregator in a forked process,
exactly as `manage.py ingest` / `manage.py aggregate` would. Quotes come from the simulator,
pre-generated once and replayed with fresh timestamps and sequence numbers, so generation cost is not
measured. Baseline: the naive design, one INSERT (and commit) per validated quote.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import multiprocessing as mp
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bw_bench_ingest")
os.environ["CACHE_KEY_PREFIX"] = f"bench-ingest-{os.getpid()}"
os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("ADMIN_URL", "bench-admin/")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _ensure_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


_ensure_database()
import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

from brokers.services import demo_seed  # noqa: E402
from common.ticks import Quote, now_us  # noqa: E402
from marketdata import keys  # noqa: E402
from marketdata.aggregator import StreamAggregator  # noqa: E402
from marketdata.ingest import Ingestor  # noqa: E402
from marketdata.models import AggregatorCheckpoint, SpreadBar  # noqa: E402
from marketdata.selectors import symbol_maps  # noqa: E402
from marketdata.validation import QuoteValidator  # noqa: E402
from simulator.broker import BrokerFeedSimulator  # noqa: E402
from simulator.market import ReferenceMarket  # noqa: E402
from simulator.profiles import BROKER_PROFILES  # noqa: E402


def base_quotes(n_seconds: float) -> list[Quote]:
    start = now_us()
    markets: dict[str, ReferenceMarket] = {}
    sims = []
    for p in BROKER_PROFILES.values():
        for s in p.instruments:
            markets.setdefault(s, ReferenceMarket(s, seed=1))
        sims.append(BrokerFeedSimulator(p, markets, seed=1, quotes_per_s=20, start_us=start, with_depth=False))
    end = start + int(n_seconds * 1e6)
    return [
        q for q in heapq.merge(*(s.events(start, end) for s in sims), key=lambda x: getattr(x, "ts_broker", 0))
        if isinstance(q, Quote)
    ]  # fmt: skip


def _aggregator_main(stop: Any, out: Any) -> None:
    connections.close_all()
    agg = StreamAggregator(
        redis_url=settings.REDIS_URL,
        prefix=settings.CACHE_KEY_PREFIX,
        shards=list(range(settings.LIVE_STREAM_SHARDS)),
        count=50,
        block_ms=100,
        rollup_every_s=0,
        lag_every=32,
    )
    agg.run(stop=stop.is_set)
    out.put((agg.stats.quotes, agg.stats.lag_us))


def _checkpointed_quotes() -> int:
    return sum(int(cp.state.get("agg", {}).get("quotes", 0)) for cp in AggregatorCheckpoint.objects.all())


async def _feed(ing: Ingestor, base: list[Quote], total: int) -> None:
    seq = 0
    chunk = 500
    sent = 0
    while sent < total:
        t = now_us()
        for q in base[sent % len(base) : sent % len(base) + chunk]:
            seq += 1
            ing.accept(Quote(q.broker, q.instrument, q.bid, q.ask, q.bid_size, q.ask_size, t, t, seq))
        sent += chunk
        await asyncio.sleep(0)  # one event-loop tick: the flush of this chunk runs here
        if ing.backlog > 200_000:
            await ing.flush()


def pipeline(base: list[Quote], total: int, *, live: bool) -> dict[str, float]:
    with connection.cursor() as cur:
        cur.execute("TRUNCATE marketdata_spreadbar, marketdata_aggregatorcheckpoint")
    connections.close_all()
    ctx = mp.get_context("fork")
    stop, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_aggregator_main, args=(stop, out))
    proc.start()
    validator = QuoteValidator(symbols=symbol_maps())
    ing = Ingestor(
        redis_url=settings.REDIS_URL,
        prefix=settings.CACHE_KEY_PREFIX,
        shards=settings.LIVE_STREAM_SHARDS,
        validator=validator,
        live_path=live,
    )

    async def run() -> None:
        await _feed(ing, base, total)
        await ing.stop()

    t0 = time.perf_counter()
    asyncio.run(run())
    ingest_s = time.perf_counter() - t0
    accepted = ing.stats.accepted
    deadline = time.monotonic() + 300
    while _checkpointed_quotes() < accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    stop.set()
    aggregated, lags = out.get(timeout=60)
    proc.join(timeout=30)
    in_bars = SpreadBar.objects.filter(resolution="1m").values_list("count", flat=True)
    committed = sum(in_bars)
    lags_ms = sorted(x / 1000 for x in lags) or [0.0]
    return {
        "accepted": accepted,
        "rejected": ing.stats.rejected,
        "quotes_per_s": accepted / elapsed,
        "ingest_only_per_s": accepted / ingest_s,
        "lost": accepted - committed,
        "lag_p50_ms": statistics.median(lags_ms),
        "lag_p99_ms": lags_ms[int(0.99 * (len(lags_ms) - 1))],
        "aggregated": aggregated,
    }


def baseline(base: list[Quote], seconds: float) -> dict[str, float]:
    """The naive design: validate, then one INSERT + commit per quote."""
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS bench_naive_quote (id bigserial primary key, broker text, "
            "instrument text, bid float8, ask float8, ts bigint)"
        )
        cur.execute("TRUNCATE bench_naive_quote")
    validator = QuoteValidator(symbols=symbol_maps())
    lags: list[float] = []
    accepted = 0
    seq = 0
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        i = 0
        while time.perf_counter() - t0 < seconds:
            q = base[i % len(base)]
            i += 1
            seq += 1
            t = now_us()
            checked = validator.check(Quote(q.broker, q.instrument, q.bid, q.ask, q.bid_size, q.ask_size, t, t, seq))
            if not isinstance(checked, Quote):
                continue
            cur.execute(
                "INSERT INTO bench_naive_quote (broker, instrument, bid, ask, ts) VALUES (%s, %s, %s, %s, %s)",
                [checked.broker, checked.instrument, checked.bid, checked.ask, checked.ts_broker],
            )  # autocommit: one transaction per quote
            accepted += 1
            lags.append((now_us() - t) / 1000)
    elapsed = time.perf_counter() - t0
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM bench_naive_quote")
        stored = cur.fetchone()[0]
    lags.sort()
    return {
        "quotes_per_s": accepted / elapsed,
        "lost": accepted - stored,
        "lag_p50_ms": statistics.median(lags),
        "lag_p99_ms": lags[int(0.99 * (len(lags) - 1))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="A run under a minute.")
    parser.add_argument("--quotes", type=int, default=0, help="Quotes to push through (default 300k, quick 150k).")
    parser.add_argument("--no-live", action="store_true", help="Skip the live pub/sub path (durable path only).")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench.ingest needs PostgreSQL")
    call_command("migrate", verbosity=0, skip_checks=True)
    demo_seed()
    total = args.quotes or (150_000 if args.quick else 1_000_000)
    print(f"generating quotes ({'quick' if args.quick else 'full'} run, {total:,} quotes)...", flush=True)
    base = base_quotes(4.0)
    print(f"{len(base):,} distinct simulated quotes from 14 brokers, replayed with fresh timestamps", flush=True)
    ours = pipeline(base, total, live=not args.no_live)
    naive = baseline(base, 5.0 if args.quick else 15.0)
    ratio = ours["quotes_per_s"] / naive["quotes_per_s"]
    print()
    print(f"{'':44} {'quotes/s':>10} {'lost':>6} {'lag p50 ms':>11} {'lag p99 ms':>11}")
    label = "stream + aggregator (live path " + ("off)" if args.no_live else "on)")
    for name, row in ((label, ours), ("baseline: one INSERT per quote", naive)):
        print(
            f"{name:44} {row['quotes_per_s']:>10,.0f} {row['lost']:>6.0f} "
            f"{row['lag_p50_ms']:>11.1f} {row['lag_p99_ms']:>11.1f}"
        )
    print(f"ratio: {ratio:.1f}x the baseline; ingest side alone {ours['ingest_only_per_s']:,.0f} quotes/s; "
          f"accepted {ours['accepted']:,.0f}, rejected {ours['rejected']:,.0f}; target 50,000 quotes/s")  # fmt: skip
    print(
        f"RESULT quotes_per_s={ours['quotes_per_s']:.0f} lost={ours['lost']:.0f} "
        f"lag_p99_ms={ours['lag_p99_ms']:.1f} baseline_quotes_per_s={naive['quotes_per_s']:.0f}"
    )
    import redis

    r = redis.Redis.from_url(settings.REDIS_URL)
    for key in r.scan_iter(f"{settings.CACHE_KEY_PREFIX}:*"):
        r.delete(key)
    _ = keys


if __name__ == "__main__":
    main()
