"""Write a synthetic market (trustmetrics.synthetic) into the database: bars, calendar, feed history."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import transaction

from brokers.models import Broker, Instrument
from marketdata.models import EconomicEvent, FeedStatusChange, SpreadBar
from simulator.profiles import BROKER_PROFILES, BrokerProfile
from trustmetrics import synthetic


def synthetic_market_write(
    *,
    start: datetime,
    days: int,
    symbols: Iterable[str] | None = None,
    profiles: Iterable[BrokerProfile] | None = None,
    seed: int = 7,
    news_before: timedelta = timedelta(minutes=5),
    news_after: timedelta = timedelta(minutes=15),
) -> int:
    """Write bars, high-impact events and feed status changes for the demo brokers. Returns bars written."""
    profiles = list(profiles if profiles is not None else BROKER_PROFILES.values())
    brokers = dict(Broker.objects.values_list("slug", "pk"))
    instruments = dict(Instrument.objects.values_list("symbol", "pk"))
    profiles = [p for p in profiles if p.slug in brokers]
    wanted = list(symbols) if symbols is not None else None
    rows = [
        SpreadBar(
            broker_id=brokers[b.slug],
            instrument_id=instruments[b.symbol],
            resolution=b.resolution,
            start=datetime.fromtimestamp(b.start_us / 1e6, tz=UTC),
            open=b.mean,
            high=b.high,
            low=b.low,
            close=b.mean,
            mean=b.mean,
            count=b.count,
            duration=60.0 if b.resolution == "1m" else 3600.0,
            dev_count=b.count,
            dev_min=b.dev_min,
            dev_max=b.dev_max,
        )
        for b in synthetic.bars(
            profiles, start=start, days=days, symbols=wanted, seed=seed, news_before=news_before, news_after=news_after
        )
        if b.symbol in instruments
    ]
    events = [
        EconomicEvent(
            name=e.name,
            currency=e.currency,
            scheduled_at=datetime.fromtimestamp(e.at_us / 1e6, tz=UTC),
            impact=e.impact,
        )
        for e in synthetic.calendar(start, days)
    ]
    changes = [
        FeedStatusChange(broker_id=brokers[slug], status=status, at=at)
        for slug, status, at in synthetic.status_changes(profiles, start=start, days=days, seed=seed)
    ]
    with transaction.atomic():
        SpreadBar.objects.bulk_create(rows, batch_size=5000, ignore_conflicts=True)
        EconomicEvent.objects.bulk_create(events, ignore_conflicts=True)
        FeedStatusChange.objects.bulk_create(changes, ignore_conflicts=True)
    return len(rows)
