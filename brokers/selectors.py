"""Reads for the public pages. Each returns everything its page needs in a bounded number of queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from brokers.models import (
    AccountType,
    Broker,
    BrokerInstrument,
    FundingMethod,
    Instrument,
    Licence,
    Platform,
    Regulator,
)
from brokers.templatetags.broker_tags import usd
from marketdata.models import SpreadBar
from marketdata.selectors import (
    COST_WINDOW,
    SPREAD_WINDOWS,
    WINDOW_LABELS,
    AccountCost,
    WindowMean,
    account_costs,
    cheapest_account_cost,
    feed_account_bars,
    feed_accounts,
    spread_windows,
)
from trustmetrics.models import TrustScore

SORTS: dict[str, tuple[str, list[Any]]] = {
    "score": ("Trust score, highest first", [F("trust_score").desc(nulls_last=True), "name"]),
    "deposit": ("Minimum deposit, lowest first", ["min_deposit", "name"]),
    "name": ("Name, A to Z", ["name"]),
    "cost": ("All-in EURUSD cost, lowest first", [F("trust_score").desc(nulls_last=True), "name"]),
}


def _with_latest_score(qs: QuerySet[Broker]) -> QuerySet[Broker]:
    latest = TrustScore.objects.filter(broker=OuterRef("pk")).order_by("-computed_at")
    return qs.annotate(
        trust_score=Subquery(latest.values("overall")[:1]),
        trust_label=Subquery(latest.values("label")[:1]),
        trust_confidence=Subquery(latest.values("confidence")[:1]),
    )


def _listing(qs: QuerySet[Broker]) -> QuerySet[Broker]:
    return _with_latest_score(qs).prefetch_related(
        "platforms",
        Prefetch("licences", queryset=Licence.objects.select_related("regulator").order_by("regulator__tier")),
    )


@dataclass(frozen=True)
class DirectoryFilters:
    regulator: str = ""
    tier: int | None = None
    platform: str = ""
    instrument: str = ""
    spread_type: str = ""
    min_leverage: int | None = None  # at least 1:x
    max_deposit: Decimal | None = None  # minimum deposit at most this
    max_cost: Decimal | None = None  # all-in EURUSD cost per round-turn lot at most this (cheapest account)
    negative_balance_protection: bool = False
    segregated_funds: bool = False
    funding: str = ""
    include_suspended: bool = False
    sort: str = "score"


COST_SYMBOL = "EURUSD"  # the directory's cost column and filter


@dataclass(frozen=True)
class DirectoryEntry:
    broker: Broker
    cost: AccountCost | None  # cheapest all-in EURUSD account


def broker_directory(*, filters: DirectoryFilters) -> list[DirectoryEntry]:
    qs = Broker.objects.all() if filters.include_suspended else Broker.objects.filter(status=Broker.Status.ACTIVE)
    active_licence = Licence.objects.filter(broker=OuterRef("pk"), status=Licence.Status.ACTIVE)
    if filters.regulator:
        qs = qs.filter(Exists(active_licence.filter(regulator__slug=filters.regulator)))
    if filters.tier is not None:
        # "Tier <= N": a broker with an FCA licence answers a tier-3 question too (it is at least that strict).
        qs = qs.filter(Exists(active_licence.filter(regulator__tier__lte=filters.tier)))
    if filters.platform:
        qs = qs.filter(Exists(Platform.objects.filter(brokers=OuterRef("pk"), slug=filters.platform)))
    if filters.instrument:
        qs = qs.filter(
            Exists(BrokerInstrument.objects.filter(broker=OuterRef("pk"), instrument__symbol=filters.instrument))
        )
    if filters.spread_type:
        qs = qs.filter(Exists(AccountType.objects.filter(broker=OuterRef("pk"), spread_type=filters.spread_type)))
    if filters.min_leverage is not None:
        qs = qs.filter(max_leverage__gte=filters.min_leverage)
    if filters.max_deposit is not None:
        qs = qs.filter(min_deposit__lte=filters.max_deposit)
    if filters.negative_balance_protection:
        qs = qs.filter(negative_balance_protection=True)
    if filters.segregated_funds:
        qs = qs.filter(segregated_funds=True)
    if filters.funding:
        qs = qs.filter(Exists(FundingMethod.objects.filter(brokers=OuterRef("pk"), slug=filters.funding)))
    order = SORTS[filters.sort][1] if filters.sort in SORTS else SORTS["score"][1]
    brokers = list(_listing(qs).prefetch_related("account_types").order_by(*order))
    cost_rows = account_costs(brokers=brokers, symbols=[COST_SYMBOL])
    entries = [DirectoryEntry(b, cheapest_account_cost(cost_rows[b.pk], symbol=COST_SYMBOL)) for b in brokers]
    if filters.max_cost is not None:
        limit = float(filters.max_cost)
        entries = [
            e for e in entries if e.cost is not None and e.cost.all_in_usd is not None and e.cost.all_in_usd <= limit
        ]
    if filters.sort == "cost":
        entries.sort(
            key=lambda e: (
                e.cost is None or e.cost.all_in_usd is None,
                e.cost.all_in_usd if e.cost else 0,
                e.broker.name,
            )
        )
    return entries


def broker_top(*, limit: int = 5) -> list[Broker]:
    qs = Broker.objects.filter(status=Broker.Status.ACTIVE)
    return list(_listing(qs).order_by(*SORTS["score"][1])[:limit])


@dataclass(frozen=True)
class FilterChoices:
    regulators: list[Regulator]
    platforms: list[Platform]
    instruments: list[Instrument]
    funding: list[FundingMethod]


def filter_choices() -> FilterChoices:
    """Only what some listed (active) broker has: a choice never returns nothing by construction."""
    active = Broker.objects.filter(status=Broker.Status.ACTIVE)
    return FilterChoices(
        regulators=list(
            Regulator.objects.filter(licences__status=Licence.Status.ACTIVE, licences__broker__in=active)
            .distinct()
            .order_by("tier", "name")
        ),
        platforms=list(Platform.objects.filter(brokers__in=active).distinct()),
        instruments=list(Instrument.objects.filter(broker_instruments__broker__in=active).distinct()),
        funding=list(FundingMethod.objects.filter(brokers__in=active).distinct()),
    )


def site_counts() -> dict[str, int]:
    return {
        "brokers": Broker.objects.filter(status=Broker.Status.ACTIVE).count(),
        "regulators": Regulator.objects.filter(licences__isnull=False).distinct().count(),
        "instruments": Instrument.objects.count(),
    }


@dataclass
class SpreadRow:
    instrument: Instrument
    broker_symbol: str
    windows: dict[str, WindowMean] = field(default_factory=dict)  # window -> mean spread (feed account)
    sessions: dict[str, float | None] = field(default_factory=dict)  # session -> mean spread in pips, last 7 d
    quotes: int = 0


# Trading sessions (UTC hours [first, last)) over the last 7 days, from 1-hour bars. 22:00-24:00 UTC
# belongs to none of them.
SPREAD_SESSIONS: list[tuple[str, int, int]] = [
    ("asian", 0, 8),
    ("london", 8, 13),
    ("overlap", 13, 17),
    ("newyork", 17, 22),
]
SESSION_SPAN = timedelta(days=7)


def _mean_aggregates(name: str, when: Q) -> dict[str, Any]:
    """Sums for a time-weighted mean spread over the bars matching `when` (quote-weighted fallback for
    bars without a duration)."""
    return {
        f"{name}_tw": Sum(F("mean") * F("duration"), filter=when),
        f"{name}_dur": Sum("duration", filter=when),
        f"{name}_qw": Sum(F("mean") * F("count"), filter=when),
        f"{name}_n": Sum("count", filter=when),
    }


def _mean(agg: dict[str, Any], name: str) -> float | None:
    """Mean spread in price units, or None when no quote was measured."""
    if not agg[f"{name}_n"]:
        return None
    if agg[f"{name}_dur"]:
        return float(agg[f"{name}_tw"]) / float(agg[f"{name}_dur"])
    return float(agg[f"{name}_qw"]) / float(agg[f"{name}_n"])


def _feeds_of(broker: Broker) -> dict[int, AccountType | None]:
    """feed_accounts of one broker, read once per broker object (a profile asks for it three times)."""
    cached: dict[int, AccountType | None] | None = getattr(broker, "_feed_accounts", None)
    if cached is None:
        cached = feed_accounts(brokers=[broker])
        setattr(broker, "_feed_accounts", cached)  # noqa: B010 (a cache on the instance, not a model field)
    return cached


def broker_spread_history(
    *, broker: Broker, now: datetime | None = None, account: AccountType | None = None
) -> list[SpreadRow]:
    """Mean spread in pips per instrument over the last 24 h, 7 d and 30 d (marketdata.selectors.spread_windows,
    the one source every page uses), and per trading session over the last 7 d; empty when nothing is measured.

    ``account``: one of the broker's accounts (from ``broker.account_types``), whose own bars are read (bars
    stored without an account are its default account's). Default: the broker's feed account, as the profile.
    """
    if account is not None and account.broker_id != broker.pk:
        raise ValueError(f"Account {account.pk} is not one of {broker.slug}'s.")
    now = now or timezone.now()
    rows = {
        bi.instrument_id: SpreadRow(instrument=bi.instrument, broker_symbol=bi.broker_symbol)
        for bi in BrokerInstrument.objects.filter(broker=broker).select_related("instrument")
    }
    measured = False
    # The same reads with the chosen account standing in for the feed account: one code path for both.
    feeds = _feeds_of(broker) if account is None else {broker.pk: account}
    for (_, instrument_id), windows in spread_windows(
        broker_ids=[broker.pk], now=now, brokers=[broker], feeds=feeds
    ).items():
        row = rows.get(instrument_id)
        if row is None or not windows:
            continue
        measured = True
        row.windows = windows
        row.quotes = max(w.quotes for w in windows.values())
    aggregates: dict[str, Any] = {}
    session_since = Q(start__gte=now - SESSION_SPAN)
    for name, first, last in SPREAD_SESSIONS:
        aggregates.update(_mean_aggregates(name, session_since & Q(start__hour__gte=first, start__hour__lt=last)))
    qs = (
        SpreadBar.objects.filter(
            feed_account_bars(brokers=[broker], feeds=feeds),
            broker=broker,
            resolution=SpreadBar.Resolution.HOUR,
            start__gte=now - SESSION_SPAN,
        )
        .values("instrument_id")
        .annotate(**aggregates)
    )
    for agg in qs:
        row = rows.get(agg["instrument_id"])
        if row is None:
            continue
        pip = float(row.instrument.pip_size)
        for name, *_ in SPREAD_SESSIONS:
            if (mean := _mean(agg, name)) is not None:
                row.sessions[name] = mean / pip
    return list(rows.values()) if measured else []


WINDOW_NAMES = [name for name, *_ in SPREAD_WINDOWS]


def broker_profile(*, slug: str) -> Broker:
    """The broker with everything its profile shows. Raises Broker.DoesNotExist."""
    qs = Broker.objects.prefetch_related(
        "platforms",
        "funding_methods",
        Prefetch("licences", queryset=Licence.objects.select_related("regulator")),
        "account_types",
        Prefetch("broker_instruments", queryset=BrokerInstrument.objects.select_related("instrument")),
    )
    return _with_latest_score(qs).get(slug=slug)


@dataclass(frozen=True)
class BrokerCosts:
    """What trading at one broker costs, per instrument and account, from marketdata.selectors.account_costs."""

    rows: list[AccountCost]  # by instrument, then all-in
    feed_account: AccountType | None  # the account every measured spread belongs to
    window_label: str

    def for_symbol(self, symbol: str) -> list[AccountCost]:
        return [r for r in self.rows if r.symbol == symbol]

    @property
    def symbols(self) -> list[str]:
        return list(dict.fromkeys(r.symbol for r in self.rows))

    @property
    def measured_account_ids(self) -> set[int]:
        """Accounts whose spreads are measured from a feed of their own (the others are derived)."""
        return {r.account_id for r in self.rows if r.measured}


def broker_costs(*, broker: Broker, now: datetime | None = None) -> BrokerCosts:
    feeds = _feeds_of(broker)
    return BrokerCosts(
        rows=account_costs(brokers=[broker], now=now, feeds=feeds)[broker.pk],
        feed_account=feeds[broker.pk],
        window_label=WINDOW_LABELS[COST_WINDOW].lower(),
    )


def broker_score_history(*, broker: Broker, limit: int = 90) -> list[TrustScore]:
    return list(TrustScore.objects.filter(broker=broker).order_by("-computed_at")[:limit])[::-1]


@dataclass(frozen=True)
class CompareRow:
    label: str
    values: list[Any]
    best: set[int]
    notes: list[str]  # per broker: which account, coverage
    fmt: str = ""  # "usd" or "pips": the same format as the profile's figure

    @property
    def cells(self) -> list[tuple[Any, str, bool]]:
        return [(v, n, i in self.best) for i, (v, n) in enumerate(zip(self.values, self.notes, strict=True))]


def _best(values: list[Any], *, lower_is_better: bool) -> set[int]:
    present = [(v, i) for i, v in enumerate(values) if v is not None]
    if len(present) < 2:
        return set()
    target = min(present)[0] if lower_is_better else max(present)[0]
    winners = {i for v, i in present if v == target}
    return set() if len(winners) == len(present) else winners


def broker_compare(*, slugs: list[str], now: datetime | None = None) -> tuple[list[Broker], list[CompareRow]]:
    """Brokers in the order asked, and the rows of the comparison table with the best value per row.

    The spread and cost rows come from the same selectors as the profile (marketdata.selectors)."""
    found = {
        b.slug: b
        for b in _listing(Broker.objects.filter(slug__in=slugs))
        .prefetch_related("account_types")
        .annotate(instrument_count=Count("broker_instruments", distinct=True))
    }
    brokers: list[Broker] = [found[s] for s in slugs if s in found]
    feeds = feed_accounts(brokers=brokers)
    eurusd = {
        broker_id: windows["7d"]
        for (broker_id, _), windows in spread_windows(
            broker_ids=[b.pk for b in brokers],
            symbols=[COST_SYMBOL],
            windows=["7d"],
            now=now,
            brokers=brokers,
            feeds=feeds,
        ).items()
        if "7d" in windows
    }
    cost_rows = account_costs(brokers=brokers, symbols=[COST_SYMBOL], now=now, feeds=feeds)
    cheapest = {b.pk: cheapest_account_cost(cost_rows[b.pk], symbol=COST_SYMBOL) for b in brokers}

    def row(
        label: str, values: list[Any], *, lower_is_better: bool | None, notes: list[str] | None = None, fmt: str = ""
    ) -> CompareRow:
        best = set() if lower_is_better is None else _best(values, lower_is_better=lower_is_better)
        return CompareRow(label, values, best, notes or [""] * len(values), fmt)

    def cents(value: float | None) -> float | None:
        # Rounded as shown, so "Best" marks what the reader sees (two equal figures are both best).
        return None if value is None else round(value, 2)

    def top_tier(b: Broker) -> int | None:
        tiers = [lic.regulator.tier for lic in b.licences.all() if lic.status == Licence.Status.ACTIVE]
        return min(tiers) if tiers else None

    def spread_note(b: Broker) -> str:
        feed = feeds[b.pk]
        parts = [f"{feed.name} account" if feed else ""]
        if b.pk in eurusd and eurusd[b.pk].coverage_text:
            parts.append(eurusd[b.pk].coverage_text)
        return " · ".join(p for p in parts if p)

    def cost_note(b: Broker) -> str:
        c = cheapest[b.pk]
        if c is None:
            return ""
        note = f"{c.account} account: spread ${c.spread_cost_usd:,.2f} + commission ${c.commission_usd:,.2f}"
        # The cheapest account may need more than the broker's lowest deposit (Alpenbank's $3 commission only from
        # $50,000): said beside the figure, so "Best" never hides what opening that account takes.
        if c.min_deposit > b.min_deposit:
            note += f" (opens from a ${c.min_deposit:,.0f} deposit)"
        return note

    def every_account(b: Broker) -> str:
        parts = []
        for c in cost_rows[b.pk]:
            if c.symbol != COST_SYMBOL:
                continue
            shown = usd(c.all_in_usd)
            if c.hold_one_night_long_usd is not None:
                shown += f" ({usd(c.hold_one_night_long_usd)})"
            parts.append(
                f"{c.account} {shown}"
                + (f", opens from ${c.min_deposit:,.0f}" if c.min_deposit > b.min_deposit else "")
            )
        return "; ".join(parts)

    rows = [
        row("Status", [b.get_status_display() for b in brokers], lower_is_better=None),
        row("Trust score", [b.trust_score for b in brokers], lower_is_better=False),  # type: ignore[attr-defined]
        row("Strictest active licence (tier)", [top_tier(b) for b in brokers], lower_is_better=True),
        row(
            "Active licences",
            [sum(1 for lic in b.licences.all() if lic.status == Licence.Status.ACTIVE) for b in brokers],
            lower_is_better=False,
        ),
        row("Minimum deposit (USD)", [b.min_deposit for b in brokers], lower_is_better=True),
        row(
            "EURUSD mean spread, last 7 days (pips)",
            [cents(eurusd[b.pk].pips) if b.pk in eurusd else None for b in brokers],
            lower_is_better=True,
            notes=[spread_note(b) for b in brokers],
            fmt="pips",
        ),
        row(
            "EURUSD all-in cost, 1 lot round turn, cheapest account (USD)",
            [cents(c.all_in_usd) if (c := cheapest[b.pk]) is not None else None for b in brokers],
            lower_is_better=True,
            notes=[cost_note(b) for b in brokers],
            fmt="usd",
        ),
        # Every account, not only the cheapest: what a trader pays on the account they would open, and a night held.
        row(
            "EURUSD all-in cost per account, 1 lot round turn (held one night long)",
            [every_account(b) or None for b in brokers],
            lower_is_better=None,
        ),
        row("Maximum leverage (1:x)", [b.max_leverage for b in brokers], lower_is_better=None),
        row("Instruments quoted", [b.instrument_count for b in brokers], lower_is_better=False),  # type: ignore[attr-defined]
        row("Platforms", [len(b.platforms.all()) for b in brokers], lower_is_better=False),
        row("Negative balance protection", [b.negative_balance_protection for b in brokers], lower_is_better=False),
        row("Segregated client funds", [b.segregated_funds for b in brokers], lower_is_better=False),
        row("Founded", [b.year_founded for b in brokers], lower_is_better=True),
    ]
    return brokers, rows


def compare_choices() -> list[tuple[str, str]]:
    """Every broker, suspended ones marked: a suspended broker's own "compare with" link must work."""
    return [
        (slug, name if status == Broker.Status.ACTIVE else f"{name} (suspended)")
        for slug, name, status in Broker.objects.values_list("slug", "name", "status")
    ]


