"""What a trade really costs, per account: pure arithmetic, no Django (the selectors feed it).

All-in cost of one round-turn standard lot = the spread cost (spread x lot size, converted to USD) plus
the account's round-turn commission. An account's spread is the measured spread of the broker's feed
plus the difference between the account's published mark-up and the feed account's: the feed carries one
account's prices, the broker publishes how its other accounts differ from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, TypeVar

ACCOUNT_CURRENCY = "USD"
STANDARD_LOT = 100_000.0  # FX: units of the base currency
# Contract size of one lot outside FX: metals by symbol (gold 100 oz, silver 5,000 oz); one index unit; one coin.
METAL_LOTS = {"XAU": 100.0, "XAG": 5_000.0, "XPT": 100.0, "XPD": 100.0}
ASSET_CLASS_LOTS = {"metal": 100.0, "index": 1.0, "crypto": 1.0}
# Index CFDs have no currency pair in their symbol: the currency they are quoted in.
INDEX_CURRENCY = {
    "US500": "USD",
    "US30": "USD",
    "US100": "USD",
    "NAS100": "USD",
    "GER40": "EUR",
    "FRA40": "EUR",
    "EU50": "EUR",
    "UK100": "GBP",
    "JPN225": "JPY",
    "AUS200": "AUD",
    "HK50": "HKD",
}

# The published rule for the cost TrustMetrics scores: the broker's cheapest account that a retail client
# with this deposit can open (if none, the one with the lowest minimum deposit).
RETAIL_DEPOSIT_USD = Decimal("2000")
# Pip value of one standard FX lot, used to weigh a spread mark-up against a commission when choosing
# the cheapest account independently of the instrument.
FX_PIP_VALUE_USD = 10.0


def contract_size(*, symbol: str, asset_class: str) -> float:
    """Units in one standard lot of the instrument."""
    if asset_class.startswith("fx"):
        return STANDARD_LOT
    if asset_class == "metal":
        return METAL_LOTS.get(symbol[:3], ASSET_CLASS_LOTS["metal"])
    return ASSET_CLASS_LOTS.get(asset_class, 1.0)


def quote_currency(*, symbol: str, asset_class: str) -> str | None:
    """The currency prices are quoted in (EURUSD: USD, USDJPY: JPY, GER40: EUR); None if unknown."""
    if asset_class == "index":
        return INDEX_CURRENCY.get(symbol)
    if len(symbol) == 6 and symbol.isalpha():
        return symbol[3:]
    return None


class PricedAccount(Protocol):
    """What the arithmetic needs of an account type (the model has these fields)."""

    name: str
    min_deposit: Decimal
    commission_per_lot: Decimal
    spread_markup_pips: Decimal


A = TypeVar("A", bound=PricedAccount)


def feed_account_default(accounts: Iterable[A]) -> A | None:
    """The account a feed carries when its configuration names none: the broker's tightest price.

    Lowest mark-up, then lowest deposit, then the cheaper commission, then the name: never row ids.
    """
    return min(
        accounts, key=lambda a: (a.spread_markup_pips, a.min_deposit, a.commission_per_lot, a.name), default=None
    )


def account_spread_pips(*, feed_spread_pips: float, account_markup: Decimal, feed_markup: Decimal) -> float:
    """An account's spread from the feed's: the feed spread plus the mark-up difference (never below 0)."""
    return max(0.0, feed_spread_pips + float(account_markup - feed_markup))


def scoring_account(accounts: Iterable[A], *, feed: A | None) -> A | None:
    """The account the cost score uses: the cheapest one open to a RETAIL_DEPOSIT_USD deposit.

    Cheapest by mark-up over the feed (at FX_PIP_VALUE_USD per pip) plus round-turn commission; a tie
    goes to the lower deposit, then the name.
    """
    listed = list(accounts)
    if not listed:
        return None
    base = feed.spread_markup_pips if feed is not None else Decimal("0")
    open_to_retail = [a for a in listed if a.min_deposit <= RETAIL_DEPOSIT_USD] or [
        min(listed, key=lambda a: (a.min_deposit, a.name))
    ]

    def cost(a: A) -> tuple[float, Decimal, str]:
        extra = float(a.spread_markup_pips - base) * FX_PIP_VALUE_USD + float(a.commission_per_lot)
        return extra, a.min_deposit, a.name

    return min(open_to_retail, key=cost)


def scoring_commission_equivalent(account: PricedAccount | None, *, feed: PricedAccount | None) -> float:
    """The chosen account's cost over the feed spread as a round-turn commission per lot (USD).

    The scoring core adds a commission to the measured feed spread; a mark-up difference is the same kind
    of cost, so it is folded in at FX_PIP_VALUE_USD per pip. Never negative (the core rejects that).
    """
    if account is None:
        return 0.0
    base = feed.spread_markup_pips if feed is not None else Decimal("0")
    return max(0.0, float(account.commission_per_lot) + float(account.spread_markup_pips - base) * FX_PIP_VALUE_USD)


@dataclass(frozen=True)
class Conversion:
    usd_per_unit: float | None
    text: str  # how the rate was found, shown beside the figure


def usd_conversion(*, currency: str | None, rates: Mapping[str, tuple[float, str]]) -> Conversion:
    """USD per unit of ``currency`` from stored rates (currency -> (rate, as-of text))."""
    if currency is None:
        return Conversion(None, "quote currency unknown: no USD figure")
    if currency == ACCOUNT_CURRENCY:
        return Conversion(1.0, "quoted in USD")
    found = rates.get(currency)
    if found is None:
        return Conversion(None, f"no {currency}/USD rate on record: no USD figure")
    rate, as_of = found
    return Conversion(rate, f"1 {currency} = {rate:.6g} USD (rate of {as_of})")


def lot_pricing(*, symbol: str, asset_class: str, rates: Mapping[str, tuple[float, str]]) -> tuple[float, Conversion]:
    """What turns a spread into USD per standard lot: the instrument's contract size and the USD value of its
    quote currency (all_in_round_turn's lot_units and usd_per_quote)."""
    currency = quote_currency(symbol=symbol, asset_class=asset_class)
    return contract_size(symbol=symbol, asset_class=asset_class), usd_conversion(currency=currency, rates=rates)


@dataclass(frozen=True)
class AllIn:
    spread_cost_usd: float | None
    commission_usd: float
    all_in_usd: float | None


def all_in_round_turn(
    *, spread_pips: float | None, pip_size: float, lot_units: float, usd_per_quote: float | None, commission: float
) -> AllIn:
    """One standard lot opened and closed: the spread once (bought at the ask, sold at the bid) plus the
    round-turn commission. None where the spread or the conversion is unknown."""
    if spread_pips is None or usd_per_quote is None:
        return AllIn(None, commission, None)
    spread_cost = spread_pips * pip_size * lot_units * usd_per_quote
    return AllIn(spread_cost, commission, spread_cost + commission)
