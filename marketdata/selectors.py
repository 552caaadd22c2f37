"""Reads of the market-data pipeline."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import OuterRef, Subquery

from brokers.models import Broker, BrokerInstrument, Instrument
from marketdata.models import EconomicEvent, FeedConfig, FeedStatusChange, SpreadBar
from simulator.calendar import CalendarEvent

_broker_ids: dict[str, int] = {}
_instrument_ids: dict[str, int] = {}


def broker_ids() -> dict[str, int]:
    """slug -> id, cached for the process (brokers are rarely added; a miss reloads)."""
    global _broker_ids
    if not _broker_ids:
        _broker_ids = dict(Broker.objects.values_list("slug", "id"))
    return _broker_ids


def instrument_ids() -> dict[str, int]:
    global _instrument_ids
    if not _instrument_ids:
        _instrument_ids = dict(Instrument.objects.values_list("symbol", "id"))
    return _instrument_ids


def ids_cache_clear() -> None:
    global _broker_ids, _instrument_ids
    _broker_ids, _instrument_ids = {}, {}


def symbol_maps(*, brokers: list[str] | None = None) -> dict[str, dict[str, str]]:
    """broker slug -> {feed symbol -> canonical symbol} (canonical symbols are accepted as themselves too)."""
    qs = BrokerInstrument.objects.values_list("broker__slug", "broker_symbol", "instrument__symbol")
    if brokers:
        qs = qs.filter(broker__slug__in=brokers)
    out: dict[str, dict[str, str]] = {}
    for slug, feed_symbol, canonical in qs:
        m = out.setdefault(slug, {})
        m[feed_symbol] = canonical
        m[canonical] = canonical
    return out


def calendar_events(*, since: datetime, until: datetime) -> list[CalendarEvent]:
    return [
        CalendarEvent(int(e.scheduled_at.timestamp() * 1_000_000), e.currency, e.impact, e.name)
        for e in EconomicEvent.objects.filter(scheduled_at__gte=since, scheduled_at__lt=until)
    ]


def feed_configs(*, brokers: list[str] | None = None) -> list[FeedConfig]:
    qs = FeedConfig.objects.filter(enabled=True).select_related("broker")
    if brokers:
        qs = qs.filter(broker__slug__in=brokers)
    return list(qs)


def feed_status_current() -> dict[str, tuple[str, datetime]]:
    """broker slug -> (status, since) for every broker with any status history."""
    latest = FeedStatusChange.objects.filter(broker=OuterRef("pk")).order_by("-at")
    rows = (
        Broker.objects.annotate(
            feed_status=Subquery(latest.values("status")[:1]), feed_since=Subquery(latest.values("at")[:1])
        )
        .filter(feed_status__isnull=False)
        .values_list("slug", "feed_status", "feed_since")
    )
    return {slug: (status, since) for slug, status, since in rows}


def spread_minutes_around(
    *, at: datetime, before: timedelta, after: timedelta, instrument_ids: list[int]
) -> list[tuple[int, int, datetime, float, float]]:
    """(broker id, instrument id, minute start, mean, high) of the 1-minute bars in [at - before, at + after)."""
    rows = (
        SpreadBar.objects.filter(
            resolution=SpreadBar.Resolution.MINUTE,
            start__gte=at - before,
            start__lt=at + after,
            instrument_id__in=instrument_ids,
            count__gt=0,
        )
        .order_by()
        .values_list("broker_id", "instrument_id", "start", "mean", "high")
    )
    return list(rows)


def spread_series(
    *, broker_id: int, instrument_id: int, since: datetime, until: datetime, resolution: str
) -> list[tuple[datetime, float]]:
    """(bar start, mean spread in price units) of one broker and instrument, oldest first."""
    rows = (
        SpreadBar.objects.filter(
            broker_id=broker_id,
            instrument_id=instrument_id,
            resolution=resolution,
            start__gte=since,
            start__lt=until,
            count__gt=0,
        )
        .order_by("start")
        .values_list("start", "mean")
    )
    return list(rows)


def spread_hourly_means(*, instrument_id: int, since: datetime, until: datetime) -> list[tuple[int, datetime, float]]:
    """(broker id, hour start, mean spread) of every broker's hourly bars on one instrument."""
    rows = (
        SpreadBar.objects.filter(
            instrument_id=instrument_id,
            resolution=SpreadBar.Resolution.HOUR,
            start__gte=since,
            start__lt=until,
            count__gt=0,
        )
        .order_by()
        .values_list("broker_id", "start", "mean")
    )
    return list(rows)