def broker_figures(*, broker: Broker, now: datetime | None = None) -> dict[str, Any]:
    """The figures a profile shares with other pages, as JSON-ready data (same selectors, same rounding)."""
    now = now or timezone.now()
    costs = broker_costs(broker=broker, now=now)
    windows = spread_windows(broker_ids=[broker.pk], now=now, brokers=[broker], feeds=_feeds_of(broker))
    symbols = {bi.instrument_id: bi.instrument.symbol for bi in broker.broker_instruments.all()}
    return {
        "as_of": now.isoformat(timespec="seconds"),
        "broker": broker.slug,
        "name": broker.name,
        "status": broker.status,
        "trust_score": broker.trust_score,  # type: ignore[attr-defined]
        "licences": [
            {"regulator": lic.regulator.name, "tier": lic.regulator.tier, "status": lic.status}
            for lic in broker.licences.all()
        ],
        "feed_account": costs.feed_account.name if costs.feed_account else None,
        "spreads": {
            symbols[instrument_id]: {
                name: {"pips": _cents(w.pips), "coverage": w.coverage_text or None, "quotes": w.quotes}
                for name, w in ws.items()
            }
            for (_, instrument_id), ws in windows.items()
            if instrument_id in symbols
        },
        "costs": [
            {
                "instrument": c.symbol,
                "account": c.account,
                "spread_pips": _cents(c.spread_pips),
                "spread_measured": c.measured,
                "spread_basis": c.spread_basis,
                "spread_cost_usd": _cents(c.spread_cost_usd),
                "commission_usd": _cents(c.commission_usd),
                "all_in_usd": _cents(c.all_in_usd),
                "swap_long_usd": c.swap_long_usd,
                "swap_short_usd": c.swap_short_usd,
                "conversion": c.conversion,
                "basis": f"one standard lot, round turn; spread: mean of the {costs.window_label}",
            }
            for c in costs.rows
        ],
        "non_trading_fees": {
            "deposit_usd": float(broker.deposit_fee),
            "withdrawal_usd": float(broker.withdrawal_fee),
            "inactivity_usd_per_month": float(broker.inactivity_fee),
            "inactivity_after_months": broker.inactivity_after_months,
        },
    }


def _cents(value: float | None) -> float | None:
    """Rounded as the pages show it (two decimals), so the JSON and the pages carry the same figure."""
    return None if value is None else round(value, 2)
