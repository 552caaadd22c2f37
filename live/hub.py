"""The per-process live fan-out.

One Hub per event loop (one per daphne process) holds ONE Redis pub/sub connection, pattern-
subscribed to every instrument channel and the feed status channel. Each quote published by the
ingestors is parsed once, wrapped into its outgoing message once, framed for the WebSocket once,
and offered to the outbox of every local client subscribed to its instrument (groups per
instrument). A separate flush task then writes what is pending, once per event-loop turn, so
everything that arrived in one turn goes to a client as one frame. So the per-client cost of a quote
is a dict store and, for a client that keeps up, one send() of the same pre-framed bytes: the write
goes straight to the socket when nothing is queued ahead of it (see live/transport.py), instead of
through autobahn and Twisted's write buffer, which cost an epoll registration, a loop turn and an
unregistration per message (measured with py-spy: about half of the process's time at 1,000 clients).

Nothing lives only here: quotes and statuses come from Redis, snapshots are read from Redis, so any
number of daphne processes behind one address all deliver the same stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import weakref
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

from django.conf import settings

from common.redis import redis_async_new
from common.ticks import now_us
from live.outbox import Decision, Outbox, Update, ws_text_frame
from marketdata import keys

logger = logging.getLogger(__name__)

MAX_UPSTREAM_BYTES = 4096  # one quote is ~250 bytes; anything far bigger is not a quote
TICK_S = 0.2  # how often held (slow) clients are retried and counters are looked at
COUNTERS_FLUSH_S = 5.0


class Subscriber(Protocol):
    """What the hub needs from a connected client (the consumer)."""

    outbox: Outbox
    instruments: frozenset[str]
    brokers: frozenset[str] | None
    ready: bool

    def backlog(self) -> int: ...

    def write(self, items: list[Update | str]) -> bool:
        """Write now, synchronously, if the client can (under daphne); False: use deliver()."""
        ...

    async def deliver(self, item: Update | str) -> None: ...

    async def drop_slow(self) -> None: ...


class Snapshot(NamedTuple):
    text: str  # the whole snapshot message
    quotes: dict[str, int]  # broker:instrument -> ts_ingest of the quote in it
    statuses: dict[str, int]  # broker -> since of the status in it


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def quote_parse(data: str, *, instrument: str) -> tuple[str, str, int] | None:
    """Validate one published quote. Returns (key, broker, ts_ingest) or None when it is not a usable quote."""
    if len(data) > MAX_UPSTREAM_BYTES:
        return None
    try:
        q = json.loads(data)
    except ValueError:
        return None
    if not isinstance(q, dict):
        return None
    broker = q.get("broker")
    if not isinstance(broker, str) or not broker or q.get("instrument") != instrument:
        return None
    # Browsers' JSON.parse rejects NaN/Infinity, and the latency measure needs ts_ingest.
    if not all(_finite_number(q.get(f)) for f in ("bid", "ask", "spread", "ts_ingest")):
        return None
    for f in ("bid_size", "ask_size", "ts_broker", "seq"):
        if f in q and q[f] is not None and not _finite_number(q[f]):
            return None
    return keys.field(broker, instrument), broker, int(q["ts_ingest"])


def status_parse(data: str) -> tuple[str, int] | None:
    """Validate one feed status message. Returns (broker, since) or None."""
    if len(data) > MAX_UPSTREAM_BYTES:
        return None
    try:
        status = json.loads(data)
    except ValueError:
        return None
    if not isinstance(status, dict):
        return None
    broker, since = status.get("broker"), status.get("since")
    if not isinstance(broker, str) or not broker or status.get("status") not in ("up", "stale", "down"):
        return None
    return broker, int(since) if isinstance(since, int | float) and _finite_number(since) else 0


class Counters:
    """Process-local counts, added to the shared counters (common.metrics) every few seconds."""

    NAMES = (
        "live_bad_upstream",
        "ws_refused",
        "ws_malformed",
        "ws_oversized",
        "ws_dropped_slow",
        "ws_conflated",
    )

    def __init__(self) -> None:
        self.values: dict[str, int] = dict.fromkeys(self.NAMES, 0)
        self.unflushed: dict[str, int] = dict.fromkeys(self.NAMES, 0)

    def incr(self, name: str, amount: int = 1) -> None:
        self.values[name] += amount
        self.unflushed[name] += amount

    def take_unflushed(self) -> dict[str, int]:
        out = {k: v for k, v in self.unflushed.items() if v}
        self.unflushed = dict.fromkeys(self.NAMES, 0)
        return out


COUNTERS = Counters()


def _stats_flush(values: dict[str, int]) -> None:
    from common import metrics

    for name, amount in values.items():
        metrics.incr(name, amount)


async def counters_flush() -> None:
    values = COUNTERS.take_unflushed()
    if values:
        from asgiref.sync import sync_to_async

        try:
            await sync_to_async(_stats_flush, thread_sensitive=False)(values)
        except Exception:  # counters must never take the fan-out down
            logger.exception("could not flush live counters")


class Hub:
    def __init__(self, *, redis_url: str, prefix: str) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.status_channel = keys.status_channel(prefix)
        self.channel_head = keys.live_channel("", prefix)
        self.clients: set[Subscriber] = set()
        self.groups: dict[str, set[Subscriber]] = {}
        self.dirty: set[Subscriber] = set()
        self.held: set[Subscriber] = set()
        self.received = 0
        self._wake = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._start_lock = asyncio.Lock()
        self._redis: Any = None
        self._pubsub: Any = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def _start(self) -> None:
        async with self._start_lock:
            if self.running:
                return
            # No read timeout: a quiet pub/sub connection is not a dead one (health checks and the watchdog tell).
            self._redis = redis_async_new(url=self.redis_url, decode_responses=True, socket_timeout=None)
            self._pubsub = self._redis.pubsub()
            self._subscribed.clear()
            await self._pubsub.psubscribe(keys.live_pattern(self.prefix))
            self._tasks = [
                asyncio.ensure_future(self._read_loop()),
                asyncio.ensure_future(self._flush_loop()),
                asyncio.ensure_future(self._tick_loop()),
            ]
        # Only once Redis confirmed the subscription can a snapshot be read without missing updates.
        await asyncio.wait_for(self._subscribed.wait(), timeout=5)

    async def _stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await counters_flush()
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._redis is not None:
            await self._redis.aclose()
        self._pubsub = self._redis = None

    async def attach(self, client: Subscriber) -> None:
        """Start receiving updates for the client. They wait in its outbox until client.ready."""
        if not self.running:
            await self._start()
        self.clients.add(client)
        self._group(client, client.instruments)

    async def detach(self, client: Subscriber) -> None:
        self.clients.discard(client)
        self.dirty.discard(client)
        self.held.discard(client)
        self._ungroup(client, client.instruments)
        if not self.clients and self.running:
            await self._stop()

    def regroup(self, client: Subscriber, instruments: frozenset[str]) -> None:
        self._ungroup(client, client.instruments - instruments)
        self._group(client, instruments - client.instruments)
        client.instruments = instruments

    def _group(self, client: Subscriber, instruments: Iterable[str]) -> None:
        for symbol in instruments:
            self.groups.setdefault(symbol, set()).add(client)

    def _ungroup(self, client: Subscriber, instruments: Iterable[str]) -> None:
        for symbol in instruments:
            members = self.groups.get(symbol)
            if members is not None:
                members.discard(client)
                if not members:
                    del self.groups[symbol]

    def mark_ready(self, client: Subscriber) -> None:
        client.ready = True
        if len(client.outbox):
            self.dirty.add(client)
            self._wake.set()

    # -- snapshots -------------------------------------------------------------------------
    async def snapshot(self, *, instruments: Iterable[str], brokers: frozenset[str] | None) -> Snapshot:
        """The latest quote of every subscribed broker+instrument, and every feed's status."""
        assert self._redis is not None, "attach() first"
        wanted = set(instruments)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.latest_hash(self.prefix))
            pipe.hgetall(keys.status_hash(self.prefix))
            latest, statuses = await pipe.execute()
        quotes, quote_ts = [], {}
        for fieldname, data in latest.items():
            broker, _, instrument = fieldname.partition(":")
            if instrument not in wanted or (brokers is not None and broker not in brokers):
                continue
            parsed = quote_parse(data, instrument=instrument)
            if parsed is not None:
                quotes.append(data)
                quote_ts[parsed[0]] = parsed[2]
        status, status_ts = [], {}
        for broker, data in statuses.items():
            parsed_status = status_parse(data)
            if parsed_status is not None:
                status.append(data)
                status_ts[broker] = parsed_status[1]
        text = (
            f'{{"type":"snapshot","server_time_us":{now_us()},'
            f'"quotes":[{",".join(quotes)}],"status":[{",".join(status)}]}}'
        )
        return Snapshot(text, quote_ts, status_ts)

    # -- the hot path ----------------------------------------------------------------------
    async def _read_loop(self) -> None:
        backoff = 0.1
        pubsub = self._pubsub
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception:
                # redis-py reconnects and subscribes again on the next read; meanwhile clients keep
                # their last values (and the board greys them once they are old).
                logger.exception("live hub lost Redis; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            if message is None:
                continue
            kind = message.get("type")
            if kind == "pmessage":
                self.on_message(message["channel"], message["data"])
            elif kind == "psubscribe":
                self._subscribed.set()

    def on_message(self, channel: str, data: str) -> None:
        self.received += 1
        if channel == self.status_channel:
            self._on_status(data)
            return
        instrument = channel[len(self.channel_head) :]
        members = self.groups.get(instrument)
        parsed = quote_parse(data, instrument=instrument)
        if parsed is None:
            COUNTERS.incr("live_bad_upstream")
            return
        if not members:
            return
        key, broker, ts = parsed
        text = '{"type":"quotes","quotes":[' + data + "]}"
        update = Update(fragment=data, text=text, frame=ws_text_frame(text.encode()), ts=ts)
        dirty = self.dirty
        for client in members:
            brokers = client.brokers
            if brokers is not None and broker not in brokers:
                continue
            client.outbox.offer_quote(key, update)
            dirty.add(client)
        self._wake.set()

    def _on_status(self, data: str) -> None:
        parsed = status_parse(data)
        if parsed is None:
            COUNTERS.incr("live_bad_upstream")
            return
        broker, since = parsed
        text = '{"type":"status",' + data.strip()[1:]
        update = Update(fragment=data, text=text, frame=ws_text_frame(text.encode()), ts=since)
        for client in self.clients:
            client.outbox.offer_status(broker, update)
            self.dirty.add(client)
        self._wake.set()

    async def _flush_loop(self) -> None:
        # Woken at most once per loop turn however many messages the read loop took in that turn.
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self.dirty = self.dirty, set()
            now = time.monotonic()
            # The per-client work is synchronous (no coroutine per client): this loop runs for every
            # subscribed client of every quote. Only the rare cases await, after the loop.
            later: list[tuple[Subscriber, str, list[Update | str]]] = []
            held = self.held
            for client in dirty:
                if not client.ready:
                    continue  # mark_ready() puts it back once its snapshot is out
                outbox = client.outbox
                if outbox.conflated:
                    COUNTERS.incr("ws_conflated", outbox.conflated)
                    outbox.conflated = 0
                decision = outbox.decide(backlog_bytes=client.backlog(), now=now)
                if decision is Decision.SEND:
                    held.discard(client)
                    items = outbox.take()
                    try:
                        written = client.write(items)
                    except Exception:
                        logger.exception("live delivery failed; dropping the client")
                        later.append((client, "detach", []))
                        continue
                    if not written and items:
                        later.append((client, "deliver", items))
                elif decision is Decision.HOLD:
                    held.add(client)
                else:
                    COUNTERS.incr("ws_dropped_slow")
                    logger.warning("dropping a slow live client (%d bytes unsent)", outbox.max_backlog)
                    later.append((client, "drop", []))
            for client, action, items in later:
                await self._finish(client, action, items)

    async def _finish(self, client: Subscriber, action: str, items: list[Update | str]) -> None:
        """The awaiting cases: deliver through the ASGI send, detach a failed client, drop a slow one."""
        if action == "deliver":
            try:
                for item in items:
                    await client.deliver(item)
            except Exception:
                logger.exception("live delivery failed; dropping the client")
                await self.detach(client)
        elif action == "detach":
            await self.detach(client)
        else:
            await self.detach(client)
            await client.drop_slow()

    async def _tick_loop(self) -> None:
        next_flush = time.monotonic() + COUNTERS_FLUSH_S
        while True:
            await asyncio.sleep(TICK_S)
            if self.held:
                self.dirty |= self.held
                self._wake.set()
            if time.monotonic() >= next_flush:
                next_flush = time.monotonic() + COUNTERS_FLUSH_S
                await counters_flush()


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub_get() -> Hub:
    """The hub of the running event loop (one per daphne process; one per test loop)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(redis_url=settings.REDIS_URL, prefix=settings.CACHE_KEY_PREFIX)
    return hub
