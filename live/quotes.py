"""Normalised quotes and feed status events: the one shape every feed adapter produces.

Pure: no Django. Timestamps are integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum

Level = tuple[float, float]  # (price, size)
Depth = tuple[tuple[Level, ...], tuple[Level, ...]]  # (bids best first, asks best first)


def now_us() -> int:
    return time.time_ns() // 1000


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


_json_str_cache: dict[str, str] = {}


def _jstr(s: str) -> str:
    out = _json_str_cache.get(s)
    if out is None:
        out = json.dumps(s)
        if len(_json_str_cache) < 100_000:
            _json_str_cache[s] = out
    return out


_live_head_cache: dict[tuple[str, str], str] = {}


def quote_live_message(quote: Quote, ts_ingest: int) -> str:
    """The JSON published on the live channel and stored in the latest-quote hash (serialised once).

    Hand-formatted because it runs for every quote: validated prices are finite floats, whose repr
    is exactly what json.dumps writes, and strings go through json.dumps (the head of the message,
    which depends only on broker and instrument, is cached).
    """
    key = (quote.broker, quote.instrument)
    head = _live_head_cache.get(key)
    if head is None:
        head = f'{{"broker":{_jstr(quote.broker)},"instrument":{_jstr(quote.instrument)},"bid":'
        if len(_live_head_cache) < 100_000:
            _live_head_cache[key] = head
    return (
        f'{head}{quote.bid!r},"ask":{quote.ask!r},"spread":{quote.ask - quote.bid!r},"bid_size":{quote.bid_size!r},'
        f'"ask_size":{quote.ask_size!r},"ts_broker":{quote.ts_broker},"ts_ingest":{ts_ingest},"seq":{quote.seq}}}'
    )


def quote_live_message_reference(quote: Quote, ts_ingest: int) -> str:
    """The same message through json.dumps (the tests check both agree)."""
    return json.dumps(
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
        },
        separators=(",", ":"),
    )


def depth_message(depth: Depth, ts: int) -> str:
    bids, asks = depth
    return json.dumps(
        {"bids": [list(level) for level in bids], "asks": [list(level) for level in asks], "ts": ts},
        separators=(",", ":"),
    )


def status_message(broker: str, status: FeedStatus, since_us: int) -> str:
    return json.dumps({"broker": broker, "status": str(status), "since": since_us}, separators=(",", ":"))
