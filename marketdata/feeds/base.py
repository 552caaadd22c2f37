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


def adapter_create(name: str, *, broker: str, params: dict[str, Any]) -> FeedAdapter:
    if name not in _REGISTRY:
        from marketdata.feeds import simulator  # noqa: F401  (registers itself)
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown feed adapter {name!r} (known: {', '.join(sorted(_REGISTRY))})") from None
    return factory(broker, params)
