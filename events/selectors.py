"""Reads of the event reports: the archive, one report, a broker's last releases."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Prefetch, QuerySet

from brokers.models import AccountType, Broker, Instrument
from events import stress
from events.models import EventReport, EventReportRow
from marketdata.models import EconomicEvent
from trustmetrics.methodology import METHODOLOGY

WINDOW_AFTER = timedelta(minutes=stress.WINDOW_AFTER_MIN)


def event_instruments(*, currency: str) -> list[Instrument]:
    """The tracked instruments a release in this currency moves (the methodology's rule, one source)."""
    return [i for i in Instrument.objects.all() if METHODOLOGY.moves_with(i.symbol, currency)]


def events_due(*, now: datetime, since: datetime) -> list[int]:
    """High-impact releases since ``since`` whose window has closed and that have no report yet."""
    return list(
        EconomicEvent.objects.filter(
            impact=EconomicEvent.Impact.HIGH,
            scheduled_at__gte=since,
            scheduled_at__lte=now - WINDOW_AFTER,
            report__isnull=True,
        )
        .order_by("scheduled_at")
        .values_list("pk", flat=True)
    )


def event_report_list(*, limit: int = 200) -> QuerySet[EventReport]:
    return EventReport.objects.select_related("event", "best_broker", "worst_broker").order_by(
        "-event__scheduled_at", "-pk"
    )[:limit]


@dataclass
class InstrumentSection:
    instrument: Instrument
    rows: list[EventReportRow] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)


def event_report_detail(*, event_id: int) -> tuple[EventReport, list[InstrumentSection]]:
    """The report with its rows grouped by instrument, calmest broker first. Raises EventReport.DoesNotExist."""
    report = EventReport.objects.select_related("event", "best_broker", "worst_broker").get(event_id=event_id)
    rows = (
        EventReportRow.objects.filter(report=report)
        .select_related("broker", "instrument", "account")
        .order_by("instrument__sort_order", "instrument__symbol", "stress_ratio", "broker__name")
    )
    sections: dict[int, InstrumentSection] = {}
    for row in rows:
        section = sections.setdefault(row.instrument_id, InstrumentSection(instrument=row.instrument))
        section.rows.append(row)
    for section in sections.values():
        section.series = report.series.get(section.instrument.symbol, {})
        # Brokers with no stress ratio (nothing quoted) go last, not first.
        section.rows.sort(key=lambda r: (r.stress_ratio is None, r.stress_ratio or 0.0, r.broker.name))
    return report, list(sections.values())


@dataclass(frozen=True)
class BrokerRelease:
    report: EventReport
    rank: int  # 1 = calmest of the brokers measured
    brokers_measured: int
    median_ratio: float | None
    longest_gap_s: int
    worst_symbol: str | None


