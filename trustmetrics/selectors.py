"""Reads for TrustMetrics: the scoring inputs, aggregated in SQL from the coarsest roll-up that answers.

* Spread level, spread volatility and price deviation come from hourly bars: an hourly mean, its square
  and the hour's largest deviation are all that the scores need, and there are 60 times fewer of them.
* Spread in news windows needs 1-minute bars, but only inside the few short windows around events.
* Days are summed in SQL into additive per-day rows (TrustDailyInput) so the frequent run reads those.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, Count, F, FloatField, Max, OuterRef, Prefetch, Q, Subquery, Sum, Value
from django.db.models.functions import Abs, Cast, Extract, Greatest, Ln, Sqrt, TruncDate
from django.utils import timezone

from brokers.models import AccountType, Broker, Instrument, Licence
from marketdata.aggregation import RELIABILITY_FIELDS
from marketdata.models import EconomicEvent, FeedStatusChange, QuoteRejectionCount, SpreadBar
from marketdata.selectors import feed_account_bars, feed_accounts, scoring_commission_per_lot
from trustmetrics.methodology import METHODOLOGY, Component, Methodology
from trustmetrics.models import TrustDailyInput, TrustScore, TrustValidation
from trustmetrics.scoring import (
    DAILY_FIELDS,
    BrokerInputs,
    FeedStats,
    InstrumentStats,
    LicenceInput,
    NewsNote,
    ProfileInput,
    feed_stats,
    off_market_hours,
)

DayKey = tuple[int, int, date]  # broker id, instrument id, day


class ExactSum(Sum):
    """A sum of floats that does not depend on the order the rows are read in.

    PostgreSQL adds a group's double precision values in the order it reads them, so the same bars stored in
    another physical order (rebuilt, restored, vacuumed) gave sums differing in the last digits, and so another
    inputs digest for the same data. Each value is cast to numeric (PostgreSQL keeps 15 significant digits,
    a fixed rounding of each value) and added exactly, then the total is rounded once to double precision.
    Elsewhere (SQLite, the demo) a plain SUM.
    """

    output_field = FloatField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        exact = self.copy()
        exact.template = "%(function)s(%(distinct)s(%(expressions)s)::numeric)"  # the FILTER clause goes after it
        sql, params = Sum.as_sql(exact, compiler, connection, **extra_context)
        return f"({sql})::double precision", params


def _float_fields(model: Any, names: Iterable[str]) -> set[str]:
    return {n for n in names if model._meta.get_field(n).get_internal_type() == "FloatField"}


def _sum(model: Any, name: str) -> Sum:
    """Sum of a column: exactly (ExactSum) when it holds floats, plainly when it holds integers."""
    return ExactSum(name) if name in _float_fields(model, (name,)) else Sum(name)


def trust_window_days(*, as_of: datetime, methodology: Methodology = METHODOLOGY) -> list[date]:
    """The whole UTC days of the scoring window before ``as_of``'s day, then that day so far."""
    last = as_of.date()
    first = last - timedelta(days=methodology.window.days)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _day_bounds(days: Iterable[date], as_of: datetime) -> tuple[datetime, datetime]:
    ordered = sorted(days)
    start = datetime.combine(ordered[0], time.min, tzinfo=as_of.tzinfo)
    end = min(datetime.combine(ordered[-1] + timedelta(days=1), time.min, tzinfo=as_of.tzinfo), as_of)
    return start, end


