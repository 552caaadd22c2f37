"""Reads for the public pages. Each returns everything its page needs in a bounded number of queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, F, Min, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from brokers.models import AccountType, Broker, BrokerInstrument, Instrument, Licence, Platform, Regulator
from marketdata.models import SpreadBar
from trustmetrics.models import TrustScore

SORTS: dict[str, tuple[str, list[Any]]] = {
    "score": ("Trust score, highest first", [F("trust_score").desc(nulls_last=True), "name"]),
    "deposit": ("Minimum deposit, lowest first", ["min_deposit", "name"]),
    "name": ("Name, A to Z", ["name"]),
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
    sort: str = "score"


def broker_directory(*, filters: DirectoryFilters) -> list[Broker]:
    qs = Broker.objects.filter(status=Broker.Status.ACTIVE)
    active_licence = Licence.objects.filter(broker=OuterRef("pk"), status=Licence.Status.ACTIVE)
    if filters.regulator:
        qs = qs.filter(Exists(active_licence.filter(regulator__slug=filters.regulator)))
    if filters.tier is not None:
        qs = qs.filter(Exists(active_licence.filter(regulator__tier=filters.tier)))
    if filters.platform:
        qs = qs.filter(platforms__slug=filters.platform)
    if filters.instrument:
        qs = qs.filter(broker_instruments__instrument__symbol=filters.instrument)
    if filters.spread_type:
        qs = qs.filter(Exists(AccountType.objects.filter(broker=OuterRef("pk"), spread_type=filters.spread_type)))
    return list(_listing(qs).order_by(*SORTS[filters.sort][1]))


def broker_top(*, limit: int = 5) -> list[Broker]:
    qs = Broker.objects.filter(status=Broker.Status.ACTIVE)
    return list(_listing(qs).order_by(*SORTS["score"][1])[:limit])


@dataclass(frozen=True)
class FilterChoices:
    regulators: list[Regulator]
    platforms: list[Platform]
    instruments: list[Instrument]


def filter_choices() -> FilterChoices:
    return FilterChoices(
        regulators=list(Regulator.objects.filter(licences__isnull=False).distinct().order_by("tier", "name")),
        platforms=list(Platform.objects.filter(brokers__isnull=False).distinct()),
        instruments=list(Instrument.objects.all()),
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
    windows: dict[str, float | None] = field(default_factory=dict)  # window -> mean spread in pips
    sessions: dict[str, float | None] = field(default_factory=dict)  # session -> mean spread in pips, last 7 d
    quotes: int = 0


# Each window is answered from the coarsest roll-up that covers it.
SPREAD_WINDOWS: list[tuple[str, timedelta, str]] = [
    ("24h", timedelta(hours=24), SpreadBar.Resolution.HOUR),
    ("7d", timedelta(days=7), SpreadBar.Resolution.HOUR),
    ("30d", timedelta(days=30), SpreadBar.Resolution.DAY),
]
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


def broker_spread_history(*, broker: Broker, now: datetime | None = None) -> list[SpreadRow]:
    """Mean spread in pips per instrument over the last 24 h, 7 d and 30 d, and per trading session over
    the last 7 d; empty when nothing is measured.

    Two grouped queries (1-hour bars for 24 h, 7 d and the sessions; daily bars for 30 d) plus the
    instrument list: the count does not grow with the data.
    """
    now = now or timezone.now()
    rows = {
        bi.instrument_id: SpreadRow(instrument=bi.instrument, broker_symbol=bi.broker_symbol)
        for bi in BrokerInstrument.objects.filter(broker=broker).select_related("instrument")
    }
    by_resolution: dict[str, dict[str, Any]] = {}
    for name, span, resolution in SPREAD_WINDOWS:
        by_resolution.setdefault(resolution, {}).update(_mean_aggregates(name, Q(start__gte=now - span)))
    session_since = Q(start__gte=now - SESSION_SPAN)
    for name, first, last in SPREAD_SESSIONS:
        when = session_since & Q(start__hour__gte=first, start__hour__lt=last)
        by_resolution[SpreadBar.Resolution.HOUR].update(_mean_aggregates(name, when))
    spans = {resolution: max(s for _, s, r in SPREAD_WINDOWS if r == resolution) for resolution in by_resolution}
    measured = False
    for resolution, aggregates in by_resolution.items():
        qs = (
            SpreadBar.objects.filter(broker=broker, resolution=resolution, start__gte=now - spans[resolution])
            .values("instrument_id")
            .annotate(**aggregates)
        )
        for agg in qs:
            row = rows.get(agg["instrument_id"])
            if row is None:
                continue
            pip = float(row.instrument.pip_size)
            for name, *_ in SPREAD_WINDOWS:
                if f"{name}_n" in agg and (mean := _mean(agg, name)) is not None:
                    measured = True
                    row.windows[name] = mean / pip
                    row.quotes = max(row.quotes, int(agg[f"{name}_n"]))
            for name, *_ in SPREAD_SESSIONS:
                if f"{name}_n" in agg and (mean := _mean(agg, name)) is not None:
                    row.sessions[name] = mean / pip
    return list(rows.values()) if measured else []


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


def broker_score_history(*, broker: Broker, limit: int = 90) -> list[TrustScore]:
    return list(TrustScore.objects.filter(broker=broker).order_by("-computed_at")[:limit])[::-1]


@dataclass(frozen=True)
class CompareRow:
    label: str
    values: list[Any]
    best: set[int]


def _best(values: list[Any], *, lower_is_better: bool) -> set[int]:
    present = [(v, i) for i, v in enumerate(values) if v is not None]
    if len(present) < 2:
        return set()
    target = min(present)[0] if lower_is_better else max(present)[0]
    winners = {i for v, i in present if v == target}
    return set() if len(winners) == len(present) else winners


def broker_compare(*, slugs: list[str]) -> tuple[list[Broker], list[CompareRow]]:
    """Brokers in the order asked, and the rows of the comparison table with the best value per row."""
    found = {
        b.slug: b
        for b in _listing(Broker.objects.filter(slug__in=slugs)).annotate(
            instrument_count=Count("broker_instruments", distinct=True),
            raw_commission=Min("account_types__commission_per_lot"),
        )
    }
    brokers: list[Broker] = [found[s] for s in slugs if s in found]
    eurusd = {
        row["broker_id"]: row["weighted"] / row["quotes"]
        for row in SpreadBar.objects.filter(
            broker__in=brokers,
            instrument__symbol="EURUSD",
            resolution=SpreadBar.Resolution.HOUR,
            start__gte=timezone.now() - timedelta(days=7),
        )
        .values("broker_id")
        .annotate(weighted=Sum(F("mean") * F("count")), quotes=Sum("count"))
        if row["quotes"]
    }
    pip = Instrument.objects.filter(symbol="EURUSD").values_list("pip_size", flat=True).first() or Decimal("0.0001")

    def row(label: str, values: list[Any], *, lower_is_better: bool | None) -> CompareRow:
        best = set() if lower_is_better is None else _best(values, lower_is_better=lower_is_better)
        return CompareRow(label, values, best)

    def top_tier(b: Broker) -> int | None:
        tiers = [lic.regulator.tier for lic in b.licences.all() if lic.status == Licence.Status.ACTIVE]
        return min(tiers) if tiers else None

    rows = [
        row("Trust score", [b.trust_score for b in brokers], lower_is_better=False),  # type: ignore[attr-defined]
        row("Strictest active licence (tier)", [top_tier(b) for b in brokers], lower_is_better=True),
        row(
            "Active licences",
            [sum(1 for lic in b.licences.all() if lic.status == Licence.Status.ACTIVE) for b in brokers],
            lower_is_better=False,
        ),
        row("Minimum deposit (USD)", [b.min_deposit for b in brokers], lower_is_better=True),
        row(
            "EURUSD mean spread, 7 days (pips)",
            [round(eurusd[b.pk] / float(pip), 2) if b.pk in eurusd else None for b in brokers],
            lower_is_better=True,
        ),
        row("Lowest commission per lot (USD)", [b.raw_commission for b in brokers], lower_is_better=True),  # type: ignore[attr-defined]
        row("Maximum leverage (1:x)", [b.max_leverage for b in brokers], lower_is_better=None),
        row("Instruments quoted", [b.instrument_count for b in brokers], lower_is_better=False),  # type: ignore[attr-defined]
        row("Platforms", [len(b.platforms.all()) for b in brokers], lower_is_better=False),
        row("Negative balance protection", [b.negative_balance_protection for b in brokers], lower_is_better=False),
        row("Segregated client funds", [b.segregated_funds for b in brokers], lower_is_better=False),
        row("Founded", [b.year_founded for b in brokers], lower_is_better=True),
    ]
    return brokers, rows


def compare_choices() -> list[tuple[str, str]]:
    return list(Broker.objects.filter(status=Broker.Status.ACTIVE).values_list("slug", "name"))
