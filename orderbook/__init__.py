"""Consolidated order book of one instrument over all brokers' depth (pure core, no Django).

Quick use::

    from orderbook import OrderBook, Order

    book = OrderBook("EURUSD")
    book.update("bid", "alpha", 1.1000, 500_000.0)   # add, change or (size 0.0) delete
    book.update("ask", "beta", 1.1002, 250_000.0)
    book.best_bid(), book.best_ask(), book.mid()    # 1.1, 1.1002, 1.1001
    book.walk("buy", 1_000_000.0)                   # expected fill across brokers, book untouched
    book.walk("buy", 1_000_000.0, broker="beta")    # ... using one broker's depth only
    book.match(Order("buy", 100_000.0, limit=1.1002))  # fills and removes liquidity

``OrderBook`` is the compiled core (``orderbook/_cbook.c``) when it has been built with
``python setup.py build_ext --inplace``, else the pure Python :class:`PyOrderBook`; both have
the same API and behaviour, and the tests run against both. ``IMPLEMENTATION`` says which one
is in use ("compiled" or "python").

Model
-----
* Sides are ``"bid"`` and ``"ask"`` (constants ``BID``, ``ASK``); order sides are ``"buy"`` and
  ``"sell"`` (``BUY``, ``SELL``). Brokers are non-empty ``str``; prices and sizes are floats
  (ints are accepted), prices compared exactly, so feed them as the feed quotes them.
* A price level holds one entry per broker quoting that price: (broker, size, seq). ``seq`` is a
  per-book counter that gives time priority. A size decrease keeps the entry's place in the
  queue; a size increase moves it to the back with a new ``seq`` (as on exchanges).
* **Never crossed (nor locked)**: after every call, best bid < best ask. A *new* price level
  that would cross or lock the other side is handled by ``cross_policy``:

  - ``"reject"`` (default): if any crossed level holds another broker's entry, the update is
    refused with :class:`CrossedBookError`, the book is unchanged and ``rejected_crossed`` is
    counted. Levels crossed that hold only the same broker's entries are the broker's own stale
    quotes: they are removed (counted in ``pruned``) and the update is applied, so a broker
    moving its quote up or down in any order never gets stuck.
  - ``"prune"``: the newest quote wins; every crossed or locked level on the other side is
    removed, whatever the broker (counted in ``pruned``).

  Changing the size of an existing level can never cross, so it is never checked.
* Errors: all are :class:`OrderBookError`, a ``ValueError``: :class:`InvalidInputError`
  (NaN/inf/negative/zero price, negative/NaN size, wrong side or type), ``CrossedBookError``,
  :class:`UnknownLevelError` (change/delete of a level the broker does not have),
  :class:`DuplicateLevelError` (``add`` of one it has). The book is unchanged when one is raised
  and the reason is counted in :meth:`counters`, so a feed ingestor can catch, count and go on.

API (``book = OrderBook(instrument="", *, cross_policy="reject")``)
--------------------------------------------------------------------
Updates (positional for speed):
    ``update(side, broker, price, size)``   set the size; 0.0 deletes (unknown -> UnknownLevelError)
    ``add(side, broker, price, size)``      new level only; ``change(...)`` existing level only
    ``delete(side, broker, price)``         remove the broker's level
    ``clear_broker(broker) -> int``         remove all its levels (feed down); returns how many
Reads:
    ``best_bid()``, ``best_ask()``, ``best(side)`` -> float | None
    ``bbo()`` -> (bid, bid_size, ask, ask_size); ``mid()`` consolidated mid, None if a side is empty
    ``consensus_mid(exclude=None)`` median of the mids of brokers quoting both sides (the robust
    consensus price; ``exclude`` leaves one broker out, for "deviation from the others")
    ``broker_bbo(broker)`` -> (bid, ask) of one broker; ``brokers()`` sorted names with depth
    ``depth(side, levels=None)`` -> list[Level(price, size, entries=(Entry(broker, size, seq), ...))]
    best first, entries oldest first; ``size_at(side, broker, price)``; ``total_size(side)``;
    ``len(book)`` number of entries; ``counters()`` -> dict of rejects by reason, pruned, matches, fills
Matching and best execution:
    ``match(Order(side, size, limit=None)) -> MatchResult(fills, filled, remaining, average_price)``
    Immediate-or-cancel, price-time priority (best price first, oldest entry first within a
    level), stops at the limit; fills are ``Fill(broker, price, size)`` in execution order and
    their size is removed from the book. The unfilled rest is returned, it never rests.
    ``walk(side, size, broker=None) -> WalkResult(average_price, filled, shortfall, levels_used, fills)``
    The same walk without touching the book: with ``broker`` over that broker's depth only (its
    expected average fill price), without over all brokers (the best split). ``shortfall`` > 0
    when the depth runs out; ``average_price`` is None when nothing fills. For the cost against
    the consensus mid: ``(average_price - consensus_mid()) / pip_size`` for a buy (negated for a sell).

Not thread-safe: use one book per instrument per thread/task.
"""

from __future__ import annotations

from orderbook.pybook import BookLogic, PyOrderBook
from orderbook.types import (
    ASK,
    BID,
    BUY,
    SELL,
    BookSide,
    CrossedBookError,
    CrossPolicy,
    DuplicateLevelError,
    Entry,
    Fill,
    InvalidInputError,
    Level,
    MatchResult,
    Order,
    OrderBookError,
    OrderSide,
    UnknownLevelError,
    WalkResult,
)

try:
    from orderbook.cbook import CompiledOrderBook
except ImportError:  # extension not built: the pure Python book is the fallback
    CompiledOrderBook = None  # type: ignore[assignment,misc]

#: The implementation in use; both share the API of :class:`BookLogic`.
OrderBook: type[PyOrderBook] | type[CompiledOrderBook]
if CompiledOrderBook is not None:
    OrderBook = CompiledOrderBook
    IMPLEMENTATION = "compiled"
else:
    OrderBook = PyOrderBook
    IMPLEMENTATION = "python"

__all__ = [
    "ASK",
    "BID",
    "BUY",
    "IMPLEMENTATION",
    "SELL",
    "BookLogic",
    "BookSide",
    "CompiledOrderBook",
    "CrossPolicy",
    "CrossedBookError",
    "DuplicateLevelError",
    "Entry",
    "Fill",
    "InvalidInputError",
    "Level",
    "MatchResult",
    "Order",
    "OrderBook",
    "OrderBookError",
    "OrderSide",
    "PyOrderBook",
    "UnknownLevelError",
    "WalkResult",
]