def trust_events_high_impact(*, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """(scheduled time, currency) of the high-impact events whose news window overlaps [start, end)."""
    m = METHODOLOGY
    rows = EconomicEvent.objects.filter(
        impact="high", scheduled_at__gte=start - m.news_after, scheduled_at__lt=end + m.news_before
    ).order_by("scheduled_at", "currency")
    return [(at, ccy.upper()) for at, ccy in rows.values_list("scheduled_at", "currency")]


def trust_daily_sums(
    *, days: list[date], as_of: datetime, methodology: Methodology = METHODOLOGY
) -> dict[DayKey, dict[str, Any]]:
    """Per broker, instrument and day: the additive sums the scoring core needs. Two grouped queries."""
    start, end = _day_bounds(days, as_of)
    wanted = set(days)
    # Only closed hours: the bar for the hour still running would change under us.
    hourly_end = min(end, as_of - timedelta(hours=1) + timedelta(microseconds=1))
    # The hour's largest deviation over what noise alone reaches at its quote count: scoring.normalised_excursion.
    excursion = Greatest(Abs("dev_min"), Abs("dev_max")) / Sqrt(
        Value(2.0) * Ln(Greatest(Cast("dev_count", FloatField()), Value(2.0)))
    )
    # One series per broker: its feed account's bars (the cost rule adds the scored account's difference).
    own = feed_account_bars()
    hourly = (
        SpreadBar.objects.filter(
            own, resolution=SpreadBar.Resolution.HOUR, start__gte=start, start__lt=hourly_end, count__gt=0
        )
        .annotate(day=TruncDate("start"), excursion=excursion)
        .values("broker_id", "instrument_id", "day")
        .annotate(
            hours=Count("id"),
            # Float sums exactly, so the same bars give the same sums to the last digit (ExactSum).
            sum_mean=ExactSum("mean"),
            sum_mean_sq=ExactSum(F("mean") * F("mean")),
            quotes=Sum("count"),
            # dev_count 0: no consensus to compare with in that hour, so no deviation was measured.
            dev_hours=Count("id", filter=Q(dev_count__gt=0)),
            sum_excursion=ExactSum("excursion", filter=Q(dev_count__gt=0)),
            **{f: _sum(SpreadBar, f) for f in RELIABILITY_FIELDS},
        )
        .order_by()
    )
    out: dict[DayKey, dict[str, Any]] = {}
    for row in hourly:
        if row["day"] not in wanted:
            continue
        out[(row["broker_id"], row["instrument_id"], row["day"])] = {
            "hours": row["hours"],
            "sum_mean": row["sum_mean"] or 0.0,
            "sum_mean_sq": row["sum_mean_sq"] or 0.0,
            "quotes": row["quotes"] or 0,
            "dev_hours": row["dev_hours"],
            "sum_excursion": row["sum_excursion"] or 0.0,
            "off_market_hours": 0,
            "news_minutes": 0,
            "news_sum_mean": 0.0,
            "news_hours": 0,
            "news_off_market_hours": 0,
            "off_market_sum_excursion": 0.0,
            **{f: row[f] or 0 for f in RELIABILITY_FIELDS},
        }

    # Off-market hours compare each broker with the others in the same hour: read the measured hours'
    # largest deviations (a few thousand rows a day) and judge them in the scoring core.
    # The hour as epoch seconds straight from SQL: no datetime object per row (a 90-day backfill reads
    # hundreds of thousands of them).
    measured = SpreadBar.objects.filter(
        own,
        resolution=SpreadBar.Resolution.HOUR,
        start__gte=start,
        start__lt=hourly_end,
        count__gt=0,
        dev_count__gt=0,
    ).order_by()
    if connection.vendor == "postgresql":
        measured = measured.annotate(excursion=excursion, hour=Cast(Extract("start", "epoch"), BigIntegerField()))
        sql, params = measured.values_list("broker_id", "instrument_id", "hour", "excursion").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = [(b, i, hour, float(e)) for b, i, hour, e in cursor.fetchall()]
    else:  # SQLite (the demo) has no epoch extract; its few weeks of bars are small anyway
        rows = [
            (b, i, int(hour.timestamp()), float(e))
            for b, i, hour, e in measured.annotate(excursion=excursion).values_list(
                "broker_id", "instrument_id", "start", "excursion"
            )
        ]
    # Hours holding a high-impact release for the instrument: off-market there counts on its own (2.1).
    release_hours = trust_release_hours(start=start, end=end, methodology=methodology)
    for broker_id, instrument, hour, _ in rows:
        if (instrument, hour) in release_hours:
            key = (broker_id, instrument, timezone.localdate(datetime.fromtimestamp(hour, tz=UTC)))
            if key in out:
                out[key]["news_hours"] += 1
    excursions = {(broker_id, instrument, hour): e for broker_id, instrument, hour, e in rows}
    off_excursions: dict[DayKey, list[float]] = {}
    for broker_id, instrument, hour in off_market_hours(rows, methodology):
        assert isinstance(instrument, int) and isinstance(hour, int)
        key = (broker_id, instrument, timezone.localdate(datetime.fromtimestamp(hour, tz=UTC)))
        if key in out:
            out[key]["off_market_hours"] += 1
            # The ordinary deviation leaves off-market hours out (2.2): they count once, as off-market.
            off_excursions.setdefault(key, []).append(excursions[(broker_id, instrument, hour)])
            if (instrument, hour) in release_hours:
                out[key]["news_off_market_hours"] += 1
    for key, values in off_excursions.items():
        # math.fsum: exact, so the order the judged hours come in (a set's, after rows in any order) does not count.
        out[key]["off_market_sum_excursion"] = math.fsum(values)

    windows = _news_windows(start=start, end=end, methodology=methodology)
    if windows:
        minute_end = min(end, as_of - timedelta(minutes=1) + timedelta(microseconds=1))
        news = (
            SpreadBar.objects.filter(
                own,
                reduce(or_, windows),
                resolution=SpreadBar.Resolution.MINUTE,
                start__lt=minute_end,
                count__gt=0,
            )
            .annotate(day=TruncDate("start"))
            .values("broker_id", "instrument_id", "day")
            .annotate(minutes=Count("id"), sum_mean=ExactSum("mean"))
            .order_by()
        )
        for row in news:
            key = (row["broker_id"], row["instrument_id"], row["day"])
            if key in out:  # a day without hourly bars has no baseline to compare news with
                out[key]["news_minutes"] = row["minutes"]
                out[key]["news_sum_mean"] = row["sum_mean"] or 0.0
    return out


def trust_release_hours(
    *, start: datetime, end: datetime, methodology: Methodology = METHODOLOGY
) -> set[tuple[int, int]]:
    """(instrument id, hour start in epoch seconds) of the hours holding a high-impact release that moves it."""
    symbols = dict(Instrument.objects.values_list("symbol", "id"))
    out: set[tuple[int, int]] = set()
    for at, currency in trust_events_high_impact(start=start, end=end):
        hour = int(at.timestamp()) // 3600 * 3600
        out.update((pk, hour) for symbol, pk in symbols.items() if methodology.moves_with(symbol, currency))
    return out


def _news_windows(*, start: datetime, end: datetime, methodology: Methodology) -> list[Q]:
    events = trust_events_high_impact(start=start, end=end)
    if not events:
        return []
    symbols = dict(Instrument.objects.values_list("symbol", "id"))
    windows = []
    for at, currency in events:
        # EURUSD and XAUUSD move with USD news because they name it; US500 because it is a US index.
        ids = sorted(pk for symbol, pk in symbols.items() if methodology.moves_with(symbol, currency))
        if ids:
            windows.append(
                Q(
                    start__gte=at - methodology.news_before,
                    start__lt=at + methodology.news_after,
                    instrument_id__in=ids,
                )
            )
    return windows


def trust_stored_days(*, days: list[date], methodology: Methodology = METHODOLOGY) -> set[date]:
    return set(
        TrustDailyInput.objects.filter(day__in=days, methodology_version=methodology.version)
        .values_list("day", flat=True)
        .distinct()
    )


def trust_window_sums(*, days: list[date]) -> dict[tuple[int, int], dict[str, Any]]:
    """The stored daily rows of the window, added up per broker and instrument in SQL."""
    rows = (
        TrustDailyInput.objects.filter(day__in=days)
        .values("broker_id", "instrument_id")
        .annotate(
            **{f: _sum(TrustDailyInput, f) for f in DAILY_FIELDS},
        )
        .order_by()
    )
    return {(r.pop("broker_id"), r.pop("instrument_id")): r for r in rows}


def trust_daily_rows(*, days: list[date]) -> dict[DayKey, dict[str, Any]]:
    """The stored daily sums of these days, one dict per broker, instrument and day."""
    rows = TrustDailyInput.objects.filter(day__in=days).values_list("broker_id", "instrument_id", "day", *DAILY_FIELDS)
    return {(b, i, d): dict(zip(DAILY_FIELDS, values, strict=True)) for b, i, d, *values in rows}


def trust_sum_days(*, rows: dict[DayKey, dict[str, Any]], days: list[date]) -> dict[tuple[int, int], dict[str, Any]]:
    """Add the daily rows of ``days`` up per broker and instrument (what trust_window_sums does in SQL)."""
    wanted = set(days)
    # Each broker and instrument's days in day order, so a float sum never depends on the order rows were read in.
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for (b, i, d), values in sorted(rows.items(), key=_day_key):
        if d not in wanted:
            continue
        total = out.setdefault((b, i), dict.fromkeys(DAILY_FIELDS, 0))
        for k in DAILY_FIELDS:
            total[k] += values[k] or 0
    return out


def _day_key(item: tuple[DayKey, dict[str, Any]]) -> DayKey:
    return item[0]


def trust_rejections(*, start: datetime, end: datetime) -> dict[int, int]:
    """Quotes rejected as malformed per broker in [start, end) (counted per hour by the ingestors)."""
    # Whole hours only (counts are per hour), so runs a few minutes apart read the same counts.
    start, end = (t.replace(minute=0, second=0, microsecond=0) for t in (start, end))
    rows = (
        QuoteRejectionCount.objects.filter(hour__gte=start, hour__lt=end)
        .values("broker_id")
        .annotate(n=Sum("count"))
        .order_by()
    )
    return {r["broker_id"]: int(r["n"] or 0) for r in rows}


def trust_news_notes(*, rows: dict[DayKey, dict[str, Any]], day: date) -> dict[int, NewsNote]:
    """Per broker, the instrument that widened most in that day's high-impact news windows, with the event."""
    start = datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())
    events = trust_events_high_impact(start=start, end=start + timedelta(days=1))
    if not events:
        return {}
    names = dict(
        EconomicEvent.objects.filter(impact="high", scheduled_at__gte=start, scheduled_at__lt=start + timedelta(days=1))
        .order_by("scheduled_at")
        .values_list("currency", "name")
    )
    symbols = dict(Instrument.objects.values_list("pk", "symbol"))
    out: dict[int, NewsNote] = {}
    for (b, i, d), v in rows.items():
        if d != day or not v["news_minutes"] or not v["hours"] or not v["sum_mean"]:
            continue
        ratio = (v["news_sum_mean"] / v["news_minutes"]) / (v["sum_mean"] / v["hours"])
        symbol = symbols.get(i, "?")
        event = next((names.get(ccy) for _, ccy in events if METHODOLOGY.moves_with(symbol, ccy)), None)
        if event and (b not in out or ratio > out[b].ratio):
            out[b] = NewsNote(symbol=symbol, ratio=ratio, event=event, day=f"{day.day} {day:%b}")
    return out


