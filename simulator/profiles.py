"""Ground truth of the 14 demo brokers (simulator/world.py): how each one's simulated feed behaves.

`quality_rank` (1 = best) is the order these traits add up to; tests and the trust-score engine can
check measured data against it. Traits follow each broker's description: Northwind, Alpenbank and
Kestrel tight and reliable; Coral Reef widens sharply around news; Palmetto Global quotes off-market;
Vanguard Pacific FX has frequent outages; Kiwi Edge has patchy connectivity at the Asian open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from simulator import world as demo_data  # plain data module, no Django


def slugify(name: str) -> str:
    """Same result as django.utils.text.slugify for the ASCII broker names."""
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", name.lower())).strip("-_")


@dataclass(frozen=True)
class BrokerProfile:
    slug: str
    name: str
    quality_rank: int  # 1 = best; the ground-truth order of all traits together
    markup: float  # spread multiple of the instrument's typical spread
    news_widening: float  # spread multiple at full news intensity (1.0 = no widening)
    latency_ms: float  # mean delay from broker timestamp to our receipt
    stale_ms: float  # how far the broker's price lags the reference market
    freeze_rate: float  # share of quotes repeating the previous price (stale quotes)
    disconnects_per_day: float
    outage_mean_s: float
    off_market_rate: float  # share of quotes away from the consensus
    off_market_spreads: float  # how far away, in typical spreads
    depth_levels: int  # 1-5
    size_factor: float  # top-of-book size as a multiple of the instrument's typical size
    bad_quote_rate: float  # share of malformed quotes (NaN, crossed, duplicates, unknown symbols)
    instruments: tuple[str, ...]
    suffix: str
    outage_hours: tuple[int, int] | None = None  # UTC hours where outages cluster, e.g. the Asian open
    instrument_markup: dict[str, float] = field(default_factory=dict)  # specialities

    def symbol(self, instrument: str) -> str:
        return instrument + self.suffix


_JPY = {"USDJPY": 0.7, "EURJPY": 0.7, "GBPJPY": 0.7, "AUDJPY": 0.7}
_METALS = {"XAUUSD": 0.7, "XAGUSD": 0.7}


# slug -> (rank, markup, news, latency, stale, freeze, disconnects/day, outage s, off rate, off size,
#          depth, size, bad rate, outage hours, specialities)
class _Traits(NamedTuple):
    rank: int
    markup: float
    news: float
    latency: float
    stale: float
    freeze: float
    disconnects: float
    outage_s: float
    off_rate: float
    off_size: float
    depth: int
    size: float
    bad: float
    hours: tuple[int, int] | None
    special: dict[str, float]


_TRAITS: dict[str, _Traits] = {
    "northwind-markets": _Traits(1, 1.0, 1.5, 40, 0, 0.002, 0.05, 20, 0.0, 0.0, 5, 3.0, 0.0002, None, {}),
    "alpenbank-trading": _Traits(2, 1.1, 1.4, 50, 0, 0.002, 0.05, 25, 0.0, 0.0, 5, 4.0, 0.0002, None, {}),
    "kestrel-fx": _Traits(3, 1.05, 1.8, 45, 0, 0.003, 0.1, 30, 0.0, 0.0, 5, 2.5, 0.0003, None, {}),
    "sakura-securities-fx": _Traits(4, 1.3, 1.8, 60, 50, 0.004, 0.15, 30, 0.0005, 3.0, 4, 2.0, 0.0005, None, _JPY),
    "rheinwerk-broker": _Traits(
        5, 1.35, 2.0, 70, 50, 0.005, 0.15, 40, 0.0005, 3.0, 4, 2.0, 0.0005, None, {"GER40": 0.6, "US500": 0.8}
    ),
    "lionsgate-capital": _Traits(6, 1.4, 2.0, 80, 80, 0.005, 0.2, 45, 0.001, 3.0, 3, 1.5, 0.0005, None, _METALS),
    "meridian-prime": _Traits(7, 1.6, 2.2, 90, 100, 0.006, 0.25, 60, 0.001, 3.0, 3, 1.2, 0.001, None, {}),
    "dune-capital-markets": _Traits(8, 1.7, 2.5, 120, 120, 0.008, 0.3, 60, 0.002, 4.0, 3, 1.0, 0.001, None, {}),
    "cypress-trade": _Traits(9, 1.9, 2.6, 130, 150, 0.01, 0.3, 60, 0.002, 4.0, 2, 1.0, 0.001, None, {}),
    "table-bay-markets": _Traits(
        10, 2.1, 3.0, 150, 150, 0.012, 0.4, 90, 0.003, 4.0, 2, 0.8, 0.0015, None, {"USDZAR": 0.5}
    ),
    "kiwi-edge-fx": _Traits(
        11, 1.8, 2.8, 180, 200, 0.015, 4.0, 120, 0.003, 4.0, 2, 0.8, 0.002, (21, 1), {"NZDUSD": 0.6}
    ),
    "coral-reef-trading": _Traits(12, 2.4, 8.0, 200, 250, 0.02, 0.6, 120, 0.005, 5.0, 1, 0.5, 0.003, None, {}),
    "palmetto-global": _Traits(13, 2.6, 3.5, 250, 300, 0.02, 0.8, 150, 0.05, 10.0, 1, 0.5, 0.005, None, {}),
    "vanguard-pacific-fx": _Traits(14, 3.0, 4.0, 350, 500, 0.03, 8.0, 600, 0.01, 6.0, 1, 0.3, 0.008, None, {}),
}


def _build() -> dict[str, BrokerProfile]:
    out: dict[str, BrokerProfile] = {}
    for spec in demo_data.BROKERS:
        name = str(spec["name"])
        slug = slugify(name)
        t = _TRAITS[slug]
        instruments = spec["instruments"]
        assert isinstance(instruments, list)
        out[slug] = BrokerProfile(
            slug=slug,
            name=name,
            quality_rank=t.rank,
            markup=t.markup,
            news_widening=t.news,
            latency_ms=t.latency,
            stale_ms=t.stale,
            freeze_rate=t.freeze,
            disconnects_per_day=t.disconnects,
            outage_mean_s=t.outage_s,
            off_market_rate=t.off_rate,
            off_market_spreads=t.off_size,
            depth_levels=t.depth,
            size_factor=t.size,
            bad_quote_rate=t.bad,
            outage_hours=t.hours,
            instrument_markup=dict(t.special),
            instruments=tuple(str(s) for s in instruments),
            suffix=str(spec["suffix"]),
        )
    return out


BROKER_PROFILES: dict[str, BrokerProfile] = _build()
