"""Both implementations of the Kraken book, for the Kraken tests to run on each (a module-level
autouse fixture of a test module: ``from .kraken_books import kraken_book_class  # noqa: F401``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from marketdata.feeds import kraken

BOOK_CLASSES = [pytest.param(kraken.KrakenBook, id="python")] + [
    pytest.param(
        kraken.CompiledKrakenBook,
        id="compiled",
        marks=pytest.mark.skipif(
            kraken.CompiledKrakenBook is None,
            reason="Kraken book's compiled core not built: python setup.py build_ext --inplace",
        ),
    )
]


# Module scope: hypothesis refuses function-scoped fixtures around @given tests.
@pytest.fixture(autouse=True, scope="module", params=BOOK_CLASSES)
def kraken_book_class(request: pytest.FixtureRequest) -> Iterator[type]:
    """Every KrakenParser made during the test keeps its books in this implementation."""
    before = kraken.KrakenParser.book_class
    kraken.KrakenParser.book_class = request.param
    try:
        yield request.param
    finally:
        kraken.KrakenParser.book_class = before