def trust_feed_stats(*, start: datetime, end: datetime) -> dict[int, FeedStats]:
    """Feed up/stale/down time and disconnects per broker over [start, end)."""
    before = FeedStatusChange.objects.filter(broker=OuterRef("pk"), at__lt=start).order_by("-at")
    changes: dict[int, list[tuple[float, str]]] = {}
    for broker_id, status in Broker.objects.annotate(s=Subquery(before.values("status")[:1])).values_list("pk", "s"):
        if status:
            changes.setdefault(broker_id, []).append((start.timestamp(), status))
    in_window = FeedStatusChange.objects.filter(at__gte=start, at__lt=end).order_by("at", "pk")
    for broker_id, at, status in in_window.values_list("broker_id", "at", "status"):
        changes.setdefault(broker_id, []).append((at.timestamp(), status))
    out = {}
    for broker_id, history in changes.items():
        stats = feed_stats(changes=history, start=start.timestamp(), end=end.timestamp())
        if stats is not None:
            out[broker_id] = stats
    return out


def feed_account(accounts: Iterable[AccountType]) -> AccountType | None:
    """The account whose prices the feed shows: the one a retail client opens first.

    Lowest deposit; on a tie the cheaper commission, then the name, so the choice never depends on row ids.
    """
    return min(accounts, key=lambda a: (a.min_deposit, a.commission_per_lot, a.name), default=None)


