"""What a spread costs a trader in USD per standard lot, round turn.

The hook for all-in costs: today this is the spread alone at a fixed contract size per asset class.
When accounts carry commissions per lot (issue 11), add the account's commission in ``cost_per_lot_usd``;
every event figure reads it from here.
"""

from __future__ import annotations

# Units of the instrument in one standard lot (FX: pips are priced through FX_PIP_VALUE_USD instead).
LOT_UNITS = {"XAUUSD": 100.0, "XAGUSD": 5_000.0}
FX_PIP_VALUE_USD = 10.0  # a pip on a standard lot of a USD-quoted pair; other pairs approximated alike
DEFAULT_UNITS = 1.0  # index and crypto CFDs: one unit of the index or coin per lot


def cost_per_lot_usd(*, symbol: str, asset_class: str, pip_size: float, spread: float) -> float:
    """The spread (price units) as USD per standard lot."""
    if asset_class.startswith("fx"):
        return spread / pip_size * FX_PIP_VALUE_USD
    return spread * LOT_UNITS.get(symbol, DEFAULT_UNITS)
