"""Reads of the market-data pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F, Min, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from brokers.models import AccountType, Broker, BrokerInstrument, ConversionRate, Instrument, SwapRate
from marketdata import costs
from marketdata.feeds.secrets import secrets_resolve
from marketdata.feeds.venue import SymbolSpec
from marketdata.models import EconomicEvent, FeedConfig, FeedStatusChange, SpreadBar
from simulator.calendar import CalendarEvent

_broker_ids: dict[str, int] = {}
_instrument_ids: dict[str, int] = {}
_account_brokers: dict[int, int] = {}


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


def instrument_lot_units() -> dict[str, float]:
    """symbol -> units in one standard lot (the aggregator counts depth in lots)."""
    return {
        symbol: costs.contract_size(symbol=symbol, asset_class=asset_class)
        for symbol, asset_class in Instrument.objects.values_list("symbol", "asset_class")
    }


def account_brokers(*, refresh: bool = False) -> dict[int, int]:
    """account type id -> its broker's id, cached for the process like broker_ids (refresh: read again, for an
    account added since)."""
    global _account_brokers
    if refresh or not _account_brokers:
        _account_brokers = dict(AccountType.objects.values_list("id", "broker_id"))
    return _account_brokers


def ids_cache_clear() -> None:
    global _broker_ids, _instrument_ids, _account_brokers
    _broker_ids, _instrument_ids, _account_brokers = {}, {}, {}


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
    qs = FeedConfig.objects.filter(enabled=True).select_related("broker", "account")
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
    """The configured venue-symbol mapping of one feed (empty: the adapter's default mapping), with each
    instrument's own pip size."""
    return [
        SymbolSpec(
            s.venue_symbol, s.instrument.symbol, s.price_precision, float(s.instrument.pip_size), s.size_precision
        )
        for s in config.symbols.select_related("instrument")
    ]


def account_markup_over_default(*, account: AccountType) -> float:
    """Pips an account adds to its broker's default (tightest-priced) account: what a simulated feed of it adds."""
    default = costs.feed_account_default(AccountType.objects.filter(broker_id=account.broker_id))
    base = default.spread_markup_pips if default is not None else Decimal("0")
    return max(0.0, float(account.spread_markup_pips - base))


def simulated_account_feeds(*, brokers: list[str] | None = None) -> dict[str, list[tuple[int, float]]]:
    """broker slug -> (account id, mark-up over the default account in pips) of each enabled simulated feed
    configured for one account (the backfill simulates them beside the default feed)."""
    qs = FeedConfig.objects.filter(
        enabled=True, adapter=FeedConfig.Adapter.SIMULATOR, account__isnull=False
    ).select_related("broker", "account")
    if brokers:
        qs = qs.filter(broker__slug__in=brokers)
    out: dict[str, list[tuple[int, float]]] = {}
    for c in qs:
        assert c.account is not None
        out.setdefault(c.broker.slug, []).append((c.account.pk, account_markup_over_default(account=c.account)))
    return out


def feed_adapter_params(*, config: FeedConfig, resolve_secrets: bool = True) -> dict[str, Any]:
    """What `adapter_create` takes for one configuration: its params, its symbol mapping and its
    credentials read from where `secret_refs` points (SecretMissing if one is not set). A simulated feed of
    one account quotes that account's mark-up over the default account (unless its params set one)."""
    params: dict[str, Any] = dict(config.params)
    if config.adapter == FeedConfig.Adapter.SIMULATOR and config.account is not None:
        params.setdefault("account_markup_pips", account_markup_over_default(account=config.account))
    specs = feed_symbol_specs(config=config)
    if specs:
        params["symbols"] = specs
    if resolve_secrets and config.secret_refs:
        params["credentials"] = secrets_resolve(config.secret_refs)
    return params


# ---------------------------------------------------------------------------------------------------
# One source for the figures several pages show: mean spread per window (with its real coverage) and
# the all-in cost per account. Profile, compare, directory, the JSON and TrustMetrics all read these.

DAY_S = 86_400.0
# Each window is answered from the coarsest roll-up that covers it.
SPREAD_WINDOWS: list[tuple[str, timedelta, str]] = [
    ("24h", timedelta(hours=24), SpreadBar.Resolution.HOUR),
    ("7d", timedelta(days=7), SpreadBar.Resolution.HOUR),
    ("30d", timedelta(days=30), SpreadBar.Resolution.DAY),
]
BAR_DAYS: dict[str, float] = {
    SpreadBar.Resolution.MINUTE: 1 / 1440,
    SpreadBar.Resolution.HOUR: 1 / 24,
    SpreadBar.Resolution.DAY: 1.0,
}
WINDOW_LABELS = {"24h": "Last 24 h", "7d": "Last 7 days", "30d": "Last 30 days"}
# The window the all-in cost is measured over (stated wherever the cost is shown).
COST_WINDOW = "7d"


@dataclass(frozen=True)
class WindowMean:
    """Time-weighted mean spread of one broker and instrument over one window, and how much of the
    window the data really covers."""

    window: str
    pips: float | None
    quotes: int
    coverage_days: float  # from the first bar in the window to now
    span_days: float  # what the window's name promises
    bar_days: float = 0.0  # length of the bars it is read from

    @property
    def label(self) -> str:
        return WINDOW_LABELS[self.window]

    @property
    def complete(self) -> bool:
        # The first bar inside the window starts up to one bar after its edge: that much short is full.
        return self.coverage_days + self.bar_days >= self.span_days - 1e-9

    @property
    def coverage_text(self) -> str:
        """ "5.2 of 30 days" when the data is shorter than the window; "" when it covers it."""
        if self.complete:
            return ""
        if self.span_days < 2:
            return f"{self.coverage_days * 24:.1f} of {self.span_days * 24:.0f} hours"
        return f"{self.coverage_days:.1f} of {self.span_days:.0f} days"


def _window_aggregates(name: str, when: Q) -> dict[str, Any]:
    """Sums for a time-weighted mean (quote-weighted for bars without a duration) and the first bar."""
    return {
        f"{name}_tw": Sum(F("mean") * F("duration"), filter=when),
        f"{name}_dur": Sum("duration", filter=when),
        f"{name}_qw": Sum(F("mean") * F("count"), filter=when),
        f"{name}_n": Sum("count", filter=when),
        f"{name}_first": Min("start", filter=when),
    }


_SUMS = ("tw", "dur", "qw", "n")


def _window_merge(into: dict[str, Any], agg: dict[str, Any], name: str) -> None:
    """Add one group's sums to another's (a default account's bars recorded with and without its id)."""
    for part in _SUMS:
        key = f"{name}_{part}"
        if agg[key] is not None:
            into[key] = (into.get(key) or 0) + agg[key]
    first = agg[f"{name}_first"]
    if first is not None and (into.get(f"{name}_first") is None or first < into[f"{name}_first"]):
        into[f"{name}_first"] = first


def _window_mean(agg: dict[str, Any], name: str) -> float | None:
    if not agg.get(f"{name}_n"):
        return None
    if agg.get(f"{name}_dur"):
        return float(agg[f"{name}_tw"]) / float(agg[f"{name}_dur"])
    return float(agg[f"{name}_qw"]) / float(agg[f"{name}_n"])


def default_accounts_of(*, brokers: list[Broker]) -> dict[int, int | None]:
    """default_accounts for brokers that come with their account_types prefetched (no query then)."""
    out: dict[int, int | None] = {}
    for b in brokers:
        chosen = costs.feed_account_default(b.account_types.all())
        out[b.pk] = chosen.pk if chosen is not None else None
    return out


def default_accounts(*, broker_ids: list[int] | None = None) -> dict[int, int | None]:
    """broker id -> its default account (tightest-priced, costs.feed_account_default): whose bars are stored
    without an account."""
    qs = AccountType.objects.all()
    if broker_ids is not None:
        qs = qs.filter(broker_id__in=broker_ids)
    by_broker: dict[int, list[AccountType]] = {}
    for acc in qs:
        by_broker.setdefault(acc.broker_id, []).append(acc)
    out: dict[int, int | None] = dict.fromkeys(broker_ids or [], None)
    for broker_id, accounts in by_broker.items():
        chosen = costs.feed_account_default(accounts)
        out[broker_id] = chosen.pk if chosen is not None else None
    return out


def account_spread_windows(
    *,
    broker_ids: list[int] | None = None,
    symbols: list[str] | None = None,
    windows: list[str] | None = None,
    now: datetime | None = None,
    defaults: dict[int, int | None] | None = None,
) -> dict[tuple[int, int, int | None], dict[str, WindowMean]]:
    """(broker id, instrument id, account id) -> window -> mean spread in pips measured on that account's feed.

    Bars stored without an account are the broker's default account's (account id None only for a broker
    without account types; ``defaults`` from default_accounts_of saves reading them). One grouped query per
    bar resolution, whatever the number of brokers.
    """
    now = now or timezone.now()
    chosen = [w for w in SPREAD_WINDOWS if windows is None or w[0] in windows]
    by_resolution: dict[str, dict[str, Any]] = {}
    spans: dict[str, timedelta] = {}
    for name, span, resolution in chosen:
        by_resolution.setdefault(resolution, {}).update(_window_aggregates(name, Q(start__gte=now - span)))
        spans[resolution] = max(spans.get(resolution, span), span)
    merged: dict[tuple[int, int, int | None], dict[str, Any]] = {}
    pips: dict[int, float] = {}
    for resolution, aggregates in by_resolution.items():
        qs = SpreadBar.objects.filter(resolution=resolution, start__gte=now - spans[resolution])
        if broker_ids is not None:
            qs = qs.filter(broker_id__in=broker_ids)
        if symbols is not None:
            qs = qs.filter(instrument__symbol__in=symbols)
        for agg in qs.values("broker_id", "instrument_id", "account_id", "instrument__pip_size").annotate(**aggregates):
            account = agg["account_id"]
            if account is None:
                if defaults is None or agg["broker_id"] not in defaults:
                    defaults = {**(defaults or {}), **default_accounts(broker_ids=broker_ids)}
                    defaults.setdefault(agg["broker_id"], None)  # a broker without account types: read once
                account = defaults.get(agg["broker_id"])
            pips[agg["instrument_id"]] = float(agg["instrument__pip_size"])
            into = merged.setdefault((agg["broker_id"], agg["instrument_id"], account), {})
            for name, _span, res in chosen:
                if res == resolution:
                    _window_merge(into, agg, name)
    out: dict[tuple[int, int, int | None], dict[str, WindowMean]] = {}
    for key, sums in merged.items():
        row = out.setdefault(key, {})
        for name, span, resolution in chosen:
            mean = _window_mean(sums, name)
            if mean is None:
                continue
            first = sums[f"{name}_first"]
            row[name] = WindowMean(
                window=name,
                pips=mean / pips[key[1]],
                quotes=int(sums[f"{name}_n"]),
                coverage_days=min(span.total_seconds(), (now - first).total_seconds()) / DAY_S,
                span_days=span.total_seconds() / DAY_S,
                bar_days=BAR_DAYS[resolution],
            )
    return out


def spread_windows(
    *,
    broker_ids: list[int] | None = None,
    symbols: list[str] | None = None,
    windows: list[str] | None = None,
    now: datetime | None = None,
    brokers: list[Broker] | None = None,
    feeds: dict[int, AccountType | None] | None = None,
) -> dict[tuple[int, int], dict[str, WindowMean]]:
    """(broker id, instrument id) -> window -> mean spread in pips of the broker's feed account (feed_accounts:
    the account the broker's spreads are shown for wherever one figure per broker is shown).

    ``brokers`` (with account_types prefetched) and ``feeds`` (their feed_accounts) save reading them again.
    """
    defaults = default_accounts_of(brokers=brokers) if brokers is not None else None
    measured = account_spread_windows(
        broker_ids=broker_ids, symbols=symbols, windows=windows, now=now, defaults=defaults
    )
    if feeds is not None:
        primary = {b: (a.pk if a is not None else None) for b, a in feeds.items()}
    else:
        primary = feed_account_ids(broker_ids=sorted({b for b, _, _ in measured}))
    return {(b, i): ws for (b, i, a), ws in measured.items() if a == primary.get(b)}


@dataclass(frozen=True)
class AccountCost:
    """All-in cost of one round-turn standard lot of one instrument on one account."""

    broker_id: int
    account_id: int
    account: str
    spread_type: str
    feed_account: bool  # the broker's feed account (feed_accounts): its spread stands for the broker
    measured: bool  # the spread is measured on this account's own feed; else derived from the feed account's
    symbol: str
    min_deposit: Decimal
    spread_pips: float | None  # this account's mean spread over COST_WINDOW
    coverage_text: str
    commission_usd: float  # round turn per lot
    spread_cost_usd: float | None
    all_in_usd: float | None
    conversion: str
    swap_long_usd: float | None  # per lot per night; negative = the trader pays
    swap_short_usd: float | None
    spread_basis: str = ""  # where the spread comes from, said beside it

    @property
    def hold_one_night_long_usd(self) -> float | None:
        """All-in plus one night held long (a swap paid adds to the cost)."""
        if self.all_in_usd is None or self.swap_long_usd is None:
            return None
        return self.all_in_usd - self.swap_long_usd


def conversion_rates() -> dict[str, tuple[float, str]]:
    return {
        c: (float(rate), f"{as_of:%d %b %Y %H:%M} UTC")
        for c, rate, as_of in ConversionRate.objects.values_list("currency", "usd_per_unit", "as_of")
    }


def feed_accounts(*, brokers: list[Broker]) -> dict[int, AccountType | None]:
    """broker id -> its feed account: the account whose measured spread stands for the broker wherever one
    figure per broker is shown (compare, directory, live board, TrustMetrics). The tightest-priced of the
    accounts its enabled feeds carry (a feed without an account carries the default, tightest account);
    a broker without a feed configuration: its default account."""
    fed: dict[int, set[int | None]] = {}
    for broker_id, account_id in FeedConfig.objects.filter(broker__in=brokers, enabled=True).values_list(
        "broker_id", "account_id"
    ):
        fed.setdefault(broker_id, set()).add(account_id)
    out: dict[int, AccountType | None] = {}
    for b in brokers:
        accounts = list(b.account_types.all())
        default = costs.feed_account_default(accounts)
        carried = fed.get(b.pk, {None})
        candidates = [a for a in accounts if a.pk in carried or (None in carried and a is default)]
        out[b.pk] = costs.feed_account_default(candidates) or default
    return out


def feed_account_ids(*, broker_ids: list[int]) -> dict[int, int | None]:
    """broker id -> id of its feed account (feed_accounts) for brokers given by id."""
    brokers = list(Broker.objects.filter(pk__in=broker_ids).prefetch_related("account_types"))
    return {b: (a.pk if a is not None else None) for b, a in feed_accounts(brokers=brokers).items()}


def feed_account_bars(
    *,
    broker_ids: list[int] | None = None,
    brokers: list[Broker] | None = None,
    feeds: dict[int, AccountType | None] | None = None,
) -> Q:
    """A SpreadBar filter keeping each broker's feed-account bars only (one series per broker: scores, news
    reports and session means must not mix a raw account's spreads with a standard account's).

    ``brokers`` (account_types prefetched) and their ``feeds`` save reading them again."""
    if brokers is None:
        qs = Broker.objects.prefetch_related("account_types")
        if broker_ids is not None:
            qs = qs.filter(pk__in=broker_ids)
        brokers = list(qs)
    defaults = default_accounts_of(brokers=brokers)
    feeds = feeds if feeds is not None else feed_accounts(brokers=brokers)
    stored_empty = [b.pk for b in brokers if (f := feeds[b.pk]) is None or f.pk == defaults.get(b.pk)]
    named = [a.pk for a in feeds.values() if a is not None]
    return Q(account__isnull=True, broker_id__in=stored_empty) | Q(account_id__in=named)


def account_costs(
    *,
    brokers: list[Broker],
    symbols: list[str] | None = None,
    now: datetime | None = None,
    feeds: dict[int, AccountType | None] | None = None,
) -> dict[int, list[AccountCost]]:
    """broker id -> the all-in cost of each instrument on each of its accounts (brokers must come with
    their account_types prefetched or they are read once each). Ordered by instrument, then all-in cost."""
    ids = [b.pk for b in brokers]
    windows = account_spread_windows(
        broker_ids=ids, symbols=symbols, windows=[COST_WINDOW], now=now, defaults=default_accounts_of(brokers=brokers)
    )
    rates = conversion_rates()
    listed_qs = BrokerInstrument.objects.filter(broker_id__in=ids).select_related("instrument")
    swaps_qs = SwapRate.objects.filter(broker_id__in=ids)
    if symbols is not None:
        listed_qs = listed_qs.filter(instrument__symbol__in=symbols)
        swaps_qs = swaps_qs.filter(instrument__symbol__in=symbols)
    listed = list(listed_qs)
    swaps = {(s.broker_id, s.instrument_id): s for s in swaps_qs}
    feeds = feeds if feeds is not None else feed_accounts(brokers=brokers)
    out: dict[int, list[AccountCost]] = {b.pk: [] for b in brokers}
    by_id = {b.pk: b for b in brokers}
    for bi in listed:
        inst = bi.instrument
        broker = by_id[bi.broker_id]
        feed = feeds[broker.pk]
        base = windows.get((broker.pk, inst.pk, feed.pk if feed is not None else None), {}).get(COST_WINDOW)
        lot, conversion = costs.lot_pricing(symbol=inst.symbol, asset_class=inst.asset_class, rates=rates)
        swap = swaps.get((broker.pk, inst.pk))
        rows = []
        for acc in broker.account_types.all():
            own = windows.get((broker.pk, inst.pk, acc.pk), {}).get(COST_WINDOW)
            measured = own if own is not None and own.pips is not None else None
            spread: float | None
            if measured is not None:
                spread, coverage = measured.pips, measured.coverage_text
                basis = "measured on this account's feed"
            elif base is not None and base.pips is not None and feed is not None:
                spread = costs.account_spread_pips(
                    feed_spread_pips=base.pips,
                    account_markup=acc.spread_markup_pips,
                    feed_markup=feed.spread_markup_pips,
                )
                coverage = base.coverage_text
                diff = acc.spread_markup_pips - feed.spread_markup_pips
                basis = (
                    f"{feed.name} account's measured spread {'+' if diff >= 0 else '−'} {abs(diff):.1f} pips "
                    "published mark-up difference"
                )
            else:
                spread, coverage, basis = None, "", ""
            figure = costs.all_in_round_turn(
                spread_pips=spread,
                pip_size=float(inst.pip_size),
                lot_units=lot,
                usd_per_quote=conversion.usd_per_unit,
                commission=float(acc.commission_per_lot),
            )
            rows.append(
                AccountCost(
                    broker_id=broker.pk,
                    account_id=acc.pk,
                    account=acc.name,
                    spread_type=acc.spread_type,
                    feed_account=feed is not None and acc.pk == feed.pk,
                    measured=measured is not None,
                    symbol=inst.symbol,
                    min_deposit=acc.min_deposit,
                    spread_pips=spread,
                    coverage_text=coverage,
                    commission_usd=figure.commission_usd,
                    spread_cost_usd=figure.spread_cost_usd,
                    all_in_usd=figure.all_in_usd,
                    conversion=conversion.text,
                    swap_long_usd=float(swap.long_usd) if swap is not None else None,
                    swap_short_usd=float(swap.short_usd) if swap is not None else None,
                    spread_basis=basis,
                )
            )
        rows.sort(key=lambda r: (r.all_in_usd is None, r.all_in_usd or 0.0, r.min_deposit, r.account))
        out[broker.pk].extend(rows)
    return out


def cheapest_account_cost(rows: list[AccountCost], *, symbol: str) -> AccountCost | None:
    """The lowest all-in cost among a broker's accounts for one instrument (None when nothing is measured)."""
    priced = [r for r in rows if r.symbol == symbol and r.all_in_usd is not None]
    return min(priced, key=lambda r: (r.all_in_usd or 0.0, r.min_deposit, r.account), default=None)


def scoring_commission_per_lot(*, broker: Broker, feed: AccountType | None) -> float:
    """What TrustMetrics adds to the measured feed spread as the broker's cost, under the published rule
    (marketdata.costs.scoring_account): the cheapest account open to a retail deposit, its round-turn
    commission plus its mark-up over the feed account (``feed``, from feed_accounts), in USD per lot."""
    accounts = list(broker.account_types.all())
    chosen = costs.scoring_account(accounts, feed=feed)
    return costs.scoring_commission_equivalent(chosen, feed=feed)


def spread_minutes_around(
    *, at: datetime, before: timedelta, after: timedelta, instrument_ids: list[int]
) -> list[tuple[int, int, datetime, float, float]]:
    """(broker id, instrument id, minute start, mean, high) of the 1-minute bars in [at - before, at + after)
    (each broker's feed account)."""
    rows = (
        SpreadBar.objects.filter(
            feed_account_bars(),
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
    *,
    broker_id: int,
    instrument_id: int,
    since: datetime,
    until: datetime,
    resolution: str,
    account: AccountType | None = None,
) -> list[tuple[datetime, float]]:
    """(bar start, mean spread in price units) of one broker and instrument (its feed account, or ``account``,
    one of its accounts), oldest first."""
    feeds: dict[int, AccountType | None] | None = {broker_id: account} if account is not None else None
    rows = (
        SpreadBar.objects.filter(
            feed_account_bars(broker_ids=[broker_id], feeds=feeds),
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
    """(broker id, hour start, mean spread) of every broker's hourly bars on one instrument (feed accounts)."""
    rows = (
        SpreadBar.objects.filter(
            feed_account_bars(),
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
