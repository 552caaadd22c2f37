from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models.functions import Coalesce

from brokers.models import AccountType, Broker, Instrument


class SpreadBar(models.Model):
    """Spread statistics of one broker, instrument and account over one interval (1 minute, 1 hour, 1 day).

    Spreads and deviations are in price units; pages turn them into pips with the instrument's pip size.
    `account` empty: the broker's default account (its tightest-priced; every bar recorded before bars
    carried an account is one of these).
    """

    class Resolution(models.TextChoices):
        MINUTE = "1m", "1 minute"
        HOUR = "1h", "1 hour"
        DAY = "1d", "1 day"

    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="spread_bars")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="spread_bars")
    account = models.ForeignKey(
        AccountType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="spread_bars",
        help_text="The account whose prices these are; empty: the broker's default (tightest-priced) account.",
    )
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
    duration = models.FloatField(default=0.0, help_text="Seconds of the interval covered by quotes (weights roll-ups).")
    dev_count = models.PositiveIntegerField(
        default=0, help_text="Quotes that had a consensus to compare with (0: dev_min/dev_max are not measured)."
    )
    # Reliability measures (TrustMetrics 2.3; marketdata.aggregation defines them). Sums, so roll-ups add them up.
    # Defaults in the database too: a process of the previous release still inserts bars without them.
    frozen_s = models.FloatField(
        default=0.0, db_default=0.0, help_text="Seconds the price stood still while the other brokers' consensus moved."
    )
    frozen_judged_s = models.FloatField(
        default=0.0,
        db_default=0.0,
        help_text="Seconds in which the consensus moved enough for a tracking price to change.",
    )
    latency_count = models.PositiveIntegerField(default=0, db_default=0, help_text="Quotes with a receipt time.")
    latency_log_sum = models.FloatField(
        default=0.0, db_default=0.0, help_text="Sum of ln(1 + delay in ms) from the broker's timestamp to ingest."
    )
    depth_count = models.PositiveIntegerField(default=0, db_default=0, help_text="Quotes with a touch size reported.")
    depth_1 = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Of those, quotes with at least 1 lot on both sides."
    )
    depth_5 = models.PositiveIntegerField(default=0, db_default=0, help_text="... at least 5 lots on both sides.")
    depth_10 = models.PositiveIntegerField(default=0, db_default=0, help_text="... at least 10 lots on both sides.")

    class Meta:
        ordering = ["broker", "instrument", "resolution", "start"]
        constraints = [
            # One bar per account and interval; the default account (NULL) counts as account 0 so the
            # upserts' ON CONFLICT finds its bars on PostgreSQL and SQLite alike.
            models.UniqueConstraint(
                "broker",
                "instrument",
                Coalesce("account", models.Value(0)),
                "resolution",
                "start",
                name="spreadbar_unique_account_interval",
            )
        ]
        indexes = [models.Index(fields=["resolution", "start"], name="spreadbar_resolution_start")]

    def __str__(self) -> str:
        return f"{self.broker_id}/{self.instrument_id} {self.resolution} {self.start:%Y-%m-%d %H:%M}"


class EconomicEvent(models.Model):
    """A scheduled release (admin-editable). Around high-impact ones the simulator raises volatility
    and brokers widen spreads according to their profiles."""

    class Impact(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    name = models.CharField(max_length=120)
    currency = models.CharField(max_length=3, help_text="ISO code of the currency it moves, e.g. USD.")
    scheduled_at = models.DateTimeField()
    impact = models.CharField(max_length=6, choices=Impact.choices, default=Impact.MEDIUM)

    class Meta:
        ordering = ["scheduled_at", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "currency", "scheduled_at"],
                name="economicevent_unique",
                violation_error_message="This event is already on the calendar at that time.",
            )
        ]
        indexes = [models.Index(fields=["scheduled_at"], name="economicevent_at")]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency}, {self.impact}) {self.scheduled_at:%Y-%m-%d %H:%M}"