@dataclass(frozen=True)
class BrokersStatic:
    """The brokers with their licences, accounts and listings, read once for many scoring runs (a backfill)."""

    instruments: dict[int, Instrument]
    brokers: list[Any]  # Broker rows annotated with platform_count and funding_count
    feeds: dict[int, AccountType | None]


def trust_brokers_static() -> BrokersStatic:
    brokers: list[Any] = list(
        Broker.objects.annotate(
            platform_count=Count("platforms", distinct=True),
            funding_count=Count("funding_methods", distinct=True),
        )
        .prefetch_related(
            Prefetch("licences", queryset=Licence.objects.select_related("regulator").order_by("pk")),
            "account_types",
            "broker_instruments",
        )
        .order_by("pk")
    )
    return BrokersStatic(
        instruments={i.pk: i for i in Instrument.objects.all()},
        brokers=brokers,
        feeds=feed_accounts(brokers=brokers),  # the published cost rule: marketdata.costs
    )


def instrument_reference_spread(instrument: Instrument) -> float:
    """The instrument's published reference spread in price units, 0.0 without one (cost then against the
    market's median)."""
    if instrument.reference_spread_pips is None:
        return 0.0
    return float(instrument.reference_spread_pips * instrument.pip_size)


def trust_broker_inputs(
    *,
    as_of: datetime,
    sums: dict[tuple[int, int], dict[str, Any]],
    feeds: dict[int, FeedStats],
    rejections: dict[int, int] | None = None,
    methodology: Methodology = METHODOLOGY,
    static: BrokersStatic | None = None,
) -> list[BrokerInputs]:
    """Every broker's scoring inputs: its profile and licences, plus the market sums given."""
    static = static or trust_brokers_static()
    instruments, brokers, feeds_by_broker = static.instruments, static.brokers, static.feeds
    out = []
    for b in brokers:
        listed = sorted({bi.instrument_id for bi in b.broker_instruments.all()} | {i for (bb, i) in sums if bb == b.pk})
        stats = []
        for instrument_id in listed:
            inst = instruments[instrument_id]
            row = sums.get((b.pk, instrument_id), {})
            stats.append(
                InstrumentStats(
                    symbol=inst.symbol,
                    asset_class=inst.asset_class,
                    pip_size=float(inst.pip_size),
                    reference_spread=instrument_reference_spread(inst),
                    **{k: v or 0 for k, v in row.items()},
                )
            )
        out.append(
            BrokerInputs(
                broker_id=b.pk,
                licences=tuple(
                    LicenceInput(
                        tier=lic.regulator.tier,
                        status=lic.status,
                        # A check made after as_of did not exist yet for a score as of a past day.
                        verified_days_ago=(
                            (as_of.date() - lic.last_verified).days
                            if lic.last_verified is not None and lic.last_verified <= as_of.date()
                            else None
                        ),
                    )
                    for lic in b.licences.all()
                ),
                profile=ProfileInput(
                    year_founded=b.year_founded,
                    company_type=b.company_type,
                    has_description=bool(b.description.strip()),
                    has_website=bool(b.website),
                    has_headquarters=bool(b.headquarters_country.strip()),
                    account_count=len(b.account_types.all()),
                    platform_count=b.platform_count,
                    funding_count=b.funding_count,
                    instrument_count=len(b.broker_instruments.all()),
                    segregated_funds=b.segregated_funds,
                    negative_balance_protection=b.negative_balance_protection,
                ),
                as_of_year=as_of.year,
                commission_per_lot=scoring_commission_per_lot(broker=b, feed=feeds_by_broker[b.pk]),
                instruments=tuple(stats),
                feed=feeds.get(b.pk),
                rejected_quotes=(rejections or {}).get(b.pk, 0),
            )
        )
    return out


