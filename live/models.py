from __future__ import annotations

from django.db import models

from brokers.models import Broker, Instrument


class SpreadBar(models.Model):
    """Spread statistics of one broker and instrument over one interval (1 minute, 1 hour, 1 day).

    Spreads and deviations are in price units; pages turn them into pips with the instrument's pip size.
    """

    class Resolution(models.TextChoices):
        MINUTE = "1m", "1 minute"
        HOUR = "1h", "1 hour"
        DAY = "1d", "1 day"

    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="spread_bars")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="spread_bars")
    resolution = models.CharField(max_length=2, choices=Resolution.choices)
    start = models.DateTimeField()
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    mean = models.FloatField(help_text="Time-weighted mean spread.")
    count = models.PositiveIntegerField(help_text="Quotes in the interval.")
    dev_min = models.FloatField(help_text="Lowest deviation of the broker's mid from the consensus mid.")
    dev_max = models.FloatField(help_text="Highest deviation of the broker's mid from the consensus mid.")

    class Meta:
        ordering = ["broker", "instrument", "resolution", "start"]
        constraints = [
            models.UniqueConstraint(
                fields=["broker", "instrument", "resolution", "start"], name="spreadbar_unique_interval"
            )
        ]

    def __str__(self) -> str:
        return f"{self.broker_id}/{self.instrument_id} {self.resolution} {self.start:%Y-%m-%d %H:%M}"
