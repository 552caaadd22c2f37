"""The TrustMetrics scoring core: plain data in, scores out. No Django, no I/O, deterministic.

Market measures are compared with the other brokers quoting the same instrument (a broker is good
or bad relative to what the market offers), then mapped to 0-100 with the bands in the methodology.
Measured components are pulled towards a neutral score in proportion to missing data, so a broker
with little data lands in the middle and says so through its confidence, instead of scoring high or
low by accident.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import operator
import random
import statistics
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from marketdata.aggregation import RELIABILITY_FIELDS
from trustmetrics.methodology import METHODOLOGY, Band, Methodology, Reference

# Hours of market data (on the instruments the market quotes most) for full confidence.
FULL_CONFIDENCE_HOURS = 72


class ScoringInputError(ValueError):
    """Inputs that cannot describe a real broker (negative counts, unknown tier, ...)."""


@dataclass(frozen=True)
class LicenceInput:
    tier: int
    status: str
    # Days since the licence was last checked against the regulator's public register; None: never.
    verified_days_ago: int | None = 0

    @property
    def checked(self) -> bool:
        """Checked within the methodology's verification period (90 days)."""
        return self.verified_days_ago is not None and self.verified_days_ago <= METHODOLOGY.licence_verified_days


def licence_check_factor(lic: LicenceInput, methodology: Methodology = METHODOLOGY) -> float:
    """Share of its points a licence counts with, by the age of its last register check.

    Full within ``licence_verified_days``; then falling linearly to ``unchecked_licence_factor`` over the
    next ``licence_decay_days`` (2.1: a ramp, so a check ageing by a day moves a score by a sliver, not by
    half a licence); never checked: ``unchecked_licence_factor``.
    """
    age = lic.verified_days_ago
    if age is None:
        return methodology.unchecked_licence_factor
    over = age - methodology.licence_verified_days
    if over <= 0:
        return 1.0
    share = min(1.0, over / methodology.licence_decay_days) if methodology.licence_decay_days > 0 else 1.0
    return 1.0 - (1.0 - methodology.unchecked_licence_factor) * share


@dataclass(frozen=True)
class ProfileInput:
    year_founded: int
    company_type: str
    has_description: bool = False
    has_website: bool = False
    has_headquarters: bool = False
    account_count: int = 0
    platform_count: int = 0
    funding_count: int = 0
    instrument_count: int = 0
    segregated_funds: bool = False
    negative_balance_protection: bool = False


@dataclass(frozen=True)
class InstrumentStats:
    """Additive sums over hourly bars (and 1-minute bars in news windows) of one broker and instrument."""

    symbol: str
    asset_class: str
    pip_size: float
    reference_spread: float = 0.0  # 2.4: the instrument's published reference spread (price units); 0: none
    hours: int = 0  # hourly bars with quotes
    sum_mean: float = 0.0  # sum of the hourly time-weighted mean spreads (price units)
    sum_mean_sq: float = 0.0
    quotes: int = 0
    dev_hours: int = 0  # hours in which a consensus was measured (the only hours deviations exist for)
    sum_excursion: float = 0.0  # sum over those hours of the largest |mid - consensus mid| (price units)
    off_market_hours: int = 0  # of those hours, the ones judged off-market (see off_market_hours())
    news_minutes: int = 0  # 1-minute bars inside high-impact news windows for this instrument's currencies
    news_sum_mean: float = 0.0
    news_hours: int = 0  # measured hours holding a high-impact release that moves this instrument
    news_off_market_hours: int = 0  # of those, the ones judged off-market
    off_market_sum_excursion: float = 0.0  # of sum_excursion, the part in hours judged off-market (2.2)
    # 2.3: reliability measured from the quotes themselves (marketdata.aggregation defines them)
    frozen_s: float = 0.0  # seconds the price stood still while the other brokers' prices moved
    frozen_judged_s: float = 0.0  # seconds in which they moved enough for a tracking price to change
    latency_count: int = 0  # quotes with a receipt time
    latency_log_sum: float = 0.0  # sum of ln(1 + delay in ms), broker timestamp to ingest
    depth_count: int = 0  # quotes with a touch size
    depth_1: int = 0  # of those, with at least 1, 5 and 10 lots on both sides of the touch
    depth_5: int = 0
    depth_10: int = 0

    def __add__(self, other: InstrumentStats) -> InstrumentStats:
        if other.symbol != self.symbol:
            raise ScoringInputError(f"cannot add {other.symbol} statistics to {self.symbol}")
        return InstrumentStats(
            symbol=self.symbol,
            asset_class=self.asset_class,
            pip_size=self.pip_size,
            reference_spread=self.reference_spread,
            hours=self.hours + other.hours,
            sum_mean=self.sum_mean + other.sum_mean,
            sum_mean_sq=self.sum_mean_sq + other.sum_mean_sq,
            quotes=self.quotes + other.quotes,
            dev_hours=self.dev_hours + other.dev_hours,
            sum_excursion=self.sum_excursion + other.sum_excursion,
            off_market_hours=self.off_market_hours + other.off_market_hours,
            news_minutes=self.news_minutes + other.news_minutes,
            news_sum_mean=self.news_sum_mean + other.news_sum_mean,
            news_hours=self.news_hours + other.news_hours,
            news_off_market_hours=self.news_off_market_hours + other.news_off_market_hours,
            off_market_sum_excursion=self.off_market_sum_excursion + other.off_market_sum_excursion,
            frozen_s=self.frozen_s + other.frozen_s,
            frozen_judged_s=self.frozen_judged_s + other.frozen_judged_s,
            latency_count=self.latency_count + other.latency_count,
            latency_log_sum=self.latency_log_sum + other.latency_log_sum,
            depth_count=self.depth_count + other.depth_count,
            depth_1=self.depth_1 + other.depth_1,
            depth_5=self.depth_5 + other.depth_5,
            depth_10=self.depth_10 + other.depth_10,
        )

    @property
    def mean_spread(self) -> float:
        return self.sum_mean / self.hours

    @property
    def ordinary_excursion(self) -> float:
        """Mean largest deviation over the measured hours not judged off-market (those count apart)."""
        ordinary = max(0.0, self.sum_excursion - self.off_market_sum_excursion)  # sums read apart may differ by ulps
        return ordinary / (self.dev_hours - self.off_market_hours)

    @property
    def spread_cv(self) -> float:
        """Coefficient of variation of the hourly mean spreads."""
        mean = self.mean_spread
        variance = max(0.0, self.sum_mean_sq / self.hours - mean * mean)
        return math.sqrt(variance) / mean if mean > 0 else 0.0


# 2.3: the reliability measures the aggregator records per bar (RELIABILITY_FIELDS, imported above), summed
# per day under the same names.
# The daily inputs: each one a sum over the day, so any span of days is their sum (also the columns
# of TrustDailyInput that trustmetrics.selectors reads).
DAILY_FIELDS = (
    "hours",
    "sum_mean",
    "sum_mean_sq",
    "quotes",
    "dev_hours",
    "sum_excursion",
    "off_market_hours",
    "news_minutes",
    "news_sum_mean",
    "news_hours",
    "news_off_market_hours",
    "off_market_sum_excursion",
    *RELIABILITY_FIELDS,
)


