"""Benchmark: a cached profile page against the same page rendered uncached and a static file of the same size,
and a filtered, cost-sorted directory page cached against uncached.

    python -m bench.pages [--quick]

Starts the site under daphne (one process) on real PostgreSQL and Redis, with a database of its own,
and loads it with 50 keep-alive clients. Ends with
RESULT cached_rps=N uncached_rps=N static_rps=N cached_p99_ms=N filtered_cached_rps=N filtered_uncached_rps=N
filtered_cached_p99_ms=N
"""

from __future__ import annotations

import argparse
import os
import urllib.request
from contextlib import AbstractContextManager

from bench.site import ROOT, site_database_prepare, site_env, site_measure, site_server

DB_NAME = "bw_bench_pages"
PROFILE = "/brokers/northwind-markets/"
# Several filters at once, cost sort: the directory's most expensive render.
FILTERED = (
    "/brokers/?tier=2&max_deposit=1000&max_cost=40&negative_balance_protection=on&funding=bank-transfer&sort=cost"
)


def _env(**extra: str) -> dict[str, str]:
    return site_env(db_name=DB_NAME, prefix=f"bench-pages-{os.getpid()}", **extra)


def _prepare_database() -> None:
    # A day of simulated history (each account a broker prices apart on its own feed): the filtered,
    # cost-sorted directory then computes real all-in costs instead of rendering empty cells.
    site_database_prepare(_env(), db_name=DB_NAME, simulate_days=1)


def _server(**env: str) -> AbstractContextManager[str]:
    return site_server(_env(**env))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (under a minute in all)")
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args(argv)
    seconds = 5.0 if args.quick else 20.0

    print(f"Preparing database {DB_NAME} (migrate, seed_demo, 1 simulated day, collectstatic)...", flush=True)
    _prepare_database()

    with _server() as url:
        body = urllib.request.urlopen(url + PROFILE).read()  # noqa: S310 (local server)
        static_dir = ROOT / "staticfiles" / "bench"
        static_dir.mkdir(parents=True, exist_ok=True)
        (static_dir / "profile-copy.html").write_bytes(body)
    # Whitenoise indexes files at start-up, so the copy is served by a server started after it was written.
    with _server() as url:
        cached = site_measure(url + PROFILE, clients=args.clients, seconds=seconds)
        static = site_measure(url + "/static/bench/profile-copy.html", clients=args.clients, seconds=seconds)
        filtered_cached = site_measure(url + FILTERED, clients=args.clients, seconds=seconds)
    with _server(PAGECACHE_ENABLED="0") as url:
        uncached = site_measure(url + PROFILE, clients=args.clients, seconds=seconds)
        filtered_uncached = site_measure(url + FILTERED, clients=args.clients, seconds=seconds)

    size = len(body)
    print()
    print(
        f"Profile page {PROFILE} ({size:,} bytes), {args.clients} keep-alive clients, {seconds:.0f} s each, "
        "one daphne process"
    )
    print(f"{'scenario':<34}{'req/s':>10}{'TTFB p50 ms':>14}{'TTFB p99 ms':>14}{'vs uncached':>14}")
    rows = [
        ("(a) cached page (regenerated)", cached),
        ("(b) same page rendered uncached", uncached),
        ("(c) static file, same size", static),
    ]
    for name, r in rows:
        print(f"{name:<34}{r.rps:>10.0f}{r.pct(0.5):>14.2f}{r.pct(0.99):>14.2f}{r.rps / uncached.rps:>13.1f}x")
    for name, r in [("(d) filtered directory, cached", filtered_cached), ("(e) filtered, uncached", filtered_uncached)]:
        ratio = r.rps / filtered_uncached.rps
        print(f"{name:<34}{r.rps:>10.0f}{r.pct(0.5):>14.2f}{r.pct(0.99):>14.2f}{ratio:>13.1f}x")
    print(f"Filtered directory: {FILTERED}")
    print()
    for label, fast, slow in [("(a) vs (b)", cached, uncached), ("(d) vs (e)", filtered_cached, filtered_uncached)]:
        verdict_ratio = "met" if fast.rps >= 20 * slow.rps else "NOT met"
        verdict_p99 = "met" if fast.pct(0.99) < 20 else "NOT met"
        print(
            f"Target {label} >= 20x: {fast.rps / slow.rps:.1f}x, {verdict_ratio}. "
            f"Target p99 TTFB cached < 20 ms: {fast.pct(0.99):.2f} ms, {verdict_p99}."
        )
    print(
        f"RESULT cached_rps={cached.rps:.0f} uncached_rps={uncached.rps:.0f} static_rps={static.rps:.0f} "
        f"cached_p99_ms={cached.pct(0.99):.2f} filtered_cached_rps={filtered_cached.rps:.0f} "
        f"filtered_uncached_rps={filtered_uncached.rps:.0f} filtered_cached_p99_ms={filtered_cached.pct(0.99):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
