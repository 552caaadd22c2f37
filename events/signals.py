"""Revalidate the pages and API answers that show a release when an admin edits it. Thin: the work is in
pagecache. (A report stored for a release revalidates them itself: events.services.)"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from common import cachetags
from events.models import EventReportRow
from marketdata.models import EconomicEvent
from pagecache.services import pages_revalidate_on_commit


@receiver(post_save, sender=EconomicEvent)
def economic_event_saved(sender: type[EconomicEvent], instance: EconomicEvent, **kwargs: Any) -> None:
    # The archive, the release's report, and the profiles of the brokers in it (their last releases).
    brokers = EventReportRow.objects.filter(report__event_id=instance.pk).values_list("broker_id", flat=True)
    tags = [cachetags.EVENTS, cachetags.event(instance.pk), *(cachetags.broker(b) for b in set(brokers))]
    pages_revalidate_on_commit(tags=tags)


@receiver(post_delete, sender=EconomicEvent)
def economic_event_deleted(sender: type[EconomicEvent], **kwargs: Any) -> None:
    # Its report and rows are gone already (cascade): which profiles showed it is no longer known.
    pages_revalidate_on_commit(tags=[cachetags.ALL])
