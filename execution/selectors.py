"""Reads for the best-execution calculator: instruments, brokers, and live depth and quotes in Redis."""

from __future__ import annotations

from django.conf import settings
from redis.exceptions import RedisError

from brokers.models import Broker, BrokerInstrument, Instrument
from common.redis import redis_sync
from common.ticks import now_us
from execution import calc
from marketdata import keys


class MarketDataUnavailable(Exception):
    """Redis could not be read: the page says so rather than showing an empty book as real."""


def instrument_get(*, symbol: str) -> Instrument | None:
    return Instrument.objects.filter(symbol=symbol).first()


def instrument_choices() -> list[tuple[str, str]]:
    return [(symbol, f"{symbol}: {name}") for symbol, name in Instrument.objects.values_list("symbol", "name")]


def execution_estimate(*, instrument: Instrument, side: calc.Side, size: float) -> calc.Estimate:
    """What an order of ``size`` units would cost at each broker listing the instrument, right now."""
    brokers = list(
        BrokerInstrument.objects.filter(instrument=instrument, broker__status=Broker.Status.ACTIVE)
        .order_by("broker__name")
        .values_list("broker__slug", "broker__name")
    )
    ccy = calc.quote_currency(symbol=instrument.symbol, asset_class=instrument.asset_class)
    conversion = (
        [s for s in calc.conversion_symbols(ccy) if s != instrument.symbol]
        if ccy is not None and ccy != calc.ACCOUNT_CURRENCY
        else []
    )
    all_slugs = list(Broker.objects.values_list("slug", flat=True)) if conversion else []
    raw_depth: list[bytes | None] = [None] * len(brokers)
    raw_latest: list[list[bytes | None]] = [[] for _ in conversion]
    if settings.USE_REDIS and brokers:
        try:
            pipe = redis_sync().pipeline(transaction=False)
            pipe.hmget(keys.depth_hash(), [keys.field(slug, instrument.symbol) for slug, _ in brokers])
            for symbol in conversion:
                pipe.hmget(keys.latest_hash(), [keys.field(slug, symbol) for slug in all_slugs])
            raw_depth, *raw_latest = pipe.execute()
        except (RedisError, OSError) as exc:
            raise MarketDataUnavailable(str(exc)) from exc
    now = now_us()
    stale = float(settings.LIVE_STALE_AFTER_S)
    other_mids: dict[str, float] = {}
    for symbol, raws in zip(conversion, raw_latest, strict=True):
        mid = calc.latest_mid(raws, now_us=now, stale_after_s=stale)
        if mid is not None:
            other_mids[symbol] = mid
    return calc.estimate_compute(
        instrument=instrument.symbol,
        side=side,
        size=size,
        pip_size=float(instrument.pip_size),
        quote_ccy=ccy,
        depths=[
            calc.BrokerDepth(broker=slug, name=name, raw=raw)
            for (slug, name), raw in zip(brokers, raw_depth, strict=True)
        ],
        other_mids=other_mids,
        now_us=now,
        stale_after_s=stale,
    )
