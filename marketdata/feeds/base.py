"""The feed adapter interface. Real adapters (FIX, streaming HTTP, WebSocket) implement the same shape.

An adapter's `connect()` returns an async iterator over one connection's items (quotes and status
events). It raises FeedDisconnected (or any OSError) when the connection fails or drops; the ingestor
then reconnects with exponential backoff and jitter. Adapters never validate: the ingestor does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from common.ticks import FeedItem


class FeedDisconnected(Exception):
    """The connection to the broker's feed failed or dropped."""


class FeedAdapter(Protocol):
    broker: str

    def connect(self) -> AsyncIterator[FeedItem]: ...


AdapterFactory = Callable[[str, dict[str, Any]], FeedAdapter]
_REGISTRY: dict[str, AdapterFactory] = {}


def adapter_register(name: str, factory: AdapterFactory) -> None:
    _REGISTRY[name] = factory


ADAPTERS = ("simulator", "fix", "oanda", "binance", "kraken", "coinbase")


def adapters_load() -> None:
    """Import every adapter module (each registers itself)."""
    import importlib

    for name in ADAPTERS:
        importlib.import_module(f"marketdata.feeds.{name}")


def parser_create(name: str, *, broker: str, params: dict[str, Any]) -> Any:
    """The adapter's wire parser alone (replay, benchmark): no network."""
    from marketdata.feeds.venue import SymbolMap

    symbols = SymbolMap.from_params(params)
    if name == "fix":
        from marketdata.feeds.fix import FixMarketData

        return FixMarketData(broker, symbols)
    if name == "oanda":
        from marketdata.feeds.oanda import OandaParser

        return OandaParser(broker, symbols)
    if name == "binance":
        from marketdata.feeds.binance import BinanceParser

        return BinanceParser(broker, symbols)
    if name == "kraken":
        from marketdata.feeds.kraken import KrakenParser

        return KrakenParser(broker, symbols, int(params.get("depth", 10)))
    if name == "coinbase":
        from marketdata.feeds.coinbase import CoinbaseParser

        return CoinbaseParser(broker, symbols)
    raise ValueError(f"no wire parser for adapter {name!r}")


def adapter_create(name: str, *, broker: str, params: dict[str, Any]) -> FeedAdapter:
    if name not in _REGISTRY:
        adapters_load()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown feed adapter {name!r} (known: {', '.join(sorted(_REGISTRY))})") from None
    return factory(broker, params)
