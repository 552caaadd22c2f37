"""Writes for TrustMetrics: refresh the daily inputs, score every broker, store history, revalidate pages."""

from __future__ import annotations

import logging
import threading
import time as clock
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from common import cachetags
from pagecache.services import pages_revalidate
from trustmetrics import selectors
from trustmetrics.methodology import METHODOLOGY, Methodology
from trustmetrics.models import TrustDailyInput, TrustScore, TrustValidation
from trustmetrics.scoring import (
    DAILY_FIELDS,
    InstrumentStats,
    ScoreResult,
    bootstrap_bands,
    explain_move,
    inputs_digest,
    move_details,
    score_all,
)

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
        (broker_id, instrument_id, day, methodology.version, *(values[f] for f in DAILY_FIELDS))
        for (broker_id, instrument_id, day), values in sorted(sums.items())
    ]
    with transaction.atomic():
        # Replace the days whole, so a day whose bars were deleted loses its rows too.
        TrustDailyInput.objects.filter(day__in=days).delete()
        _daily_inputs_insert(rows)
    return len(rows)


_DAILY_INPUT_COLUMNS = ("broker_id", "instrument_id", "day", "methodology_version", *DAILY_FIELDS)


def _daily_inputs_insert(rows: list[tuple[Any, ...]]) -> None:
    """Insert daily input rows (values in _DAILY_INPUT_COLUMNS order). On PostgreSQL with COPY: a 90-day backfill
    writes ~27,000 rows of 24 columns, and preparing them as model instances took longer than the COPY itself."""
    if connection.vendor != "postgresql":
        TrustDailyInput.objects.bulk_create(
            [TrustDailyInput(**dict(zip(_DAILY_INPUT_COLUMNS, row, strict=True))) for row in rows], batch_size=2000
        )
        return
    table = connection.ops.quote_name(TrustDailyInput._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _DAILY_INPUT_COLUMNS)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


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
    rows = selectors.trust_daily_rows(days=window)
    previous = selectors.trust_previous_scores(before=as_of)
    score_rows, run.results, run.changed, run.reasons = _score_window(
        as_of=as_of, window=window, rows=rows, previous=previous, methodology=methodology
    )
    with transaction.atomic():
        created = TrustScore.objects.bulk_create(score_rows, ignore_conflicts=True)
        run.stored = len(created)
        if run.changed:
            tags = [cachetags.broker(broker_id) for broker_id in run.changed] + [cachetags.BROKER_LIST]
            transaction.on_commit(lambda: pages_revalidate(tags=tags))
    logger.info(
        "trust scores as of %s: %d brokers, %d changed, %d days rebuilt%s",
        as_of.isoformat(),
        len(score_rows),
        len(run.changed),
        len(run.days_refreshed),
        " (full)" if full else "",
    )
    return run


def _score_window(
    *,
    as_of: datetime,
    window: list[date],
    rows: dict[selectors.DayKey, dict[str, Any]],
    previous: dict[int, TrustScore],
    methodology: Methodology,
    brokers_static: selectors.BrokersStatic | None = None,
) -> tuple[list[TrustScore], list[ScoreResult], list[int], dict[int, str]]:
    """Score every broker from the daily rows of ``window`` (data before ``as_of`` only), with a digest of
    each broker's inputs, a bootstrap band over the days and, against ``previous``, the moves and their causes."""
    sums = selectors.trust_sum_days(rows=rows, days=window)
    start = as_of - methodology.window
    feeds = selectors.trust_feed_stats(start=start, end=as_of)
    rejections = selectors.trust_rejections(start=start, end=as_of)
    brokers_static = brokers_static or selectors.trust_brokers_static()
    inputs = selectors.trust_broker_inputs(
        as_of=as_of, sums=sums, feeds=feeds, rejections=rejections, methodology=methodology, static=brokers_static
    )
    results = score_all(inputs, methodology)
    symbols = {pk: i.symbol for pk, i in brokers_static.instruments.items()}
    daily: dict[tuple[int, str], list[InstrumentStats | None]] = {}
    index = {d: n for n, d in enumerate(window)}
    statics = {(b.broker_id, st.symbol): st for b in inputs for st in b.instruments}
    for (b, i, d), values in rows.items():
        static = statics.get((b, symbols[i]))
        if d not in index or static is None:
            continue
        per_day = daily.setdefault((b, static.symbol), [None] * len(window))
        per_day[index[d]] = InstrumentStats(
            symbol=static.symbol,
            asset_class=static.asset_class,
            pip_size=static.pip_size,
            reference_spread=static.reference_spread,
            **values,
        )
    bands = bootstrap_bands(
        brokers=inputs, daily=daily, days=len(window), seed=as_of.isoformat(), methodology=methodology
    )
    news = selectors.trust_news_notes(rows=rows, day=max(window)) if window else {}
    digests = {b.broker_id: inputs_digest(b, methodology) for b in inputs}
    changed: list[int] = []
    reasons: dict[int, str] = {}
    out = []
    for result in results:
        prev = previous.get(result.broker_id)
        reason = ""
        moves: list[dict[str, Any]] = []
        if prev is None:
            changed.append(result.broker_id)
        else:
            if round(prev.overall, 1) != round(result.overall, 1) or prev.label != result.label:
                changed.append(result.broker_id)
            reason = explain_move(
                previous_overall=prev.overall,
                previous_components=prev.components,
                result=result,
                methodology=methodology,
            )
            if reason:
                moves = move_details(
                    previous_components=prev.components,
                    previous_inputs=prev.inputs,
                    result=result,
                    news=news.get(result.broker_id),
                    methodology=methodology,
                )
                causes = "; ".join(f"{m['title']}: {m['cause']}" for m in moves)
                if causes:
                    reason = f"{reason} Causes: {causes}."
        if reason:
            reasons[result.broker_id] = reason
        band = bands.get(result.broker_id)
        out.append(
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
                inputs_digest=digests[result.broker_id],
                band_low=band[0] if band else None,
                band_high=band[1] if band else None,
                moves=moves,
            )
        )
    return out, results, changed, reasons


