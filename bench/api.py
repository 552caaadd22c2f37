"""Benchmark: the public API (cached and uncached) and the alert evaluator against 10,000 active alerts.

    python -m bench.api [--quick]

1. HTTP: daphne (one process) on real PostgreSQL and Redis with the demo data; the brokers list and one
   broker's detail, each with the API's answer cache on (API_CACHE_S=30) and off (0), 50 keep-alive
   clients. Reference in the same run: the cached profile page (the pages' regenerated-page lane).
2. Alerts: the real evaluator (alerts.evaluator.Evaluator: Redis pub/sub in, Redis pub/sub out) with
   10,000 spread alerts spread over 14 brokers and 20 instruments, fed 20,000 quotes/s by a publisher in
   another process. Measures the quotes/s evaluated and the delay from a quote's ingest time to its
   notification being published. Reference: the pure engine alone, flat out, on the same quotes.

Ends with RESULT list_cached_rps=N detail_cached_rps=N alerts=10000 alert_quotes_per_s=N alert_p99_ms=N
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.httpload import LoadResult, load
from testing.daphne import daphne_server

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "bw_bench_api"
DETAIL = "/api/v1/brokers/northwind-markets"
LIST = "/api/v1/brokers"
PROFILE = "/brokers/northwind-markets/"
ALERTS = 10_000
OFFERED_QPS = 20_000
BROKERS = [f"broker-{i:02d}" for i in range(14)]
INSTRUMENTS = [f"SYM{i:02d}" for i in range(20)]
PREFIX = f"bench-api-{os.getpid()}"


def _env(**extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "ADMIN_URL": "bench-admin/",  # production refuses the default admin/ (config/settings.py)
        "HTTPS": "0",
        "SECRET_KEY": "bench-" + "s3cr3t-k3y-" * 5,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "REDIS_REQUIRED": "1",
        "CACHE_KEY_PREFIX": PREFIX,
        "PAGECACHE_BACKGROUND": "thread",
        "API_RATE_ANON": "100000000/m",  # measuring throughput, not the limit
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=_env(), check=True, stdout=subprocess.DEVNULL)


def _prepare_database() -> None:
    for sql in (f"DROP DATABASE IF EXISTS {DB_NAME}", f"CREATE DATABASE {DB_NAME}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql], check=True)
    _manage("migrate", "-v0")
    _manage("seed_demo")
    _manage("collectstatic", "--noinput", "-v0")


@contextmanager
def _server(**env: str) -> Iterator[str]:
    with daphne_server(_env(**env)) as url:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).read()  # noqa: S310 (local server)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("daphne did not answer /healthz") from None
                time.sleep(0.2)
        yield url


def _measure(url: str, *, clients: int, seconds: float) -> LoadResult:
    load(url, clients=clients, seconds=min(1.0, seconds / 4))
    result = load(url, clients=clients, seconds=seconds)
    bad = {s: n for s, n in result.statuses.items() if s != 200}
    if bad or result.errors:
        raise RuntimeError(f"{url}: unexpected answers {bad}, {result.errors} connection errors")
    return result


# -- alerts ----------------------------------------------------------------------------------------


def _rules() -> tuple[list[Any], dict[str, float]]:
    from alerts.engine import SPREAD_ABOVE, Rule

    rng = random.Random(7)
    rules = []
    for i in range(ALERTS):
        instruments = frozenset() if i % 10 == 0 else frozenset({rng.choice(INSTRUMENTS)})  # 10 %: any instrument
        rules.append(
            Rule(
                id=i + 1,
                user_id=1 + i % 2000,
                kind=SPREAD_ABOVE,
                brokers=frozenset({rng.choice(BROKERS)}),
                instruments=instruments,
                threshold_pips=round(rng.uniform(3.0, 20.0), 1),  # above a calm spread
            )
        )
    return rules, dict.fromkeys(INSTRUMENTS, 0.0001)


def _spread_pips(rng: random.Random) -> float:
    # Mostly calm, now and then a blow-out that crosses many alerts at once.
    return rng.uniform(0.5, 2.5) if rng.random() > 0.001 else rng.uniform(3.0, 25.0)


def _publisher(redis_url: str, prefix: str, qps: int, seconds: float, sent: Any) -> None:
    import orjson
    import redis

    from marketdata import keys

    conn = redis.Redis.from_url(redis_url)
    rng = random.Random(11)
    channels = {s: keys.live_channel(s, prefix) for s in INSTRUMENTS}
    tick = 0.005
    per_tick = max(1, int(qps * tick))
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        pipe = conn.pipeline(transaction=False)
        now = time.time_ns() // 1000
        for _ in range(per_tick):
            instrument = rng.choice(INSTRUMENTS)
            bid = 1.1
            ask = bid + _spread_pips(rng) * 0.0001
            msg = {"broker": rng.choice(BROKERS), "instrument": instrument, "bid": bid, "ask": ask, "ts_ingest": now}
            pipe.publish(channels[instrument], orjson.dumps(msg))
        pipe.execute()
        n += per_tick
        ahead = start + n / qps - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    sent.value = n


async def _alerts_run(seconds: float) -> tuple[Any, int, float]:
    from django.conf import settings

    from alerts.evaluator import Evaluator

    class BenchEvaluator(Evaluator):
        async def reload(self) -> None:
            rules, pips = _rules()
            self.engine.load(rules, pip_sizes=pips)

    evaluator = BenchEvaluator(
        redis_url=settings.REDIS_URL, prefix=PREFIX, cooldown_s=60, reload_s=3600, score_poll_s=3600, record=False
    )
    stop = asyncio.Event()
    task = asyncio.ensure_future(evaluator.run(until=stop))
    await evaluator.ready.wait()
    sent = multiprocessing.Value("q", 0)
    proc = multiprocessing.Process(target=_publisher, args=(settings.REDIS_URL, PREFIX, OFFERED_QPS, seconds, sent))
    started = time.monotonic()
    proc.start()
    while proc.is_alive():
        await asyncio.sleep(0.05)
    # Let the evaluator finish what is already on its socket.
    deadline = time.monotonic() + 5
    while evaluator.stats.quotes < sent.value and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    elapsed = time.monotonic() - started
    stop.set()
    await task
    return evaluator.stats, int(sent.value), elapsed


def _engine_flat_out(quotes: int) -> float:
    from alerts.engine import Engine

    rules, pips = _rules()
    engine = Engine(cooldown_s=60)
    engine.load(rules, pip_sizes=pips)
    rng = random.Random(11)
    batch = [(rng.choice(BROKERS), rng.choice(INSTRUMENTS), _spread_pips(rng)) for _ in range(quotes)]
    t0 = time.perf_counter()
    now = time.time_ns() // 1000
    for broker, instrument, pips_ in batch:
        engine.on_quote(broker, instrument, 1.1, 1.1 + pips_ * 0.0001, now, now)
    return quotes / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args(argv)
    seconds = 4.0 if args.quick else 20.0

    print(f"Preparing database {DB_NAME} (migrate, seed_demo, collectstatic)...", flush=True)
    _prepare_database()
    with _server(API_CACHE_S="30") as url:
        list_cached = _measure(url + LIST, clients=args.clients, seconds=seconds)
        detail_cached = _measure(url + DETAIL, clients=args.clients, seconds=seconds)
        page_cached = _measure(url + PROFILE, clients=args.clients, seconds=seconds)
    with _server(API_CACHE_S="0") as url:
        list_uncached = _measure(url + LIST, clients=args.clients, seconds=seconds)
        detail_uncached = _measure(url + DETAIL, clients=args.clients, seconds=seconds)

    print()
    print(f"API, {args.clients} keep-alive clients, {seconds:.0f} s each, one daphne process")
    print(f"{'scenario':<44}{'req/s':>10}{'TTFB p50 ms':>14}{'TTFB p99 ms':>14}{'vs uncached':>14}")
    for name, r, base in (
        ("brokers list, cached", list_cached, list_uncached),
        ("brokers list, uncached", list_uncached, list_uncached),
        ("broker detail, cached", detail_cached, detail_uncached),
        ("broker detail, uncached", detail_uncached, detail_uncached),
        ("reference: cached profile page", page_cached, detail_uncached),
    ):
        print(f"{name:<44}{r.rps:>10.0f}{r.pct(0.5):>14.2f}{r.pct(0.99):>14.2f}{r.rps / base.rps:>13.1f}x")

    os.environ.update(_env())
    import django

    django.setup()
    from alerts.evaluator import percentile

    print()
    print(f"Alerts: {ALERTS:,} spread alerts, {OFFERED_QPS:,} quotes/s offered for {seconds:.0f} s ...", flush=True)
    flat = _engine_flat_out(200_000)
    stats, sent, elapsed = asyncio.run(_alerts_run(seconds))
    qps = stats.quotes / elapsed
    p50, p99 = percentile(stats.delays_us, 0.5) / 1000, percentile(stats.delays_us, 0.99) / 1000
    print(f"{'scenario':<44}{'quotes/s':>12}{'notified':>10}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'evaluator (Redis in and out)':<44}{qps:>12.0f}{stats.published:>10}{p50:>10.2f}{p99:>10.2f}")
    print(f"{'reference: pure engine, flat out':<44}{flat:>12.0f}{'':>10}{'':>10}{'':>10}")
    print(
        f"Sent {sent:,}, evaluated {stats.quotes:,} ({stats.quotes / max(1, sent):.1%}), {stats.bad} bad. "
        f"Evaluator at {qps / flat:.2f}x the pure engine's rate."
    )
    reached = sent / elapsed
    keeps_up = stats.quotes >= 0.99 * sent
    if reached < 0.95 * OFFERED_QPS:
        verdict = f"NOT verified: the publisher reached only {reached:,.0f} quotes/s on this machine"
    else:
        verdict = "met" if keeps_up and p99 <= 100 else "NOT met"
    print(
        f"Target p99 <= 100 ms while keeping up with {OFFERED_QPS:,} quotes/s: p99 {p99:.1f} ms at "
        f"{reached:,.0f} quotes/s offered, {'kept up' if keeps_up else 'fell behind'}: {verdict}."
    )
    print("(Figures from a shared 2-core machine under load from other work.)")
    print(
        f"RESULT list_cached_rps={list_cached.rps:.0f} detail_cached_rps={detail_cached.rps:.0f} alerts={ALERTS} "
        f"alert_quotes_per_s={qps:.0f} alert_p99_ms={p99:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
