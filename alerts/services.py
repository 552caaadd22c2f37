"""Writes of the alerts app: watchlists and alerts (the evaluator is told on commit), notifications."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts import engine
from alerts.models import Alert, Notification, Watchlist
from brokers.models import AccountType, Broker, Instrument
from common import metrics
from common.redis import REDIS_DOWN, redis_sync

logger = logging.getLogger(__name__)


def reload_channel(prefix: str | None = None) -> str:
    """Pub/sub channel on which the evaluator hears that alerts changed."""
    return f"{prefix if prefix is not None else settings.CACHE_KEY_PREFIX}:alerts:reload"


def _tell_evaluator() -> None:
    def publish() -> None:
        try:
            redis_sync().publish(reload_channel(), "1")
        except REDIS_DOWN:
            logger.warning("could not tell the alert process; it rereads alerts every %s s", settings.ALERTS_RELOAD_S)

    transaction.on_commit(publish)


@transaction.atomic
def watchlist_create(
    *, user: AbstractBaseUser, name: str, brokers: Iterable[Broker], instruments: Iterable[Instrument]
) -> Watchlist:
    watchlist = Watchlist.objects.create(user_id=user.pk, name=name.strip())
    watchlist.brokers.set(list(brokers))
    watchlist.instruments.set(list(instruments))
    _tell_evaluator()
    return watchlist


@transaction.atomic
def watchlist_delete(*, user: AbstractBaseUser, watchlist_id: int) -> bool:
    deleted, _ = Watchlist.objects.filter(pk=watchlist_id, user_id=user.pk).delete()
    _tell_evaluator()
    return bool(deleted)


@transaction.atomic
def alert_create(
    *,
    user: AbstractBaseUser,
    kind: str,
    broker: Broker | None = None,
    watchlist: Watchlist | None = None,
    instrument: Instrument | None = None,
    account: AccountType | None = None,
    threshold_pips: Decimal | None = None,
    for_seconds: int = 0,
    score_points: float | None = None,
    email: bool = True,
) -> Alert:
    alert = Alert(
        user_id=user.pk,
        kind=kind,
        broker=broker,
        watchlist=watchlist,
        instrument=instrument,
        account=account,
        threshold_pips=threshold_pips,
        for_seconds=for_seconds,
        score_points=score_points,
        email=email,
    )
    alert.full_clean()
    alert.save()
    _tell_evaluator()
    return alert


@transaction.atomic
def alert_delete(*, user: AbstractBaseUser, alert_id: int) -> bool:
    deleted, _ = Alert.objects.filter(pk=alert_id, user_id=user.pk).delete()
    _tell_evaluator()
    return bool(deleted)


def notification_record(*, fired: engine.Fired) -> Notification | None:
    """Keep what went off and email it. None when this episode was already recorded (a redelivery)."""
    alert = Alert.objects.filter(pk=fired.rule_id).select_related("user").first()
    if alert is None:
        return None  # deleted meanwhile
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                alert=alert,
                user_id=fired.user_id,
                kind=fired.kind,
                broker=fired.broker,
                instrument=fired.instrument,
                message=fired.message[:300],
                episode=fired.episode[:120],
                triggered_at=datetime.fromtimestamp(fired.at_us / 1e6, tz=UTC),
            )
    except IntegrityError:
        return None
    metrics.incr("alerts_notified")
    if alert.email and alert.user.email:
        try:
            send_mail(
                subject=f"BrokerWatch alert: {fired.message}"[:150],
                message=(
                    f"{fired.message}\n\nAt {notification.triggered_at:%Y-%m-%d %H:%M:%S} UTC.\n"
                    f"Your alerts: {settings.SITE_URL}/account/alerts/\n"
                ),
                from_email=None,
                recipient_list=[alert.user.email],
            )
        except Exception:
            metrics.incr("alerts_email_failed")
            logger.exception("could not email alert %s", alert.pk)
        else:
            notification.emailed_at = timezone.now()
            notification.save(update_fields=["emailed_at"])
    return notification
