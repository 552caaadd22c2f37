"""Celery tasks: thin wrappers. Reports are written once a release's window has closed.

Beat runs ``event_reports_enqueue`` every few minutes; it enqueues one ``event_report_generate`` per
due release after its own transaction commits. Both are idempotent (a stored report is kept), so a
redelivered message (``acks_late``) adds nothing.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from events import selectors, services

LOOKBACK_DAYS = 2.0  # a worker down for a day still catches up; older gaps: manage.py events_report


@shared_task(acks_late=True, ignore_result=True)
def event_report_generate(event_id: int) -> int | None:
    report = services.event_report_generate(event_id=event_id)
    return None if report is None else report.pk


@shared_task(acks_late=True, ignore_result=True)
def event_reports_enqueue(lookback_days: float = LOOKBACK_DAYS) -> int:
    now = timezone.now()
    due = selectors.events_due(now=now, since=now - timedelta(days=lookback_days))
    for event_id in due:
        transaction.on_commit(functools.partial(event_report_generate.delay, event_id))
    return len(due)
