"""Value types, constants and errors shared by both order book implementations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

BID: Literal["bid"] = "bid"
ASK: Literal["ask"] = "ask"
BUY: Literal["buy"] = "buy"
SELL: Literal["sell"] = "sell"

BookSide = Literal["bid", "ask"]
OrderSide = Literal["buy", "sell"]
CrossPolicy = Literal["reject", "prune"]

#: Keys of :meth:`OrderBook.counters`.
COUNTER_NAMES = (
    "rejected_invalid",
    "rejected_crossed",
    "rejected_unknown",
    "rejected_duplicate",
    "pruned",
    "matches",
    "fills",
)


class OrderBookError(ValueError):
    """Base of every error the book raises for bad input; the book is unchanged when it is raised."""


class InvalidInputError(OrderBookError):
    """A side, broker, price or size that is not acceptable (NaN, negative, wrong type...)."""


class CrossedBookError(OrderBookError):
    """A new level would cross or lock another broker's level on the other side."""


class UnknownLevelError(OrderBookError):
    """Change or delete of a level the broker does not have."""


class DuplicateLevelError(OrderBookError):
    """Add of a level the broker already has (use change or update)."""


class Fill(NamedTuple):
    """One piece of an order filled against one broker's level."""

    broker: str
    price: float
    size: float


class Entry(NamedTuple):
    """One broker's size at a price level; ``seq`` orders entries in time (lower is older)."""

    broker: str
    size: float
    seq: int


class Level(NamedTuple):
    """A price level: total size and the brokers' entries, oldest first (time priority)."""

    price: float
    size: float
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Order:
    """An order to match: ``limit=None`` is a market order.

    Orders are immediate-or-cancel: the book holds only the brokers' quoted depth, so whatever
    the book cannot fill is returned as ``remaining`` and never rests in the book.
    """

    side: OrderSide
    size: float
    limit: float | None = None


class MatchResult(NamedTuple):
    """What :meth:`OrderBook.match` filled (fills in the order they happened)."""

    fills: tuple[Fill, ...]
    filled: float
    remaining: float
    average_price: float | None


class WalkResult(NamedTuple):
    """Expected fill of an order walked through the depth without touching the book.

    ``shortfall`` is the size the depth could not fill (0.0 when it was filled in full);
    ``average_price`` is None when nothing could be filled.
    """

    average_price: float | None
    filled: float
    shortfall: float
    levels_used: int
    fills: tuple[Fill, ...]
