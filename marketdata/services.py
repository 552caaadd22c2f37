"""Writes of the market-data pipeline: bars, checkpoints, feed status history, rejection counts, calendar."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from brokers.models import Broker
from marketdata.aggregation import RELIABILITY_FIELDS, BarRow
from marketdata.models import (
    AggregatorCheckpoint,
    EconomicEvent,
    FeedConfig,
    FeedStatusChange,
    IngestWriteMark,
    QuoteRejectionCount,
    SpreadBar,
)
from marketdata.selectors import account_brokers, broker_ids, instrument_ids
from simulator.calendar import recurring_events

logger = logging.getLogger(__name__)


def us_to_dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)


_CONFLICT = "ON CONFLICT (broker_id, instrument_id, coalesce(account_id, 0), resolution, start)"
_UPDATE = """DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    mean = excluded.mean, count = excluded.count, dev_min = excluded.dev_min, dev_max = excluded.dev_max,
    duration = excluded.duration, dev_count = excluded.dev_count,
    frozen_s = excluded.frozen_s, frozen_judged_s = excluded.frozen_judged_s,
    latency_count = excluded.latency_count, latency_log_sum = excluded.latency_log_sum,
    depth_count = excluded.depth_count, depth_1 = excluded.depth_1, depth_5 = excluded.depth_5,
    depth_10 = excluded.depth_10"""
BAR_COLUMNS = (
    "broker_id, instrument_id, account_id, resolution, start, open, high, low, close, mean, count, dev_min, "
    "dev_max, duration, dev_count, " + ", ".join(RELIABILITY_FIELDS)
)
BAR_COLUMN_COUNT = BAR_COLUMNS.count(",") + 1

_UPSERT = f"""
INSERT INTO marketdata_spreadbar ({BAR_COLUMNS})
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::varchar[], %s::timestamptz[], %s::float8[],
                     %s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::int[], %s::float8[],
                     %s::float8[], %s::float8[], %s::int[], %s::float8[], %s::float8[], %s::int[], %s::float8[],
                     %s::int[], %s::int[], %s::int[], %s::int[])
{_CONFLICT} {_UPDATE}
"""  # noqa: S608 (constants only)


# SQLite (the one-command demo): the same upsert, one parameter row per bar. Datetimes are bound as
# Django stores them there (naive UTC text), so comparisons and the unique constraint match ORM rows.
_UPSERT_SQLITE = f"""
INSERT INTO marketdata_spreadbar ({BAR_COLUMNS})
VALUES ({", ".join(["%s"] * BAR_COLUMN_COUNT)})
{_CONFLICT} {_UPDATE}
"""  # noqa: S608 (constants only)


def db_datetime(dt: datetime) -> Any:
    """A datetime as this database's driver wants it in raw SQL (PostgreSQL: aware; SQLite: UTC text)."""
    return dt if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(dt)


def bar_params(*, rows: Sequence[BarRow], resolution: str, raw_datetimes: bool = False) -> list[tuple[Any, ...]]:
    """One parameter tuple per bar (BAR_COLUMNS order); bars of unknown brokers or instruments, or of an account
    that is not one of the broker's, are skipped and logged. Account 0 (the default account) is stored empty."""
    brokers, instruments, accounts = broker_ids(), instrument_ids(), account_brokers()
    refreshed = False
    out: list[tuple[Any, ...]] = []
    for r in rows:
        b, i = brokers.get(r.broker), instruments.get(r.instrument)
        if b is None or i is None:
            continue
        account = r.account or None
        if account is not None and account not in accounts and not refreshed:
            accounts, refreshed = account_brokers(refresh=True), True  # an account added since the cache was read
        if account is not None and accounts.get(account) != b:
            continue
        start = us_to_dt(r.start_us) if raw_datetimes else db_datetime(us_to_dt(r.start_us))
        out.append(
            (b, i, account, resolution, start, r.open, r.high, r.low, r.close, r.mean, r.count,
             r.dev_min, r.dev_max, r.duration, r.dev_count, r.frozen_s, r.frozen_judged_s, r.latency_count,
             r.latency_log_sum, r.depth_count, r.depth_1, r.depth_5, r.depth_10)
        )  # fmt: skip
    if len(out) < len(rows):
        logger.warning(
            "skipped %d bars of brokers, instruments or accounts missing from the database", len(rows) - len(out)
        )
    return out


