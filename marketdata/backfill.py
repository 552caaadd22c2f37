"""Backfill spread history from the simulator, faster than real time.

Quotes go through the same validator and the same aggregation core as the live pipeline (no Redis:
one process sees every broker in timestamp order), and end up as the same SpreadBar rows plus
FeedStatusChange history. 1-minute bars are written only for the last `minute_days` (never beyond
the 1-minute retention window); older periods get hourly bars directly (same formula as the SQL
roll-up); daily bars come from the SQL roll-up.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction

from common.ticks import FeedEventKind, Quote, StatusEvent
from marketdata.aggregation import BarRow, SpreadAggregator, rollup_rows
from marketdata.models import FeedStatusChange, SpreadBar
from marketdata.selectors import (
    broker_ids,
    calendar_events,
    instrument_ids,
    instrument_lot_units,
    simulated_account_feeds,
    symbol_maps,
)
from marketdata.services import (
    BAR_COLUMN_COUNT,
    BAR_COLUMNS,
    bar_params,
    bars_rollup,
    feed_status_bulk_record,
    rejections_record,
    us_to_dt,
)
from marketdata.validation import QuoteValidator, ValidationConfig
from simulator.broker import BrokerFeedSimulator
from simulator.market import ReferenceMarket
from simulator.profiles import BROKER_PROFILES

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
_INSERT = f"INSERT INTO marketdata_spreadbar ({BAR_COLUMNS}) VALUES ({', '.join(['%s'] * BAR_COLUMN_COUNT)})"  # noqa: S608 (constants only)


@dataclass
class BackfillStats:
    quotes: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    bars_1m: int = 0
    bars_1h: int = 0
    bars_1d: int = 0
    status_changes: int = 0


def _copy(rows: list[BarRow], resolution: str) -> int:
    """Insert fresh bars (the window was cleared first): COPY on PostgreSQL, executemany elsewhere."""
    if connection.vendor != "postgresql":
        params = bar_params(rows=rows, resolution=resolution)
        with connection.cursor() as cur:
            cur.executemany(_INSERT, params)
        return len(params)
    params = bar_params(rows=rows, resolution=resolution, raw_datetimes=True)
    with connection.cursor() as cur, cur.cursor.copy(f"COPY marketdata_spreadbar ({BAR_COLUMNS}) FROM STDIN") as copy:
        for row in params:
            copy.write_row(row)
    return len(params)


def history_backfill(
    *,
    start_us: int,
    end_us: int,
    seed: int,
    quotes_per_minute: float,
    minute_days: float = 1.0,
    brokers: list[str] | None = None,
    instruments: list[str] | None = None,
    progress: Callable[[int, int, BackfillStats], None] | None = None,
) -> BackfillStats:
    """Replace the bars and status history of [start, end) (whole hours) with a fresh simulation."""
    start_us -= start_us % HOUR_US
    end_us -= end_us % HOUR_US
    slugs = [s for s in (brokers or list(BROKER_PROFILES)) if s in BROKER_PROFILES and s in broker_ids()]
    events = calendar_events(since=us_to_dt(start_us - DAY_US), until=us_to_dt(end_us + DAY_US))
    wanted = set(instruments or instrument_ids())
    markets: dict[str, ReferenceMarket] = {}
    sims: list[BrokerFeedSimulator] = []
    account_feeds = simulated_account_feeds(brokers=slugs)
    for slug in slugs:
        profile = BROKER_PROFILES[slug]
        for sym in profile.instruments:
            if sym in wanted and sym not in markets:
                markets[sym] = ReferenceMarket(sym, seed=seed, events=events)
        # The default account's feed, and one per account the broker quotes on its own feed.
        for account, markup in [(0, 0.0), *account_feeds.get(slug, [])]:
            sims.append(
                BrokerFeedSimulator(
                    profile,
                    markets,
                    seed=seed,
                    quotes_per_s=quotes_per_minute / 60.0,
                    start_us=start_us,
                    with_depth=False,
                    instruments=[s for s in profile.instruments if s in wanted],
                    account_markup_pips=markup,
                    account=account,
                )
            )
    validator = QuoteValidator(symbols=symbol_maps(brokers=slugs), config=ValidationConfig(max_age_us=60_000_000))
    agg = SpreadAggregator(lot_units=instrument_lot_units())
    minute_days = min(minute_days, settings.LIVE_RETENTION_1M_DAYS or minute_days)
    keep_1m_from = end_us - int(minute_days * DAY_US)
    stats = BackfillStats()
    broker_pks = [broker_ids()[s] for s in slugs]
    with transaction.atomic():
        SpreadBar.objects.filter(
            broker_id__in=broker_pks, start__gte=us_to_dt(start_us), start__lt=us_to_dt(end_us)
        ).delete()
        FeedStatusChange.objects.filter(
            broker_id__in=broker_pks, at__gte=us_to_dt(start_us), at__lt=us_to_dt(end_us)
        ).delete()
    feed_status_bulk_record(changes=[(s, "up", us_to_dt(start_us), "backfill start") for s in slugs])
    total_hours = (end_us - start_us) // HOUR_US
    for h in range(total_hours):
        t0 = start_us + h * HOUR_US
        t1 = t0 + HOUR_US
        streams: list[Iterator[Quote | StatusEvent]] = [sim.events(t0, t1) for sim in sims]
        changes: list[tuple[str, str, object, str]] = []
        before = Counter(validator.by_broker)
        check, add = validator.check, agg.add
        for item in heapq.merge(*streams, key=lambda x: x.ts_broker if isinstance(x, Quote) else x.at):
            if isinstance(item, StatusEvent):
                # A broker's account feeds share its connection schedule: its status is recorded once.
                status = "down" if item.kind == FeedEventKind.DISCONNECTED else "up"
                if not changes or changes[-1][:3] != (item.broker, status, us_to_dt(item.at)):
                    changes.append((item.broker, status, us_to_dt(item.at), item.detail))
                if item.kind == FeedEventKind.CONNECTED:
                    validator.reset_sequence(item.broker)
                continue
            stats.quotes += 1
            q = check(item)
            if isinstance(q, Quote):
                # No ingest stage here: the simulated receipt time stands for it (the broker's latency).
                add(q.broker, q.instrument, q.bid, q.ask, q.ts_broker, q.account, q.ts_recv, q.bid_size, q.ask_size)
        rows = agg.take_rows()
        with transaction.atomic():
            if t0 >= keep_1m_from:
                stats.bars_1m += _copy(rows, SpreadBar.Resolution.MINUTE)
            stats.bars_1h += _copy(rollup_rows(rows, bucket_us=HOUR_US), SpreadBar.Resolution.HOUR)
            stats.status_changes += feed_status_bulk_record(changes=changes)  # type: ignore[arg-type]
            delta = Counter(validator.by_broker) - before
            if delta:
                rejections_record(counts=dict(delta), at=us_to_dt(t0))
        agg.prune(t1 - HOUR_US)
        if progress is not None:
            progress(h + 1, total_hours, stats)
    stats.accepted = validator.counts["accepted"]
    stats.rejected = Counter({k: v for k, v in validator.counts.items() if k != "accepted"})
    _, stats.bars_1d = bars_rollup(since=us_to_dt(start_us), until=us_to_dt(end_us - 1))
    # The roll-up above also rewrote 1h bars from 1m where those exist: identical values by construction.
    return stats


def backfill_window(days: float, *, now_us: int) -> tuple[int, int]:
    end = now_us - now_us % HOUR_US
    return end - int(days * DAY_US), end


__all__ = ["BackfillStats", "backfill_window", "history_backfill", "timedelta"]
