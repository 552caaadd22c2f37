"""Benchmark: TrustMetrics recompute over stored roll-ups against a naive recompute from raw bars.

    python -m bench.trust [--quick]

Builds a database of its own on the real PostgreSQL: the 14 demo brokers, 20 instruments each, and
1-minute spread bars for 30 days (1 with --quick) written with generate_series, rolled up to hourly
bars as the market-data aggregator does, plus the economic calendar and feed outages of the
ground-truth profiles. Then times:

* full: the nightly recompute (every day of the window rebuilt from hourly bars and news-window minutes);
* incremental: the 5-minute recompute (today and yesterday rebuilt, the rest from stored daily sums);
* baseline: a naive full recompute that loads every raw 1-minute bar of the window into Python.

* backfill_90d: one score per broker for each of 90 past days (hourly bars for 97 days), against 90 full
  recomputes (3 measured, scaled);
* event_report: one release's stress report for all 14 brokers from 1-minute bars.

Ends with RESULT full_s=N incremental_s=N backfill_90d_s=N event_report_s=N baseline_full_s=N
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

# One database per run: two agents benchmarking at once on one PostgreSQL must not drop each other's data.
DB_NAME = f"bw_bench_trust_{os.getpid()}"


def _configure() -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "0",
            "ADMIN_URL": "bench-admin/",  # production refuses the default admin/ (config/settings.py)
            "HTTPS": "0",
            "SECRET_KEY": "bench-" + "trust-k3y-" * 5,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
            "REDIS_REQUIRED": "0",
            "CACHE_KEY_PREFIX": f"bench-trust-{os.getpid()}",
            "PAGECACHE_BACKGROUND": "thread",
            "LOG_LEVEL": "WARNING",
        }
    )
    for sql in (f"DROP DATABASE IF EXISTS {DB_NAME}", f"CREATE DATABASE {DB_NAME}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql], check=True)
    import django

    django.setup()


def _build(*, start: datetime, days: int) -> int:
    from django.core.management import call_command
    from django.db import connection

    from brokers.models import Broker, Instrument
    from brokers.services import demo_seed
    from marketdata.models import EconomicEvent, FeedStatusChange
    from simulator.instruments import SPECS
    from simulator.profiles import BROKER_PROFILES
    from trustmetrics import synthetic

    call_command("migrate", verbosity=0)
    demo_seed()
    brokers = {b.slug: b.pk for b in Broker.objects.all()}
    instruments = [(i.pk, SPECS[i.symbol].spread_pips * float(i.pip_size)) for i in Instrument.objects.all()]
    inst_values = ",".join(f"({pk},{typ!r})" for pk, typ in instruments)
    end = start + timedelta(days=days)
    with connection.cursor() as cur:
        cur.execute("SELECT setseed(0.42)")
        for slug, pk in sorted(brokers.items()):
            p = BROKER_PROFILES[slug]
            cur.execute(
                f"""
                INSERT INTO marketdata_spreadbar
                    (broker_id, instrument_id, resolution, start, open, high, low, close, mean, count,
                     duration, dev_count, dev_min, dev_max)
                SELECT %s, iid, '1m', t, s, s * 1.2, s * 0.8, s, s, 60, 60, 60, -d,
                       CASE WHEN random() < %s THEN %s * typ ELSE d END
                FROM (
                    SELECT i.iid, i.typ, t,
                           i.typ * %s * (1 + 0.05 * random()) AS s,
                           i.typ * (0.05 + %s / 1000.0) * (0.8 + 0.4 * random()) AS d
                    FROM (VALUES {inst_values}) AS i(iid, typ)
                    CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '1 minute',
                                               interval '1 minute') AS t
                ) q
                """,  # noqa: S608 (numbers we formatted ourselves)
                [pk, min(1.0, p.off_market_rate * 60), p.off_market_spreads, p.markup, p.stale_ms, start, end],
            )
        cur.execute(
            """
            INSERT INTO marketdata_spreadbar
                (broker_id, instrument_id, resolution, start, open, high, low, close, mean, count, duration, dev_count,
                 dev_min, dev_max)
            SELECT broker_id, instrument_id, '1h', date_trunc('hour', start), avg(open), max(high), min(low),
                   avg(close), avg(mean), sum(count), sum(duration), sum(dev_count), min(dev_min), max(dev_max)
            FROM marketdata_spreadbar WHERE resolution = '1m'
            GROUP BY broker_id, instrument_id, date_trunc('hour', start)
            """
        )
        cur.execute("SELECT count(*) FROM marketdata_spreadbar WHERE resolution = '1m'")
        minute_bars = int(cur.fetchone()[0])
        cur.execute("ANALYZE marketdata_spreadbar")
    profiles = [BROKER_PROFILES[s] for s in brokers]
    EconomicEvent.objects.bulk_create(
        [
            EconomicEvent(
                name=e.name,
                currency=e.currency,
                scheduled_at=datetime.fromtimestamp(e.at_us / 1e6, tz=UTC),
                impact=e.impact,
            )
            for e in synthetic.calendar(start, days)
        ],
        ignore_conflicts=True,
    )
    FeedStatusChange.objects.bulk_create(
        [
            FeedStatusChange(broker_id=brokers[slug], status=status, at=at)
            for slug, status, at in synthetic.status_changes(profiles, start=start, days=days)
        ],
        ignore_conflicts=True,
    )
    return minute_bars


def _plain_bars(*, start: datetime, end: datetime, resolution: str) -> int:
    """Bars of every broker and instrument in [start, end) at one resolution, from generate_series (fast)."""
    from django.db import connection

    from brokers.models import Broker, Instrument
    from simulator.instruments import SPECS
    from simulator.profiles import BROKER_PROFILES

    step = {"1m": "1 minute", "1h": "1 hour"}[resolution]
    inst_values = ",".join(
        f"({i.pk},{SPECS[i.symbol].spread_pips * float(i.pip_size)!r})" for i in Instrument.objects.all()
    )
    n = 0
    with connection.cursor() as cur:
        for slug, pk in sorted(Broker.objects.values_list("slug", "pk")):
            p = BROKER_PROFILES[slug]
            cur.execute(
                f"""
                INSERT INTO marketdata_spreadbar
                    (broker_id, instrument_id, resolution, start, open, high, low, close, mean, count,
                     duration, dev_count, dev_min, dev_max)
                SELECT %s, iid, %s, t, s, s * 1.2, s * 0.8, s, s, 60, 60, 60, -d, d
                FROM (
                    SELECT i.iid, t, i.typ * %s * (1 + 0.05 * random()) AS s,
                           i.typ * (0.05 + %s / 1000.0) * (0.8 + 0.4 * random()) AS d
                    FROM (VALUES {inst_values}) AS i(iid, typ)
                    CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '{step}',
                                               interval '{step}') AS t
                ) q
                ON CONFLICT DO NOTHING
                """,  # noqa: S608 (numbers we formatted ourselves)
                [pk, resolution, p.markup, p.stale_ms, start, end],
            )
            n += cur.rowcount
        cur.execute("ANALYZE marketdata_spreadbar")
    return n


def _naive(*, as_of: datetime) -> list[Any]:
    """Everything from raw 1-minute bars in Python: what the engine would cost without roll-ups."""
    from marketdata.models import SpreadBar
    from trustmetrics import selectors
    from trustmetrics.methodology import METHODOLOGY as M
    from trustmetrics.scoring import off_market_hours, score_all

    days = selectors.trust_window_days(as_of=as_of)
    start = datetime.combine(days[0], datetime.min.time(), tzinfo=UTC)
    events = selectors.trust_events_high_impact(start=start, end=as_of)
    from brokers.models import Instrument

    symbols = dict(Instrument.objects.values_list("pk", "symbol"))
    windows = [(at - M.news_before, at + M.news_after, ccy) for at, ccy in events]
    # hour -> [sum of minute means, minutes, largest deviation, quotes, minutes with a consensus]
    hours: dict[tuple[int, int, datetime], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0.0])
    news: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    rows = SpreadBar.objects.filter(resolution="1m", start__gte=start, start__lt=as_of, count__gt=0).values_list(
        "broker_id", "instrument_id", "start", "mean", "count", "dev_min", "dev_max", "dev_count"
    )
    for broker_id, instrument_id, t, mean, count, dev_min, dev_max, dev_count in rows.iterator(chunk_size=20000):
        h = hours[(broker_id, instrument_id, t.replace(minute=0, second=0, microsecond=0))]
        h[0] += mean
        h[1] += 1
        if dev_count > 0:
            h[2] = max(h[2], abs(dev_min), abs(dev_max))
            h[4] += 1
        h[3] += count
        symbol = symbols[instrument_id]
        if any(lo <= t < hi and M.moves_with(symbol, ccy) for lo, hi, ccy in windows):
            n = news[(broker_id, instrument_id)]
            n[0] += mean
            n[1] += 1
    off = off_market_hours((b, i, hour, v[2]) for (b, i, hour), v in hours.items() if v[4] > 0)
    sums: dict[tuple[int, int], dict[str, Any]] = {}
    for (broker_id, instrument_id, hour), (total, minutes, excursion, quotes, measured) in hours.items():
        s = sums.setdefault(
            (broker_id, instrument_id),
            dict.fromkeys(
                (
                    "hours",
                    "sum_mean",
                    "sum_mean_sq",
                    "quotes",
                    "dev_hours",
                    "sum_excursion",
                    "off_market_hours",
                    "news_minutes",
                    "news_sum_mean",
                ),
                0,
            ),
        )
        mean = total / minutes
        s["hours"] += 1
        s["sum_mean"] += mean
        s["sum_mean_sq"] += mean * mean
        s["quotes"] += int(quotes)
        if measured:
            s["dev_hours"] += 1
            s["sum_excursion"] += excursion
            s["off_market_hours"] += (broker_id, instrument_id, hour) in off
    for key, (total, minutes) in news.items():
        if key in sums:
            sums[key]["news_minutes"] = int(minutes)
            sums[key]["news_sum_mean"] = total
    feeds = selectors.trust_feed_stats(start=as_of - M.window, end=as_of)
    return score_all(selectors.trust_broker_inputs(as_of=as_of, sums=sums, feeds=feeds))


def _timed(fn: Any, repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 day of history instead of 30 (under a minute)")
    args = parser.parse_args(argv)
    days = 1 if args.quick else 30
    start = datetime(2026, 10, 6, tzinfo=UTC)  # covers the November NFP week in the full run
    as_of = start + timedelta(days=days)

    print(f"Preparing database {DB_NAME}: 14 brokers x 20 instruments x {days} days of 1-minute bars...", flush=True)
    _configure()
    t0 = time.perf_counter()
    minute_bars = _build(start=start, days=days)
    print(f"  {minute_bars:,} one-minute bars (+ hourly roll-ups) in {time.perf_counter() - t0:.1f} s", flush=True)

    from trustmetrics import services

    slot = iter(range(1, 10_000))

    def full() -> Any:
        return services.trust_scores_compute(as_of=as_of + timedelta(seconds=next(slot)), full=True)

    def incremental() -> Any:
        return services.trust_scores_compute(as_of=as_of + timedelta(seconds=next(slot)))

    repeat = 2 if args.quick else 3
    full_s, full_run = _timed(full, repeat)
    incremental_s, inc_run = _timed(incremental, repeat)
    baseline_s, naive = _timed(lambda: _naive(as_of=as_of), 1)

    same = [round(r.overall, 1) for r in naive] == [round(r.overall, 1) for r in full_run.results]

    # Daily history: 90 days of hourly bars before the minute data, then one score per broker and day.
    from marketdata.models import EconomicEvent
    from trustmetrics import synthetic
    from trustmetrics.models import TrustScore

    history_days = 90
    back = as_of - timedelta(days=history_days + 7)
    print(f"Adding {history_days + 7} days of hourly bars for the daily backfill...", flush=True)
    _plain_bars(start=back, end=start, resolution="1h")
    EconomicEvent.objects.bulk_create(
        [
            EconomicEvent(
                name=e.name,
                currency=e.currency,
                scheduled_at=datetime.fromtimestamp(e.at_us / 1e6, tz=UTC),
                impact=e.impact,
            )
            for e in synthetic.calendar(back, history_days + 7)
        ],
        ignore_conflicts=True,
    )
    TrustScore.objects.all().delete()
    # Reference: what a backfill would cost as repeated full recomputes (window rebuilt from bars per day),
    # measured on 3 days and scaled to 90.
    ref_days = 3
    started = time.perf_counter()
    for n in range(ref_days):
        day_end = datetime.combine((as_of - timedelta(days=history_days - n)).date(), datetime.min.time(), tzinfo=UTC)
        services.trust_scores_compute(as_of=day_end, full=True)
    reference_90d_s = (time.perf_counter() - started) / ref_days * history_days
    TrustScore.objects.all().delete()
    from trustmetrics.models import TrustDailyInput

    TrustDailyInput.objects.all().delete()
    started = time.perf_counter()
    backfill = services.trust_backfill(days=history_days, now=as_of)
    backfill_s = time.perf_counter() - started

    # One event report for all brokers: 1-minute bars from an hour before a release to half an hour after.
    from events.services import event_report_generate

    release = (
        EconomicEvent.objects.filter(impact="high", currency="USD", scheduled_at__lt=as_of)
        .order_by("-scheduled_at")
        .first()
    )
    assert release is not None
    _plain_bars(
        start=release.scheduled_at - timedelta(minutes=60),
        end=release.scheduled_at + timedelta(minutes=30),
        resolution="1m",
    )
    event_s, report = _timed(
        lambda: event_report_generate(event_id=release.pk, now=as_of + timedelta(days=1), force=True), 3
    )
    rows = report.rows.count() if report is not None else 0
    print()
    print(f"{'run':<34}{'seconds':>10}{'vs baseline':>14}")
    print(f"{'full recompute (roll-ups, SQL)':<34}{full_s:>10.3f}{baseline_s / full_s:>13.1f}x")
    print(f"{'incremental 5-minute recompute':<34}{incremental_s:>10.3f}{baseline_s / incremental_s:>13.1f}x")
    print(f"{'baseline: raw 1m bars in Python':<34}{baseline_s:>10.3f}{1:>13.1f}x")
    print(f"days rebuilt: full {len(full_run.days_refreshed)}, incremental {len(inc_run.days_refreshed)}")
    print(f"baseline and engine agree on every overall score (0.1): {same}")
    print(f"{'daily backfill, 90 days':<34}{backfill_s:>10.3f}{reference_90d_s / backfill_s:>13.1f}x")
    print(f"{'reference: 90 full recomputes':<34}{reference_90d_s:>10.3f}{1:>13.1f}x  (3 measured, scaled)")
    print(f"{'event report, all brokers':<34}{event_s:>10.3f}")
    print(f"backfill stored {backfill.stored} scores; event report {rows} rows ({release})")
    print("targets: full < 10 s, incremental < 1 s, backfill_90d < 60 s, event report < 2 s")
    print(
        f"RESULT full_s={full_s:.3f} incremental_s={incremental_s:.3f} backfill_90d_s={backfill_s:.3f} "
        f"event_report_s={event_s:.3f} baseline_full_s={baseline_s:.3f}"
    )
    return 0


def _drop() -> None:
    from django.conf import settings

    if settings.configured:
        from django.db import connections

        connections.close_all()
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME}"],
        check=False,
    )


if __name__ == "__main__":
    try:
        code = main()
    finally:
        _drop()
    sys.exit(code)
