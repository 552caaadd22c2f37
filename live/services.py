"""Writes of the market-data pipeline: bars, checkpoints, feed status history, rejection counts, calendar."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from brokers.models import Broker
from live.aggregation import BarRow
from live.models import (
    AggregatorCheckpoint,
    EconomicEvent,
    FeedConfig,
    FeedStatusChange,
    QuoteRejectionCount,
    SpreadBar,
)
from live.selectors import broker_ids, instrument_ids
from live.simulator.calendar import recurring_events

logger = logging.getLogger(__name__)


def us_to_dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)


_UPSERT = """
INSERT INTO live_spreadbar
    (broker_id, instrument_id, resolution, start, open, high, low, close, mean, count, dev_min, dev_max,
     duration, dev_count)
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[], %s::timestamptz[], %s::float8[], %s::float8[],
                     %s::float8[], %s::float8[], %s::float8[], %s::int[], %s::float8[], %s::float8[],
                     %s::float8[], %s::int[])
ON CONFLICT (broker_id, instrument_id, resolution, start) DO UPDATE SET
    open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    mean = EXCLUDED.mean, count = EXCLUDED.count, dev_min = EXCLUDED.dev_min, dev_max = EXCLUDED.dev_max,
    duration = EXCLUDED.duration, dev_count = EXCLUDED.dev_count
"""


def bars_upsert(*, rows: Sequence[BarRow], resolution: str = SpreadBar.Resolution.MINUTE) -> int:
    """Write bars with their full current values: replaying the same rows is a no-op (idempotent).

    Rows whose broker or instrument is unknown to the database are skipped and logged.
    """
    if not rows:
        return 0
    brokers, instruments = broker_ids(), instrument_ids()
    cols: list[list[Any]] = [[] for _ in range(14)]
    skipped = 0
    for r in rows:
        b, i = brokers.get(r.broker), instruments.get(r.instrument)
        if b is None or i is None:
            skipped += 1
            continue
        for col, value in zip(
            cols,
            (
                b,
                i,
                resolution,
                us_to_dt(r.start_us),
                r.open,
                r.high,
                r.low,
                r.close,
                r.mean,
                r.count,
                r.dev_min,
                r.dev_max,
                r.duration,
                r.dev_count,
            ),
            strict=True,
        ):
            col.append(value)
    if skipped:
        logger.warning("skipped %d bars of brokers/instruments missing from the database", skipped)
    if cols[0]:
        with connection.cursor() as cur:
            cur.execute(_UPSERT, cols)
    return len(cols[0])


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
    ids = broker_ids()
    hour = at.replace(minute=0, second=0, microsecond=0)
    with transaction.atomic():
        for (broker, reason), n in counts.items():
            if broker not in ids or n <= 0:
                continue
            obj, created = QuoteRejectionCount.objects.get_or_create(
                broker_id=ids[broker], hour=hour, reason=reason, defaults={"count": n}
            )
            if not created:
                QuoteRejectionCount.objects.filter(pk=obj.pk).update(count=F("count") + n)


def calendar_seed(*, start: date, end: date) -> int:
    """Put the usual recurring releases between start and end on the calendar. Idempotent."""
    events = [
        EconomicEvent(name=e.name, currency=e.currency, impact=e.impact, scheduled_at=us_to_dt(e.at_us))
        for e in recurring_events(start, end)
    ]
    return len(EconomicEvent.objects.bulk_create(events, ignore_conflicts=True))


def feed_configs_ensure() -> int:
    """Every broker gets a (simulator) feed configuration if it has none."""
    missing = Broker.objects.filter(feed_config__isnull=True)
    return len(FeedConfig.objects.bulk_create([FeedConfig(broker=b) for b in missing]))


_ROLLUP = """
INSERT INTO live_spreadbar
    (broker_id, instrument_id, resolution, start, open, high, low, close, mean, count, dev_min, dev_max,
     duration, dev_count)
SELECT broker_id, instrument_id, %(target)s, date_trunc(%(unit)s, start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       (array_agg(open ORDER BY start))[1], max(high), min(low), (array_agg(close ORDER BY start DESC))[1],
       CASE WHEN sum(duration) > 0 THEN sum(mean * duration) / sum(duration) ELSE avg(mean) END,
       sum(count),
       coalesce(min(dev_min) FILTER (WHERE dev_count > 0), 0),
       coalesce(max(dev_max) FILTER (WHERE dev_count > 0), 0),
       sum(duration), sum(dev_count)
FROM live_spreadbar
WHERE resolution = %(source)s AND start >= %(since)s AND start < %(until)s
GROUP BY broker_id, instrument_id, date_trunc(%(unit)s, start AT TIME ZONE 'UTC')
ON CONFLICT (broker_id, instrument_id, resolution, start) DO UPDATE SET
    open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    mean = EXCLUDED.mean, count = EXCLUDED.count, dev_min = EXCLUDED.dev_min, dev_max = EXCLUDED.dev_max,
    duration = EXCLUDED.duration, dev_count = EXCLUDED.dev_count
"""


def bars_rollup(*, since: datetime, until: datetime) -> tuple[int, int]:
    """Recompute 1h bars from 1m bars and 1d bars from 1h bars for whole periods touching [since, until).

    Recomputing (not incrementing) makes it idempotent and safe to run as often as wanted.
    """
    h0 = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    h1 = until.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    d0 = h0.replace(hour=0)
    d1 = h1.replace(hour=0) + timedelta(days=1)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(_ROLLUP, {"target": "1h", "unit": "hour", "source": "1m", "since": h0, "until": h1})
        hours = cur.rowcount
        cur.execute(_ROLLUP, {"target": "1d", "unit": "day", "source": "1h", "since": d0, "until": d1})
        days = cur.rowcount
    return hours, days


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