class FeedConfig(models.Model):
    """How the ingestor connects to one price feed of a broker: one per broker and account type.

    A broker that prices its accounts apart (a standard account's marked-up spread, a raw account's tight
    spread plus commission) has one feed per account it is measured on; a configuration without an
    account carries the broker's default (tightest-priced) account.
    """

    class Adapter(models.TextChoices):
        SIMULATOR = "simulator", "Market simulator"
        FIX = "fix", "FIX 4.4 market data"
        OANDA = "oanda", "OANDA v20 pricing stream"
        BINANCE = "binance", "Binance WebSocket"
        KRAKEN = "kraken", "Kraken WebSocket v2"
        COINBASE = "coinbase", "Coinbase Advanced Trade WebSocket"

    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="feed_configs")
    account = models.ForeignKey(
        AccountType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="feed_configs",
        help_text="The account whose prices this feed carries; empty: the broker's default account, its "
        "tightest-priced (lowest mark-up, then lowest deposit). Its spreads are recorded for this account.",
    )
    adapter = models.CharField(max_length=20, choices=Adapter.choices, default=Adapter.SIMULATOR)
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text='Adapter parameters, e.g. {"quotes_per_s": 2, "seed": 42} or {"host": "fix.example", "port": '
        '9878, "tls": true, "sender_comp_id": "BW", "target_comp_id": "MD"}. No secrets here.',
    )
    # Names of secrets, never their values: the database (and its backups) must not hold credentials.
    secret_refs = models.JSONField(
        "credentials",
        default=dict,
        blank=True,
        help_text='Where each credential is read from, e.g. {"token": "env:OANDA_TOKEN"} or {"password": '
        '"file:/run/secrets/fix_password"}. Only env: and file: references are accepted.',
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["broker__name", "account__min_deposit", "account__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["broker", "account"],
                name="feedconfig_unique_account",
                violation_error_message="This broker already has a feed for this account.",
            ),
            models.UniqueConstraint(
                fields=["broker"],
                condition=models.Q(account__isnull=True),
                name="feedconfig_unique_default",
                violation_error_message="This broker already has a feed for its default account.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.broker} {self.account.name if self.account else 'default account'} via {self.adapter}"

    def clean(self) -> None:
        super().clean()
        account = self.account
        if account is not None and self.broker_id is not None and account.broker_id != self.broker_id:
            raise ValidationError({"account": "Choose one of this broker's own accounts."})
        from marketdata.feeds.secrets import secret_ref_check

        if not isinstance(self.secret_refs, dict):
            raise ValidationError({"secret_refs": "A JSON object of credential name to env:/file: reference."})
        errors = [e for name, ref in self.secret_refs.items() if (e := secret_ref_check(name, ref))]
        if errors:
            raise ValidationError({"secret_refs": errors})
        if not isinstance(self.params, dict):
            raise ValidationError({"params": "A JSON object."})


class FeedSymbol(models.Model):
    """One venue symbol of a feed mapped to a site instrument, with the precision the venue quotes.

    Only what is the venue's own is kept here: the pip size is the instrument's (brokers.Instrument)."""

    feed_config = models.ForeignKey(FeedConfig, on_delete=models.CASCADE, related_name="symbols")
    venue_symbol = models.CharField(max_length=40, help_text="As the venue spells it: EUR/USD, EUR_USD, BTCUSDT.")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="feed_symbols")
    price_precision = models.PositiveSmallIntegerField(
        validators=[MaxValueValidator(10, message="At most 10 decimal places.")],
        help_text="Decimal places of the venue's prices (Kraken's checksum depends on it).",
    )
    size_precision = models.PositiveSmallIntegerField(
        default=8,
        validators=[MaxValueValidator(12, message="At most 12 decimal places.")],
        help_text="Decimal places of quantities (Kraken's checksum depends on it).",
    )

    class Meta:
        ordering = ["feed_config", "venue_symbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["feed_config", "venue_symbol"],
                name="feedsymbol_unique_venue_symbol",
                violation_error_message="This feed already maps this venue symbol.",
            ),
            models.UniqueConstraint(
                fields=["feed_config", "instrument"],
                name="feedsymbol_unique_instrument",
                violation_error_message="This feed already maps another venue symbol to this instrument.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.venue_symbol} -> {self.instrument_id}"


class FeedStatusChange(models.Model):
    """Append-only history of a feed's status; the latest row is the current status (uptime for TrustMetrics)."""

    class Status(models.TextChoices):
        UP = "up", "Up"
        STALE = "stale", "Stale"
        DOWN = "down", "Down"

    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="feed_status_changes")
    status = models.CharField(max_length=5, choices=Status.choices)
    at = models.DateTimeField()
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at"]
        get_latest_by = "at"
        indexes = [models.Index(fields=["broker", "at"], name="feedstatus_broker_at")]
        constraints = [
            # Replaying a backfill must not duplicate history.
            models.UniqueConstraint(fields=["broker", "at", "status"], name="feedstatus_unique_change")
        ]

    def __str__(self) -> str:
        return f"{self.broker_id} {self.status} @ {self.at:%Y-%m-%d %H:%M:%S}"


class QuoteRejectionCount(models.Model):
    """Quotes the validator rejected, per broker, hour and reason (counters flushed by the ingestors)."""

    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="quote_rejections")
    hour = models.DateTimeField()
    reason = models.CharField(max_length=20)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-hour", "broker", "reason"]
        constraints = [models.UniqueConstraint(fields=["broker", "hour", "reason"], name="quoterejection_unique")]

    def __str__(self) -> str:
        return f"{self.broker_id} {self.reason} x{self.count} @ {self.hour:%Y-%m-%d %H:00}"


class IngestWriteMark(models.Model):
    """How far the database has taken one ingestor process's journalled rejection counts (marketdata/wal.py).

    Updated in the same transaction as the counts it covers, so a write replayed from the journal after a kill
    that fell between that commit and the journal's "done" mark is recognised (its number is at or below
    ``last_seq``) and not added a second time. One row per ingestor process that wrote rejection counts; rows
    untouched for 30 days (services.WRITE_MARK_DAYS) are deleted (a journal left unreplayed longer than that could add
    its last committed counts again).
    """

    writer = models.CharField(max_length=32, unique=True, help_text="The ingestor process's producer id.")
    last_seq = models.BigIntegerField(default=0, help_text="Its journal writes up to this number are in the database.")
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.writer} @ {self.last_seq}"


class AggregatorCheckpoint(models.Model):
    """Per stream shard: the last stream entry folded into the bars, and the aggregator's open state.

    Written in the same transaction as the bars, so a restarted aggregator resumes exactly where the
    last commit left off: entries at or below `last_id` are already counted and are skipped.
    """

    stream = models.CharField(max_length=200, unique=True)
    last_id = models.CharField(max_length=40, default="0-0")
    state = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.stream} @ {self.last_id}"
