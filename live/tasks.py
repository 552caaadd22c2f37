from __future__ import annotations

from datetime import UTC, datetime, timedelta

from celery import shared_task

from live.services import bars_apply_retention, bars_rollup


@shared_task(acks_late=True)
def live_bars_rollup() -> None:
    """Recompute the roll-ups of the last two hours (idempotent; the aggregator does the same)."""
    now = datetime.now(tz=UTC)
    bars_rollup(since=now - timedelta(hours=2), until=now)


@shared_task(acks_late=True)
def live_bars_retention() -> None:
    bars_apply_retention()
