from __future__ import annotations

from django.db import models

from brokers.models import Broker


class TrustScore(models.Model):
    """One scoring run's result for one broker. Rows are appended, never overwritten."""

    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="trust_scores")
    computed_at = models.DateTimeField(db_index=True)
    methodology_version = models.CharField(max_length=20)
    overall = models.FloatField()
    label = models.CharField(max_length=30)
    confidence = models.FloatField(help_text="0-1: how much measured data stands behind the score.")
    components = models.JSONField(help_text="Component name to 0-100 score.")
    inputs = models.JSONField(default=dict, blank=True, help_text="Compact summary of the inputs.")
    reason = models.TextField(blank=True, help_text="Why the score moved, when it moved a lot.")

    class Meta:
        ordering = ["-computed_at"]
        get_latest_by = "computed_at"
        indexes = [models.Index(fields=["broker", "-computed_at"], name="trustscore_broker_latest")]

    def __str__(self) -> str:
        return f"{self.broker} {self.overall:.1f} @ {self.computed_at:%Y-%m-%d %H:%M}"