@dataclass(frozen=True)
class FeedStats:
    observed_s: float
    up_s: float
    stale_s: float
    down_s: float
    disconnects: int
    frozen_s: float | None = None  # seconds the price stood still while the consensus moved; None: not detected
    news_s: float = 0.0  # observed seconds inside high-impact news windows
    news_out_s: float = 0.0  # of those, seconds down, stale or frozen


@dataclass(frozen=True)
class ExecutionStats:
    """What a trader's order meets: delay from the broker's timestamp to our receipt, and book depth."""

    latency_ms: float  # median delay from broker timestamp to receipt
    depth_1: float  # share of sampled books with at least 1 lot on the touch side's levels
    depth_5: float
    depth_10: float


def normalised_excursion(excursion: float, quotes: int) -> float:
    """An hour's largest deviation from the consensus, divided by what noise alone gives at that quote count.

    The largest of n draws of the same noise grows like sqrt(2 ln n): a feed recorded ten times as often
    shows larger extremes with the same prices. Dividing by that makes price integrity independent of how
    often quotes were recorded (the same formula runs in SQL in trustmetrics.selectors).
    """
    return excursion / math.sqrt(2.0 * math.log(max(quotes, 2)))


def frozen_seconds(
    samples: Sequence[tuple[float, float, float]], *, min_s: float, move: float
) -> list[tuple[float, float]]:
    """Spans (start, end) in which the broker's mid stood still for ``min_s`` or longer while the consensus moved.

    ``samples`` are (time in seconds, broker mid, consensus mid of the others) in time order. A repeated
    quote is not a fault when the market is still; it is when the consensus moved by ``move`` or more
    during the run: the feed is frozen, and anyone trading on it trades on an old price.
    """
    out: list[tuple[float, float]] = []
    i = 0
    n = len(samples)
    while i < n:
        j = i
        lo = hi = samples[i][2]
        while j + 1 < n and samples[j + 1][1] == samples[i][1]:
            j += 1
            lo, hi = min(lo, samples[j][2]), max(hi, samples[j][2])
        start, end = samples[i][0], samples[j][0]
        if end - start >= min_s and hi - lo >= move:
            out.append((start, end))
        i = j + 1
    return out


@dataclass(frozen=True)
class BrokerInputs:
    broker_id: int
    licences: tuple[LicenceInput, ...]
    profile: ProfileInput
    as_of_year: int
    commission_per_lot: float = 0.0
    instruments: tuple[InstrumentStats, ...] = ()
    feed: FeedStats | None = None
    rejected_quotes: int = 0  # quotes the validator rejected as malformed in the window
    execution: ExecutionStats | None = None  # latency and depth, when recorded


@dataclass(frozen=True)
class ScoreResult:
    broker_id: int
    overall: float
    label: str
    confidence: float
    components: dict[str, float]
    inputs: dict[str, Any] = field(default_factory=dict)


def validate(inputs: BrokerInputs, methodology: Methodology = METHODOLOGY) -> None:
    """Raise ScoringInputError with a clear message when inputs are impossible."""
    for lic in inputs.licences:
        if lic.tier not in methodology.tier_points:
            raise ScoringInputError(f"broker {inputs.broker_id}: unknown regulator tier {lic.tier}")
        if lic.status not in methodology.licence_status_factor:
            raise ScoringInputError(f"broker {inputs.broker_id}: unknown licence status {lic.status!r}")
        if lic.verified_days_ago is not None and lic.verified_days_ago < 0:
            raise ScoringInputError(f"broker {inputs.broker_id}: a licence checked in the future")
    if inputs.rejected_quotes < 0:
        raise ScoringInputError(f"broker {inputs.broker_id}: negative rejected quotes")
    if inputs.commission_per_lot < 0:
        raise ScoringInputError(f"broker {inputs.broker_id}: negative commission")
    for s in inputs.instruments:
        counts = (s.hours, s.quotes, s.news_minutes, s.dev_hours, s.off_market_hours)
        if (
            min(counts) < 0
            or s.sum_mean < 0
            or s.sum_excursion < 0
            or s.pip_size <= 0
            or not 0 <= s.reference_spread < math.inf
        ):
            raise ScoringInputError(f"broker {inputs.broker_id}: impossible statistics for {s.symbol}")
        if s.dev_hours > s.hours:
            raise ScoringInputError(f"broker {inputs.broker_id}: more measured hours than hours for {s.symbol}")
        if s.news_off_market_hours > s.news_hours or s.news_hours > s.dev_hours or s.news_off_market_hours < 0:
            raise ScoringInputError(f"broker {inputs.broker_id}: impossible release-hour counts for {s.symbol}")
        if s.off_market_hours > s.dev_hours:
            raise ScoringInputError(
                f"broker {inputs.broker_id}: more off-market hours than measured hours for {s.symbol}"
            )
        # Sums read apart (SQL and Python) may differ in the last digits: a relative allowance, no more.
        if not 0 <= s.off_market_sum_excursion <= s.sum_excursion * (1 + 1e-9) + 1e-12:
            raise ScoringInputError(f"broker {inputs.broker_id}: impossible off-market deviations for {s.symbol}")
        if (
            not 0 <= s.frozen_s <= s.frozen_judged_s * (1 + 1e-9) + 1e-9
            or min(s.latency_count, s.latency_log_sum, s.depth_count) < 0
            or not s.depth_count >= s.depth_1 >= s.depth_5 >= s.depth_10 >= 0
            or not math.isfinite(s.latency_log_sum + s.frozen_judged_s)
        ):
            raise ScoringInputError(f"broker {inputs.broker_id}: impossible reliability measures for {s.symbol}")
    feed = inputs.feed
    if feed is not None and (
        min(feed.observed_s, feed.up_s, feed.stale_s, feed.down_s, feed.disconnects, feed.news_s, feed.news_out_s) < 0
        or (feed.frozen_s is not None and feed.frozen_s < 0)
    ):
        raise ScoringInputError(f"broker {inputs.broker_id}: negative feed durations")
    ex = inputs.execution
    if ex is not None and (
        not math.isfinite(ex.latency_ms)
        or ex.latency_ms < 0
        or not all(0.0 <= d <= 1.0 for d in (ex.depth_1, ex.depth_5, ex.depth_10))
    ):
        raise ScoringInputError(f"broker {inputs.broker_id}: impossible execution statistics")


def band_points(ratio: float, band: Band) -> float:
    """Log-linear: ``band.good`` or better is 100, ``band.bad`` or worse is 0."""
    if ratio <= 0:
        return 100.0
    share = (math.log(band.bad) - math.log(ratio)) / (math.log(band.bad) - math.log(band.good))
    return 100.0 * min(1.0, max(0.0, share))


