"""Celery tasks: thin wrappers that pick the run time and call the service.

Both are idempotent: the run time is the start of the schedule slot, and a second run for the same
time stores nothing, so a redelivered message (``acks_late``) or a double click is harmless.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from trustmetrics import services


def _as_of(as_of: str | None) -> datetime:
    if as_of:
        parsed = datetime.fromisoformat(as_of)
        if timezone.is_naive(parsed):
            raise ValueError(f"as_of must include a timezone: {as_of!r}")
        return parsed
    return services.run_slot(timezone.now(), timedelta(seconds=settings.TRUST_RECOMPUTE_EVERY_S))


@shared_task(acks_late=True, ignore_result=True)
def trust_recompute(as_of: str | None = None) -> int:
    """The frequent run: recent days rebuilt from bars, the rest from stored daily sums."""
    return services.trust_scores_compute(as_of=_as_of(as_of)).stored


@shared_task(acks_late=True, ignore_result=True)
def trust_recompute_full(as_of: str | None = None) -> int:
    """The nightly run: every day of the window rebuilt from the bars, picking up late data."""
    return services.trust_scores_compute(as_of=_as_of(as_of), full=True).stored


@shared_task(acks_late=True, ignore_result=True)
def trust_validation_refresh(force: bool = False) -> str:
    """The methodology page's validation figures for the current version, computed and stored once."""
    return services.trust_validation_store(force=force).methodology_version
