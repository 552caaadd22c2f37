"""Reads of the market-data pipeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import OuterRef, Subquery

from brokers.models import Broker, BrokerInstrument, Instrument
from marketdata.feeds.secrets import secrets_resolve
from marketdata.feeds.venue import SymbolSpec
from marketdata.models import EconomicEvent, FeedConfig, FeedStatusChange
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


def feed_symbol_specs(*, config: FeedConfig) -> list[SymbolSpec]:
    """The configured venue-symbol mapping of one feed (empty: the adapter's default mapping)."""
    return [
        SymbolSpec(s.venue_symbol, s.instrument.symbol, s.price_precision, float(s.pip_size), s.size_precision)
        for s in config.symbols.select_related("instrument")
    ]


def feed_adapter_params(*, config: FeedConfig, resolve_secrets: bool = True) -> dict[str, Any]:
    """What `adapter_create` takes for one configuration: its params, its symbol mapping and its
    credentials read from where `secret_refs` points (SecretMissing if one is not set)."""
    params: dict[str, Any] = dict(config.params)
    specs = feed_symbol_specs(config=config)
    if specs:
        params["symbols"] = specs
    if resolve_secrets and config.secret_refs:
        params["credentials"] = secrets_resolve(config.secret_refs)
    return params