def _clamp(value: float) -> float:
    return min(100.0, max(0.0, value))


def _geomean(values: Iterable[tuple[float, float]]) -> float | None:
    """Weighted geometric mean of (value, weight) pairs; None without any."""
    total_w = 0.0
    total = 0.0
    for value, weight in values:
        if value > 0 and weight > 0:
            total += math.log(value) * weight
            total_w += weight
    return math.exp(total / total_w) if total_w else None


def _geomean_equal(values: Iterable[float]) -> float | None:
    """``_geomean`` with every weight 1.0, without a pair per value: log(v) * 1.0 is log(v) and the weights add up
    to the count, so the sums, added in the same order one by one, are the same."""
    logs = [math.log(v) for v in values if v > 0]
    return math.exp(functools.reduce(operator.add, logs, 0.0) / len(logs)) if logs else None


def _peer_ratios(values: dict[int, dict[str, float]]) -> dict[int, dict[str, float]]:
    """Each broker's value per instrument divided by the market's median for it (all brokers quoting it).

    One reference for every broker (2.2). A median of the *other* brokers differs between a broker just
    below the market's median and one just above it (it is the next value up for the one, the next down for
    the other), which pushed the two apart: by 11 cost points in one random market of six. Alone on an instrument, a
    broker is its own reference (ratio 1, the middle of the band).
    """
    by_symbol: dict[str, dict[int, float]] = {}
    for broker_id in sorted(values):
        for symbol, v in sorted(values[broker_id].items()):
            by_symbol.setdefault(symbol, {})[broker_id] = v
    out: dict[int, dict[str, float]] = {b: {} for b in values}
    for symbol in sorted(by_symbol):
        per_broker = by_symbol[symbol]
        median = statistics.median(per_broker.values())
        if median > 0:
            for broker_id, v in per_broker.items():
                out[broker_id][symbol] = v / median
    return out


def _reference_ratios(
    values: dict[int, dict[str, float]],
    *,
    reference: Reference,
    band: Band,
    references: Mapping[str, float] | None = None,
) -> dict[int, dict[str, float]]:
    """Each broker's value per instrument as the ratio its band maps to points (``Reference`` says to what).

    MARKET: the value over the market's median, times the band's geometric middle, so the median broker scores
    50 (2.2-2.3; with a band centred on 1 this is ``_peer_ratios``). INSTRUMENT: over the instrument's reference
    in ``references``; an instrument without one falls back to MARKET. BEST: over the lowest value measured for
    the instrument. OWN: the value itself.
    """
    if reference == Reference.OWN:
        return {b: dict(per) for b, per in values.items()}
    if reference == Reference.BEST:
        lowest: dict[str, float] = {}
        for per in values.values():
            for symbol, v in per.items():
                if 0 < v < lowest.get(symbol, math.inf):
                    lowest[symbol] = v
        return {b: {sym: v / lowest[sym] for sym, v in per.items() if sym in lowest} for b, per in values.items()}
    fixed = {sym: r for sym, r in (references or {}).items() if r > 0} if reference == Reference.INSTRUMENT else {}
    # The market's medians only where an instrument has no reference of its own.
    peers = _peer_ratios(values) if any(sym not in fixed for per in values.values() for sym in per) else {}
    middle = math.sqrt(band.good * band.bad)
    out: dict[int, dict[str, float]] = {}
    for broker_id, per in values.items():
        mine = out[broker_id] = {}
        for symbol, v in per.items():
            if symbol in fixed:
                mine[symbol] = v / fixed[symbol]
            elif symbol in peers[broker_id]:
                mine[symbol] = peers[broker_id][symbol] * middle
    return out


def _median_without(ordered: list[float], value: float) -> float | None:
    """Median of ``ordered`` (sorted) with one occurrence of ``value`` left out; None when nothing is left."""
    n = len(ordered) - 1
    if n <= 0:
        return None
    i = bisect.bisect_left(ordered, value)
    mid = n // 2
    # Position k among the others is ordered[k] before the left-out value and ordered[k + 1] after it.
    upper = ordered[mid] if mid < i else ordered[mid + 1]
    if n % 2:
        return upper
    lower = ordered[mid - 1] if mid - 1 < i else ordered[mid]
    return (lower + upper) / 2


def regulation_points(licences: Sequence[LicenceInput], methodology: Methodology = METHODOLOGY) -> float:
    points = sorted(
        (
            methodology.tier_points[lic.tier]
            * methodology.licence_status_factor[lic.status]
            * licence_check_factor(lic, methodology)
            for lic in licences
        ),
        reverse=True,
    )
    if not points:
        return 0.0
    return _clamp(points[0] + methodology.extra_licence_share * sum(points[1:]))


def transparency_points(profile: ProfileInput, as_of_year: int, methodology: Methodology = METHODOLOGY) -> float:
    p = methodology.transparency_points
    years = max(0, as_of_year - profile.year_founded)
    total = (
        p["description"] * profile.has_description
        + p["website"] * profile.has_website
        + p["headquarters"] * profile.has_headquarters
        + p["accounts"] * (profile.account_count > 0)
        + p["platforms"] * (profile.platform_count > 0)
        + p["funding"] * (profile.funding_count > 0)
        + p["instruments"] * (profile.instrument_count > 0)
        + p["years"] * min(1.0, years / methodology.full_years)
        + p["company_type"] * methodology.company_type_points.get(profile.company_type, 0.0)
        + p["segregated_funds"] * profile.segregated_funds
        + p["negative_balance_protection"] * profile.negative_balance_protection
    )
    return _clamp(total)


def off_market_penalty(share: float, methodology: Methodology = METHODOLOGY, *, chance: float = 0.0) -> float:
    """Share of price-integrity points lost for a share of off-market hours.

    Nothing up to the allowance (the largest of many deviations beats the peers' now and then by
    chance), everything at ``off_market_share_zero``, linear between. The allowance is
    ``off_market_share_free`` or ``chance``, the share the market's median broker has, if larger.
    """
    free, zero = (
        max(methodology.off_market_share_free, min(chance, 0.5 * methodology.off_market_share_zero)),
        (methodology.off_market_share_zero),
    )
    return min(1.0, max(0.0, (share - free) / (zero - free)))