def trust_previous_scores(*, before: datetime) -> dict[int, TrustScore]:
    """Each broker's latest stored score computed before ``before``."""
    latest = TrustScore.objects.filter(broker=OuterRef("broker"), computed_at__lt=before).order_by("-computed_at")
    rows = TrustScore.objects.filter(computed_at__lt=before, pk=Subquery(latest.values("pk")[:1]))
    return {s.broker_id: s for s in rows}


def trust_scores_at(*, computed_at: datetime) -> list[TrustScore]:
    return list(TrustScore.objects.filter(computed_at=computed_at).order_by("broker_id"))


def trust_daily_history(*, broker_id: int, days: int = 90, now: datetime | None = None) -> list[TrustScore]:
    """One score per UTC day (the day's last), oldest first: the profile's history chart and change log."""
    since = (now or timezone.now()) - timedelta(days=days)
    qs = TrustScore.objects.filter(broker_id=broker_id, computed_at__gte=since)
    last_per_day = qs.annotate(day=TruncDate("computed_at")).values("day").annotate(last=Max("computed_at")).order_by()
    return list(qs.filter(computed_at__in=[r["last"] for r in last_per_day]).order_by("computed_at"))


def trust_validation_stored(*, methodology: Methodology = METHODOLOGY) -> dict[str, Any] | None:
    """The stored validation figures of this methodology version, with the time they were computed; None while
    they have not been computed (trustmetrics.services.trust_validation_request starts that in the background)."""
    row = TrustValidation.objects.filter(methodology_version=methodology.version).first()
    if row is None:
        return None
    return {**row.summary, "as_of": row.computed_at, "version": row.methodology_version}