@dataclass
class Backfill:
    days: list[date] = field(default_factory=list)
    stored: int = 0
    skipped: int = 0


def trust_backfill(*, days: int, now: datetime | None = None, methodology: Methodology = METHODOLOGY) -> Backfill:
    """Each broker's score as of the end of each of the last ``days`` whole UTC days, from data up to then only.

    Stored at midnight after each day with the methodology version, the inputs' digest, the band and the
    moves against the day before. Idempotent: a day already scored at that time is left as it is.
    """
    now = now or timezone.now()
    today = now.date()
    scored_days = [today - timedelta(days=n) for n in range(days, 0, -1)]
    span = methodology.window.days
    needed = sorted({d - timedelta(days=k) for d in scored_days for k in range(span)})
    midnight = datetime.combine(today, time.min, tzinfo=now.tzinfo)
    stored_days = selectors.trust_stored_days(days=needed, methodology=methodology)
    # Whole past days only: a day's sums never change once it is over (the nightly run catches late bars).
    trust_daily_inputs_refresh(
        days=[d for d in needed if d not in stored_days], as_of=midnight, methodology=methodology
    )
    rows = selectors.trust_daily_rows(days=needed)
    out = Backfill(days=scored_days)
    first_as_of = datetime.combine(scored_days[0], time.min, tzinfo=now.tzinfo) + timedelta(days=1)
    previous = selectors.trust_previous_scores(before=first_as_of)
    done = set(
        TrustScore.objects.filter(
            computed_at__gte=first_as_of, computed_at__lte=midnight, methodology_version=methodology.version
        )
        .values_list("computed_at", flat=True)
        .distinct()
    )
    brokers_static = selectors.trust_brokers_static()  # profiles and licences: read once, not once a day
    for day in scored_days:
        as_of = datetime.combine(day, time.min, tzinfo=now.tzinfo) + timedelta(days=1)
        window = [day - timedelta(days=k) for k in range(span - 1, -1, -1)]
        if as_of in done:
            out.skipped += 1
            previous = {s.broker_id: s for s in TrustScore.objects.filter(computed_at=as_of)}
            continue
        in_window = set(window)
        window_rows = {k: v for k, v in rows.items() if k[2] in in_window}
        score_rows, _, _, _ = _score_window(
            as_of=as_of,
            window=window,
            rows=window_rows,
            previous=previous,
            methodology=methodology,
            brokers_static=brokers_static,
        )
        created = TrustScore.objects.bulk_create(score_rows, ignore_conflicts=True)
        out.stored += len(created)
        previous = {s.broker_id: s for s in score_rows}
    if out.stored:
        transaction.on_commit(lambda: pages_revalidate(tags=[cachetags.BROKER_LIST, cachetags.ALL]))
    logger.info("trust backfill: %d days, %d scores stored, %d days already done", days, out.stored, out.skipped)
    return out


def run_slot(now: datetime, every: timedelta) -> datetime:
    """The start of the schedule slot ``now`` falls in, so a redelivered or repeated task maps to one run."""
    seconds = int(every.total_seconds())
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=now.tzinfo or timezone.get_current_timezone())


VALIDATION_LOCK_S = 600  # one background computation at a time per version; retried after this if it died


def trust_validation_store(*, methodology: Methodology = METHODOLOGY, force: bool = False) -> TrustValidation:
    """Compute the methodology page's validation figures for this version and store them (a few seconds of CPU:
    50 random markets). Without ``force`` a version already stored is left as it is. The page is regenerated."""
    from trustmetrics.validation import validation_summary

    if not force:
        stored = TrustValidation.objects.filter(methodology_version=methodology.version).first()
        if stored is not None:
            return stored
    started = clock.perf_counter()
    summary = validation_summary(methodology)
    row, _ = TrustValidation.objects.update_or_create(
        methodology_version=methodology.version,
        defaults={"computed_at": timezone.now(), "summary": summary, "seconds": clock.perf_counter() - started},
    )
    transaction.on_commit(lambda: pages_revalidate(tags=[cachetags.METHODOLOGY]))
    logger.info("validation figures of methodology %s stored (%.1f s)", methodology.version, row.seconds)
    return row


def trust_validation_request(*, methodology: Methodology = METHODOLOGY) -> bool:
    """Start computing this version's validation figures in the background, once (a visitor never waits for them).
    Returns whether a computation was started."""
    if not cache.add(f"trust-validation-lock:{methodology.version}", 1, VALIDATION_LOCK_S):
        return False
    if settings.PAGECACHE_BACKGROUND == "celery":
        from trustmetrics.tasks import trust_validation_refresh

        transaction.on_commit(lambda: trust_validation_refresh.delay())
    else:
        threading.Thread(target=_validation_in_thread, args=(methodology,), daemon=True).start()
    return True


def _validation_in_thread(methodology: Methodology) -> None:
    try:
        trust_validation_store(methodology=methodology)
    except Exception:
        logger.exception("computing the validation figures failed")
        cache.delete(f"trust-validation-lock:{methodology.version}")
    finally:
        connection.close()  # this thread's own connection
