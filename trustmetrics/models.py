from __future__ import annotations

from django.db import models

from brokers.models import Broker, Instrument


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
    inputs_digest = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the exact scoring inputs and methodology version."
    )
    band_low = models.FloatField(null=True, blank=True, help_text="Uncertainty band: bootstrap over days, low end.")
    band_high = models.FloatField(null=True, blank=True)
    moves = models.JSONField(
        default=list, blank=True, help_text="Components that moved since the previous score, by how much, and why."
    )

    class Meta:
        ordering = ["-computed_at"]
        get_latest_by = "computed_at"
        indexes = [models.Index(fields=["broker", "-computed_at"], name="trustscore_broker_latest")]
        constraints = [
            # One row per broker and run time: a run that is repeated (redelivered task, second click) adds nothing.
            models.UniqueConstraint(fields=["broker", "computed_at"], name="trustscore_one_per_run"),
        ]

    def __str__(self) -> str:
        return f"{self.broker} {self.overall:.1f} @ {self.computed_at:%Y-%m-%d %H:%M}"


class TrustDailyInput(models.Model):
    """Additive sums of one broker's bars for one instrument and UTC day, the scoring engine's input.

    The nightly run rebuilds every day in the window; the frequent run rebuilds only today, yesterday
    and missing days, then adds the stored sums up, so it reads a few thousand rows instead of bars.
    """

    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="+")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    methodology_version = models.CharField(max_length=20)
    hours = models.PositiveIntegerField()
    sum_mean = models.FloatField()
    sum_mean_sq = models.FloatField()
    quotes = models.BigIntegerField()
    dev_hours = models.PositiveIntegerField(default=0, help_text="Hours in which a consensus was measured.")
    sum_excursion = models.FloatField()
    off_market_hours = models.PositiveIntegerField()
    news_minutes = models.PositiveIntegerField()
    news_sum_mean = models.FloatField()
    news_hours = models.PositiveIntegerField(
        default=0, help_text="Measured hours holding a high-impact release that moves the instrument."
    )
    news_off_market_hours = models.PositiveIntegerField(default=0, help_text="Of those, the hours judged off-market.")
    off_market_sum_excursion = models.FloatField(
        default=0.0, help_text="Of sum_excursion, the part in hours judged off-market (2.2: they count apart)."
    )
    # 2.3: reliability measured from the quotes (sums of the bars' columns of the same names)
    frozen_s = models.FloatField(default=0.0, help_text="Seconds the price stood still while the others' moved.")
    frozen_judged_s = models.FloatField(default=0.0, help_text="Seconds the others' prices moved enough to judge.")
    latency_count = models.BigIntegerField(default=0, help_text="Quotes with a receipt time.")
    latency_log_sum = models.FloatField(default=0.0, help_text="Sum of ln(1 + delay in ms).")
    depth_count = models.BigIntegerField(default=0, help_text="Quotes with a touch size.")
    depth_1 = models.BigIntegerField(default=0, help_text="Of those, with at least 1 lot on both sides.")
    depth_5 = models.BigIntegerField(default=0, help_text="... at least 5 lots.")
    depth_10 = models.BigIntegerField(default=0, help_text="... at least 10 lots.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "broker", "instrument"], name="trustdailyinput_unique_day"),
        ]

    def __str__(self) -> str:
        return f"{self.broker_id}/{self.instrument_id} {self.day}"


class TrustValidation(models.Model):
    """The methodology page's validation figures for one methodology version, computed once, off the request path.

    They depend on the methodology and the validation code only, so they are computed when a version is first
    needed (``manage.py trust_validate``, or a background task the page starts) and the page reads this row.
    """

    methodology_version = models.CharField(max_length=20, unique=True)
    computed_at = models.DateTimeField()
    summary = models.JSONField(help_text="Each scenario's rank correlation, and the held-out random markets' figures.")
    seconds = models.FloatField(default=0.0, help_text="How long computing them took.")

    def __str__(self) -> str:
        return f"validation of {self.methodology_version} @ {self.computed_at:%Y-%m-%d %H:%M}"
