"""The one versioned TrustMetrics methodology: weights, thresholds, explanations and version history.

The scoring engine reads every number from here and the public /methodology/ page is rendered
from the same object, so what we publish is what we compute. Change anything that moves scores
and you bump ``version`` and add a line to ``history``. No Django here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class Component:
    key: str
    title: str
    weight: float
    measured: bool  # from market data (shrunk towards neutral when data is thin) or from the profile
    summary: str  # the one-line explanation shown next to the score
    details: str  # how it is computed, for the methodology page


@dataclass(frozen=True)
class Band:
    """A peer ratio mapped to points: ``good`` or better gives 100, ``bad`` or worse 0, log-linear between."""

    good: float
    bad: float


@dataclass(frozen=True)
class Label:
    minimum: float
    name: str


@dataclass(frozen=True)
class VersionNote:
    version: str
    date: str
    changes: str


@dataclass(frozen=True)
class Methodology:
    version: str
    components: tuple[Component, ...]
    labels: tuple[Label, ...]
    history: tuple[VersionNote, ...]
    window: timedelta
    # Regulation
    tier_points: dict[int, float]
    licence_status_factor: dict[str, float]
    extra_licence_share: float
    # Cost
    cost_band: Band
    fx_pip_value_usd: float
    # Stability
    news_before: timedelta
    news_after: timedelta
    news_band: Band
    volatility_band: Band
    news_share: float
    # Price integrity
    excursion_band: Band
    off_market_factor: float
    off_market_min_peers: int
    off_market_share_free: float
    off_market_share_zero: float
    # News: which calendar currencies move an instrument whose symbol does not name them
    news_currencies: dict[str, tuple[str, ...]]
    # Reliability
    stale_penalty: float
    down_penalty: float
    gap_penalty: float
    disconnect_penalty: float
    # Transparency
    transparency_points: dict[str, float]
    full_years: int
    company_type_points: dict[str, float]
    # Confidence and history
    neutral: float
    min_confidence_for_label: float
    move_threshold: float
    component_move_threshold: float
    extra: dict[str, str] = field(default_factory=dict)
    # 2.0: critical failures cap the overall score below "Good" whatever the other components say
    critical_off_market_share: float = 1.0
    critical_cap: float = 100.0
    # 2.1: the off-market cap is a ramp from 100 at this share down to critical_cap at critical_off_market_share
    off_market_cap_from: float = 0.0
    # 2.0: licences checked against the regulator's register within this many days count fully
    licence_verified_days: int = 0
    unchecked_licence_factor: float = 1.0
    # 2.1: frozen feeds, outages in news windows, execution quality (latency, depth) inside reliability
    frozen_penalty: float = 0.0
    news_outage_penalty: float = 0.0
    latency_band: Band = Band(good=0.5, bad=4.0)
    execution_share: float = 0.0
    frozen_min_s: float = 30.0
    # 2.1: off-market at releases: this part of the release-hour share counts when larger than the weekly share
    news_off_market_weight: float = 0.0
    # 2.1: published stability bound: overall points per unit share of extra data of the same kind (tested)
    stability_points_per_extra_share: float = 200.0
    # 2.1: after licence_verified_days a licence's share falls to unchecked_licence_factor over this many days
    licence_decay_days: int = 0
    # 2.0: share of rejected (malformed) quotes, and quote density for confidence
    malformed_penalty: float = 0.0
    full_density_quotes_per_hour: float = 0.0
    # 2.0: uncertainty band, a bootstrap over the window's days
    bootstrap_samples: int = 0
    band_percentiles: tuple[float, float] = (5.0, 95.0)

    @property
    def weights(self) -> dict[str, float]:
        return {c.key: c.weight for c in self.components}

    def component(self, key: str) -> Component:
        for c in self.components:
            if c.key == key:
                return c
        raise KeyError(key)

    def moves_with(self, symbol: str, currency: str) -> bool:
        """Whether high-impact news in ``currency`` moves this instrument.

        Index CFDs follow their home economy (US500: USD, GER40: EUR); any other symbol is moved by
        the currency codes it names (EURUSD: EUR and USD; XAUUSD: USD).
        """
        symbol, currency = symbol.upper(), currency.upper()
        if symbol in self.news_currencies:
            return currency in self.news_currencies[symbol]
        return currency in symbol

    @property
    def labels_display(self) -> dict[str, str]:
        """Readable names of the keys the methodology page lists (never show raw keys)."""
        return {
            "description": "Description",
            "website": "Website",
            "headquarters": "Headquarters",
            "accounts": "Account types listed",
            "platforms": "Platforms listed",
            "funding": "Funding methods listed",
            "instruments": "Instruments listed",
            "years": f"Years in business (full at {self.full_years})",
            "company_type": "Company type (listed or bank)",
            "segregated_funds": "Segregated client funds",
            "negative_balance_protection": "Negative balance protection",
            "active": "Active",
            "unverified": "Unverified",
            "suspended": "Suspended",
            "revoked": "Revoked",
            "listed": "Publicly listed",
            "bank": "Bank",
            "private": "Private company",
        }

    def label_for(self, overall: float, confidence: float) -> str:
        if confidence < self.min_confidence_for_label:
            return "Provisional"
        for band in self.labels:
            if overall >= band.minimum:
                return band.name
        return self.labels[-1].name


METHODOLOGY = Methodology(
    version="2.1",
    window=timedelta(days=7),
    components=(
        Component(
            "regulation",
            "Regulation",
            0.25,
            False,
            "Licences from strict regulators count most; suspended, revoked or unverified ones count little or nil.",
            "The strongest licence gives its tier's points times its status factor; each further licence adds a "
            "share of its own points, up to 100. No usable licence scores 0. A licence whose entry in the "
            "regulator's public register was not checked in the last 90 days counts less, down to half its points "
            "90 days later; a licence never checked counts at half.",
        ),
        Component(
            "cost",
            "Cost",
            0.20,
            True,
            "Time-weighted spread plus commission, per instrument, against the other brokers quoting it.",
            "For each instrument: the mean of hourly time-weighted spreads of the account the prices come from, "
            "plus the extra cost of the broker's cheapest account open to a $2,000 retail deposit (its round-turn "
            "commission and its spread mark-up over the priced account; FX only, at a pip value of $10 per lot), "
            "divided by the median of the other brokers. The geometric mean of those ratios is mapped to points.",
        ),
        Component(
            "stability",
            "Stability",
            0.15,
            True,
            "How much spreads widen around high-impact news compared with calm hours, and how much they jump about.",
            "News widening: mean 1-minute spread in windows around high-impact events for instruments the "
            "event's currency moves (index CFDs follow their home currency: US500 USD, GER40 EUR), divided by "
            "the broker's own mean spread, compared with the other brokers. Minutes of those windows in which the "
            "broker quoted nothing, while another broker did, count as the worst case (0 points), so going dark at "
            "a release never looks stable. "
            "Volatility: spread of hourly means over their average, compared with the other brokers.",
        ),
        Component(
            "price_integrity",
            "Price integrity",
            0.15,
            True,
            "How far the broker's mid strays from the consensus of the other brokers; off-market quotes cost most.",
            "Per hour in which a consensus was measured: the largest deviation of the broker's mid from the "
            "consensus (median) mid of the other brokers, divided by sqrt(2 ln n) for the n quotes compared that "
            "hour (what noise alone reaches at that rate), so the measure does not depend on how often quotes "
            "were recorded. Its mean is compared with the other brokers. An hour is "
            "off-market when that deviation is more than a factor times the median of the other brokers' largest "
            "deviations in the same hour; the share of off-market hours beyond a small allowance takes points away "
            "on top. That share is the larger of the share over all measured hours and half the share over the "
            "hours holding a high-impact release, so quoting off-market only at releases does not hide.",
        ),
        Component(
            "reliability",
            "Reliability",
            0.10,
            True,
            "Feed uptime, frozen and stale prices, outages at releases, gaps, malformed quotes, latency and depth.",
            "100 minus penalties: per share of time the feed was down or stale, per share of time its price stood "
            "still for 30 s or more while the other brokers' consensus moved (frozen), per share of high-impact "
            "news-window time it was down, stale or frozen (on top: an outage at a release counts twice), per "
            "disconnect a day, per share of hours with no prices where the other brokers had some, and per share "
            "of quotes rejected as malformed (crossed, stale, out of sequence). Where execution was recorded, "
            "40 % of the component is execution quality: median latency from the broker's timestamp to receipt "
            "against the other brokers, and the share of books with at least 1, 5 and 10 lots.",
        ),
        Component(
            "transparency",
            "Transparency",
            0.15,
            False,
            "A complete public profile, years in business, company type and client-money protections.",
            "Points for each published profile item, for years in business (full marks at the threshold), for a "
            "listed company or bank, for segregated client funds and for negative balance protection. Licences "
            "never count here: they count once, in regulation.",
        ),
    ),
    labels=(
        Label(80, "Excellent"),
        Label(65, "Good"),
        Label(50, "Fair"),
        Label(35, "Weak"),
        Label(0, "Poor"),
    ),
    history=(
        VersionNote(
            "1.0",
            "2026-11-22",
            "First published methodology: six components, peer-relative market measures over 7 days, "
            "confidence from data coverage.",
        ),
        VersionNote(
            "1.1",
            "2026-11-22",
            "Price integrity only over hours where a consensus was measured; off-market hours judged against the "
            "other brokers' deviations in the same hour instead of the broker's own spread (which punished the "
            "tightest brokers), with a 5 % allowance; index CFDs matched to their home currency's news.",
        ),
        VersionNote(
            "2.0",
            "2026-11-30",
            "Missing minutes in news windows count as the worst case in stability; critical failures (heavy "
            "off-market quoting, a suspended or revoked licence) cap the score below Good; licences not checked "
            "against the regulator's register in 90 days count at half; rejected (malformed) quotes cost "
            "reliability points; confidence also reflects quote density and consensus availability; every score "
            "shows a bootstrap uncertainty band over the window's days and a digest of its inputs.",
        ),
        VersionNote(
            "2.1",
            "2026-11-30",
            "The off-market cap is a ramp instead of a switch: 100 at no off-market hours, falling linearly to "
            "64.9 (below Good) at 20 % and flat beyond, so a few more hours of data can no longer flip a score "
            "by tens of points. Likewise a licence's register check no longer expires overnight: after 90 days "
            "its points fall linearly to half over the next 90 days. Price integrity divides each hour's largest "
            "deviation by what noise reaches at that hour's quote count (independent of the recording rate). "
            "Reliability counts frozen prices, outages in high-impact news windows, and execution quality "
            "(latency, depth at 1, 5 and 10 lots) where recorded.",
        ),
    ),
    tier_points={1: 85.0, 2: 55.0, 3: 25.0},
    licence_status_factor={"active": 1.0, "unverified": 0.3, "suspended": 0.0, "revoked": 0.0},
    extra_licence_share=0.2,
    cost_band=Band(good=0.5, bad=2.5),
    fx_pip_value_usd=10.0,
    news_before=timedelta(minutes=5),
    news_after=timedelta(minutes=15),
    news_band=Band(good=0.7, bad=3.0),
    volatility_band=Band(good=0.5, bad=4.0),
    news_share=0.6,
    excursion_band=Band(good=0.5, bad=4.0),
    off_market_factor=3.0,
    off_market_min_peers=2,
    off_market_share_free=0.05,
    off_market_share_zero=0.5,
    news_currencies={
        "US500": ("USD",),
        "US30": ("USD",),
        "NAS100": ("USD",),
        "GER40": ("EUR",),
        "EU50": ("EUR",),
        "FRA40": ("EUR",),
        "UK100": ("GBP",),
        "JP225": ("JPY",),
        "AUS200": ("AUD",),
    },
    stale_penalty=300.0,
    down_penalty=600.0,
    gap_penalty=300.0,
    disconnect_penalty=5.0,
    transparency_points={
        "description": 8.0,
        "website": 4.0,
        "headquarters": 4.0,
        "accounts": 8.0,
        "platforms": 4.0,
        "funding": 4.0,
        "instruments": 8.0,
        "years": 20.0,
        "company_type": 15.0,
        "segregated_funds": 15.0,
        "negative_balance_protection": 10.0,
    },
    full_years=20,
    company_type_points={"listed": 1.0, "bank": 1.0, "private": 0.3},
    neutral=50.0,
    min_confidence_for_label=0.25,
    move_threshold=1.0,
    component_move_threshold=1.0,
    critical_off_market_share=0.2,
    critical_cap=64.9,
    off_market_cap_from=0.0,
    licence_verified_days=90,
    unchecked_licence_factor=0.5,
    licence_decay_days=90,
    malformed_penalty=200.0,
    frozen_penalty=300.0,
    news_outage_penalty=60.0,
    latency_band=Band(good=0.5, bad=4.0),
    execution_share=0.4,
    frozen_min_s=30.0,
    news_off_market_weight=0.5,
    full_density_quotes_per_hour=3.0,
    bootstrap_samples=24,
    band_percentiles=(5.0, 95.0),
)

assert abs(sum(METHODOLOGY.weights.values()) - 1.0) < 1e-9, "component weights must add up to 1"
assert abs(sum(METHODOLOGY.transparency_points.values()) - 100.0) < 1e-9, "transparency points must add up to 100"
