"""Reads for the best-execution calculator: instruments, brokers, and live depth and quotes in Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from brokers.models import AccountType, Broker, Instrument
from common.redis import redis_sync
from common.ticks import now_us
from execution import calc
from marketdata import keys
from marketdata.selectors import feed_accounts


class MarketDataUnavailable(Exception):
    """Redis could not be read: the page says so rather than showing an empty book as real."""


def instrument_get(*, symbol: str) -> Instrument | None:
    return Instrument.objects.filter(symbol=symbol).first()


def instrument_choices() -> list[tuple[str, str]]:
    return [(symbol, f"{symbol}: {name}") for symbol, name in Instrument.objects.values_list("symbol", "name")]


def lot_rules() -> dict[str, Any]:
    """What the form's size hint needs to warn before Calculate (static/js/size-hint.js): each instrument's lot
    size, and each account of each active broker with its lot step, minimum order and the instruments its broker
    lists. The same rules the estimate applies (``_lot_rule``); the page still says it after Calculate."""
    lots = {
        symbol: calc.contract_size(symbol=symbol, asset_class=asset_class)
        for symbol, asset_class in Instrument.objects.values_list("symbol", "asset_class")
    }
    accounts = []
    brokers = Broker.objects.filter(status=Broker.Status.ACTIVE).prefetch_related(
        "account_types", "broker_instruments__instrument"
    )
    for broker in brokers.order_by("name"):
        symbols = sorted(bi.instrument.symbol for bi in broker.broker_instruments.all())
        for account in broker.account_types.all():
            step, minimum = _lot_rule(account)
            accounts.append({"name": f"{broker.name} ({account.name})", "step": step, "min": minimum, "on": symbols})
    return {"lot": lots, "accounts": accounts}


def _lot_rule(account: AccountType | None) -> tuple[float, float]:
    """(lot step, minimum order) in lots: the sizes the account accepts; the model's defaults for a broker with
    no accounts listed."""
    if account is None:
        return calc.DEFAULT_LOT_STEP, calc.DEFAULT_MIN_LOTS
    return float(account.lot_step), float(account.min_lots)


def execution_estimate(*, instrument: Instrument, side: calc.Side, size: float) -> calc.Estimate:
    """What an order of ``size`` units would cost on each account of each active broker listing the
    instrument, right now: the account's own feed depth where the broker quotes it on one, else the broker's
    feed-account depth moved by the account's mark-up difference; plus the account's commission."""
    listed = list(
        Broker.objects.filter(status=Broker.Status.ACTIVE, broker_instruments__instrument=instrument)
        .prefetch_related("account_types")
        .order_by("name")
    )
    feeds = feed_accounts(brokers=listed)
    brokers = [(b.slug, b.name) for b in listed]
    ccy = calc.quote_currency(symbol=instrument.symbol, asset_class=instrument.asset_class)
    conversion = (
        [s for s in calc.conversion_symbols(ccy) if s != instrument.symbol]
        if ccy is not None and ccy != calc.ACCOUNT_CURRENCY
        else []
    )
    all_slugs = list(Broker.objects.values_list("slug", flat=True)) if conversion else []
    raw_depth: list[bytes | None] = [None] * len(brokers)
    raw_latest: list[list[bytes | None]] = [[] for _ in conversion]
    # Accounts quoted on feeds of their own (not the feed account, whose depth is in depth_hash).
    own = [
        (b.pk, a.pk, keys.account_field(b.slug, instrument.symbol, a.pk))
        for b in listed
        for a in b.account_types.all()
        if (feed := feeds[b.pk]) is None or a.pk != feed.pk
    ]
    raw_own: list[bytes | None] = []
    if settings.USE_REDIS and brokers:
        try:
            pipe = redis_sync().pipeline(transaction=False)
            pipe.hmget(keys.depth_hash(), [keys.field(slug, instrument.symbol) for slug, _ in brokers])
            pipe.hmget(keys.account_depth_hash(), [f for _, _, f in own] or ["-"])
            for symbol in conversion:
                pipe.hmget(keys.latest_hash(), [keys.field(slug, symbol) for slug in all_slugs])
            raw_depth, raw_own, *raw_latest = pipe.execute()
        except (RedisError, OSError) as exc:
            raise MarketDataUnavailable(str(exc)) from exc
    now = now_us()
    stale = float(settings.LIVE_STALE_AFTER_S)
    other_mids: dict[str, float] = {}
    for symbol, raws in zip(conversion, raw_latest, strict=True):
        mid = calc.latest_mid(raws, now_us=now, stale_after_s=stale)
        if mid is not None:
            other_mids[symbol] = mid
    pip = float(instrument.pip_size)
    own_depth = {(b, a): raw for (b, a, _), raw in zip(own, raw_own, strict=False) if raw is not None}
    depths = []
    for broker, raw in zip(listed, raw_depth, strict=True):
        feed = feeds[broker.pk]
        base = feed.spread_markup_pips if feed is not None else Decimal("0")
        for account in broker.account_types.all() or [None]:
            lot_step, min_lots = _lot_rule(account)
            quoted = own_depth.get((broker.pk, account.pk)) if account is not None else None
            if quoted is not None:  # the broker quotes this account on its own feed: its prices as they are
                depths.append(
                    calc.BrokerDepth(
                        broker=broker.slug,
                        name=broker.name,
                        raw=quoted,
                        account=account.name if account is not None else "",
                        commission_per_lot=float(account.commission_per_lot) if account is not None else 0.0,
                        own_feed=True,
                        lot_step=lot_step,
                        min_lots=min_lots,
                    )
                )
                continue
            markup = (account.spread_markup_pips - base) if account is not None else Decimal("0")
            depths.append(
                calc.BrokerDepth(
                    broker=broker.slug,
                    name=broker.name,
                    raw=raw,
                    account=account.name if account is not None else "",
                    # Half the mark-up difference on each side: the spread widens by the whole of it.
                    markup_price=float(markup) * pip / 2.0,
                    commission_per_lot=float(account.commission_per_lot) if account is not None else 0.0,
                    lot_step=lot_step,
                    min_lots=min_lots,
                )
            )
    return calc.estimate_compute(
        instrument=instrument.symbol,
        side=side,
        size=size,
        pip_size=pip,
        quote_ccy=ccy,
        lot_units=calc.contract_size(symbol=instrument.symbol, asset_class=instrument.asset_class),
        depths=depths,
        other_mids=other_mids,
        now_us=now,
        stale_after_s=stale,
    )


def estimate_json(
    *, estimate: calc.Estimate, instrument: Instrument, lot: float, default_unit: str, as_of: datetime | None = None
) -> dict[str, Any]:
    """The answer as the page shows it, /execution/api/ sends it and /api/v1/execution sends it: one body with
    every figure rounded once, so the three can never differ."""
    body = estimate.as_dict()
    body.update(
        as_of=(as_of or datetime.now(tz=UTC)).isoformat(timespec="milliseconds"),
        unit="units",  # every size in the answer is in units; a request's size defaults to default_request_unit
        default_request_unit=default_unit,
        lot_size=lot,
        lots=estimate.size / lot,
        display_precision=instrument.display_precision,
    )
    return body