def off_market_hours(
    excursions: Iterable[tuple[int, Hashable, Hashable, float]], methodology: Methodology = METHODOLOGY
) -> set[tuple[int, Hashable, Hashable]]:
    """Which (broker, instrument, hour) were off-market, from each hour's largest deviation per broker.

    ``excursions`` holds (broker id, instrument, hour key, largest |mid - consensus|) for the hours in
    which a consensus was measured. An hour is off-market when the broker's excursion is more than
    ``off_market_factor`` times the median excursion of the other brokers quoting the instrument in
    the same hour: what counts as far away follows that hour's volatility and the instrument's price
    scale, and a tight spread is not held against the broker. Hours with too few peers are not judged.
    """
    by_hour: dict[tuple[Hashable, Hashable], dict[int, float]] = {}
    for broker_id, instrument, hour, excursion in excursions:
        if not math.isfinite(excursion) or excursion < 0:
            raise ScoringInputError(f"broker {broker_id}: impossible deviation {excursion!r} for {instrument}")
        by_hour.setdefault((instrument, hour), {})[broker_id] = excursion
    out: set[tuple[int, Hashable, Hashable]] = set()
    factor, min_peers = methodology.off_market_factor, methodology.off_market_min_peers
    for (instrument, hour), per_broker in by_hour.items():
        if len(per_broker) <= min_peers:
            continue
        ordered = sorted(per_broker.values())
        for broker_id, excursion in per_broker.items():
            median = _median_without(ordered, excursion)  # the others' median: this broker's value left out
            if median is not None and excursion > factor * median:
                out.add((broker_id, instrument, hour))
    return out


def _effective_cost(stats: InstrumentStats, commission_per_lot: float, methodology: Methodology) -> float:
    cost = stats.mean_spread
    if stats.asset_class.startswith("fx"):
        # Round-turn commission per standard lot, as pips at a fixed pip value, then as price.
        cost += commission_per_lot / methodology.fx_pip_value_usd * stats.pip_size
    return cost


class _MeasuredTotals(NamedTuple):
    """One broker's sums over the instruments it has hours on."""

    hours: int
    quotes: int
    dev_hours: int
    off_hours: int
    news_hours: int
    news_off_hours: int
    news_minutes: int


def _symbol(stats: InstrumentStats) -> str:
    return stats.symbol


