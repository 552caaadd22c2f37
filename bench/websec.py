"""The web tier without Redis: 5xx and the slowest answer with Redis up, killed, and frozen (SIGSTOP).

One daphne (python -m config.web) on its own PostgreSQL database and a throwaway redis-server. Each
phase loads every public page in turn with a few concurrent clients. The reference is the same site
with Redis up. With Redis up it also loads one page with many keep-alive clients and reports how many
connections Redis then holds (the pools are bounded: REDIS_MAX_CONNECTIONS per pool).

    python -m bench.websec [--quick]

Ends with ``RESULT scenario=... fivexx=N of=N max_ms=N`` lines, one per phase.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
import urllib.request

import redis

from bench.httpload import LoadResult, load
from bench.site import site_database_prepare, site_env
from testing.daphne import daphne_start, daphne_stop, daphne_wait, free_port

DB_NAME = "bw_bench_websec"
REDIS_TIMEOUT_S = 1.0
PAGES = [
    "/",
    "/brokers/",
    "/brokers/?regulator=fca",
    "/brokers/northwind-markets/",
    "/compare/?brokers=kestrel-fx,northwind-markets",
    "/methodology/",
    "/live/",
    "/execution/",
    "/accounts/login/",
]


def _env(redis_url: str) -> dict[str, str]:
    return site_env(
        db_name=DB_NAME,
        prefix=f"bench-websec-{os.getpid()}",
        DEMO="1",
        REDIS_URL=redis_url,
        REDIS_TIMEOUT_S=str(REDIS_TIMEOUT_S),
        REDIS_CONNECT_TIMEOUT_S=str(REDIS_TIMEOUT_S),
        LOG_LEVEL="ERROR",
    )


def _redis_start(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


def _phase(base: str, *, clients: int, seconds: float) -> tuple[int, int, float]:
    """(5xx and failed connections, requests, slowest ms) over every page."""
    fivexx = requests = 0
    slowest = 0.0
    for path in PAGES:
        result: LoadResult = load(base + path, clients=clients, seconds=seconds)
        fivexx += sum(n for s, n in result.statuses.items() if s >= 500) + result.errors
        requests += result.requests + result.errors
        slowest = max([slowest, *result.ttfb_ms])
    return fivexx, requests, slowest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (under a minute in all)")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else 5.0
    clients = 8

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = _redis_start(port)
    print(f"Preparing database {DB_NAME} (migrate, seed_demo, collectstatic)...", flush=True)
    site_database_prepare(_env(url), db_name=DB_NAME)
    site = daphne_start(_env(url))
    rows: list[tuple[str, int, int, float]] = []
    try:
        daphne_wait(site)
        base = site.url
        for path in PAGES:
            urllib.request.urlopen(base + path, timeout=30).read()  # noqa: S310 (local server): renders them once
        rows.append(("redis-up", *_phase(base, clients=clients, seconds=seconds)))
        load(base + PAGES[3], clients=400, seconds=seconds * 2)
        redis_clients = int(redis.Redis(port=port).info("clients")["connected_clients"]) - 1

        os.kill(server.pid, signal.SIGSTOP)
        rows.append(("redis-frozen", *_phase(base, clients=clients, seconds=seconds)))
        os.kill(server.pid, signal.SIGCONT)

        server.kill()
        server.wait()
        rows.append(("redis-down", *_phase(base, clients=clients, seconds=seconds)))
    finally:
        daphne_stop(site)
        if server.poll() is None:
            os.kill(server.pid, signal.SIGCONT)
            server.kill()
            server.wait()

    print()
    print(f"{'scenario':<14} {'5xx':>6} {'requests':>9} {'max ms':>8}   (Redis timeout {REDIS_TIMEOUT_S:.0f} s)")
    for name, fivexx, requests, slowest in rows:
        print(f"{name:<14} {fivexx:>6} {requests:>9} {slowest:>8.0f}")
    reference = rows[0][3]
    print(f"frozen/up max latency ratio: {rows[1][3] / reference:.1f}x")
    print(f"Redis connections after 400 keep-alive clients: {redis_clients}")
    for name, fivexx, requests, slowest in rows:
        print(f"RESULT scenario={name} fivexx={fivexx} of={requests} max_ms={slowest:.0f}")
    print(f"RESULT scenario=pool redis_connections={redis_clients} clients=400")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
