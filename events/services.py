"""Writes for event reports: build one release's report from the 1-minute bars, store it, revalidate its pages."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from brokers.models import Broker
from common import cachetags, metrics
from events import selectors, stress
from events.models import EventReport, EventReportRow
from marketdata import costs
from marketdata.models import EconomicEvent
from marketdata.selectors import conversion_rates, feed_accounts, spread_minutes_around
from pagecache.services import pages_revalidate

logger = logging.getLogger(__name__)


def _cents(usd: float | None) -> float | None:
    return None if usd is None else round(usd, 2)


def _minute(start: datetime, at: datetime) -> int:
    return int((start - at).total_seconds() // 60)


def event_report_generate(*, event_id: int, now: datetime | None = None, force: bool = False) -> EventReport | None:
    """Build and store the report of one high-impact release. Idempotent: an existing report is kept
    (``force`` rebuilds it). None when the event is unknown, not high-impact or its window is still open."""
    now = now or timezone.now()
    event = EconomicEvent.objects.filter(pk=event_id).first()
    if event is None or event.impact != EconomicEvent.Impact.HIGH:
        metrics.incr("event_report_skipped")
        return None
    if event.scheduled_at + selectors.WINDOW_AFTER > now:
        return None
    existing = EventReport.objects.filter(event=event).first()
    if existing is not None and not force:
        return existing

    at = event.scheduled_at
    instruments = {i.pk: i for i in selectors.event_instruments(currency=event.currency)}
    bars: dict[tuple[int, int], list[stress.MinuteBar]] = defaultdict(list)
    for broker_id, instrument_id, start, mean, high in spread_minutes_around(
        at=at,
        before=timedelta(minutes=stress.CALM_MIN),
        after=timedelta(minutes=stress.WINDOW_AFTER_MIN),
        instrument_ids=sorted(instruments),
    ):
        bars[(broker_id, instrument_id)].append(stress.MinuteBar(_minute(start, at), mean, high))
    brokers = list(Broker.objects.prefetch_related("account_types"))
    slugs = {b.pk: b.slug for b in brokers}
    feeds = feed_accounts(brokers=brokers)  # whose bars spread_minutes_around read
    rates = conversion_rates()
    pricing = {
        pk: costs.lot_pricing(symbol=i.symbol, asset_class=i.asset_class, rates=rates) for pk, i in instruments.items()
    }

    rows: list[EventReportRow] = []
    per_broker: dict[int, list[stress.Stress]] = defaultdict(list)
    series: dict[str, dict[str, list[float | None]]] = {}
    chart_minutes = range(-stress.CHART_BEFORE_MIN, stress.WINDOW_AFTER_MIN)
    for (broker_id, instrument_id), minute_bars in sorted(bars.items()):
        inst = instruments[instrument_id]
        pip = float(inst.pip_size)
        s = stress.stress_of(minute_bars)
        per_broker[broker_id].append(s)

        def pips(v: float | None, pip: float = pip) -> float | None:
            return None if v is None else round(v / pip, 4)

        # All-in at the peak, as the profile's cost table prices a spread (marketdata.costs): the spread cost
        # of one lot round turn plus the feed account's round-turn commission.
        account = feeds.get(broker_id)
        commission = float(account.commission_per_lot) if account is not None else 0.0
        lot, conversion = pricing[instrument_id]
        peak = costs.all_in_round_turn(
            spread_pips=pips(s.peak),
            pip_size=pip,
            lot_units=lot,
            usd_per_quote=conversion.usd_per_unit,
            commission=commission,
        )
        rows.append(
            EventReportRow(
                broker_id=broker_id,
                instrument_id=instrument_id,
                account=account,
                calm_pips=pips(s.calm),
                peak_pips=pips(s.peak),
                p95_pips=pips(s.p95),
                peak_spread_cost_usd=_cents(peak.spread_cost_usd),
                commission_usd=commission,
                peak_cost_usd=_cents(peak.all_in_usd),
                longest_gap_s=s.longest_gap_s,
                recovery_s=s.recovery_s,
                quoted_minutes=s.quoted_minutes,
                stress_ratio=None if s.ratio is None else round(s.ratio, 4),
            )
        )
        by_minute = {b.minute: b.mean for b in minute_bars}
        series.setdefault(inst.symbol, {})[slugs.get(broker_id, str(broker_id))] = [
            pips(by_minute.get(m)) for m in chart_minutes
        ]
    keys = sorted((k, b) for b, ss in per_broker.items() if (k := stress.stress_rank_key(ss)) is not None)
    try:
        with transaction.atomic():
            if existing is not None:
                existing.delete()
            report = EventReport.objects.create(
                event=event,
                generated_at=now,
                best_broker_id=keys[0][1] if keys else None,
                worst_broker_id=keys[-1][1] if len(keys) > 1 else None,
                brokers_measured=len(keys),
                series=series,
            )
            for row in rows:
                row.report = report
            EventReportRow.objects.bulk_create(rows, batch_size=2000)
            tags = [cachetags.EVENTS, cachetags.event(event.pk), *(cachetags.broker(b) for b in per_broker)]
            transaction.on_commit(lambda: pages_revalidate(tags=tags))
    except IntegrityError:
        # Another worker stored the same report first (a redelivered task): theirs stands.
        metrics.incr("event_report_race")
        return EventReport.objects.filter(event=event).first()
    logger.info("event report for %s: %d rows, %d brokers", event, len(rows), len(keys))
    return report


def event_reports_missing_generate(*, days: float, now: datetime | None = None) -> list[EventReport]:
    """Every missing report of the releases in the last ``days`` days whose window has closed. Idempotent."""
    now = now or timezone.now()
    out = []
    for event_id in selectors.events_due(now=now, since=now - timedelta(days=days)):
        report = event_report_generate(event_id=event_id, now=now)
        if report is not None:
            out.append(report)
    return out