def score_all(
    brokers: Sequence[BrokerInputs], methodology: Methodology = METHODOLOGY, *, check: bool = True, detail: bool = True
) -> list[ScoreResult]:
    """Score every broker against the others. The same inputs always give the same results."""
    brokers = sorted(brokers, key=lambda b: b.broker_id)
    if len({b.broker_id for b in brokers}) != len(brokers):
        raise ScoringInputError("each broker may appear only once")
    if check:
        for b in brokers:
            validate(b, methodology)

    measured: dict[int, dict[str, InstrumentStats]] = {}
    # Per broker, the sums over its measured instruments (in their order, as sum() would add them): one pass
    # instead of a generator per sum (the bootstrap scores every broker 24 times a day of a backfill).
    totals: dict[int, _MeasuredTotals] = {}
    cost_values: dict[int, dict[str, float]] = {}
    excursion_values: dict[int, dict[str, float]] = {}
    widening_values: dict[int, dict[str, float]] = {}
    expected: dict[str, int] = {}
    expected_news: dict[str, int] = {}
    quoted_hours: dict[str, list[int]] = {}
    for b in brokers:
        m = measured[b.broker_id] = {}
        hours = quotes = dev_hours = off_hours = news_hours = news_off_hours = news_minutes = 0
        for s in b.instruments:
            symbol = s.symbol
            if s.hours > expected.get(symbol, 0):
                expected[symbol] = s.hours
            elif symbol not in expected:
                expected[symbol] = 0
            if s.news_minutes > expected_news.get(symbol, 0):
                expected_news[symbol] = s.news_minutes
            elif symbol not in expected_news:
                expected_news[symbol] = 0
            if s.hours > 0:
                quoted_hours.setdefault(symbol, []).append(s.hours)
                m[symbol] = s
        # Each measured instrument's cost, ordinary deviation and news widening, compared with the market below.
        costs = cost_values[b.broker_id] = {}
        excursions = excursion_values[b.broker_id] = {}
        widenings = widening_values[b.broker_id] = {}
        for symbol, s in m.items():
            hours += s.hours
            quotes += s.quotes
            dev_hours += s.dev_hours
            off_hours += s.off_market_hours
            news_hours += s.news_hours
            news_off_hours += s.news_off_market_hours
            news_minutes += s.news_minutes
            costs[symbol] = _effective_cost(s, b.commission_per_lot, methodology)
            if s.dev_hours > s.off_market_hours:
                excursions[symbol] = s.ordinary_excursion
            spread = s.mean_spread
            if s.news_minutes > 0 and spread > 0:
                widenings[symbol] = (s.news_sum_mean / s.news_minutes) / spread
        totals[b.broker_id] = _MeasuredTotals(
            hours, quotes, dev_hours, off_hours, news_hours, news_off_hours, news_minutes
        )
    # Hours the typical broker quoting an instrument had prices in: what a gap is measured against (2.2), so
    # that one broker's odd extra hour is not a gap for everyone else.
    typical = {sym: statistics.median(hours) for sym, hours in quoted_hours.items()}

    references: dict[str, float] = {}
    for b in brokers:
        for s in b.instruments:
            if s.reference_spread > references.get(s.symbol, 0.0):
                references[s.symbol] = s.reference_spread
    cost = _reference_ratios(
        cost_values, reference=methodology.cost_reference, band=methodology.cost_band, references=references
    )
    excursion = _reference_ratios(
        excursion_values, reference=methodology.excursion_reference, band=methodology.excursion_band
    )
    widening = _reference_ratios(widening_values, reference=methodology.news_reference, band=methodology.news_band)

    measured_reliability = {b.broker_id: reliability_measures(b) for b in brokers}
    latencies = {k: v["latency_ms"] for k, v in measured_reliability.items() if v["latency_ms"] is not None}
    latency_ratio = {
        broker_id: ratios["latency"]
        for broker_id, ratios in _reference_ratios(
            {k: {"latency": max(v, 0.001)} for k, v in latencies.items()},
            reference=methodology.latency_reference,
            band=methodology.latency_band,
        ).items()
        if "latency" in ratios
    }

    # The share of off-market hours the market's median broker has: what chance alone flags at this recording
    # rate (2.2; an honest broker's largest deviation beats three times the others' median now and then).
    shares = [t.off_hours / t.dev_hours for t in totals.values() if t.dev_hours]
    chance = statistics.median(shares) if shares and methodology.off_market_chance_from_market else 0.0

    results = []
    for b in brokers:
        m = measured[b.broker_id]
        t = totals[b.broker_id]
        # The listed instruments in symbol order, added up in one pass (the order sum() would add them in).
        wanted = have = wanted_news = have_news = longest = 0
        typical_hours: float = 0  # an int 0 to start with, as sum() has
        gap_hours: float = 0
        for s in sorted(b.instruments, key=_symbol):
            exp = expected[s.symbol]
            if exp <= 0:
                continue
            wanted += exp
            have += min(s.hours, exp)
            typ = typical.get(s.symbol, 0.0)
            typical_hours += typ
            gap_hours += max(0.0, typ - s.hours)
            if exp > longest:
                longest = exp
            exp_news = expected_news[s.symbol]
            wanted_news += exp_news
            have_news += min(s.news_minutes, exp_news)
        coverage = have / wanted if wanted else 0.0
        gaps = gap_hours / typical_hours if wanted else 1.0
        history = min(1.0, longest / FULL_CONFIDENCE_HOURS)
        hours_measured = t.hours
        quotes_measured = t.quotes
        # Honest confidence: thin quoting and hours without a consensus to compare with count too.
        density = (
            min(1.0, quotes_measured / hours_measured / methodology.full_density_quotes_per_hour)
            if hours_measured and methodology.full_density_quotes_per_hour
            else 1.0
        )
        consensus = t.dev_hours / hours_measured if hours_measured else 0.0
        consensus_factor = 0.5 + 0.5 * consensus if methodology.full_density_quotes_per_hour else 1.0
        confidence = round(coverage * history * density * consensus_factor, 4)
        news_coverage = have_news / wanted_news if wanted_news else 1.0

        costs, excursions = cost[b.broker_id], excursion[b.broker_id]
        cost_ratio = _geomean_equal([costs[sym] for sym in sorted(costs)])
        exc_ratio = _geomean_equal([excursions[sym] for sym in sorted(excursions)])
        news_ratio = _geomean(
            (widening[b.broker_id][sym], float(m[sym].news_minutes)) for sym in sorted(widening[b.broker_id])
        )
        hours, dev_hours, news_hours = t.hours, t.dev_hours, t.news_hours
        off_share = t.off_hours / dev_hours if dev_hours else 0.0
        news_off_share = t.news_off_hours / news_hours if news_hours else 0.0

        raw: dict[str, float | None] = {}
        raw["cost"] = band_points(cost_ratio, methodology.cost_band) if cost_ratio is not None else None
        raw["stability"] = stability_points(
            news_ratio=news_ratio, news_coverage=news_coverage if wanted_news else None, methodology=methodology
        )
        raw["price_integrity"] = integrity_points(
            exc_ratio=exc_ratio,
            off_share=off_share if dev_hours else None,
            release_off_share=news_off_share if news_hours else None,
            chance=chance,
            methodology=methodology,
        )
        malformed = b.rejected_quotes / (b.rejected_quotes + quotes_measured) if b.rejected_quotes else 0.0
        rel = measured_reliability[b.broker_id]
        parts = (
            reliability_parts(
                gap_share=gaps,
                feed=b.feed,
                malformed=malformed,
                latency=(
                    band_points(latency_ratio[b.broker_id], methodology.latency_band)
                    if b.broker_id in latency_ratio
                    else None
                ),
                depth=100.0 * rel["depth_share"] if rel["depth_share"] is not None else None,
                frozen_share=rel["frozen_share"],
                methodology=methodology,
            )
            if wanted
            else None
        )
        raw["reliability"] = reliability_points(parts, methodology) if parts is not None else None
        raw["regulation"] = regulation_points(b.licences, methodology)
        raw["transparency"] = transparency_points(b.profile, b.as_of_year, methodology)

        components: dict[str, float] = {}
        for comp in methodology.components:
            value = raw[comp.key]
            if comp.measured:
                value = methodology.neutral if value is None else value
                value = confidence * value + (1 - confidence) * methodology.neutral
            assert value is not None
            components[comp.key] = round(_clamp(value), 2)
        overall = round(sum(components[c.key] * c.weight for c in methodology.components), 2)
        critical = critical_failures(off_share=off_share, licences=b.licences, methodology=methodology)
        cap = score_cap(
            off_share=off_share,
            licences=b.licences,
            transparency=components["transparency"],
            methodology=methodology,
        )
        overall = min(overall, cap)
        if not detail:  # the bootstrap's resamples need the score only, not the summary of its inputs
            results.append(
                ScoreResult(
                    broker_id=b.broker_id,
                    overall=overall,
                    label=methodology.label_for(overall, confidence),
                    confidence=confidence,
                    components=components,
                )
            )
            continue
        per_instrument = {
            sym: {
                "spread_pips": round(s.mean_spread / s.pip_size, 4),
                "news_ratio": (
                    round((s.news_sum_mean / s.news_minutes) / s.mean_spread, 4)
                    if s.news_minutes and s.mean_spread
                    else None
                ),
                "off_market_hours": s.off_market_hours,
            }
            for sym, s in sorted(m.items())
        }
        feed = b.feed
        feed_summary = (
            {
                "uptime": round(feed.up_s / feed.observed_s, 4) if feed.observed_s else None,
                "stale_share": round(feed.stale_s / feed.observed_s, 4) if feed.observed_s else None,
                "disconnects": feed.disconnects,
                "frozen_share": (
                    round(feed.frozen_s / feed.observed_s, 4) if feed.observed_s and feed.frozen_s is not None else None
                ),
                "news_out_share": round(feed.news_out_s / feed.news_s, 4) if feed.news_s else None,
            }
            if feed
            else None
        )
        results.append(
            ScoreResult(
                broker_id=b.broker_id,
                overall=overall,
                label=methodology.label_for(overall, confidence),
                confidence=confidence,
                components=components,
                inputs={
                    "coverage": round(coverage, 4),
                    "instruments_measured": len(m),
                    "instruments_listed": len(b.instruments),
                    "hours": hours,
                    "deviation_hours": dev_hours,
                    "quotes": quotes_measured,
                    "news_minutes": t.news_minutes,
                    "cost_ratio": _round(cost_ratio),
                    "news_widening_ratio": _round(news_ratio),
                    "excursion_ratio": _round(exc_ratio),
                    "off_market_share": round(off_share, 4),
                    "release_off_market_share": round(news_off_share, 4),
                    "commission_per_lot": b.commission_per_lot,
                    "licences": [
                        f"T{lic.tier}:{lic.status}{'' if lic.checked else ':unchecked'}" for lic in b.licences
                    ],
                    "feed": feed_summary,
                    "news_coverage": round(news_coverage, 4),
                    "quote_density": round(density, 4),
                    "consensus_share": round(consensus, 4),
                    "malformed_share": round(malformed, 6),
                    "reliability_parts": ({k: _round(v) for k, v in parts.items()} if parts is not None else None),
                    "depth_share": _round(rel["depth_share"]),
                    "latency_ratio": _round(latency_ratio.get(b.broker_id)),
                    "latency_ms": _round(rel["latency_ms"]),
                    "frozen_share": _round(rel["frozen_share"]),
                    "rejected_quotes": b.rejected_quotes,
                    "critical": critical,
                    "cap": round(cap, 2),
                    "per_instrument": per_instrument,
                },
            )
        )
    return results


def _weighted(parts: Iterable[tuple[float | None, float]]) -> float | None:
    """Weighted mean of the parts that were measured (None: not measured, left out); None without any."""
    present = [(value, weight) for value, weight in parts if value is not None and weight > 0]
    total = sum(weight for _, weight in present)
    return sum(value * weight for value, weight in present) / total if total else None


