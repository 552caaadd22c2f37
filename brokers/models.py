from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

SWAP_RANGE = [
    MinValueValidator(Decimal("-1000"), message="A swap beyond $1,000 per lot per night is not credible."),
    MaxValueValidator(Decimal("1000"), message="A swap beyond $1,000 per lot per night is not credible."),
]
NON_NEGATIVE = [MinValueValidator(Decimal("0"), message="Must be zero or more; a deposit or fee cannot be negative.")]
# Order sizes an account accepts: whole numbers of its lot step, at least its minimum order (the MetaTrader
# volume rule). The defaults are the usual micro lot; execution.calc.DEFAULT_LOT_STEP and DEFAULT_MIN_LOTS match.
DEFAULT_LOT_STEP = Decimal("0.01")
DEFAULT_MIN_LOTS = Decimal("0.01")
MAX_LOT_RULE = Decimal("100")  # a step or minimum of more than 100 lots is a typo


class Platform(models.Model):
    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FundingMethod(models.Model):
    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# Public registers where a licence can be looked up by number (seeded for the demo; editable in admin).
REGISTER_URL_PATTERNS = {
    "FCA": "https://register.fca.org.uk/s/search?q={number}",
    "CFTC/NFA": "https://www.nfa.futures.org/BasicNet/basic-profile.aspx?nfaid={number}",
}
# After this many days without a check a licence is flagged (and counts at a discount in TrustMetrics 2.0).
LICENCE_CHECK_DAYS = 90


class Regulator(models.Model):
    name = models.CharField(max_length=40, unique=True, help_text="Short name, e.g. FCA.")
    full_name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=40, unique=True)
    country = models.CharField(max_length=80)
    tier = models.PositiveSmallIntegerField(
        validators=[
            MinValueValidator(1, message="Tier must be 1, 2 or 3 (1 is the strictest)."),
            MaxValueValidator(3, message="Tier must be 1, 2 or 3 (1 is the strictest)."),
        ],
        help_text="1: strictest supervision (FCA, ASIC, ...); 3: offshore.",
    )
    website = models.URLField(blank=True)
    register_url_pattern = models.CharField(
        max_length=300,
        blank=True,
        help_text="Link to a licence in the regulator's public register, with {number} for the licence number, "
        "e.g. https://register.fca.org.uk/s/search?q={number}",
    )

    class Meta:
        ordering = ["tier", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(tier__gte=1) & Q(tier__lte=3),
                name="regulator_tier_1_to_3",
                violation_error_message="Tier must be 1, 2 or 3 (1 is the strictest).",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.country})"


class Instrument(models.Model):
    class AssetClass(models.TextChoices):
        FX_MAJOR = "fx_major", "FX major"
        FX_MINOR = "fx_minor", "FX minor"
        FX_EXOTIC = "fx_exotic", "FX exotic"
        METAL = "metal", "Metal"
        INDEX = "index", "Index"
        CRYPTO = "crypto", "Crypto"

    symbol = models.CharField(max_length=20, unique=True, help_text="Canonical symbol, e.g. EURUSD.")
    name = models.CharField(max_length=80)
    asset_class = models.CharField(max_length=12, choices=AssetClass.choices)
    pip_size = models.DecimalField(
        max_digits=12,
        decimal_places=8,
        validators=[MinValueValidator(Decimal("0.00000001"), message="Pip size must be positive.")],
    )
    display_precision = models.PositiveSmallIntegerField(
        validators=[MaxValueValidator(8, message="At most 8 decimal places.")],
        help_text="Decimal places shown for prices.",
    )
    # TrustMetrics 2.4 scores each broker's cost against this fixed reference, not against the other brokers,
    # so a broker's cost points move only when its own cost does (empty: against the market's median).
    reference_spread_pips = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.0001"), message="A reference spread must be positive.")],
        help_text="A competitive spread for this instrument, in pips: TrustMetrics' cost reference "
        "(0.8x it scores 100, 3.2x it 0). Leave empty to compare with the market's median instead.",
    )
    sort_order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["sort_order", "symbol"]
        constraints = [
            models.CheckConstraint(
                condition=Q(pip_size__gt=0),
                name="instrument_pip_size_positive",
                violation_error_message="Pip size must be positive.",
            ),
            models.CheckConstraint(
                condition=Q(reference_spread_pips__isnull=True) | Q(reference_spread_pips__gt=0),
                name="instrument_reference_spread_positive",
                violation_error_message="A reference spread must be positive.",
            ),
        ]

    def __str__(self) -> str:
        return self.symbol


