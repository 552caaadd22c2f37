"""Normalised quotes and feed status events: the one shape every feed adapter produces.

Pure: no Django. Timestamps are integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum

import orjson

Level = tuple[float, float]  # (price, size)
Depth = tuple[tuple[Level, ...], tuple[Level, ...]]  # (bids best first, asks best first)


def now_us() -> int:
    return time.time_ns() // 1000


def consensus_mid(mids: list[float]) -> float | None:
    """The consensus price of an instrument: the median of the brokers' mids (None without any).

    One definition for the whole site (aggregation, the order book, best execution): the median is
    robust to one broker quoting off-market, unlike a mean or the consolidated book's mid.
    """
    if not mids:
        return None
    ordered = sorted(mids)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) * 0.5


@dataclass(slots=True, frozen=True)
class Quote:
    broker: str  # broker slug
    instrument: str  # canonical symbol once normalised (a feed may hand in its own symbol)
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    ts_broker: int  # µs, the broker's own timestamp
    ts_recv: int  # µs, when we received it
    seq: int  # per-feed sequence number, increasing within one connection
    depth: Depth | None = None
    # The broker's account type whose prices these are (its database id); 0: the broker's default account
    # (its tightest-priced one), which is also what every quote recorded before accounts were known means.
    account: int = 0

    @property
    def spread(self) -> float:
        return self.ask - self.bid

    @property
    def mid(self) -> float:
        return (self.ask + self.bid) / 2.0


class FeedEventKind(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    HEARTBEAT = "heartbeat"


@dataclass(slots=True, frozen=True)
class StatusEvent:
    broker: str
    kind: FeedEventKind
    at: int  # µs
    detail: str = ""


class FeedStatus(StrEnum):
    """What the ingestor concludes about a feed (stored as FeedStatusChange history)."""

    UP = "up"
    STALE = "stale"
    DOWN = "down"


FeedItem = Quote | StatusEvent


def quote_live_message(quote: Quote, ts_ingest: int) -> str:
    """The JSON published on the live channel and stored in the latest-quote hash (serialised once).

    orjson: it runs for every quote, and validated prices are finite floats.
    """
    return orjson.dumps(
        {
            "broker": quote.broker,
            "instrument": quote.instrument,
            "bid": quote.bid,
            "ask": quote.ask,
            "spread": quote.ask - quote.bid,
            "bid_size": quote.bid_size,
            "ask_size": quote.ask_size,
            "ts_broker": quote.ts_broker,
            "ts_ingest": ts_ingest,
            "seq": quote.seq,
        }
    ).decode()


def depth_message(depth: Depth, ts: int) -> str:
    bids, asks = depth
    return json.dumps(
        {"bids": [list(level) for level in bids], "asks": [list(level) for level in asks], "ts": ts},
        separators=(",", ":"),
    )


def status_message(broker: str, status: FeedStatus, since_us: int) -> str:
    return json.dumps({"broker": broker, "status": str(status), "since": since_us}, separators=(",", ":"))