def stability_points(
    *, news_ratio: float | None, news_coverage: float | None, methodology: Methodology = METHODOLOGY
) -> float | None:
    """Stability 0-100: how the broker holds up at high-impact releases, in two parts with published weights.

    Widening: its spread in the news windows over its own mean spread (``news_ratio``: 2.4 the ratio itself,
    2.2-2.3 against the market's median), judged on the minutes it did quote (neutral when it quoted none: there
    is nothing to judge). Coverage: the share of the news-window minutes it quoted, so every minute it went dark
    costs its share explicitly and going dark never beats widening (a broker dark at every release keeps at most
    the neutral widening part, less than the worst widener's coverage part). ``news_coverage`` None: no release
    in the window, nothing measured.
    """
    if news_coverage is None:
        return None
    widening = band_points(news_ratio, methodology.news_band) if news_ratio is not None else methodology.neutral
    return _weighted(
        ((widening, 1.0 - methodology.news_coverage_share), (100.0 * news_coverage, methodology.news_coverage_share))
    )


def integrity_points(
    *,
    exc_ratio: float | None,
    off_share: float | None,
    release_off_share: float | None,
    chance: float = 0.0,
    methodology: Methodology = METHODOLOGY,
) -> float | None:
    """Price integrity 0-100: off-market hours, and the ordinary deviation from the consensus in the other hours.

    Off-market points lose ``off_market_penalty`` of the weekly share plus ``news_off_market_weight`` times the
    share of release hours off-market (quoting off-market only at releases hides in the week); the ordinary
    deviation is the mean over hours not judged off-market, so an off-market hour counts once, not twice.
    """
    if off_share is None:
        return None
    penalty = off_market_penalty(off_share, methodology, chance=chance)
    if release_off_share is not None:
        penalty += methodology.news_off_market_weight * release_off_share
    off_points = 100.0 * (1.0 - min(1.0, penalty))
    deviation = band_points(exc_ratio, methodology.excursion_band) if exc_ratio is not None else None
    share = methodology.integrity_off_market_share
    return _weighted(((off_points, share), (deviation, 1.0 - share)))


def reliability_measures(b: BrokerInputs) -> dict[str, float | None]:
    """The broker's frozen share, typical latency (ms) and depth share: from its quotes' measures where recorded
    (2.3: the aggregator records them per bar), else from the feed and execution statistics given; None: neither.

    Frozen: of the time the other brokers' prices moved by more than a few of the broker's price steps, the share
    its price stood still. Latency: the geometric mean delay from the broker's timestamp to ingest. Depth: the
    mean of the shares of quotes with at least 1, 5 and 10 lots on both sides of the touch.
    """
    judged = sum(s.frozen_judged_s for s in b.instruments)
    frozen: float | None = None
    if judged > 0:
        frozen = min(1.0, sum(s.frozen_s for s in b.instruments) / judged)
    elif b.feed is not None and b.feed.frozen_s is not None and b.feed.observed_s > 0:
        frozen = b.feed.frozen_s / b.feed.observed_s
    count = sum(s.latency_count for s in b.instruments)
    latency: float | None = None
    if count > 0:
        latency = math.expm1(sum(s.latency_log_sum for s in b.instruments) / count)
    elif b.execution is not None:
        latency = b.execution.latency_ms
    books = sum(s.depth_count for s in b.instruments)
    depth: float | None = None
    if books > 0:
        depth = sum(s.depth_1 + s.depth_5 + s.depth_10 for s in b.instruments) / books / 3
    elif b.execution is not None:
        depth = (b.execution.depth_1 + b.execution.depth_5 + b.execution.depth_10) / 3
    return {"frozen_share": frozen, "latency_ms": latency, "depth_share": depth}


def reliability_parts(
    *,
    gap_share: float,
    feed: FeedStats | None,
    malformed: float,
    latency: float | None,
    depth: float | None,
    frozen_share: float | None = None,
    methodology: Methodology = METHODOLOGY,
) -> dict[str, float | None]:
    """Reliability's parts, 0-100 each (None: not measured): availability, frozen prices, latency and depth.

    Availability: the share of time without a usable price (down or stale, or the share of hours without prices
    where the typical broker had some, whichever is larger, plus the share of quotes rejected as malformed),
    with release-window time counted ``news_outage_weight`` times; all of it gone at ``outage_zero_share``;
    disconnects cost points on top. Frozen: the share of time the price stood still while the consensus moved,
    all gone at ``frozen_zero_share`` (a frozen price is as bad as none).
    """
    out_share = gap_share
    frozen: float | None = None
    disconnects = 0.0
    if feed is not None and feed.observed_s > 0:
        out_s = max(feed.down_s + feed.stale_s, gap_share * feed.observed_s)
        extra = methodology.news_outage_weight - 1.0
        out_share = (out_s + extra * min(feed.news_out_s, feed.news_s)) / (feed.observed_s + extra * feed.news_s)
        disconnects = feed.disconnects / max(feed.observed_s / 86400, 1.0)
        if frozen_share is None and feed.frozen_s is not None:
            frozen_share = feed.frozen_s / feed.observed_s
    if frozen_share is not None:
        frozen = _clamp(100.0 * (1.0 - frozen_share / methodology.frozen_zero_share))
    availability = _clamp(
        100.0 * (1.0 - (out_share + malformed) / methodology.outage_zero_share)
        - disconnects * methodology.disconnect_penalty
    )
    return {"availability": availability, "frozen": frozen, "latency": latency, "depth": depth}


def reliability_points(parts: Mapping[str, float | None], methodology: Methodology = METHODOLOGY) -> float:
    """The weighted mean of reliability's parts with the published weights. A part not measured (no frozen
    detection, no execution records) counts as neutral, like any missing measurement: each part weighs what
    the methodology says, whatever else is measured."""
    weights = methodology.reliability_parts
    total = sum(weights.values())
    value = sum(
        (methodology.neutral if parts.get(key) is None else float(parts[key] or 0.0)) * weight
        for key, weight in weights.items()
    )
    return _clamp(value / total)


def critical_floor(*, transparency: float, methodology: Methodology = METHODOLOGY) -> float:
    """The lowest cap a critical failure imposes: ``critical_part_cap`` for licences and market behaviour, plus
    what the broker's transparency adds (it is no part of what failed). At most 60 with the 2.2 numbers."""
    return methodology.critical_part_cap + methodology.weights["transparency"] * transparency


def off_market_cap(off_share: float, methodology: Methodology = METHODOLOGY, *, floor: float | None = None) -> float:
    """The highest overall score a broker off-market in ``off_share`` of its measured hours can get.

    A continuous ramp, not a cliff: 100 up to ``off_market_cap_from``, falling linearly through ``critical_cap``
    (below "Good") at ``critical_off_market_share`` and on at the same slope down to ``floor`` (2.2; default
    ``critical_cap``, flat beyond). A switch at the threshold would let one more off-market hour move a score
    by tens of points; on the ramp a share that moves by d moves the cap by at most d times the ramp's slope
    (see ``off_market_cap_slope``).
    """
    if methodology.critical_off_market_share >= 1.0:
        return 100.0
    floor = methodology.critical_cap if floor is None else min(floor, methodology.critical_cap)
    over = max(0.0, off_share - methodology.off_market_cap_from)
    return max(floor, 100.0 - off_market_cap_slope(methodology) * over)


