"""Benchmark: the public API (cached and uncached) and the alert evaluator against 10,000 active alerts.

    python -m bench.api [--quick]

1. HTTP: daphne (one process) on real PostgreSQL and Redis with the demo data; the brokers list and one
   broker's detail, each with the API's answer cache on (API_CACHE_S=30) and off (0), 50 keep-alive
   clients. Reference in the same run: the cached profile page (the pages' regenerated-page lane).
2. Alerts: bench/alerts.py (the real evaluator with 10,000 alerts fed 20,000 quotes/s through Redis,
   against a bare subscriber at the same rate and the pure engine flat out; see there).

Ends with RESULT list_cached_rps=N detail_cached_rps=N alerts=10000 alert_quotes_per_s=N alert_p99_ms=N
(then alert_offered_per_s and ref_subscriber_p99_ms, the alert reference's p99 at the same rate)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.httpload import LoadResult, load
from testing.daphne import daphne_server

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "bw_bench_api"
DETAIL = "/api/v1/brokers/northwind-markets"
LIST = "/api/v1/brokers"
PROFILE = "/brokers/northwind-markets/"
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


def _prepare_database(*, fresh: bool) -> None:
    """The demo data in its own database. Kept between runs unless ``fresh``: migrate and seed_demo are
    idempotent, so a kept database ends up the same, and --quick stays under a minute."""
    listing = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-lqtA"], check=True, capture_output=True, text=True
    ).stdout
    exists = any(line.split("|", 1)[0] == DB_NAME for line in listing.splitlines())
    if fresh or not exists:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the benchmark's database")
    args = parser.parse_args(argv)
    seconds = 2.0 if args.quick else 20.0

    print(f"Preparing database {DB_NAME} (migrate, seed_demo, collectstatic)...", flush=True)
    _prepare_database(fresh=args.fresh)
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
    from bench import alerts

    alerts.setup_django()
    print()
    result = alerts.run(seconds=seconds)
    print(f"(Figures from a shared {os.cpu_count()}-core machine; load average now {os.getloadavg()[0]:.1f}.)")
    print(
        f"RESULT list_cached_rps={list_cached.rps:.0f} detail_cached_rps={detail_cached.rps:.0f} "
        f"alerts={alerts.ALERTS} alert_quotes_per_s={result.quotes_per_s:.0f} alert_p99_ms={result.p99_ms:.1f} "
        f"alert_offered_per_s={result.offered_per_s:.0f} ref_subscriber_p99_ms={result.ref_p99_ms:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
