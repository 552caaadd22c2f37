from __future__ import annotations

from django.db import models

from brokers.models import AccountType, Broker, Instrument
from marketdata.models import EconomicEvent


class EventReport(models.Model):
    """How every broker's spreads held up at one high-impact release; written once its window has closed."""

    event = models.OneToOneField(EconomicEvent, on_delete=models.CASCADE, related_name="report")
    generated_at = models.DateTimeField()
    best_broker = models.ForeignKey(Broker, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    worst_broker = models.ForeignKey(Broker, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    brokers_measured = models.PositiveIntegerField(default=0)
    # Chart data, kept with the report so a page render reads one row: symbol -> broker slug -> pips per minute.
    series = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-event__scheduled_at"]

    def __str__(self) -> str:
        return f"Report on {self.event}"


class EventReportRow(models.Model):
    """One broker and instrument at one release. Spreads in pips; None where nothing was quoted."""

    report = models.ForeignKey(EventReport, on_delete=models.CASCADE, related_name="rows")
    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="event_rows")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="+")
    calm_pips = models.FloatField(null=True, help_text="Median 1-minute spread in the hour before.")
    peak_pips = models.FloatField(null=True)
    p95_pips = models.FloatField(null=True)
    # The bars are the broker's feed account's (marketdata.selectors.feed_accounts); its commission at the time
    # of the report is kept with the row, so a later change of the account's fees does not rewrite history.
    account = models.ForeignKey(AccountType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    peak_spread_cost_usd = models.FloatField(null=True, help_text="The peak spread as USD per lot, round turn.")
    commission_usd = models.FloatField(null=True, help_text="The account's round-turn commission per lot, USD.")
    peak_cost_usd = models.FloatField(
        null=True, help_text="All-in cost of one lot round turn at the peak: spread cost plus commission, USD."
    )
    longest_gap_s = models.PositiveIntegerField(default=0)
    recovery_s = models.PositiveIntegerField(null=True, help_text="Seconds until back within 1.5x calm.")
    quoted_minutes = models.PositiveIntegerField(default=0)
    stress_ratio = models.FloatField(null=True, help_text="p95 in the window over calm.")

    class Meta:
        ordering = ["report", "instrument__sort_order", "stress_ratio"]
        constraints = [
            models.UniqueConstraint(fields=["report", "broker", "instrument"], name="eventreportrow_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.broker_id}/{self.instrument_id} @ {self.report_id}"