def off_market_cap_slope(methodology: Methodology = METHODOLOGY) -> float:
    """Cap points lost per unit of off-market share on the ramp (published with the rule)."""
    span = methodology.critical_off_market_share - methodology.off_market_cap_from
    return (100.0 - methodology.critical_cap) / span if span > 0 else 0.0


def score_cap(
    *,
    off_share: float,
    licences: Sequence[LicenceInput],
    transparency: float,
    methodology: Methodology = METHODOLOGY,
) -> float:
    """The overall score's ceiling: the off-market ramp, and the critical floor for a suspended or revoked licence."""
    floor = critical_floor(transparency=transparency, methodology=methodology)
    cap = off_market_cap(off_share, methodology, floor=floor)
    if any(lic.status in ("suspended", "revoked") for lic in licences):
        cap = min(cap, floor, methodology.critical_cap)
    return cap


def critical_failures(
    *, off_share: float, licences: Sequence[LicenceInput], methodology: Methodology = METHODOLOGY
) -> list[str]:
    """The published critical failures: any one caps the overall score below "Good" (see score_cap)."""
    out = []
    if off_share >= methodology.critical_off_market_share:
        out.append(f"off-market in {off_share:.0%} of measured hours")
    for lic in licences:
        if lic.status in ("suspended", "revoked"):
            out.append(f"a {lic.status} licence")
            break
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def explain_move(
    *,
    previous_overall: float,
    previous_components: dict[str, float],
    result: ScoreResult,
    methodology: Methodology = METHODOLOGY,
) -> str:
    """Why a score moved by more than the threshold: the components that moved, biggest effect first.

    Empty when the move is within the threshold.
    """
    delta = result.overall - previous_overall
    if abs(delta) < methodology.move_threshold:
        return ""
    moves = []
    for comp in methodology.components:
        before = previous_components.get(comp.key)
        after = result.components[comp.key]
        if before is None:
            moves.append((float("inf"), f"{comp.title} new at {after:.0f}"))
            continue
        change = after - before
        if abs(change) >= methodology.component_move_threshold:
            moves.append((abs(change) * comp.weight, f"{comp.title} {before:.0f} → {after:.0f} ({change:+.0f})"))
    moves.sort(key=lambda m: -m[0])
    parts = "; ".join(text for _, text in moves) or "many small component changes"
    return f"Overall {previous_overall:.1f} → {result.overall:.1f} ({delta:+.1f}): {parts}."


FEED_STATUSES = ("up", "stale", "down")


def feed_stats(*, changes: Sequence[tuple[float, str]], start: float, end: float) -> FeedStats | None:
    """Seconds up/stale/down and disconnects in [start, end) from a status change history.

    ``changes`` are (unix time, status) pairs, any order, and may include changes before ``start``
    (the last of them gives the status at ``start``). Before the first known change nothing is
    observed. Returns None when nothing at all is observed in the window.
    """
    if end <= start:
        raise ScoringInputError("the feed window must end after it starts")
    for _, status in changes:
        if status not in FEED_STATUSES:
            raise ScoringInputError(f"unknown feed status {status!r}")
    ordered = sorted(changes)
    seconds = dict.fromkeys(FEED_STATUSES, 0.0)
    disconnects = 0
    current: str | None = None
    cursor = start
    for at, status in ordered:
        if at >= end:
            break
        if at > cursor:
            if current is not None:
                seconds[current] += at - cursor
            cursor = at
        if at >= start and status == "down" and current != "down":
            disconnects += 1
        current = status
    if current is not None:
        seconds[current] += end - cursor
    observed = sum(seconds.values())
    if observed <= 0:
        return None
    return FeedStats(
        observed_s=observed,
        up_s=seconds["up"],
        stale_s=seconds["stale"],
        down_s=seconds["down"],
        disconnects=disconnects,
    )


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(cls: type) -> tuple[str, ...] | None:
    """A dataclass's field names; None for any other type (worked out once per type, not once per value)."""
    if cls not in _FIELD_NAMES:
        _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else None
    return _FIELD_NAMES[cls]


