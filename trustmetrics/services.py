"""Writes for TrustMetrics: refresh the daily inputs, score every broker, store history, revalidate pages."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from common import cachetags
from pagecache.services import pages_revalidate
from trustmetrics import selectors
from trustmetrics.methodology import METHODOLOGY, Methodology
from trustmetrics.models import TrustDailyInput, TrustScore
from trustmetrics.scoring import ScoreResult, explain_move, score_all

logger = logging.getLogger(__name__)


@dataclass
class TrustRun:
    as_of: datetime
    full: bool
    days_refreshed: list[date] = field(default_factory=list)
    results: list[ScoreResult] = field(default_factory=list)
    stored: int = 0
    changed: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)
    already_done: bool = False


def trust_daily_inputs_refresh(*, days: list[date], as_of: datetime, methodology: Methodology = METHODOLOGY) -> int:
    """Rebuild the stored daily sums of these days from the bars. Idempotent: same bars, same rows."""
    if not days:
        return 0
    sums = selectors.trust_daily_sums(days=days, as_of=as_of, methodology=methodology)
    rows = [
        TrustDailyInput(
            broker_id=broker_id,
            instrument_id=instrument_id,
            day=day,
            methodology_version=methodology.version,
            **values,
        )
        for (broker_id, instrument_id, day), values in sorted(sums.items())
    ]
    with transaction.atomic():
        # Replace the days whole, so a day whose bars were deleted loses its rows too.
        TrustDailyInput.objects.filter(day__in=days).delete()
        TrustDailyInput.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _days_to_refresh(*, window: list[date], full: bool, methodology: Methodology) -> list[date]:
    if full:
        return window
    stored = selectors.trust_stored_days(days=window, methodology=methodology)
    # Today and yesterday are still growing (late bars, the hour that closes at midnight); others once.
    recent = set(window[-2:])
    return [d for d in window if d in recent or d not in stored]


def trust_scores_compute(
    *, as_of: datetime | None = None, full: bool = False, methodology: Methodology = METHODOLOGY
) -> TrustRun:
    """Score every broker as of ``as_of`` and append the scores to the history.

    Safe to run twice: a second run for the same ``as_of`` stores nothing (one row per broker and time).
    ``full`` rebuilds every day of the window from the bars; otherwise only recent and missing days.
    """
    as_of = (as_of or timezone.now()).replace(microsecond=0)
    run = TrustRun(as_of=as_of, full=full)
    window = selectors.trust_window_days(as_of=as_of, methodology=methodology)
    run.days_refreshed = _days_to_refresh(window=window, full=full, methodology=methodology)
    trust_daily_inputs_refresh(days=run.days_refreshed, as_of=as_of, methodology=methodology)

    if TrustScore.objects.filter(computed_at=as_of).exists():
        run.already_done = True
        return run

    sums = selectors.trust_window_sums(days=window)
    start = as_of - methodology.window
    feeds = selectors.trust_feed_stats(start=start, end=as_of)
    inputs = selectors.trust_broker_inputs(as_of=as_of, sums=sums, feeds=feeds)
    run.results = score_all(inputs, methodology)
    previous = selectors.trust_previous_scores(before=as_of)

    rows = []
    for result in run.results:
        prev = previous.get(result.broker_id)
        reason = ""
        if prev is None:
            run.changed.append(result.broker_id)
        else:
            if round(prev.overall, 1) != round(result.overall, 1) or prev.label != result.label:
                run.changed.append(result.broker_id)
            reason = explain_move(
                previous_overall=prev.overall,
                previous_components=prev.components,
                result=result,
                methodology=methodology,
            )
        if reason:
            run.reasons[result.broker_id] = reason
        rows.append(
            TrustScore(
                broker_id=result.broker_id,
                computed_at=as_of,
                methodology_version=methodology.version,
                overall=result.overall,
                label=result.label,
                confidence=result.confidence,
                components=result.components,
                inputs=result.inputs,
                reason=reason,
            )
        )
    with transaction.atomic():
        created = TrustScore.objects.bulk_create(rows, ignore_conflicts=True)
        run.stored = len(created)
        if run.changed:
            tags = [cachetags.broker(broker_id) for broker_id in run.changed] + [cachetags.BROKER_LIST]
            transaction.on_commit(lambda: pages_revalidate(tags=tags))
    logger.info(
        "trust scores as of %s: %d brokers, %d changed, %d days rebuilt%s",
        as_of.isoformat(),
        len(rows),
        len(run.changed),
        len(run.days_refreshed),
        " (full)" if full else "",
    )
    return run


def run_slot(now: datetime, every: timedelta) -> datetime:
    """The start of the schedule slot ``now`` falls in, so a redelivered or repeated task maps to one run."""
    seconds = int(every.total_seconds())
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=now.tzinfo or timezone.get_current_timezone())