def broker_last_releases(*, broker_id: int, limit: int = 5) -> list[BrokerRelease]:
    """How this broker held up at its last ``limit`` reported releases."""
    reports = list(
        EventReport.objects.filter(rows__broker_id=broker_id)
        .distinct()
        .select_related("event")
        .prefetch_related(Prefetch("rows", queryset=EventReportRow.objects.select_related("instrument")))
        .order_by("-event__scheduled_at")[:limit]
    )
    out = []
    for report in reports:
        per_broker: dict[int, list[EventReportRow]] = {}
        for row in report.rows.all():
            per_broker.setdefault(row.broker_id, []).append(row)
        keys = {b: _rank_key(rows) for b, rows in per_broker.items()}
        mine = per_broker.get(broker_id, [])
        ranked = sorted((k, b) for b, k in keys.items() if k is not None)
        rank = next((i + 1 for i, (_, b) in enumerate(ranked) if b == broker_id), len(ranked) + 1)
        ratios = sorted(r.stress_ratio for r in mine if r.stress_ratio is not None)
        worst = max((r for r in mine if r.stress_ratio is not None), key=lambda r: r.stress_ratio or 0, default=None)
        out.append(
            BrokerRelease(
                report=report,
                rank=rank,
                brokers_measured=len(ranked),
                median_ratio=ratios[len(ratios) // 2] if ratios else None,
                longest_gap_s=max((r.longest_gap_s for r in mine), default=0),
                worst_symbol=worst.instrument.symbol if worst else None,
            )
        )
    return out


def _rank_key(rows: list[EventReportRow]) -> float | None:
    return stress.stress_rank_key(
        [
            stress.Stress(
                calm=r.calm_pips,
                peak=r.peak_pips,
                p95=r.p95_pips,
                longest_gap_s=r.longest_gap_s,
                recovery_s=r.recovery_s,
                quoted_minutes=r.quoted_minutes,
                window_minutes=stress.WINDOW_BEFORE_MIN + stress.WINDOW_AFTER_MIN,
            )
            for r in rows
        ]
    )


def broker_names() -> dict[int, str]:
    return dict(Broker.objects.values_list("pk", "name"))


SPREAD_SPANS: dict[str, tuple[timedelta, str, int]] = {
    # span name: (how far back, bar resolution read, bucket seconds drawn)
    "24h": (timedelta(hours=24), "1m", 600),
    "7d": (timedelta(days=7), "1h", 3600),
    "30d": (timedelta(days=30), "1h", 6 * 3600),
}
PERCENTILE_SPAN = timedelta(days=7)


@dataclass
class SpreadHistory:
    broker: Broker
    instrument: Instrument
    as_of: datetime
    series: dict[str, list[tuple[float, float]]]  # span -> (unix seconds, pips)
    hours: list[float | None]  # this broker, pips per UTC hour of day (last 7 days)
    peers: list[float | None]  # median of the other brokers
    sessions: dict[str, dict[str, float | None]]  # session -> p50/p95/p99 in pips (last 7 days)
    # The account the figures are for (the one asked for, else the broker's feed account; None: no accounts
    # listed), and every account of the broker, for the page's switcher.
    account: AccountType | None = None
    accounts: list[AccountType] = field(default_factory=list)


def spread_history(
    *, broker: Broker, instrument: Instrument, now: datetime, account: AccountType | None = None
) -> SpreadHistory:
    """Everything the spread page shows, for one broker and instrument, as of ``now``.

    ``account``: one of the broker's accounts, read instead of its feed account (the other brokers, the
    peers, stay on their feed accounts)."""
    from events import spreadstats
    from marketdata.selectors import feed_accounts, spread_hourly_means, spread_series

    pip = float(instrument.pip_size)
    series = {}
    for name, (span, resolution, bucket) in SPREAD_SPANS.items():
        points = spread_series(
            broker_id=broker.pk,
            instrument_id=instrument.pk,
            since=now - span,
            until=now,
            resolution=resolution,
            account=account,
        )
        series[name] = [(t, v / pip) for t, v in spreadstats.bucket_means(points, bucket_s=bucket)]
    hourly: dict[int, list[tuple[datetime, float]]] = {}
    for broker_id, at, mean in spread_hourly_means(instrument_id=instrument.pk, since=now - PERCENTILE_SPAN, until=now):
        hourly.setdefault(broker_id, []).append((at, mean / pip))
    if account is not None:
        hourly[broker.pk] = [
            (at, mean / pip)
            for at, mean in spread_series(
                broker_id=broker.pk,
                instrument_id=instrument.pk,
                since=now - PERCENTILE_SPAN,
                until=now,
                resolution="1h",
                account=account,
            )
        ]
    mine = spreadstats.hour_profile(hourly.get(broker.pk, []))
    peers = spreadstats.peer_hour_profile([spreadstats.hour_profile(p) for b, p in hourly.items() if b != broker.pk])
    minutes = spread_series(
        broker_id=broker.pk,
        instrument_id=instrument.pk,
        since=now - PERCENTILE_SPAN,
        until=now,
        resolution="1m",
        account=account,
    )
    sessions = spreadstats.session_percentiles([(t, v / pip) for t, v in minutes])
    shown = account if account is not None else feed_accounts(brokers=[broker])[broker.pk]
    accounts = list(broker.account_types.all())
    return SpreadHistory(broker, instrument, now, series, mine, peers, sessions, shown, accounts)