@dataclass(frozen=True)
class MethodologyRow:
    """One row of a methodology reference table: the methodology's key, its readable name, its value."""

    key: str
    name: str
    value: float


@dataclass(frozen=True)
class MethodologyTables:
    """The methodology page's reference tables, in the page's order: the page and the API's CSV downloads
    both read them from here, so they list the same rows."""

    version: str
    components: list[Component]  # weight is a share of the overall score, 0-1
    tiers: list[MethodologyRow]  # key: the tier; value: licence points
    statuses: list[MethodologyRow]  # value: factor on the licence's points, highest first
    company_types: list[MethodologyRow]  # value: share of the company-type points
    transparency: list[MethodologyRow]  # value: points, highest first
    reference_spreads: list[MethodologyRow]  # 2.4: key: the symbol; value: the cost reference in pips (admin-set)


def trust_methodology_tables(*, methodology: Methodology = METHODOLOGY) -> MethodologyTables:
    m = methodology
    names = m.labels_display

    def rows(points: dict[str, float], *, highest_first: bool) -> list[MethodologyRow]:
        found = [MethodologyRow(key=k, name=names.get(k, k), value=v) for k, v in points.items()]
        return sorted(found, key=lambda r: -r.value) if highest_first else found

    return MethodologyTables(
        version=m.version,
        components=list(m.components),
        tiers=[MethodologyRow(key=str(t), name=f"Tier {t}", value=p) for t, p in sorted(m.tier_points.items())],
        statuses=rows(m.licence_status_factor, highest_first=True),
        company_types=rows(m.company_type_points, highest_first=False),
        transparency=rows(m.transparency_points, highest_first=True),
        # Instruments without one are costed against the market's median (the page says so).
        reference_spreads=[
            MethodologyRow(key=i.symbol, name=i.name, value=float(i.reference_spread_pips))
            for i in Instrument.objects.filter(reference_spread_pips__isnull=False).order_by("sort_order", "symbol")
            if i.reference_spread_pips is not None
        ],
    )