def bars_upsert(*, rows: Sequence[BarRow], resolution: str = SpreadBar.Resolution.MINUTE) -> int:
    """Write bars with their full current values: replaying the same rows is a no-op (idempotent).

    Rows whose broker or instrument is unknown to the database are skipped and logged.
    """
    if not rows:
        return 0
    params = bar_params(rows=rows, resolution=resolution)
    if not params:
        return 0
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            # One statement for the whole batch: column arrays through unnest.
            cur.execute(_UPSERT, [list(col) for col in zip(*params, strict=True)])
        else:
            cur.executemany(_UPSERT_SQLITE, params)
    return len(params)


def checkpoint_load(*, stream: str) -> tuple[str, dict[str, Any]]:
    cp = AggregatorCheckpoint.objects.filter(stream=stream).first()
    return (cp.last_id, cp.state) if cp else ("0-0", {})


def checkpoint_save(*, stream: str, last_id: str, state: dict[str, Any]) -> None:
    AggregatorCheckpoint.objects.update_or_create(stream=stream, defaults={"last_id": last_id, "state": state})


def feed_status_record(*, broker_slug: str, status: str, at: datetime, detail: str = "") -> bool:
    """Append a status change unless it repeats the current status. Returns whether a row was added."""
    broker_id = broker_ids().get(broker_slug)
    if broker_id is None:
        logger.warning("status change for unknown broker %s ignored", broker_slug)
        return False
    with transaction.atomic():
        last = FeedStatusChange.objects.filter(broker_id=broker_id, at__lte=at).order_by("-at").first()
        if last is not None and last.status == status:
            return False
        _, created = FeedStatusChange.objects.get_or_create(
            broker_id=broker_id, at=at, status=status, defaults={"detail": detail[:200]}
        )
    return created


def feed_status_bulk_record(*, changes: Iterable[tuple[str, str, datetime, str]]) -> int:
    """Backfill: append many (broker slug, status, at, detail) changes; replays are ignored."""
    ids = broker_ids()
    objs = [FeedStatusChange(broker_id=ids[b], status=s, at=at, detail=d[:200]) for b, s, at, d in changes if b in ids]
    return len(FeedStatusChange.objects.bulk_create(objs, ignore_conflicts=True, batch_size=2000))


def rejections_record(*, counts: dict[tuple[str, str], int], at: datetime) -> None:
    """Add rejected-quote counts (broker slug, reason) -> n to the hour containing `at`."""
    with transaction.atomic():
        _rejections_add(counts=counts, at=at)


def _rejections_add(*, counts: dict[tuple[str, str], int], at: datetime) -> None:
    ids = broker_ids()
    hour = at.replace(minute=0, second=0, microsecond=0)
    for (broker, reason), n in counts.items():
        if broker not in ids or n <= 0:
            continue
        obj, created = QuoteRejectionCount.objects.get_or_create(
            broker_id=ids[broker], hour=hour, reason=reason, defaults={"count": n}
        )
        if not created:
            QuoteRejectionCount.objects.filter(pk=obj.pk).update(count=F("count") + n)


WRITE_MARK_DAYS = 30  # an ingestor's journal is replayed at its next start: far sooner than this
# (writer, its write's number, counts): one journalled rejection write of an ingestor (marketdata/ingest.py).
RejectionWrite = tuple[str, int, dict[tuple[str, str], int]]


