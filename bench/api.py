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

from bench.site import site_database_prepare, site_env, site_measure, site_server

DB_NAME = "bw_bench_api"
DETAIL = "/api/v1/brokers/northwind-markets"
LIST = "/api/v1/brokers"
PROFILE = "/brokers/northwind-markets/"
PREFIX = f"bench-api-{os.getpid()}"


def _env(**extra: str) -> dict[str, str]:
    # API_RATE_ANON: measuring throughput, not the limit.
    return site_env(db_name=DB_NAME, prefix=PREFIX, API_RATE_ANON="100000000/m", **extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the benchmark's database")
    args = parser.parse_args(argv)
    seconds = 2.0 if args.quick else 20.0

    print(f"Preparing database {DB_NAME} (migrate, seed_demo, collectstatic)...", flush=True)
    site_database_prepare(_env(), db_name=DB_NAME, fresh=args.fresh)
    with site_server(_env(API_CACHE_S="30")) as url:
        list_cached = site_measure(url + LIST, clients=args.clients, seconds=seconds)
        detail_cached = site_measure(url + DETAIL, clients=args.clients, seconds=seconds)
        page_cached = site_measure(url + PROFILE, clients=args.clients, seconds=seconds)
    with site_server(_env(API_CACHE_S="0")) as url:
        list_uncached = site_measure(url + LIST, clients=args.clients, seconds=seconds)
        detail_uncached = site_measure(url + DETAIL, clients=args.clients, seconds=seconds)

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
