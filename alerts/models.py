from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from brokers.models import AccountType, Broker, Instrument


class Watchlist(models.Model):
    """Brokers and instruments a trader keeps an eye on. No instruments ticked: every instrument."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlists")
    name = models.CharField(max_length=60)
    brokers = models.ManyToManyField(Broker, blank=True, related_name="+")
    instruments = models.ManyToManyField(Instrument, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"],
                name="watchlist_unique_name",
                violation_error_message="You already have a watchlist with this name.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Alert(models.Model):
    """One condition a trader wants to hear about, on one broker or on every broker of a watchlist."""

    class Kind(models.TextChoices):
        SPREAD_ABOVE = "spread_above", "Spread above a level"
        FEED_DOWN = "feed_down", "Feed down or stale"
        SCORE_MOVE = "score_move", "Trust score moves"
        EVENT_REPORT = "event_report", "News-event report published"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=14, choices=Kind.choices)
    broker = models.ForeignKey(Broker, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    watchlist = models.ForeignKey(
        Watchlist, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts", help_text="Any broker in it."
    )
    instrument = models.ForeignKey(
        Instrument, null=True, blank=True, on_delete=models.CASCADE, related_name="+", help_text="Empty: any."
    )
    account = models.ForeignKey(
        AccountType,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Spread alerts on one broker: this account's spread. Empty: the broker's feed account.",
    )
    threshold_pips = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"), message="A spread level cannot be negative.")],
    )
    for_seconds = models.PositiveIntegerField(default=0, help_text="Spread alerts: how long it must stay above.")
    score_points = models.FloatField(null=True, blank=True, help_text="Score alerts: the smallest move that counts.")
    email = models.BooleanField(default=True, help_text="Also send an email.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(broker__isnull=False) & Q(watchlist__isnull=True))
                | (Q(broker__isnull=True) & Q(watchlist__isnull=False)),
                name="alert_one_broker_or_watchlist",
                violation_error_message="Choose a broker or a watchlist, not both.",
            ),
            models.CheckConstraint(
                condition=Q(account__isnull=True) | (Q(kind="spread_above") & Q(broker__isnull=False)),
                name="alert_account_on_one_brokers_spread",
                violation_error_message="An account can be chosen only for a spread alert on one broker.",
            ),
            models.CheckConstraint(
                condition=~Q(kind="spread_above") | Q(threshold_pips__isnull=False),
                name="alert_spread_needs_threshold",
                violation_error_message="A spread alert needs a level in pips.",
            ),
            models.CheckConstraint(
                condition=~Q(kind="score_move") | Q(score_points__gt=0),
                name="alert_score_needs_points",
                violation_error_message="A score alert needs a move of more than 0 points.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    def clean(self) -> None:
        super().clean()
        account = self.account if self.account_id is not None else None
        if account is not None and self.broker_id is not None and account.broker_id != self.broker_id:
            raise ValidationError({"account": "Choose one of this broker's own accounts."})


class Notification(models.Model):
    """One alert that went off: what the trader was told, and whether the email went out."""

    alert = models.ForeignKey(Alert, null=True, on_delete=models.SET_NULL, related_name="notifications")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_notifications")
    kind = models.CharField(max_length=14, choices=Alert.Kind.choices)
    broker = models.CharField(max_length=100, blank=True, help_text="Broker slug.")
    instrument = models.CharField(max_length=20, blank=True)
    message = models.CharField(max_length=300)
    # Identifies the episode, so a redelivered notification is recorded once.
    episode = models.CharField(max_length=120)
    triggered_at = models.DateTimeField()
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-triggered_at"]
        indexes = [models.Index(fields=["user", "-triggered_at"], name="notification_user_latest")]
        constraints = [models.UniqueConstraint(fields=["alert", "episode"], name="notification_once_per_episode")]

    def __str__(self) -> str:
        return self.message