def rejections_record_once(*, writes: Sequence[RejectionWrite], at: datetime) -> int:
    """Add the counts of each journalled write that is not in the database yet, to the hour containing `at`.

    A writer's writes come in increasing numbers; its mark (IngestWriteMark) says how far the database has
    them and moves in the same transaction as the counts. So a write made again after a kill that fell
    between the commit and the journal's "done" mark is skipped: exactly once. A write with no writer ("",
    from a journal older than the marks) is added as it comes. Returns how many writes were added.
    """
    writers = sorted({w for w, _seq, _counts in writes if w})
    with transaction.atomic():
        marks: dict[str, IngestWriteMark] = {}
        for writer in writers:  # sorted: two transactions lock the marks they share in the same order
            mark, created = IngestWriteMark.objects.select_for_update().get_or_create(writer=writer)
            marks[writer] = mark
            if created:
                _write_marks_prune()
        total: Counter[tuple[str, str]] = Counter()
        applied = 0
        for writer, seq, counts in writes:
            known = marks.get(writer)
            if known is not None:
                if seq <= known.last_seq:
                    continue  # in the database already: its commit beat the journal's mark
                known.last_seq = seq
            total.update(counts)
            applied += 1
        _rejections_add(counts=dict(total), at=at)
        for mark in marks.values():
            mark.save(update_fields=["last_seq", "updated_at"])
    return applied


def _write_marks_prune() -> None:
    """Marks of ingestor processes long gone (a new one is made at each start of an ingestor)."""
    cutoff = timezone.now() - timedelta(days=WRITE_MARK_DAYS)
    IngestWriteMark.objects.filter(updated_at__lt=cutoff).delete()


def calendar_seed(*, start: date, end: date) -> int:
    """Put the usual recurring releases between start and end on the calendar. Idempotent."""
    events = [
        EconomicEvent(name=e.name, currency=e.currency, impact=e.impact, scheduled_at=us_to_dt(e.at_us))
        for e in recurring_events(start, end)
    ]
    return len(EconomicEvent.objects.bulk_create(events, ignore_conflicts=True))


def feed_configs_ensure() -> int:
    """Every broker gets a (simulator) feed configuration of its default account if it has no feed at all.

    Ingestors starting together all call this: a configuration another one just made is not an error.
    """
    missing = Broker.objects.filter(feed_configs__isnull=True)
    return len(FeedConfig.objects.bulk_create([FeedConfig(broker=b) for b in missing], ignore_conflicts=True))


def feed_configs_ensure_accounts() -> int:
    """Simulated brokers quote each account they price apart on its own feed (the demo): every account whose
    spread mark-up differs from the default account's gets a simulator configuration, for brokers whose
    feeds are all simulated. Idempotent; returns the configurations made."""
    from marketdata.costs import feed_account_default

    made = []
    brokers = Broker.objects.prefetch_related("account_types", "feed_configs")
    for broker in brokers:
        configs = list(broker.feed_configs.all())
        if not configs or any(c.adapter != FeedConfig.Adapter.SIMULATOR for c in configs):
            continue
        accounts = list(broker.account_types.all())
        default = feed_account_default(accounts)
        fed = {c.account_id for c in configs} | {default.pk if default else None}
        for account in accounts:
            priced_apart = default is not None and account.spread_markup_pips != default.spread_markup_pips
            if priced_apart and account.pk not in fed:
                made.append(FeedConfig(broker=broker, account=account, params=dict(configs[0].params)))
    return len(FeedConfig.objects.bulk_create(made, ignore_conflicts=True))


# The reliability measures: plain sums in every roll-up.
_SUMMED = ", ".join(RELIABILITY_FIELDS)
_SUMS = ", ".join(f"sum({c})" for c in RELIABILITY_FIELDS)

_ROLLUP = f"""
INSERT INTO marketdata_spreadbar ({BAR_COLUMNS})
SELECT broker_id, instrument_id, account_id, %(target)s,
       date_trunc(%(unit)s, start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       (array_agg(open ORDER BY start))[1], max(high), min(low), (array_agg(close ORDER BY start DESC))[1],
       CASE WHEN sum(duration) > 0 THEN sum(mean * duration) / sum(duration) ELSE avg(mean) END,
       sum(count),
       coalesce(min(dev_min) FILTER (WHERE dev_count > 0), 0),
       coalesce(max(dev_max) FILTER (WHERE dev_count > 0), 0),
       sum(duration), sum(dev_count), {_SUMS}
FROM marketdata_spreadbar
WHERE resolution = %(source)s AND start >= %(since)s AND start < %(until)s
GROUP BY broker_id, instrument_id, account_id, date_trunc(%(unit)s, start AT TIME ZONE 'UTC')
{_CONFLICT} {_UPDATE}
"""  # noqa: S608 (constants only)


