"""Redis channel, hash and stream names of the market-data paths, in one place so every consumer agrees.

Every name starts with settings.CACHE_KEY_PREFIX so test runs and demos sharing one Redis never collide.
Functions take an optional prefix so pure code and subprocesses can pass it explicitly.
"""

from __future__ import annotations

import zlib


def _prefix(prefix: str | None) -> str:
    if prefix is not None:
        return prefix
    from django.conf import settings  # imported late: pure callers pass the prefix

    return str(settings.CACHE_KEY_PREFIX)


def live_channel(instrument: str, prefix: str | None = None) -> str:
    """Pub/sub channel with one JSON message per accepted quote of this instrument."""
    return f"{_prefix(prefix)}:live:{instrument}"


def live_pattern(prefix: str | None = None) -> str:
    """PSUBSCRIBE pattern matching every instrument channel (and the status channel)."""
    return f"{_prefix(prefix)}:live:*"


def status_channel(prefix: str | None = None) -> str:
    """Pub/sub channel of feed status changes: JSON {broker, status, since}."""
    return f"{_prefix(prefix)}:live:status"


def latest_hash(prefix: str | None = None) -> str:
    """Hash field f"{broker}:{instrument}" -> the latest live JSON message (for snapshots)."""
    return f"{_prefix(prefix)}:latest"


def depth_hash(prefix: str | None = None) -> str:
    """Hash field f"{broker}:{instrument}" -> JSON {"bids": [[p, s], ...], "asks": [...], "ts": µs}."""
    return f"{_prefix(prefix)}:depth"


def account_latest_hash(prefix: str | None = None) -> str:
    """Hash field account_field(...) -> the latest live JSON message of a broker's account feed (not the default
    account's, which is in latest_hash). Not published on the live channels: the board streams default
    accounts; best execution and pages read these, and each quote is also published on account_channel."""
    return f"{_prefix(prefix)}:latest-account"


def account_channel(instrument: str, account: int, prefix: str | None = None) -> str:
    """Pub/sub channel of a broker's account feed (one not on the live channels), one JSON message per accepted
    quote, as on live_channel. Outside live_pattern: the board never sees it; the alert process listens to it
    for alerts on accounts measured on their own feed."""
    return f"{_prefix(prefix)}:account-live:{account}:{instrument}"


def account_pattern(prefix: str | None = None) -> str:
    """PSUBSCRIBE pattern matching every account feed's channel."""
    return f"{_prefix(prefix)}:account-live:*"


def account_depth_hash(prefix: str | None = None) -> str:
    """Hash field account_field(...) -> depth JSON of a broker's account feed (as depth_hash)."""
    return f"{_prefix(prefix)}:depth-account"


def status_hash(prefix: str | None = None) -> str:
    """Hash field broker -> JSON {broker, status, since}: the current status of every feed."""
    return f"{_prefix(prefix)}:feedstatus"


def rejects_hash(prefix: str | None = None) -> str:
    """Hash field f"{broker}:{reason}" -> count of rejected quotes since the counters were last reset."""
    return f"{_prefix(prefix)}:rejects"


def field(broker: str, instrument: str) -> str:
    return f"{broker}:{instrument}"


def account_field(broker: str, instrument: str, account: int) -> str:
    return f"{broker}:{instrument}:{account}"


def shard_of(instrument: str, shards: int) -> int:
    """Quotes of one instrument always go to one stream shard, so one aggregator sees all its brokers."""
    return zlib.crc32(instrument.encode()) % shards


def tick_stream(shard: int, prefix: str | None = None) -> str:
    """Durable path: Redis Stream of accepted quotes (each entry a msgpack batch)."""
    return f"{_prefix(prefix)}:ticks:{shard}"


AGGREGATOR_GROUP = "aggregator"
