"""What the API answers, field by field. Every figure is copied from a page selector's result, never recomputed."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.urls import reverse
from ninja import Field, Schema

from brokers.models import AccountType, Broker, Licence
from brokers.selectors import BrokerCosts, SpreadRow
from events.models import EventReport, EventReportRow
from marketdata.selectors import AccountCost
from trustmetrics.models import TrustScore

Format = Literal["json", "csv"]
# Spelled out for the schema; a test holds them to the pages' choices (brokers.selectors.SORTS, AccountType).
Sort = Literal["score", "deposit", "name", "cost"]
SpreadType = Literal["raw", "standard"]
LEVERAGES = (30, 50, 100, 200, 500)  # the directory form's choices (a test holds them to it)
SLUG_PATTERN = r"^[-a-zA-Z0-9_]{1,100}$"
SYMBOL_PATTERN = r"^[A-Z0-9]{1,20}$"


class ErrorOut(Schema):
    error: str = Field(description="What was wrong, in words.")
    fields: dict[str, list[str]] = Field(default_factory=dict, description="Messages per parameter, when any.")


class LicenceOut(Schema):
    regulator: str = Field(description="Regulator's short name, e.g. FCA.")
    regulator_slug: str
    country: str
    tier: int = Field(description="1: strictest supervision; 3: offshore.")
    licence_number: str
    status: str
    last_verified: str | None = Field(description="ISO date the licence was last checked, or null.")

    @staticmethod
    def of(lic: Licence) -> LicenceOut:
        return LicenceOut(
            regulator=lic.regulator.name,
            regulator_slug=lic.regulator.slug,
            country=lic.regulator.country,
            tier=lic.regulator.tier,
            licence_number=lic.licence_number,
            status=lic.status,
            last_verified=lic.last_verified.isoformat() if lic.last_verified else None,
        )


class BrokerOut(Schema):
    slug: str
    name: str
    url: str = Field(description="The broker's profile page on this site.")
    website: str
    headquarters_country: str
    year_founded: int
    trust_score: float | None = Field(description="Latest TrustMetrics score, 0-100 (the directory's figure).")
    trust_label: str | None
    trust_confidence: float | None = Field(description="0-1: how much measured data stands behind the score.")
    min_deposit: Decimal = Field(description="Minimum deposit in USD.")
    max_leverage: int = Field(description="Highest retail leverage, 1:x.")
    platforms: list[str]
    regulators: list[str] = Field(description="Short names of the regulators with an active licence.")
    all_in_eurusd_usd: float | None = Field(
        None,
        description="All-in cost in USD of one round-turn lot of EURUSD on the cheapest account (the directory's).",
    )
    all_in_account: str | None = Field(None, description="The account that all-in cost is for.")

    @staticmethod
    def of(b: Broker, cost: AccountCost | None = None) -> BrokerOut:
        return BrokerOut(
            slug=b.slug,
            name=b.name,
            url=b.get_absolute_url(),
            website=b.website,
            headquarters_country=b.headquarters_country,
            year_founded=b.year_founded,
            trust_score=b.trust_score,  # type: ignore[attr-defined]
            trust_label=b.trust_label,  # type: ignore[attr-defined]
            trust_confidence=b.trust_confidence,  # type: ignore[attr-defined]
            min_deposit=b.min_deposit,
            max_leverage=b.max_leverage,
            platforms=[p.name for p in b.platforms.all()],
            regulators=[lic.regulator.name for lic in b.licences.all() if lic.status == Licence.Status.ACTIVE],
            all_in_eurusd_usd=cost.all_in_usd if cost is not None else None,
            all_in_account=cost.account if cost is not None else None,
        )


DIRECTORY_CSV = {
    "slug": "the broker's identifier in this API",
    "name": "broker name",
    "trust_score": "latest TrustMetrics score, 0-100 (empty: not scored yet)",
    "trust_label": "the score's label",
    "regulators": "active licences' regulators, separated by '|'",
    "min_deposit_usd": "minimum deposit in USD",
    "max_leverage": "highest retail leverage, 1:x",
    "platforms": "trading platforms, separated by '|'",
    "all_in_eurusd_usd": "all-in cost in USD of one round-turn lot of EURUSD on the cheapest account (empty: none)",
    "all_in_account": "the account that all-in cost is for",
}


def directory_csv_row(b: BrokerOut) -> list[Any]:
    return [
        b.slug,
        b.name,
        b.trust_score,
        b.trust_label,
        "|".join(b.regulators),
        b.min_deposit,
        b.max_leverage,
        "|".join(b.platforms),
        b.all_in_eurusd_usd,
        b.all_in_account,
    ]


class AccountOut(Schema):
    name: str = Field(description="What `account` takes in the spread endpoints.")
    spread_type: str = Field(description="raw (spread + commission) or standard (spread only).")
    commission_per_lot: Decimal = Field(description="USD per standard lot, round turn.")
    min_deposit: Decimal = Field(description="USD.")
    spread_markup_pips: Decimal | None = Field(None, description="Published spread mark-up over the raw price.")
    lot_step: Decimal | None = Field(None, description="Orders are whole numbers of this many lots.")
    min_lots: Decimal | None = Field(None, description="The smallest order, in lots.")
    feed_account: bool = Field(
        False, description="The broker's feed account: its measured spread stands for the broker across the site."
    )
    measured: bool = Field(
        False,
        description="Its spreads are measured from a feed of its own; otherwise its cost uses the feed account's "
        "spread plus the published mark-up difference.",
    )

    @staticmethod
    def of(a: AccountType, *, feed: AccountType | None, measured: set[int]) -> AccountOut:
        return AccountOut(
            name=a.name,
            spread_type=a.spread_type,
            commission_per_lot=a.commission_per_lot,
            min_deposit=a.min_deposit,
            spread_markup_pips=a.spread_markup_pips,
            lot_step=a.lot_step,
            min_lots=a.min_lots,
            feed_account=feed is not None and a.pk == feed.pk,
            measured=a.pk in measured,
        )


LICENCES_CSV = {name: f.description or name for name, f in LicenceOut.model_fields.items()}
ACCOUNTS_CSV = {name: f.description or name for name, f in AccountOut.model_fields.items()}


class FeesOut(Schema):
    deposit_usd: Decimal
    withdrawal_usd: Decimal
    inactivity_usd_per_month: Decimal
    inactivity_after_months: int | None = Field(description="Months without trading before it is charged.")


class AccountCostOut(Schema):
    instrument: str = Field(description="Canonical symbol.")
    account: str = Field(description="Account type.")
    spread_type: str = Field(description="raw or standard.")
    min_deposit: Decimal = Field(description="The account's minimum deposit, USD.")
    spread_pips: float | None = Field(description="The account's mean spread over the cost window; null: none.")
    spread_measured: bool = Field(description="Measured on the account's own feed (else derived: spread_basis).")
    spread_basis: str = Field(description="Where the spread comes from, in words (the page's note).")
    coverage: str = Field(description="The page's note when the data is shorter than the window, else empty.")
    spread_cost_usd: float | None = Field(description="Spread cost of one standard lot, round turn, USD.")
    commission_usd: float = Field(description="Round-turn commission per lot, USD.")
    all_in_usd: float | None = Field(description="Spread cost plus commission: the page's all-in figure.")
    swap_long_usd: float | None = Field(description="Per lot per night held long; negative: the trader pays.")
    swap_short_usd: float | None
    hold_one_night_long_usd: float | None = Field(description="All-in plus one night held long.")
    conversion: str = Field(description="How the quote currency was turned into USD.")

    @staticmethod
    def of(c: AccountCost) -> AccountCostOut:
        return AccountCostOut(
            instrument=c.symbol,
            account=c.account,
            spread_type=c.spread_type,
            min_deposit=c.min_deposit,
            spread_pips=c.spread_pips,
            spread_measured=c.measured,
            spread_basis=c.spread_basis,
            coverage=c.coverage_text,
            spread_cost_usd=c.spread_cost_usd,
            commission_usd=c.commission_usd,
            all_in_usd=c.all_in_usd,
            swap_long_usd=c.swap_long_usd,
            swap_short_usd=c.swap_short_usd,
            hold_one_night_long_usd=c.hold_one_night_long_usd,
            conversion=c.conversion,
        )


class CostsOut(Schema):
    broker: str
    as_of: datetime
    window: str = Field(description="The window each spread is the mean of, e.g. 'last 7 days'.")
    basis: str = Field(description="What one figure is: one standard lot, opened and closed.")
    feed_account: str | None = Field(description="The account the broker's measured spreads belong to.")
    rows: list[AccountCostOut] = Field(description="By instrument, then all-in cost (the page's order).")

    @staticmethod
    def of(costs: BrokerCosts, *, broker: Broker, as_of: datetime) -> CostsOut:
        return CostsOut(
            broker=broker.slug,
            as_of=as_of,
            window=costs.window_label,
            basis="one standard lot, round turn",
            feed_account=costs.feed_account.name if costs.feed_account else None,
            rows=[AccountCostOut.of(c) for c in costs.rows],
        )


COSTS_CSV = {name: f.description or name for name, f in AccountCostOut.model_fields.items()}


class InstrumentOut(Schema):
    symbol: str
    name: str
    asset_class: str
    broker_symbol: str = Field(description="The symbol in the broker's own feed.")


class ScoreOut(Schema):
    computed_at: datetime
    overall: float
    label: str
    confidence: float
    methodology_version: str
    components: dict[str, Any] = Field(description="Component name to its 0-100 score (see /methodology/).")
    reason: str = Field(description="Why the score moved, when it moved a lot; empty otherwise.")

    @staticmethod
    def of(s: TrustScore) -> ScoreOut:
        return ScoreOut(
            computed_at=s.computed_at,
            overall=s.overall,
            label=s.label,
            confidence=s.confidence,
            methodology_version=s.methodology_version,
            components=dict(s.components or {}),
            reason=s.reason,
        )


SCORES_CSV = {
    "computed_at": "ISO 8601 time of the scoring run (UTC)",
    "overall": "score, 0-100",
    "label": "the score's label",
    "confidence": "0-1: how much measured data stands behind it",
    "methodology_version": "the methodology that produced it",
    "reason": "why it moved, when it moved a lot",
}


def score_csv_row(s: ScoreOut) -> list[Any]:
    return [s.computed_at.isoformat(), s.overall, s.label, s.confidence, s.methodology_version, s.reason]


class DailyScoreOut(Schema):
    computed_at: datetime = Field(description="The day's last scoring run (UTC).")
    overall: float
    band_low: float | None = Field(description="Uncertainty band (bootstrap over days), low end; null: none.")
    band_high: float | None
    label: str
    confidence: float = Field(description="0-1: how much measured data stands behind it.")
    methodology_version: str
    reason: str = Field(description="Why it moved, when it moved a lot; empty otherwise.")

    @staticmethod
    def of(s: TrustScore) -> DailyScoreOut:
        return DailyScoreOut(
            computed_at=s.computed_at,
            overall=s.overall,
            band_low=s.band_low,
            band_high=s.band_high,
            label=s.label,
            confidence=s.confidence,
            methodology_version=s.methodology_version,
            reason=s.reason,
        )


DAILY_SCORES_CSV = {
    "computed_at": "ISO 8601 time of the day's last scoring run (UTC)",
    "overall": "score, 0-100",
    "band_low": "uncertainty band, low end (empty: none)",
    "band_high": "uncertainty band, high end",
    "label": "the score's label",
    "confidence": "0-1: how much measured data stands behind it",
    "methodology_version": "the methodology that produced it",
    "reason": "why it moved, when it moved a lot",
}


def daily_score_csv_row(s: DailyScoreOut) -> list[Any]:
    return [
        s.computed_at.isoformat(),
        s.overall,
        s.band_low,
        s.band_high,
        s.label,
        s.confidence,
        s.methodology_version,
        s.reason,
    ]


class ValidationScenarioOut(Schema):
    scenario: str = Field(description="The scenario's title.")
    period: str
    brokers: int
    releases: int = Field(description="High-impact releases in the period.")
    spearman: float = Field(description="Rank correlation of the scores with the order the traits give.")
    meets_bar: bool = Field(description="Spearman at least 0.9, the methodology's bar.")


class ValidationOut(Schema):
    methodology_version: str
    pending: bool = Field(
        False, description="The figures of this methodology are being computed: no scenarios yet (as the page says)."
    )
    as_of: datetime | None = Field(description="When the figures were computed; null while pending.")
    scenarios: list[ValidationScenarioOut] = Field(description="The methodology page's validation table.")


VALIDATION_CSV = {
    "scenario": "the scenario's title",
    "period": "the week it covers",
    "brokers": "brokers in it",
    "releases": "high-impact releases in the period",
    "spearman": "rank correlation of the scores with the order the traits give (1: the same order)",
    "meets_bar": "true when it is at least 0.9",
    "methodology_version": "the methodology scored",
    "as_of": "ISO 8601 time the figures were computed (UTC); no rows while they are being computed",
}


class MethodologyComponentOut(Schema):
    key: str = Field(description="The component's key, as in a score's `components`.")
    title: str
    weight: float = Field(description="Share of the overall score, 0-1 (the page shows it as a percentage).")
    measured: bool = Field(description="true: from measured prices; false: from the profile and licences.")
    summary: str = Field(description="What it measures.")
    details: str = Field(description="How it is computed.")
    methodology_version: str


class MethodologyPointsOut(Schema):
    key: str = Field(description="The methodology's key for the row (a tier number, a status, an item).")
    name: str = Field(description="The row as the page names it.")
    value: float
    methodology_version: str


def _columns(schema: type[Schema], **value: str) -> dict[str, str]:
    """CSV columns of a schema's fields, described as in the schema (``value``: the value column's meaning)."""
    return {name: value.get(name) or f.description or name for name, f in schema.model_fields.items()}


METHODOLOGY_COMPONENTS_CSV = _columns(MethodologyComponentOut)
METHODOLOGY_TIERS_CSV = _columns(MethodologyPointsOut, value="licence points of a regulator of this tier, 0-100")
METHODOLOGY_STATUSES_CSV = _columns(MethodologyPointsOut, value="factor on the licence's points, 0-1")
METHODOLOGY_COMPANY_TYPES_CSV = _columns(MethodologyPointsOut, value="share of the company-type points, 0-1")
METHODOLOGY_TRANSPARENCY_CSV = _columns(MethodologyPointsOut, value="points of the item (all items add up to 100)")
METHODOLOGY_REFERENCE_SPREADS_CSV = _columns(
    MethodologyPointsOut, value="the instrument's reference spread in pips: cost is scored against it"
)


ACCOUNT_FIGURES = (
    "The account these figures are for: the broker's feed account (the one its profile shows) unless "
    "`account` named another; null for a broker that lists no accounts."
)


class SpreadOut(Schema):
    instrument: str
    broker_symbol: str
    account: str | None = Field(None, description=ACCOUNT_FIGURES)
    as_of: datetime | None = Field(None, description="When the figures were computed: windows end here.")
    quotes: int = Field(description="Quotes measured in the longest window that has any.")
    windows: dict[str, float | None] = Field(description="Window (24h, 7d, 30d) to time-weighted mean spread in pips.")
    coverage_days: dict[str, float] = Field(
        description="Window to the days of data it really covers (less than its name when history is short)."
    )
    coverage: dict[str, str] = Field(
        default_factory=dict,
        description="Window to the page's coverage note, e.g. '5.2 of 30 days'; empty when the data covers it.",
    )
    sessions: dict[str, float | None] = Field(
        description="Trading session (asian, london, overlap, newyork; UTC hours) to mean spread in pips, last 7 days."
    )

    @staticmethod
    def of(row: SpreadRow, *, account: AccountType | None = None, as_of: datetime | None = None) -> SpreadOut:
        return SpreadOut(
            instrument=row.instrument.symbol,
            broker_symbol=row.broker_symbol,
            account=account.name if account is not None else None,
            as_of=as_of,
            quotes=row.quotes,
            windows={name: w.pips for name, w in row.windows.items()},
            coverage_days={name: round(w.coverage_days, 2) for name, w in row.windows.items()},
            coverage={name: w.coverage_text for name, w in row.windows.items()},
            sessions=dict(row.sessions),
        )


class SessionPercentilesOut(Schema):
    p50: float | None = Field(description="Median 1-minute mean spread in pips.")
    p95: float | None
    p99: float | None
    minutes: int = Field(description="1-minute bars behind the figures.")


class SpreadHistoryOut(Schema):
    broker: str
    instrument: str
    account: str | None = Field(
        None, description=ACCOUNT_FIGURES + " The peers are always the other brokers' feed accounts."
    )
    as_of: datetime
    coverage_days: dict[str, float] = Field(
        default_factory=dict,
        description="Span to the days from its first drawn bucket to as_of (less than its name when history is "
        "short; absent when the span has no data).",
    )
    url: str = Field(description="The spread page on this site.")
    series: dict[str, list[tuple[float, float]]] = Field(
        description="Span (24h, 7d, 30d) to [unix seconds, mean spread in pips] points, oldest first."
    )
    hours: list[float | None] = Field(description="This broker's mean spread in pips per UTC hour 0-23, last 7 days.")
    peers: list[float | None] = Field(description="Median of the other brokers' hourly means, per UTC hour.")
    sessions: dict[str, SessionPercentilesOut] = Field(
        description="Trading session (asian, london, overlap, newyork; UTC hours) to spread percentiles, last 7 days."
    )


SESSION_PERCENTILES_CSV = {
    "session": "asian 00-08, london 08-13, overlap 13-17, newyork 17-22 (UTC)",
    "p50_pips": "median 1-minute mean spread, last 7 days",
    "p95_pips": "95th percentile",
    "p99_pips": "99th percentile",
    "minutes": "1-minute bars behind the figures",
    "account": "the account the figures are for (the broker's feed account unless `account` named another)",
    "as_of": "ISO 8601 time the last 7 days end (UTC)",
}


class HourOut(Schema):
    hour: int = Field(description="UTC hour of day, 0-23.")
    pips: float | None = Field(description="This broker's mean spread in pips in that hour, last 7 days; null: none.")
    peers_median_pips: float | None = Field(description="Median of the other brokers' means in that hour.")


class SpreadHoursOut(Schema):
    broker: str
    instrument: str
    account: str | None = Field(
        None, description=ACCOUNT_FIGURES + " The peers are always the other brokers' feed accounts."
    )
    as_of: datetime = Field(description="The last 7 days end here.")
    hours: list[HourOut] = Field(description="The spread page's hour-of-day table: 24 rows, hour 0 first.")


SPREAD_HOURS_CSV = {
    "hour": "UTC hour of day, 0-23",
    "pips": "this broker's mean spread in pips in that hour, last 7 days (empty: none)",
    "peers_median_pips": "median of the other brokers' hourly means (their feed accounts)",
    "account": "the account the figures are for (the broker's feed account unless `account` named another)",
    "as_of": "ISO 8601 time the last 7 days end (UTC)",
}


class CompareCellOut(Schema):
    broker: str = Field(description="Broker slug.")
    value: float | int | str | bool | None = Field(description="The figure as the page shows it (unrounded ints).")
    best: bool = Field(description="Marked best in this row (every tied broker is).")
    note: str = Field(description="The page's note under the figure (which account, coverage), else empty.")


class CompareRowOut(Schema):
    label: str = Field(description="The row's heading on the page, e.g. 'Minimum deposit (USD)'.")
    cells: list[CompareCellOut] = Field(description="One per broker, in the order asked.")


class CompareOut(Schema):
    brokers: list[str] = Field(description="Slugs, in the order asked.")
    rows: list[CompareRowOut] = Field(description="The compare page's table, row by row.")


COMPARE_CSV = {
    "row": "the row's heading on the compare page",
    "broker": "broker slug (brokers in the order asked)",
    "value": "the figure, unrounded beyond the page's rounding: true/false for yes/no rows, empty for none",
    "best": "true when the page marks it best in its row",
    "note": "the page's note under the figure (which account, coverage)",
}


class BrokerDetailOut(BrokerOut):
    description: str
    company_type: str
    negative_balance_protection: bool
    segregated_funds: bool
    funding_methods: list[str]
    licences: list[LicenceOut]
    accounts: list[AccountOut] = Field(description="Account types with their fees.")
    non_trading_fees: FeesOut | None = Field(None, description="What holding an account costs besides trading.")
    costs: CostsOut | None = Field(
        None, description="All-in cost per instrument and account (the profile's table; also /brokers/{slug}/costs)."
    )
    instruments: list[InstrumentOut]
    latest_score: ScoreOut | None
    spreads: list[SpreadOut] = Field(description="The feed account's measured spreads (the profile's table).")


class EventOut(Schema):
    scheduled_at: datetime
    currency: str
    impact: str
    name: str


EVENTS_CSV = {
    "scheduled_at": "ISO 8601 release time (UTC)",
    "currency": "ISO code of the currency it moves",
    "impact": "low, medium or high",
    "name": "the release",
}


def event_csv_row(e: EventOut) -> list[Any]:
    return [e.scheduled_at.isoformat(), e.currency, e.impact, e.name]


class ReportSummaryOut(Schema):
    event_id: int = Field(description="The release's id: /api/v1/events/{event_id}/report has the full report.")
    name: str
    currency: str
    scheduled_at: datetime
    generated_at: datetime
    url: str = Field(description="The report's page on this site.")
    brokers_measured: int = Field(description="Brokers with spreads measured around the release.")
    calmest_broker: str | None = Field(description="Slug of the broker whose spreads held up best, or null.")
    most_stressed_broker: str | None = Field(description="Slug of the broker whose spreads widened most, or null.")

    @staticmethod
    def of(r: EventReport) -> ReportSummaryOut:
        return ReportSummaryOut(
            event_id=r.event_id,
            name=r.event.name,
            currency=r.event.currency,
            scheduled_at=r.event.scheduled_at,
            generated_at=r.generated_at,
            url=reverse("events:detail", kwargs={"event_id": r.event_id}),
            brokers_measured=r.brokers_measured,
            calmest_broker=r.best_broker.slug if r.best_broker else None,
            most_stressed_broker=r.worst_broker.slug if r.worst_broker else None,
        )


REPORTS_CSV = {
    "event_id": "the release's id",
    "scheduled_at": "ISO 8601 release time (UTC)",
    "currency": "ISO code of the currency it moves",
    "name": "the release",
    "brokers_measured": "brokers with spreads measured around it",
    "calmest_broker": "slug of the broker whose spreads held up best",
    "most_stressed_broker": "slug of the broker whose spreads widened most",
}


def report_summary_csv_row(r: ReportSummaryOut) -> list[Any]:
    return [
        r.event_id,
        r.scheduled_at.isoformat(),
        r.currency,
        r.name,
        r.brokers_measured,
        r.calmest_broker,
        r.most_stressed_broker,
    ]


class BrokerReleaseOut(Schema):
    event_id: int = Field(description="The release's id: /api/v1/events/{event_id}/report has the full report.")
    name: str = Field(description="The release.")
    scheduled_at: datetime
    rank: int = Field(description="1: the calmest of the brokers measured at it.")
    brokers_measured: int
    median_ratio: float | None = Field(description="Median over instruments of p95 in the window over calm spread.")
    worst_instrument: str | None = Field(description="The instrument it widened most on.")
    longest_gap_s: int = Field(description="Longest run without a quote, in seconds.")


RELEASES_CSV = {name: f.description or name for name, f in BrokerReleaseOut.model_fields.items()}


class ReportRowOut(Schema):
    broker: str = Field(description="Broker slug.")
    account: str | None = Field(
        description="The account measured: the broker's feed account when the report was made (null: before that "
        "was recorded)."
    )
    calm_pips: float | None = Field(description="Median 1-minute spread in the hour before the release.")
    peak_pips: float | None = Field(description="Highest spread quoted from 5 minutes before to 30 after.")
    p95_pips: float | None = Field(description="95th percentile of that window's 1-minute mean spreads.")
    peak_spread_cost_usd: float | None = Field(description="The peak spread as USD per lot, round turn.")
    commission_usd: float | None = Field(description="The account's round-turn commission per lot, USD.")
    peak_cost_usd: float | None = Field(
        description="All-in cost of one lot round turn at the peak: spread cost plus commission, USD (the profile's "
        "cost rule); null for reports made before all-in pricing, whose peak_spread_cost_usd stands alone."
    )
    longest_gap_s: int = Field(description="Longest run of minutes in the window without a quote, in seconds.")
    recovery_s: int | None = Field(
        description="Seconds from the release until back within 1.5x calm; 0: never left; null: not within 30 min."
    )
    quoted_minutes: int = Field(description="Minutes of the 35-minute window with quotes.")
    stress_ratio: float | None = Field(description="p95 in the window over calm: the ranking figure.")

    @staticmethod
    def of(row: EventReportRow) -> ReportRowOut:
        return ReportRowOut(
            broker=row.broker.slug,
            account=row.account.name if row.account is not None else None,
            calm_pips=row.calm_pips,
            peak_pips=row.peak_pips,
            p95_pips=row.p95_pips,
            peak_spread_cost_usd=row.peak_spread_cost_usd,
            commission_usd=row.commission_usd,
            peak_cost_usd=row.peak_cost_usd,
            longest_gap_s=row.longest_gap_s,
            recovery_s=row.recovery_s,
            quoted_minutes=row.quoted_minutes,
            stress_ratio=row.stress_ratio,
        )


class ReportInstrumentOut(Schema):
    instrument: str
    rows: list[ReportRowOut] = Field(description="One per broker, calmest first (the page's order).")


class ReportOut(ReportSummaryOut):
    instruments: list[ReportInstrumentOut] = Field(description="The instruments the release moves.")


REPORT_CSV = {
    "instrument": "canonical symbol",
    **{name: (field.description or name) for name, field in ReportRowOut.model_fields.items()},
}


class LiveQuoteOut(Schema):
    broker: str
    instrument: str
    bid: float
    ask: float
    spread: float = Field(description="ask - bid, in price units.")
    ts_ingest: int = Field(description="When the quote was accepted, microseconds since the epoch.")


class LiveOut(Schema):
    quotes: list[LiveQuoteOut]
    status: dict[str, dict[str, Any]] = Field(description="Broker to its feed status (up, stale, down) and since when.")


# -- best execution ------------------------------------------------------------------------------------------------
# execution.selectors.estimate_json builds the body for the page's JSON and this API alike; these schemas document
# it field by field (execution/tests/test_execution_consistency.py fails if the two answers differ by a field).


class ExecutionCostOut(Schema):
    average_price: float | None = Field(description="Average fill price of the part filled; null if none filled.")
    filled: float = Field(description="Units filled (the same as filled_units).")
    shortfall: float = Field(description="Units not filled (the same as unfilled_units).")
    filled_units: float = Field(description="Units filled: whole lot steps of the account, at or above its minimum.")
    unfilled_units: float = Field(description="Units of the order not filled (depth, lot step or minimum order).")
    levels_used: int = Field(description="Depth levels the fill walked.")
    cost_pips: float | None = Field(description="Fill against the consensus mid, in pips per unit filled.")
    cost_quote: float | None = Field(description="Spread cost of the part filled, in the quote currency.")
    cost_usd: float | None = Field(description="Spread cost of the part filled in USD (the same as spread_cost_usd).")
    spread_cost_usd: float | None = Field(description="Spread cost of the part filled, in USD.")
    commission_usd: float = Field(description="One side of the account's round-turn commission, for the part filled.")
    all_in_usd: float | None = Field(description="Spread cost plus commission of the part filled, in USD.")
    penalty_price: float | None = Field(
        description="Price the unfilled part is priced at: the worst price the fill reached plus the account's "
        "spread once more (see penalty_rule); null for a full fill or when no rule applies."
    )
    penalty_usd: float | None = Field(
        description="The unfilled part priced by penalty_rule, with the account's commission, in USD: 0 for a "
        "full fill; null when it cannot be stated (nothing filled, one-sided book, no mid or USD rate)."
    )
    all_in_with_penalty_usd: float | None = Field(
        description="all_in_usd plus penalty_usd: what ranks partial fills (after every full fill)."
    )


class ExecutionRowOut(ExecutionCostOut):
    broker: str = Field(description="Broker slug.")
    name: str
    account: str = Field(description="Account type; empty for a broker with no accounts listed.")
    priced_from: Literal["account feed", "feed account + mark-up"]
    status: Literal["ok", "stale", "no_depth", "bad_depth"]
    partial: bool = Field(description="Fills part of the order: ranked after every full fill.")
    unfilled_reason: Literal["depth", "lot_step", "minimum"] | None = Field(
        description="Why part of the order is unfilled: too little depth, not a whole number of lot steps, or "
        "below the account's minimum order (then nothing fills)."
    )
    lot_step_lots: float = Field(description="The account's lot step: orders are whole numbers of it.")
    min_lots: float = Field(description="The account's minimum order, in lots.")
    age_s: float | None = Field(description="Age of the depth in seconds.")
    best: bool = Field(description="The lowest all-in cost among full fills (every tied account is marked).")
    split_size: float = Field(description="Units the split order takes from this account.")


class ExecutionSplitOut(ExecutionCostOut):
    saving_usd_vs_best: float | None = Field(description="All-in saving against the best single account, in USD.")


class ExecutionOut(Schema):
    instrument: str
    side: Literal["buy", "sell"]
    size: float = Field(description="Order size in units.")
    pip_size: float
    quote_currency: str | None
    account_currency: str
    usd_per_quote: float | None = Field(description="USD per unit of the quote currency, from current mids.")
    conversion: str = Field(description="How the quote currency was turned into USD, in words.")
    consensus_mid: float | None = Field(description="Median of the brokers' own mids: what costs are measured from.")
    best_broker: str | None
    brokers: list[ExecutionRowOut] = Field(
        description="Every account of every broker listing the instrument: full fills, partial fills, then the rest."
    )
    split: ExecutionSplitOut | None = Field(description="The order split across brokers.")
    max_age_s: float | None
    stale_after_s: float
    penalty_rule: str = Field(description="How the unfilled part of a partial fill is priced, in words.")
    lot_rule: str = Field(description="Which order sizes each account accepts, in words.")
    notes: list[str]
    as_of: str = Field(description="When the answer was computed (ISO 8601, UTC).")
    unit: Literal["units"] = Field(description="Every size in the answer is in units.")
    default_request_unit: Literal["units", "lots"] = Field(description="How a size without a unit is read.")
    lot_size: float = Field(description="Units in one lot of the instrument.")
    lots: float = Field(description="The order size in lots.")
    display_precision: int


EXECUTION_CSV_FIELDS = (
    "broker",
    "name",
    "account",
    "priced_from",
    "status",
    "partial",
    "unfilled_reason",
    "filled_units",
    "unfilled_units",
    "average_price",
    "cost_pips",
    "spread_cost_usd",
    "commission_usd",
    "all_in_usd",
    "penalty_usd",
    "all_in_with_penalty_usd",
    "split_size",
    "age_s",
    "best",
)
EXECUTION_CSV = {name: ExecutionRowOut.model_fields[name].description or name for name in EXECUTION_CSV_FIELDS}