class Broker(models.Model):
    class CompanyType(models.TextChoices):
        LISTED = "listed", "Publicly listed"
        BANK = "bank", "Bank"
        PRIVATE = "private", "Private company"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(
        max_length=100, unique=True, error_messages={"unique": "Another broker already uses this slug."}
    )
    website = models.URLField()
    year_founded = models.PositiveSmallIntegerField(
        validators=[
            MinValueValidator(1800, message="Year founded must be 1800 or later."),
            MaxValueValidator(2100, message="Year founded cannot be in the far future."),
        ]
    )
    headquarters_country = models.CharField(max_length=80)
    company_type = models.CharField(max_length=10, choices=CompanyType.choices)
    description = models.TextField(blank=True)
    min_deposit = models.DecimalField("minimum deposit (USD)", max_digits=10, decimal_places=2, validators=NON_NEGATIVE)
    max_leverage = models.PositiveIntegerField(
        help_text="Highest leverage offered to retail clients, e.g. 30 for 1:30.",
        validators=[
            MinValueValidator(1, message="Leverage is at least 1 (1:1)."),
            MaxValueValidator(3000, message="Leverage above 1:3000 is not credible."),
        ],
    )
    platforms = models.ManyToManyField(Platform, blank=True, related_name="brokers")
    funding_methods = models.ManyToManyField(FundingMethod, blank=True, related_name="brokers")
    negative_balance_protection = models.BooleanField(default=False)
    segregated_funds = models.BooleanField("segregated client funds", default=False)
    # Non-trading fees: what holding an account costs besides trading.
    deposit_fee = models.DecimalField(
        "deposit fee (USD)", max_digits=8, decimal_places=2, default=Decimal("0"), validators=NON_NEGATIVE
    )
    withdrawal_fee = models.DecimalField(
        "withdrawal fee (USD)", max_digits=8, decimal_places=2, default=Decimal("0"), validators=NON_NEGATIVE
    )
    inactivity_fee = models.DecimalField(
        "inactivity fee (USD per month)", max_digits=8, decimal_places=2, default=Decimal("0"), validators=NON_NEGATIVE
    )
    inactivity_after_months = models.PositiveSmallIntegerField(
        "inactivity fee after (months)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1, message="At least 1 month."), MaxValueValidator(120, message="At most 120.")],
        help_text="Months without trading before the inactivity fee is charged.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    instruments = models.ManyToManyField["Instrument", "BrokerInstrument"](
        Instrument, through="BrokerInstrument", related_name="brokers"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_deposit__gte=0),
                name="broker_min_deposit_non_negative",
                violation_error_message="Minimum deposit cannot be negative.",
            ),
            models.CheckConstraint(
                condition=Q(deposit_fee__gte=0) & Q(withdrawal_fee__gte=0) & Q(inactivity_fee__gte=0),
                name="broker_fees_non_negative",
                violation_error_message="Fees cannot be negative.",
            ),
            models.CheckConstraint(
                condition=Q(inactivity_fee=0) | Q(inactivity_after_months__isnull=False),
                name="broker_inactivity_fee_has_months",
                violation_error_message="An inactivity fee needs the months of inactivity after which it is charged.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("brokers:profile", kwargs={"slug": self.slug})

    def clean(self) -> None:
        super().clean()
        if self.inactivity_fee and self.inactivity_after_months is None:
            raise ValidationError(
                {"inactivity_after_months": "Say after how many months without trading the inactivity fee applies."}
            )


class Licence(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        UNVERIFIED = "unverified", "Unverified"
        SUSPENDED = "suspended", "Suspended"
        REVOKED = "revoked", "Revoked"

    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="licences")
    regulator = models.ForeignKey(Regulator, on_delete=models.PROTECT, related_name="licences")
    licence_number = models.CharField(
        max_length=60,
        error_messages={
            "blank": "A licence needs the regulator's licence number.",
            "required": "A licence needs the regulator's licence number.",
        },
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    last_verified = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["regulator__tier", "regulator__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["broker", "regulator"],
                name="licence_one_per_regulator",
                violation_error_message="This broker already has a licence from this regulator.",
            ),
            models.CheckConstraint(
                condition=~Q(licence_number=""),
                name="licence_number_not_blank",
                violation_error_message="A licence needs the regulator's licence number.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.broker} / {self.regulator.name} {self.licence_number}"

    def register_url(self) -> str:
        """This licence's entry in the regulator's public register, or "" when the regulator has no pattern."""
        pattern = self.regulator.register_url_pattern
        if not pattern or "{number}" not in pattern:
            return ""
        return pattern.replace("{number}", quote(self.licence_number, safe=""))

    def verification_stale(self, today: date | None = None) -> bool:
        """Never checked against the register, or checked longer ago than TrustMetrics counts fully."""
        if self.last_verified is None:
            return True
        return (today or date.today()) - self.last_verified > timedelta(days=LICENCE_CHECK_DAYS)


class AccountType(models.Model):
    class SpreadType(models.TextChoices):
        RAW = "raw", "Raw spread + commission"
        STANDARD = "standard", "Standard (spread only)"

    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="account_types")
    name = models.CharField(max_length=60)
    spread_type = models.CharField(max_length=10, choices=SpreadType.choices)
    commission_per_lot = models.DecimalField(
        "commission per lot (USD, round turn)",
        max_digits=8,
        decimal_places=2,
        default=Decimal("0"),
        validators=NON_NEGATIVE,
    )
    min_deposit = models.DecimalField("minimum deposit (USD)", max_digits=10, decimal_places=2, validators=NON_NEGATIVE)
    spread_markup_pips = models.DecimalField(
        "spread mark-up (pips)",
        max_digits=6,
        decimal_places=2,
        default=Decimal("0"),
        validators=[
            MinValueValidator(Decimal("0"), message="A mark-up cannot be negative."),
            MaxValueValidator(Decimal("100"), message="A mark-up above 100 pips is not credible."),
        ],
        help_text="Pips this account adds to the broker's tightest (raw) price: 0 on raw accounts. An account's "
        "spread is the measured feed spread plus the difference between its mark-up and the feed account's.",
    )
    lot_step = models.DecimalField(
        "lot step (lots)",
        max_digits=6,
        decimal_places=3,
        default=DEFAULT_LOT_STEP,
        validators=[
            MinValueValidator(Decimal("0.001"), message="A lot step must be at least 0.001 lot."),
            MaxValueValidator(MAX_LOT_RULE, message="A lot step above 100 lots is not credible."),
        ],
        help_text="The smallest increment of an order on this account, in lots (0.01: a micro lot).",
    )
    min_lots = models.DecimalField(
        "minimum order (lots)",
        max_digits=6,
        decimal_places=3,
        default=DEFAULT_MIN_LOTS,
        validators=[
            MinValueValidator(Decimal("0.001"), message="A minimum order must be at least 0.001 lot."),
            MaxValueValidator(MAX_LOT_RULE, message="A minimum order above 100 lots is not credible."),
        ],
        help_text="The smallest order this account accepts, in lots: at least one lot step and a whole number "
        "of them. Best execution gives this account only whole steps at or above it.",
    )

    class Meta:
        ordering = ["min_deposit", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["broker", "name"],
                name="account_type_unique_name",
                violation_error_message="This broker already has an account type with this name.",
            ),
            models.CheckConstraint(
                condition=Q(spread_markup_pips__gte=0),
                name="account_type_markup_non_negative",
                violation_error_message="A mark-up cannot be negative.",
            ),
            models.CheckConstraint(
                condition=Q(commission_per_lot__gte=0) & Q(min_deposit__gte=0),
                name="account_type_non_negative",
                violation_error_message="Commission and minimum deposit cannot be negative.",
            ),
            # Whether the minimum is a whole number of steps is checked in clean(): exact decimal arithmetic,
            # which SQLite's MOD on floats cannot promise.
            models.CheckConstraint(
                condition=Q(lot_step__gt=0) & Q(min_lots__gte=F("lot_step")),
                name="account_type_lot_step_and_minimum",
                violation_error_message="The lot step must be positive and the minimum order at least one step.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.broker} {self.name}"

    def clean(self) -> None:
        super().clean()
        step, minimum = self.lot_step, self.min_lots
        # Field validation failed already (a message is on that field) or a value is missing: nothing to compare.
        if not isinstance(step, Decimal) or not isinstance(minimum, Decimal) or step <= 0 or minimum <= 0:
            return
        shown = f"The minimum order ({minimum.normalize():f} lot) must be"
        if minimum < step:
            raise ValidationError({"min_lots": f"{shown} at least one lot step ({step.normalize():f} lot)."})
        if minimum % step != 0:
            raise ValidationError({"min_lots": f"{shown} a whole number of lot steps ({step.normalize():f} lot)."})


class BrokerInstrument(models.Model):
    """Which instruments a broker quotes, and under which symbol of its own."""

    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="broker_instruments")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="broker_instruments")
    broker_symbol = models.CharField(max_length=30, help_text="The symbol in the broker's own feed, e.g. EURUSD.r")

    class Meta:
        ordering = ["instrument__sort_order", "instrument__symbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["broker", "instrument"],
                name="broker_instrument_unique",
                violation_error_message="This broker already quotes this instrument.",
            ),
            models.UniqueConstraint(
                fields=["broker", "broker_symbol"],
                name="broker_symbol_unique",
                violation_error_message="This broker already uses this symbol for another instrument.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.broker.slug}:{self.broker_symbol}"


class SwapRate(models.Model):
    """Overnight financing of one standard lot held past the daily roll-over, per instrument.

    In USD per night: negative means the trader pays, positive that the trader is paid.
    """

    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="swap_rates")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="swap_rates")
    long_usd = models.DecimalField(
        "long (USD per lot per night)", max_digits=8, decimal_places=2, validators=SWAP_RANGE
    )
    short_usd = models.DecimalField(
        "short (USD per lot per night)", max_digits=8, decimal_places=2, validators=SWAP_RANGE
    )

    class Meta:
        ordering = ["instrument__sort_order", "instrument__symbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["broker", "instrument"],
                name="swaprate_one_per_instrument",
                violation_error_message="This broker already has a swap rate for this instrument.",
            ),
            models.CheckConstraint(
                condition=Q(long_usd__gte=-1000)
                & Q(long_usd__lte=1000)
                & Q(short_usd__gte=-1000)
                & Q(short_usd__lte=1000),
                name="swaprate_credible",
                violation_error_message="A swap beyond $1,000 per lot per night is not credible.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.broker} {self.instrument} swap {self.long_usd}/{self.short_usd}"


class ConversionRate(models.Model):
    """USD per unit of a currency, for turning costs in a quote currency into USD.

    One stored rate rather than a live price, so every page shows the same figure and says which rate it used.
    """

    currency = models.CharField(
        max_length=3,
        unique=True,
        validators=[RegexValidator(r"^[A-Z]{3}$", message="An ISO currency code in capitals, e.g. JPY.")],
    )
    usd_per_unit = models.DecimalField(
        "USD per unit",
        max_digits=18,
        decimal_places=10,
        validators=[MinValueValidator(Decimal("0.0000000001"), message="A rate must be positive.")],
    )
    as_of = models.DateTimeField()

    class Meta:
        ordering = ["currency"]
        constraints = [
            models.CheckConstraint(
                condition=Q(usd_per_unit__gt=0),
                name="conversionrate_positive",
                violation_error_message="A rate must be positive.",
            )
        ]

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.usd_per_unit} USD"
