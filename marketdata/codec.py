"""Durable-path encoding: one Redis Stream entry carries a batch of accepted quotes (msgpack).

Batching many quotes per entry keeps Redis work per quote tiny. Each entry names its producer and a
per-producer batch number, so the aggregator can drop a batch the producer re-sent after a network
error (the first copy may have landed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack  # type: ignore[import-untyped]

from common.ticks import Quote

# Wire tuple: broker, instrument, bid, ask, bid_size, ask_size, ts_broker, ts_recv, ts_ingest, seq, account.
# Version 2 appended `account` (the account type id; 0: the broker's default account). Readers take a
# 10-field tuple (version 1: entries and write-ahead files written before accounts) as account 0, so old
# stream entries and write-ahead files stay readable; new fields only ever go at the end.
WireQuote = tuple[str, str, float, float, float, float, int, int, int, int, int]
WireQuoteV1 = tuple[str, str, float, float, float, float, int, int, int, int]  # still read (account 0)
WIRE_ACCOUNT = 10  # index of the account field


def wire_account(q: list[Any] | tuple[Any, ...]) -> int:
    """The account of a decoded wire quote (0 for version-1 tuples without one)."""
    return int(q[WIRE_ACCOUNT]) if len(q) > WIRE_ACCOUNT else 0


def wire(quote: Quote, ts_ingest: int) -> WireQuote:
    return (
        quote.broker,
        quote.instrument,
        quote.bid,
        quote.ask,
        quote.bid_size,
        quote.ask_size,
        quote.ts_broker,
        quote.ts_recv,
        ts_ingest,
        quote.seq,
        quote.account,
    )


def entry_encode(producer: str, batch_no: int, quotes: Sequence[WireQuote | WireQuoteV1]) -> dict[str, Any]:
    return {"p": producer, "n": batch_no, "q": msgpack.packb(quotes, use_bin_type=True)}


def entry_decode(fields: dict[bytes, bytes]) -> tuple[str, int, list[list[Any]]]:
    """Raises ValueError on a malformed entry (the aggregator counts and skips it)."""
    try:
        producer = fields[b"p"].decode()
        batch_no = int(fields[b"n"])
        quotes = msgpack.unpackb(fields[b"q"], raw=False, use_list=True)
    except (KeyError, ValueError, UnicodeDecodeError, msgpack.UnpackException) as exc:
        raise ValueError(f"malformed tick entry: {exc}") from exc
    if not isinstance(quotes, list):
        raise ValueError("malformed tick entry: payload is not a list")
    return producer, batch_no, quotes


def stream_id(raw: bytes | str) -> tuple[int, int]:
    s = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = s.partition("-")
    return int(ms), int(seq or 0)
