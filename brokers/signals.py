"""Revalidate the regenerated pages that show what was just saved. Thin: the work is in pagecache."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from brokers.models import (
    AccountType,
    Broker,
    BrokerInstrument,
    ConversionRate,
    FundingMethod,
    Instrument,
    Licence,
    Platform,
    Regulator,
    SwapRate,
)
from common import cachetags
from pagecache.services import pages_revalidate_on_commit


@receiver([post_save, post_delete], sender=Broker)
def broker_changed(sender: type[Broker], instance: Broker, **kwargs: Any) -> None:
    pages_revalidate_on_commit(tags=cachetags.broker_changed(instance.pk))


@receiver([post_save, post_delete], sender=Licence)
@receiver([post_save, post_delete], sender=AccountType)
@receiver([post_save, post_delete], sender=BrokerInstrument)
@receiver([post_save, post_delete], sender=SwapRate)
def broker_part_changed(
    sender: type, instance: Licence | AccountType | BrokerInstrument | SwapRate, **kwargs: Any
) -> None:
    pages_revalidate_on_commit(tags=cachetags.broker_changed(instance.broker_id))


@receiver(m2m_changed, sender=Broker.platforms.through)
@receiver(m2m_changed, sender=Broker.funding_methods.through)
def broker_m2m_changed(sender: type, instance: Any, action: str, **kwargs: Any) -> None:
    if action.startswith("post_") and isinstance(instance, Broker):
        pages_revalidate_on_commit(tags=cachetags.broker_changed(instance.pk))
    elif action.startswith("post_"):
        pages_revalidate_on_commit(tags=[cachetags.ALL])


@receiver([post_save, post_delete], sender=Regulator)
@receiver([post_save, post_delete], sender=Instrument)
@receiver([post_save, post_delete], sender=Platform)
@receiver([post_save, post_delete], sender=FundingMethod)
@receiver([post_save, post_delete], sender=ConversionRate)
def reference_data_changed(sender: type, **kwargs: Any) -> None:
    pages_revalidate_on_commit(tags=[cachetags.ALL])
