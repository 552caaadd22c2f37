"""The one versioned TrustMetrics methodology: weights, thresholds, explanations and version history.

The scoring engine reads every number from here and the public /methodology/ page is rendered
from the same object, so what we publish is what we compute. Change anything that moves scores
and you bump ``version`` and add a line to ``history``. No Django here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum


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


class Reference(StrEnum):
    """What a measure is compared with before its band maps it to points.

    MARKET: the median of every broker measured (the broker included), placed at the band's middle.
    INSTRUMENT: the instrument's published reference spread (an instrument without one: MARKET).
    BEST: the lowest value measured for the instrument (what following the consensus closely gives).
    OWN: the value itself, already a ratio of the broker's own (news widening) or in fixed units (latency, ms).
    """

    MARKET = "market"
    INSTRUMENT = "instrument"
    BEST = "best"
    OWN = "own"


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
    # 2.1: frozen feeds (a run of one mid this long while the consensus moves), execution latency against peers
    latency_band: Band = Band(good=0.5, bad=4.0)
    frozen_min_s: float = 30.0
    # 2.2: off-market at releases: this part of the share of release hours off-market is lost on top of the
    # weekly share's penalty (2.1: the larger of the two)
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
    # 2.2: each measured component is a weighted mean of separate parts with published weights, so that no
    # trait counts twice and each counts as much as its weight says (see trustmetrics.validation)
    news_coverage_share: float = 0.0  # stability: the share of news-window minutes quoted (rest: widening)
    integrity_off_market_share: float = 1.0  # price integrity: off-market hours (rest: ordinary deviation)
    reliability_parts: dict[str, float] = field(
        default_factory=lambda: {"availability": 1.0, "frozen": 0.0, "latency": 0.0, "depth": 0.0}
    )
    outage_zero_share: float = 1.0  # availability: this share of time without a usable price takes every point
    frozen_zero_share: float = 1.0  # frozen: this share of time frozen takes every point
    news_outage_weight: float = 1.0  # release-window time counts this many times in availability
    # 2.2: with a critical failure the part of the score licences and market behaviour make up (all but
    # transparency) counts at most this many points; the off-market ramp goes on below critical_cap at the
    # same slope down to that floor, and a suspended or revoked licence caps the score there at once
    critical_part_cap: float = 100.0
    # 2.2: the off-market allowance is the share the market's median broker has (what chance flags), if larger
    off_market_chance_from_market: bool = False
    # 2.4: what each measure is divided by before its band maps it to points (see ``Reference``). 2.2-2.3 put
    # the market's median at every band's middle; 2.4 measures each broker on a fixed scale of its own.
    cost_reference: Reference = Reference.MARKET
    news_reference: Reference = Reference.MARKET
    excursion_reference: Reference = Reference.MARKET
    latency_reference: Reference = Reference.MARKET

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
    version="2.4",
    window=timedelta(days=7),
    components=(
        Component(
            "regulation",
            "Regulation",
            0.25,
            False,
            "Licences from strict regulators count most; suspended, revoked or unverified ones count little or nil.",
            "The strongest licence gives its tier's points times its status factor; further licences add nothing "
            "(a client's money sits with one entity under one licence). No usable licence scores 0. A licence "
            "whose entry in the "
            "regulator's public register was not checked in the last 90 days counts less, down to half its points "
            "90 days later; a licence never checked counts at half.",
        ),
        Component(
            "cost",
            "Cost",
            0.20,
            True,
            "Time-weighted spread plus commission, per instrument, against the instrument's reference spread.",
            "For each instrument: the mean of hourly time-weighted spreads of the account the prices come from, "
            "plus the extra cost of the broker's cheapest account open to a $2,000 retail deposit (its round-turn "
            "commission and its spread mark-up over the priced account; FX only, at a pip value of $10 per lot), "
            "divided by the instrument's reference spread (a competitive spread, published per instrument). The "
            "geometric mean of those ratios is mapped to points: 0.8 times the reference or less 100, 3.2 times it "
            "or more 0, log-linear between. A broker's cost points therefore move only when its own cost does. An "
            "instrument without a reference spread is compared with the median of all brokers quoting it, which "
            "counts as the middle of that scale (50).",
        ),
        Component(
            "stability",
            "Stability",
            0.15,
            True,
            "How the broker holds up at high-impact releases: how far its spread widens, and whether it quotes.",
            "Widening (60 %): mean 1-minute spread in windows around high-impact events for instruments the "
            "event's currency moves (index CFDs follow their home currency: US500 USD, GER40 EUR), divided by "
            "the broker's own mean spread: 1 times (no widening) 100, 8 times or more 0, log-linear between, "
            "judged on the minutes it quoted (neutral when it quoted none). Quoting (40 %): the share of those "
            "windows' minutes it quoted, where another broker did; every minute dark costs its share, so going "
            "dark at a release never beats widening. "
            "No release in the window: nothing to measure, neutral.",
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
            "were recorded. An hour is off-market when that deviation is more than a factor times the median of "
            "the other brokers' largest deviations in the same hour. Off-market (60 %): the share of off-market "
            "hours beyond the share of the market's median broker (what chance alone flags) takes points "
            "linearly, all of them at 30 %, plus half the share of the hours holding a "
            "high-impact release that were off-market, so quoting off-market only at releases does not hide. "
            "Ordinary deviation (40 %): the mean over the other hours, so an off-market hour counts once, "
            "divided by that of the broker following the consensus most closely on the instrument: 1 times 100, "
            "8 times or more 0.",
        ),
        Component(
            "reliability",
            "Reliability",
            0.10,
            True,
            "Feed uptime, frozen and stale prices, outages at releases, gaps, malformed quotes, latency and depth.",
            "Four parts. Availability (30 %): the share of time without a usable price (down or stale, or hours "
            "without prices where the typical broker had some, whichever is more, plus the share of quotes "
            "rejected as malformed), with high-impact news-window time counted twice; 2 % of the time takes every "
            "point, and each disconnect a day 5 more. Frozen (40 %): of the time in which the other brokers' prices "
            "moved by more than 4 of the broker's price steps, the share in which its quote repeated the same bid "
            "and ask, counted like no price (2 % takes every point); a repeat while the market moved less than "
            "the broker's price step is never counted. Latency (15 %): the typical delay (geometric mean) from "
            "the broker's timestamp to our receipt: 40 ms or less 100, 400 ms or more 0. Depth (15 %): the shares of "
            "quotes with at least 1, 5 and 10 lots on both sides of the touch. A part not measured counts as "
            "neutral (50).",
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
        VersionNote(
            "2.2",
            "2026-12-01",
            "Scores rank brokers the way their behaviour and licences say they should, on markets the test suite does"
            " not contain too (validation section). Each measured component is a weighted sum of separate parts, so "
            "no trait counts twice: an off-market hour no longer also inflates the ordinary deviation, going dark at "
            "releases costs the quoting part of stability instead of wiping out widening, frozen prices count like no"
            " price (2.1 counted them at a tenth of what the validation rule says), and availability stops at 2 % of "
            "the time out instead of growing without end. Every broker is compared with the market's median including"
            " itself (a median of the others pushed the two brokers either side of it apart: 11 cost points in one "
            "random market of six); every band is centred on that median (50 points). Tier 1 licences count 100 and "
            "further licences nothing. Off-market hours cost points beyond the share the market's median broker has "
            "(what chance flags), all of them at 30 %. Heavy off-market quoting is judged on the share of all hours, "
            "as published; release hours cost points instead. A critical failure caps licences and market behaviour "
            "at 45 of their 85 points (the validation rule's cap; transparency adds its share, so at most 60) instead"
            " of 64.9, which put a broker with a suspended licence mid-field. Spread volatility no longer counts: the"
            " validation rule does not rank by it, and the hours that move it most are the release hours that "
            "widening already counts.",
        ),
        VersionNote(
            "2.3",
            "2026-12-01",
            "Reliability is measured from every recorded quote: frozen prices (the share of the time the other "
            "brokers' prices moved by more than 4 of the broker's price steps in which its quote repeated, at any "
            "quote rate, where 2.2 looked for runs of 30 s that the recorded data never had), the typical delay "
            "from the broker's timestamp to our receipt, and the size at the touch in lots. Until now these parts "
            "counted as neutral for every broker, so reliability only told outages apart.",
        ),
        VersionNote(
            "2.4",
            "2026-12-01",
            "Each broker is measured on a fixed scale of its own instead of against the market's median: cost "
            "against the instrument's published reference spread (0.8 times it 100 points, 3.2 times it 0), "
            "widening at releases on its own ratio (1 times 100, 8 times 0), latency in milliseconds (40 ms 100, "
            "400 ms 0) and the ordinary deviation against the broker following the consensus most closely. Under "
            "2.3 the median broker scored 50 whatever the market was like, so in a market of mostly good brokers "
            "the good ones fell below a broker capped for a suspended licence, and a broker's score moved whenever "
            "the others' did. On the validation's markets the suite does not contain, ranked against the written "
            "rule, 2.4 ranks more of them correctly (validation section).",
        ),
    ),
    tier_points={1: 100.0, 2: 65.0, 3: 30.0},
    licence_status_factor={"active": 1.0, "unverified": 0.3, "suspended": 0.0, "revoked": 0.0},
    extra_licence_share=0.0,
    cost_band=Band(good=0.8, bad=3.2),
    cost_reference=Reference.INSTRUMENT,
    fx_pip_value_usd=10.0,
    news_before=timedelta(minutes=5),
    news_after=timedelta(minutes=15),
    news_band=Band(good=1.0, bad=8.0),
    news_reference=Reference.OWN,
    news_share=0.6,
    excursion_band=Band(good=1.0, bad=8.0),
    excursion_reference=Reference.BEST,
    off_market_factor=3.0,
    off_market_min_peers=2,
    off_market_share_free=0.0,
    off_market_share_zero=0.3,
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
    latency_band=Band(good=40.0, bad=400.0),
    latency_reference=Reference.OWN,
    frozen_min_s=30.0,
    news_off_market_weight=0.5,
    full_density_quotes_per_hour=3.0,
    bootstrap_samples=24,
    band_percentiles=(5.0, 95.0),
    news_coverage_share=0.4,
    critical_part_cap=45.0,
    off_market_chance_from_market=True,
    integrity_off_market_share=0.6,
    reliability_parts={"availability": 0.3, "frozen": 0.4, "latency": 0.15, "depth": 0.15},
    outage_zero_share=0.02,
    frozen_zero_share=0.02,
    news_outage_weight=2.0,
)

assert abs(sum(METHODOLOGY.weights.values()) - 1.0) < 1e-9, "component weights must add up to 1"
assert abs(sum(METHODOLOGY.transparency_points.values()) - 100.0) < 1e-9, "transparency points must add up to 100"
