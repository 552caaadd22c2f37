"""Both implementations of the sorted books, for the Kraken, Coinbase and Binance tests to run on each (a
module-level autouse fixture of a test module:
``from .compiled_books import kraken_book_class  # noqa: F401``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from marketdata.feeds import binance, coinbase, kraken, venue

_NOT_BUILT = "compiled core not built: python setup.py build_ext --inplace"


def _params(python: type, compiled: type | None) -> list[Any]:
    return [
        pytest.param(python, id="python"),
        pytest.param(compiled, id="compiled", marks=pytest.mark.skipif(compiled is None, reason=_NOT_BUILT)),
    ]


def _using(parser: type, book_class: type) -> Iterator[type]:
    before = parser.book_class  # type: ignore[attr-defined]
    parser.book_class = book_class  # type: ignore[attr-defined]
    try:
        yield book_class
    finally:
        parser.book_class = before  # type: ignore[attr-defined]


# Module scope: hypothesis refuses function-scoped fixtures around @given tests.
@pytest.fixture(autouse=True, scope="module", params=_params(kraken.KrakenBook, kraken.CompiledKrakenBook))
def kraken_book_class(request: pytest.FixtureRequest) -> Iterator[type]:
    """Every KrakenParser made during the test keeps its books in this implementation."""
    yield from _using(kraken.KrakenParser, request.param)


@pytest.fixture(autouse=True, scope="module", params=_params(venue.SortedBook, venue.CompiledSortedBook))
def coinbase_book_class(request: pytest.FixtureRequest) -> Iterator[type]:
    """Every CoinbaseParser made during the test keeps its books in this implementation."""
    yield from _using(coinbase.CoinbaseParser, request.param)


@pytest.fixture(autouse=True, scope="module", params=_params(venue.SortedBook, venue.CompiledSortedBook))
def binance_book_class(request: pytest.FixtureRequest) -> Iterator[type]:
    """Every BinanceParser made during the test keeps its books in this implementation."""
    yield from _using(binance.BinanceParser, request.param)