# SQLite has no date_trunc or ordered array_agg: the bucket is a strftime of the stored UTC text and the
# first open / last close come from window functions. Same values as _ROLLUP (tested on both).
_ROLLUP_SQLITE = f"""
INSERT INTO marketdata_spreadbar ({BAR_COLUMNS})
SELECT broker_id, instrument_id, account_id, %(target)s, bucket, max(first_open), max(high), min(low),
       max(last_close),
       CASE WHEN sum(duration) > 0 THEN sum(mean * duration) / sum(duration) ELSE avg(mean) END,
       sum(count),
       coalesce(min(dev_min) FILTER (WHERE dev_count > 0), 0),
       coalesce(max(dev_max) FILTER (WHERE dev_count > 0), 0),
       sum(duration), sum(dev_count), {_SUMS}
FROM (
    SELECT broker_id, instrument_id, account_id, strftime(%(fmt)s, start) AS bucket, high, low, mean, count,
           dev_min, dev_max, duration, dev_count, {_SUMMED},
           first_value(open) OVER (PARTITION BY broker_id, instrument_id, account_id, strftime(%(fmt)s, start)
                                   ORDER BY start) AS first_open,
           first_value(close) OVER (PARTITION BY broker_id, instrument_id, account_id, strftime(%(fmt)s, start)
                                    ORDER BY start DESC) AS last_close
    FROM marketdata_spreadbar
    WHERE resolution = %(source)s AND start >= %(since)s AND start < %(until)s
) AS src
WHERE true
GROUP BY broker_id, instrument_id, account_id, bucket
{_CONFLICT} {_UPDATE}
"""  # noqa: S608 (constants only)
_SQLITE_BUCKET = {"hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d 00:00:00"}


def bars_rollup(*, since: datetime, until: datetime) -> tuple[int, int]:
    """Recompute 1h bars from 1m bars and 1d bars from 1h bars for whole periods touching [since, until).

    Recomputing (not incrementing) makes it idempotent and safe to run as often as wanted.
    """
    h0 = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    h1 = until.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    d0 = h0.replace(hour=0)
    d1 = h1.replace(hour=0) + timedelta(days=1)
    counts: list[int] = []
    params: dict[str, Any]
    with transaction.atomic(), connection.cursor() as cur:
        for target, unit, source, lo, hi in (("1h", "hour", "1m", h0, h1), ("1d", "day", "1h", d0, d1)):
            if connection.vendor == "postgresql":
                params = {"target": target, "unit": unit, "source": source, "since": lo, "until": hi}
                cur.execute(_ROLLUP, params)
            else:
                params = {"target": target, "fmt": _SQLITE_BUCKET[unit], "source": source,
                          "since": db_datetime(lo), "until": db_datetime(hi)}  # fmt: skip
                cur.execute(_ROLLUP_SQLITE, params)
            counts.append(cur.rowcount)
    return counts[0], counts[1]


def bars_apply_retention(*, now: datetime | None = None) -> dict[str, int]:
    """Delete bars older than their resolution's retention (0 days: keep forever)."""
    now = now or datetime.now(tz=UTC)
    deleted: dict[str, int] = {}
    for resolution, days in (
        (SpreadBar.Resolution.MINUTE, settings.LIVE_RETENTION_1M_DAYS),
        (SpreadBar.Resolution.HOUR, settings.LIVE_RETENTION_1H_DAYS),
        (SpreadBar.Resolution.DAY, settings.LIVE_RETENTION_1D_DAYS),
    ):
        if days > 0:
            n, _ = SpreadBar.objects.filter(resolution=resolution, start__lt=now - timedelta(days=days)).delete()
            deleted[str(resolution)] = n
    return deleted