def _plain(value: Any) -> Any:
    """What dataclasses.asdict gives for the scoring inputs (dataclasses, tuples, scalars), without its deep copies."""
    names = _field_names(type(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def inputs_digest(inputs: BrokerInputs, methodology: Methodology = METHODOLOGY) -> str:
    """SHA-256 of the exact inputs and the methodology version: the same digest means the same score."""
    payload = json.dumps({"methodology": methodology.version, "inputs": _plain(inputs)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


# The additive fields the overall score reads (score_all with detail=False): the bootstrap resamples these and
# leaves the rest at 0 (sum_mean_sq only feeds spread_cv, which no score reads; a test holds this).
BOOTSTRAP_FIELDS = tuple(f for f in DAILY_FIELDS if f != "sum_mean_sq")


def bootstrap_bands(
    *,
    brokers: Sequence[BrokerInputs],
    daily: Mapping[tuple[int, str], Sequence[InstrumentStats | None]],
    days: int,
    seed: str,
    methodology: Methodology = METHODOLOGY,
) -> dict[int, tuple[float, float]]:
    """Uncertainty band of each broker's overall score: the window's days resampled with replacement.

    ``daily[(broker id, symbol)]`` holds that instrument's statistics per day of the window (None: no
    data that day). Each sample draws ``days`` day indices (the same draw for every broker, as the
    peers' days are the same days), adds the statistics up and scores everyone again. The band is the
    methodology's percentiles of those overall scores. Deterministic for a seed.
    """
    samples = methodology.bootstrap_samples
    if samples <= 0 or days <= 0:
        return {}
    rng = random.Random(seed)
    overall: dict[int, list[float]] = {b.broker_id: [] for b in brokers}
    # Every broker's instruments in one row, and each additive field as one column per instrument holding its
    # value on each day (the field's zero on a day without data). A sample's total of a field for an instrument
    # is then the sum of (times the day was drawn) x (that day's value) over the days in order: exactly what
    # adding the drawn days' statistics up gives (a zero-weight or missing day adds an exact 0), computed for
    # every instrument in one pass of C loops instead of one Python call per instrument and field (issue 15:
    # the 90-day backfill spent half its time here). A field 0 everywhere stays 0 in every sample: not summed.
    slots = [s for b in brokers for s in b.instruments]
    defaults = {f.name: f.default for f in dataclasses.fields(InstrumentStats)}
    zeros = tuple(defaults[name] for name in DAILY_FIELDS)
    values_of = operator.attrgetter(*DAILY_FIELDS)
    per_field: list[list[tuple[Any, ...]]] = [[] for _ in DAILY_FIELDS]
    for b in brokers:
        for s in b.instruments:
            per_day = list(daily.get((b.broker_id, s.symbol), ()))
            per_day += [None] * (days - len(per_day))
            # One tuple of every field per day, turned into one column per field over the days.
            for column, field_columns in zip(
                zip(*(zeros if st is None else values_of(st) for st in per_day), strict=True), per_field, strict=True
            ):
                field_columns.append(column)
    columns: list[Iterable[Any]] = []
    summed: list[tuple[int, list[tuple[Any, ...]]]] = []
    for position, (name, per_slot) in enumerate(zip(DAILY_FIELDS, per_field, strict=True)):
        if name in BOOTSTRAP_FIELDS and any(any(column) for column in per_slot):
            summed.append((position, per_slot))
            columns.append(())  # filled per sample
        else:
            columns.append(itertools.repeat(defaults[name]))
    symbols = [s.symbol for s in slots]
    classes = [s.asset_class for s in slots]
    pips = [s.pip_size for s in slots]
    references = [s.reference_spread for s in slots]
    ends = list(itertools.accumulate(len(b.instruments) for b in brokers))
    for _ in range(samples):
        drawn = [0] * days
        for _ in range(days):
            drawn[rng.randrange(days)] += 1
        weights = itertools.repeat(drawn)
        for position, per_slot in summed:
            columns[position] = list(map(sum, map(map, itertools.repeat(operator.mul), weights, per_slot)))
        # The fields 0 everywhere repeat their zero.
        rows = zip(symbols, classes, pips, references, *columns, strict=False)
        stats = list(map(_stats_from, rows))
        resampled = [
            dataclasses.replace(b, instruments=tuple(stats[end - len(b.instruments) : end]))
            for b, end in zip(brokers, ends, strict=True)
        ]
        # The day sums were validated with the window's inputs; resampling them cannot make them impossible.
        for r in score_all(resampled, methodology, check=False, detail=False):
            overall[r.broker_id].append(r.overall)
    lo_q, hi_q = methodology.band_percentiles
    return {b: (round(_percentile(v, lo_q), 2), round(_percentile(v, hi_q), 2)) for b, v in overall.items() if v}


# Every field of InstrumentStats (a test holds this).
_STATS_FIELDS = ("symbol", "asset_class", "pip_size", "reference_spread", *DAILY_FIELDS)


def _stats_from(row: tuple[Any, ...]) -> InstrumentStats:
    """An InstrumentStats from every field's value in _STATS_FIELDS order: what its generated __init__ gives,
    without one object.__setattr__ call per field (a frozen dataclass's; 23 per instrument and bootstrap sample)."""
    stats = object.__new__(InstrumentStats)
    stats.__dict__.update(zip(_STATS_FIELDS, row, strict=True))
    return stats


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class NewsNote:
    """The newest day's worst news widening of one broker: what a stability move is blamed on."""

    symbol: str
    ratio: float  # mean spread in the news windows over the day's mean spread
    event: str
    day: str  # e.g. "6 Nov"


def _worst_instrument_change(prev: dict[str, Any], cur: dict[str, Any]) -> str | None:
    best: tuple[float, str] | None = None
    for sym, now in cur.items():
        before = prev.get(sym)
        if not before or not before.get("spread_pips") or not now.get("spread_pips"):
            continue
        change = now["spread_pips"] / before["spread_pips"]
        score = abs(math.log(change))
        if best is None or score > best[0]:
            best = (score, f"{sym} mean spread {before['spread_pips']:.2f} → {now['spread_pips']:.2f} pips")
    return best[1] if best else None


def _licence_change(before: list[str], after: list[str]) -> str:
    unchecked_before = sum(x.endswith(":unchecked") for x in before)
    unchecked_after = sum(x.endswith(":unchecked") for x in after)
    if unchecked_after > unchecked_before:
        return f"{unchecked_after - unchecked_before} licence(s) no longer checked against the register in 90 days"
    if unchecked_after < unchecked_before:
        return f"{unchecked_before - unchecked_after} licence(s) checked against the regulator's register"
    statuses = sorted({x.split(":")[1] for x in after if ":" in x})
    return f"licence statuses now {', '.join(statuses) or 'none'}"


def move_details(
    *,
    previous_components: dict[str, float],
    previous_inputs: dict[str, Any],
    result: ScoreResult,
    news: NewsNote | None = None,
    methodology: Methodology = METHODOLOGY,
) -> list[dict[str, Any]]:
    """Each component that moved by the threshold or more: before, after, change and the measured cause in words."""
    cur = result.inputs
    out: list[dict[str, Any]] = []
    for comp in methodology.components:
        before = previous_components.get(comp.key)
        after = result.components.get(comp.key)
        if before is None or after is None or abs(after - before) < methodology.component_move_threshold:
            continue
        cause: str | None = None
        if comp.key == "cost":
            cause = _worst_instrument_change(previous_inputs.get("per_instrument", {}), cur.get("per_instrument", {}))
        elif comp.key == "stability":
            prev_cov, cov = previous_inputs.get("news_coverage"), cur.get("news_coverage")
            if prev_cov is not None and cov is not None and abs(cov - prev_cov) >= 0.05:
                cause = f"quoted {cov:.0%} of news-window minutes (was {prev_cov:.0%})"
            elif news is not None:
                cause = f"{news.symbol} spread {news.ratio:.1f}× its day's mean at {news.event} on {news.day}"
        elif comp.key == "price_integrity":
            prev_share, share = previous_inputs.get("off_market_share"), cur.get("off_market_share")
            if prev_share is not None and share is not None:
                cause = f"off-market in {share:.0%} of measured hours (was {prev_share:.0%})"
        elif comp.key == "reliability":
            prev_feed, feed = previous_inputs.get("feed") or {}, cur.get("feed") or {}
            parts = []
            if feed.get("uptime") is not None and prev_feed.get("uptime") is not None:
                parts.append(f"feed up {feed['uptime']:.1%} of the time (was {prev_feed['uptime']:.1%})")
            if previous_inputs.get("coverage") != cur.get("coverage"):
                parts.append(
                    f"prices in {cur.get('coverage', 0):.0%} of hours (was {previous_inputs.get('coverage', 0):.0%})"
                )
            cause = "; ".join(parts) or None
        elif comp.key == "regulation":
            cause = _licence_change(previous_inputs.get("licences", []), cur.get("licences", []))
        elif comp.key == "transparency":
            cause = "profile details changed"
        if cause is None and previous_inputs.get("coverage") != cur.get("coverage"):
            cause = "more measured data: pulled less towards the middle"
        out.append(
            {
                "component": comp.key,
                "title": comp.title,
                "before": round(before, 2),
                "after": round(after, 2),
                "change": round(after - before, 2),
                "cause": cause or "a new day of data entered the window and the oldest left it",
            }
        )
    out.sort(key=lambda m: -abs(float(m["change"])) * methodology.weights[str(m["component"])])
    return out
