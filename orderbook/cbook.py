"""The compiled order book: C storage and hot path (``_cbook.c``) plus the shared Python logic.

Importing this module raises ImportError when the extension has not been built
(``python setup.py build_ext --inplace``); ``orderbook`` then falls back to PyOrderBook.
"""

from __future__ import annotations

from orderbook._cbook import Core
from orderbook.pybook import BookLogic


class CompiledOrderBook(Core, BookLogic):
    """Consolidated price-time priority book whose update and best-price reads run in C."""

    __slots__ = ()

    # The C hot path hands everything it does not handle itself (bad input, errors, levels that
    # would cross) to the Python implementation, so both implementations behave the same.
    _py_update = BookLogic.update
    _py_best = BookLogic.best
