from __future__ import annotations

from datetime import UTC, datetime, timedelta

from celery import shared_task

from marketdata.services import bars_apply_retention, bars_rollup


@shared_task(acks_late=True)
def bars_rollup_recent() -> None:
    """Recompute the roll-ups of the last two hours (idempotent). Beat is their one owner."""
    now = datetime.now(tz=UTC)
    bars_rollup(since=now - timedelta(hours=2), until=now)


@shared_task(acks_late=True)
def bars_retention() -> None:
    bars_apply_retention()
