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
import bisect
import json
import logging
import math
import random
import time
import weakref
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

import orjson
from django.conf import settings

from common.redis import redis_async_new
from common.ticks import now_us
from live.counters import COUNTERS, counters_flush
from live.outbox import Decision, Outbox, Update, quote_group, quote_part, ws_text_frame
from live.subscription import SubscriptionReader
from marketdata import keys

logger = logging.getLogger(__name__)

MAX_UPSTREAM_BYTES = 4096  # one quote is ~250 bytes; anything far bigger is not a quote
# After a flush (a write to every client with something pending) that took t seconds, the next waits
# t * (1 - share) / share, at most FLUSH_PAUSE_MAX_S, while quotes keep coming in and conflating, so that
# flushing takes about that share of the process's time. While the hub keeps up with Redis (the newest
# quote it read is less than FLUSH_BEHIND_US old), the share is FLUSH_SHARE: a quote goes out almost at
# once. Once it falls behind (a burst, where every flush touches every client), FLUSH_SHARE_BEHIND: the
# reads of Redis get as much time as the flushes, and the longer pauses let quotes conflate (without a
# pause a process kept flushing after every read, each flush's cost fixed by the client count, and the
# backlog in Redis grew for the whole burst). With a pause as long as every flush at all times (the rule
# before), calm quotes waited a whole flush-and-pause cycle: 12-19 ms at the median in bench.live --burst's
# calm, against 3-5 ms at a share of 0.9; but 0.9 in the burst tripled its median. ts_ingest is the
# ingestor's clock: where hosts' clocks differ by more than FLUSH_BEHIND_US the hub keeps to one share,
# which works, only less well in calm or in a burst.
FLUSH_SHARE, FLUSH_SHARE_BEHIND = 0.9, 0.5
FLUSH_BEHIND_US = 50_000
FLUSH_PAUSE_MIN_S, FLUSH_PAUSE_MAX_S = 0.001, 0.025
# /readyz's delivery-lag histogram: ts_ingest of the oldest quote a flush wrote -> the end of that flush,
# counted once per client written; upper bounds in ms (the last bucket is everything above).
LAG_BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
TICK_S = 0.2  # how often held (slow) clients are retried, counters are looked at and the watchdog runs
COUNTERS_FLUSH_S = 5.0
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.1, 5.0  # backoff (with jitter) between attempts to reach Redis
SUBSCRIBE_TIMEOUT_S = 3.0  # Redis accepted the connection but did not confirm the subscription: retry
SNAPSHOT_RETRY_S = 0.5
SNAPSHOTS_PER_TURN = 20  # snapshots sent before the sync loop lets the rest of the loop run
WATCHDOG_QUIET_S = 5.0  # nothing heard for this long: the hub sends itself a probe through Redis
WATCHDOG_PROBE_TIMEOUT_S = 2.0  # and if the probe does not come back in this time, it reconnects
UNSUBSCRIBED_GRACE_S = 10.0  # /readyz: clients but no subscription for longer than this is unhealthy
PROBE_INSTRUMENT = "_hub_probe"  # {prefix}:live:_hub_probe matches the hub's pattern; no instrument has the name


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

    async def send_snapshot(self, snapshot: Snapshot) -> None:
        """Send it, then forget pending updates it supersedes."""
        ...


class Snapshot(NamedTuple):
    text: str  # the whole snapshot message
    quotes: dict[str, int]  # broker:instrument -> ts_ingest of the quote in it
    statuses: dict[str, int]  # broker -> since of the status in it


class SnapshotSource(NamedTuple):
    """One read of Redis, validated: what any number of clients' snapshots are cut from."""

    quotes: dict[str, tuple[str, str, str, int]]  # broker:instrument -> (broker, instrument, JSON, ts_ingest)
    statuses: dict[str, tuple[str, int]]  # broker -> (JSON, since)


def snapshot_build(source: SnapshotSource, *, instruments: Iterable[str], brokers: frozenset[str] | None) -> Snapshot:
    wanted = set(instruments)
    quotes, quote_ts = [], {}
    for key, (broker, instrument, data, ts) in source.quotes.items():
        if instrument in wanted and (brokers is None or broker in brokers):
            quotes.append(data)
            quote_ts[key] = ts
    text = (
        f'{{"type":"snapshot","server_time_us":{now_us()},'
        f'"quotes":[{",".join(quotes)}],"status":[{",".join(d for d, _ in source.statuses.values())}]}}'
    )
    return Snapshot(text, quote_ts, {broker: since for broker, (_, since) in source.statuses.items()})


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def quote_parse(data: str, *, instrument: str) -> tuple[str, str, int] | None:
    """Validate one published quote. Returns (key, broker, ts_ingest) or None when it is not a usable quote."""
    return quote_check(quote_decode(data), instrument=instrument)


def quote_decode(data: str) -> object:
    """The published message decoded, or None when it is too big to be a quote or not JSON."""
    if len(data) > MAX_UPSTREAM_BYTES:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def quote_check(q: object, *, instrument: str) -> tuple[str, str, int] | None:
    """quote_parse for a message already decoded."""
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


class Hub:
    """One per event loop. Start, stop and reconnects are serialised; the Redis connection has one owner.

    States: stopped (no tasks) -> running (connection, flush, sync and tick tasks) -> stopped. Only
    _ensure_started(), _stop_if_idle(), _heal() and stop() change them, all under one lock, and a stop
    looks at the clients again once it holds the lock. attach() adds its client first and then goes
    through the same lock: a client that attaches while a stop is in its awaits waits for the stop to
    finish and then starts the hub again, instead of joining a hub that is being torn down.

    The Redis pub/sub connection exists only inside _connection_loop() (local variables, never shared
    with the rest of the hub): a stop or a heal cancels that task, which closes exactly the connection it
    opened. Lost, the connection is made again with backoff and the subscription renewed; every client
    is then sent a fresh snapshot (what it missed meanwhile). `subscribed` is true only from Redis
    confirming the subscription to the next error.
    """

    def __init__(
        self,
        *,
        redis_url: str,
        prefix: str,
        quiet_s: float = WATCHDOG_QUIET_S,
        probe_timeout_s: float = WATCHDOG_PROBE_TIMEOUT_S,
    ) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.quiet_s = quiet_s
        self.probe_timeout_s = probe_timeout_s
        self.status_channel = keys.status_channel(prefix)
        self.probe_channel = keys.live_channel(PROBE_INSTRUMENT, prefix)
        self.channel_head = keys.live_channel("", prefix)
        self.clients: set[Subscriber] = set()
        self.groups: dict[str, set[Subscriber]] = {}
        self.dirty: set[Subscriber] = set()
        self.held: set[Subscriber] = set()
        self._newest_read = 0  # ts_ingest (µs) of the newest quote read: how far behind Redis the hub is
        self.unsynced: set[Subscriber] = set()  # owed a snapshot: new, or Redis came back
        self.received = 0
        self.subscribed = False
        self.connects = 0  # subscriptions confirmed by Redis, the first included
        self.heals = 0  # reconnects forced by the watchdog
        self.last_message_at = time.monotonic()  # any message: quote, status or the watchdog's probe
        self.unsubscribed_since = time.monotonic()
        self.probe_sent_at: float | None = None
        self.lag_counts = [0] * (len(LAG_BOUNDS_MS) + 1)
        self._oldest_offered = 0  # ts_ingest (µs) of the oldest quote offered since the last flush; 0: none
        # Quotes read since the last flush, not yet offered: instrument -> key -> (JSON, broker, ts_ingest)
        self._incoming: dict[str, dict[str, tuple[str, str, int]]] = {}
        self._wake = asyncio.Event()
        self._sync_wake = asyncio.Event()
        self._subscribed_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._lifecycle = asyncio.Lock()
        self._client: Any = None
        self._reader: SubscriptionReader | None = None  # the current subscription's reader, for /readyz

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    async def _ensure_started(self) -> None:
        async with self._lifecycle:
            if self.running:
                return
            await self._cancel_tasks()  # a task that ended on its own: start clean
            self.last_message_at = time.monotonic()
            self.probe_sent_at = None
            self._tasks = [
                asyncio.ensure_future(self._connection_loop()),
                asyncio.ensure_future(self._flush_loop()),
                asyncio.ensure_future(self._sync_loop()),
                asyncio.ensure_future(self._tick_loop()),
            ]

    async def _stop_if_idle(self) -> None:
        async with self._lifecycle:
            if self.clients or not self._tasks:
                return  # a client attached while this waited for the lock, or already stopped
            await self._cancel_tasks()
            await counters_flush()

    async def stop(self) -> None:
        """Stop whatever the clients (shutdown, tests). The next attach() starts the hub again."""
        async with self._lifecycle:
            await self._cancel_tasks()
        await counters_flush()

    async def _cancel_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in tasks if t is not current), return_exceptions=True)

    async def _heal(self, reason: str) -> None:
        """Replace the connection task (the watchdog's cure for a subscription that went quiet)."""
        async with self._lifecycle:
            if not self._tasks:
                return
            self.heals += 1
            COUNTERS.incr("live_hub_healed")
            logger.warning("live hub: %s; reconnecting to Redis", reason)
            old = self._tasks[0]
            old.cancel()
            await asyncio.gather(old, return_exceptions=True)
            self.probe_sent_at = None
            self.last_message_at = time.monotonic()
            self._tasks[0] = asyncio.ensure_future(self._connection_loop())

    async def attach(self, client: Subscriber) -> None:
        """Start receiving updates for the client. Its snapshot follows as soon as the hub is subscribed;
        updates wait in its outbox until then (client.ready)."""
        client.ready = False
        self.clients.add(client)
        self._group(client, client.instruments)
        self.unsynced.add(client)
        await self._ensure_started()
        self._sync_wake.set()

    async def detach(self, client: Subscriber) -> None:
        self.clients.discard(client)
        self.dirty.discard(client)
        self.held.discard(client)
        self.unsynced.discard(client)
        self._ungroup(client, client.instruments)
        if not self.clients:
            await self._stop_if_idle()

    def resync(self, client: Subscriber) -> None:
        """Send the client a whole snapshot again as soon as the hub can (its updates wait until then)."""
        if client in self.clients:
            client.ready = False
            self.unsynced.add(client)
            self._sync_wake.set()

    async def wait_subscribed(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._subscribed_event.wait(), timeout=timeout)
        except TimeoutError:
            return False
        return True

    def health(self) -> dict[str, Any]:
        """What /readyz shows. Read from other threads too, so plain attributes only."""
        now = time.monotonic()
        unsubscribed_s = 0.0 if self.subscribed else now - self.unsubscribed_since
        return {
            "running": self.running,
            "subscribed": self.subscribed,
            "clients": len(self.clients),
            "last_message_age_s": round(now - self.last_message_at, 3),
            "connects": self.connects,
            "heals": self.heals,
            # How late this process writes quotes, from when the ingestor took them: the server's share
            # of the tick-to-client latency, whatever the network and the clients add after it.
            "delivery_lag_ms": {"le": list(LAG_BOUNDS_MS), "counts": list(self.lag_counts)},
            # Read from Redis by the subscription's thread, not yet taken by the event loop: a busy loop.
            "read_not_taken": reader.waiting() if (reader := self._reader) is not None else 0,
            # Clients are connected, yet there has been no confirmed subscription for longer than a
            # reconnect normally takes.
            "healthy": not self.clients or (self.running and unsubscribed_s < UNSUBSCRIBED_GRACE_S),
        }

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

    # -- the Redis connection ----------------------------------------------------------------
    async def _connection_loop(self) -> None:
        backoff = RECONNECT_MIN_S
        loop = asyncio.get_running_loop()
        while True:
            reader = None
            try:
                # Read in a thread of its own (live/subscription.py): whatever holds the event loop, Redis's
                # buffer to this process is drained, and the loop takes all of it at once to conflate.
                # No read timeout: a quiet subscription is not a dead one (the watchdog tells).
                reader = SubscriptionReader(
                    url=self.redis_url,
                    pattern=keys.live_pattern(self.prefix),
                    deliver=self.on_messages,
                    loop=loop,
                    connect_timeout_s=SUBSCRIBE_TIMEOUT_S,
                )
                reader.start()
                self._reader = reader
                # asyncio.timeout, not wait_for: Python 3.11's wait_for hands back the awaited outcome when a
                # cancel arrives as it completes, and a failed attempt's error would swallow stop()'s cancel.
                async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                    await asyncio.shield(reader.subscribed)
                self._on_subscribed()
                backoff = RECONNECT_MIN_S
                await reader.ended
                raise ConnectionError("the subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                COUNTERS.incr("live_hub_redis_lost")
                logger.warning("live hub lost Redis (%s); reconnecting in %.1f s", exc or type(exc).__name__, backoff)
            finally:
                # Nothing is delivered after close(): what the thread still reads is dropped, the snapshot
                # that follows the next subscription covers it.
                if reader is not None:
                    reader.close()
                    self._reader = None
                if self.subscribed:
                    self.subscribed = False
                    self.unsubscribed_since = time.monotonic()
                self._subscribed_event.clear()
            # Meanwhile clients keep their last values, and their boards say the quotes are delayed.
            await asyncio.sleep(backoff * (0.5 + random.random() / 2))
            backoff = min(backoff * 2, RECONNECT_MAX_S)

    def _on_subscribed(self) -> None:
        self.subscribed = True
        self.connects += 1
        self.last_message_at = time.monotonic()
        self.probe_sent_at = None
        self._subscribed_event.set()
        if self.connects > 1:
            logger.info("live hub subscribed to Redis again; sending %d clients a fresh snapshot", len(self.clients))
        # Whatever was published while there was no subscription is lost: every client gets a snapshot.
        for client in self.clients:
            client.ready = False
        self.unsynced |= self.clients
        self._sync_wake.set()

    # -- snapshots -------------------------------------------------------------------------
    def _redis(self) -> Any:
        if self._client is None:
            self._client = redis_async_new(url=self.redis_url, decode_responses=True)
        return self._client

    async def _snapshot_read(self) -> SnapshotSource:
        """The latest quotes and feed statuses in Redis, validated once for any number of snapshots."""
        async with self._redis().pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.latest_hash(self.prefix))
            pipe.hgetall(keys.status_hash(self.prefix))
            latest, statuses = await pipe.execute()
        quotes: dict[str, tuple[str, str, str, int]] = {}
        for fieldname, data in latest.items():
            broker, _, instrument = fieldname.partition(":")
            parsed = quote_parse(data, instrument=instrument)
            if parsed is not None:
                quotes[parsed[0]] = (broker, instrument, data, parsed[2])
        status: dict[str, tuple[str, int]] = {}
        for broker, data in statuses.items():
            parsed_status = status_parse(data)
            if parsed_status is not None:
                status[broker] = (data, parsed_status[1])
        return SnapshotSource(quotes, status)

    async def snapshot(self, *, instruments: Iterable[str], brokers: frozenset[str] | None) -> Snapshot:
        """The latest quote of every subscribed broker+instrument, and every feed's status."""
        return snapshot_build(await self._snapshot_read(), instruments=instruments, brokers=brokers)

    async def _sync_loop(self) -> None:
        """Send the owed snapshots: clients that connected together share one read of Redis."""
        while True:
            await self._sync_wake.wait()
            self._sync_wake.clear()
            if not self.subscribed or not self.unsynced:
                continue  # _on_subscribed() wakes this loop again
            batch, self.unsynced = self.unsynced, set()
            try:
                source = await self._snapshot_read()
                # What came in meanwhile goes into the outboxes now, where sending the snapshot drops
                # whatever it already covers (send_snapshot): nothing older than a snapshot follows it.
                self.fan_out()
                self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("live hub could not read a snapshot (%s); retrying", exc)
                self.unsynced |= batch & self.clients
                await asyncio.sleep(SNAPSHOT_RETRY_S)
                self._sync_wake.set()
                continue
            for n, client in enumerate(batch):
                if n and n % SNAPSHOTS_PER_TURN == 0:
                    # A send that does not suspend never yields: a reconnect storm's hundreds of snapshots
                    # would otherwise hold the loop, and the Redis read with it, until the last is out.
                    await asyncio.sleep(0)
                if client not in self.clients or client in self.unsynced:
                    continue
                snap = snapshot_build(source, instruments=client.instruments, brokers=client.brokers)
                try:
                    await client.send_snapshot(snap)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.info("a live client went away during its snapshot", exc_info=True)
                    continue
                if client in self.clients and client not in self.unsynced:
                    self.mark_ready(client)

    # -- the hot path ----------------------------------------------------------------------
    def on_message(self, channel: str, data: str) -> None:
        self.on_messages([(channel, data)])

    def on_messages(self, batch: list[tuple[str, str]]) -> None:
        """Messages as read from Redis, oldest first. Of one broker's quotes for an instrument only the
        newest valid one is fanned out: clients would conflate the others away anyway (their outboxes
        keep the latest per broker and instrument), and this way a burst costs the hub one decode per
        quote but fan-out per broker and instrument, so it keeps up with Redis instead of falling
        seconds behind (measured at 20,000 quotes/s: bench.live --burst). What remains waits for the
        next flush, which offers each instrument's quotes as one group (fan_out())."""
        if not batch:
            return
        self.received += len(batch)
        self.last_message_at = time.monotonic()
        head = len(self.channel_head)
        newest: dict[tuple[str, str], tuple[str, str, tuple[str, str, int]]] = {}
        superseded = 0
        for channel, data in reversed(batch):
            if channel == self.status_channel or channel == self.probe_channel:
                continue
            q = quote_decode(data)
            if not isinstance(q, dict):
                COUNTERS.incr("live_bad_upstream")
                continue
            broker = q.get("broker")
            slot = (channel, broker if isinstance(broker, str) else "")
            if slot in newest:
                superseded += 1
                continue
            instrument = channel[head:]
            parsed = quote_check(q, instrument=instrument)
            if parsed is None:
                COUNTERS.incr("live_bad_upstream")  # and an older quote of the same slot may still stand
                continue
            newest[slot] = (instrument, data, parsed)
        if superseded:
            COUNTERS.incr("live_superseded_upstream", superseded)
        for channel, data in batch:  # statuses in the order they came
            if channel == self.status_channel:
                self._on_status(data)
        incoming, replaced = self._incoming, 0
        for instrument, data, (key, broker, ts) in reversed(newest.values()):  # oldest first, as they came
            if ts > self._newest_read:
                self._newest_read = ts
            if instrument in self.groups:
                waiting = incoming.setdefault(instrument, {})
                if waiting.pop(key, None) is not None:
                    replaced += 1
                waiting[key] = (data, broker, ts)
        if replaced:
            COUNTERS.incr("live_superseded_upstream", replaced)
        if incoming:
            self._wake.set()

    def fan_out(self) -> None:
        """Offer what came in since the last flush: per instrument one group, built once for every
        subscriber. Done once per flush, not per read of Redis: between two flushes in a burst several
        reads bring the same instruments again, and their quotes are merged here, once, instead of in
        every client's outbox."""
        incoming, self._incoming = self._incoming, {}
        for instrument, waiting in incoming.items():
            parts: list[tuple[str, Update]] = []
            brokers: dict[str, str] = {}  # key -> broker
            alone = len(waiting) == 1  # its own frame is the group's; otherwise the group's frame serves
            for key, (data, broker, ts) in waiting.items():
                if alone:
                    text = '{"type":"quotes","quotes":[' + data + "]}"
                    parts.append((key, Update(fragment=data, text=text, frame=ws_text_frame(text.encode()), ts=ts)))
                else:
                    parts.append((key, quote_part(data, ts)))
                brokers[key] = broker
            self._on_quotes(instrument, parts, brokers)

    def _on_quotes(self, instrument: str, parts: list[tuple[str, Update]], brokers: dict[str, str]) -> None:
        """Offer one instrument's new quotes (each of a different broker) to its subscribers."""
        members = self.groups.get(instrument)
        if not members:
            return
        group = quote_group(parts)
        oldest = min(u.ts for _k, u in parts)
        if not self._oldest_offered or oldest < self._oldest_offered:
            self._oldest_offered = oldest
        dirty = self.dirty
        for client in members:
            wanted = client.brokers
            if wanted is None:
                client.outbox.offer_group(instrument, group)
            else:  # a client that chose brokers: only theirs, key by key
                for key, update in parts:
                    if brokers[key] in wanted:
                        client.outbox.offer_quote(key, update)
            dirty.add(client)

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
            started = time.monotonic()
            await self._flush()
            pause = self.flush_pause(took_s=time.monotonic() - started)
            if pause:
                await asyncio.sleep(pause)

    def flush_pause(self, *, took_s: float) -> float:
        """How long the flush loop waits after a flush that took took_s (see FLUSH_SHARE)."""
        share = FLUSH_SHARE_BEHIND if now_us() - self._newest_read > FLUSH_BEHIND_US else FLUSH_SHARE
        pause = min(FLUSH_PAUSE_MAX_S, took_s * (1 - share) / share)
        return pause if pause >= FLUSH_PAUSE_MIN_S else 0.0

    async def _flush(self) -> None:
        """Write what is pending to every client that has something (one pass, synchronous per client)."""
        self.fan_out()
        dirty, self.dirty = self.dirty, set()
        now = time.monotonic()
        # The per-client work is synchronous (no coroutine per client): this loop runs for every
        # subscribed client of every quote. Only the rare cases await, after the loop.
        later: list[tuple[Subscriber, str, list[Update | str]]] = []
        held = self.held
        written = 0
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
                    ok = client.write(items)
                except Exception:
                    logger.exception("live delivery failed; dropping the client")
                    later.append((client, "detach", []))
                    continue
                if not ok and items:
                    later.append((client, "deliver", items))
                written += 1
            elif decision is Decision.HOLD:
                held.add(client)
            else:
                COUNTERS.incr("ws_dropped_slow")
                logger.warning("dropping a slow live client (%d bytes unsent)", outbox.max_backlog)
                later.append((client, "drop", []))
        oldest, self._oldest_offered = self._oldest_offered, 0
        if oldest and written:
            self.lag_counts[bisect.bisect_left(LAG_BOUNDS_MS, (now_us() - oldest) / 1000)] += written
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
            now = time.monotonic()
            if now >= next_flush:
                next_flush = now + COUNTERS_FLUSH_S
                await counters_flush()
            await self._watch(now)

    async def _watch(self, now: float) -> None:
        """The watchdog: a hub with clients that hears nothing for quiet_s sends itself a probe through
        Redis; if even that does not come back within probe_timeout_s, the subscription is dead though
        the connection looks open (a frozen Redis, a lost subscription): count it, log it, reconnect.
        With feeds up a hub hears hundreds of quotes a second, so the probe is sent only when quiet."""
        conn_task = self._tasks[0] if self._tasks else None
        if conn_task is not None and conn_task.done():
            await self._heal("its Redis connection task ended")
            return
        if not self.clients or not self.subscribed:
            self.probe_sent_at = None
            return
        if self.probe_sent_at is not None:
            if self.last_message_at >= self.probe_sent_at:
                self.probe_sent_at = None
            elif now - self.probe_sent_at > self.probe_timeout_s:
                COUNTERS.incr("live_hub_stuck")
                await self._heal(f"nothing received for {now - self.last_message_at:.1f} s, not even its own probe")
            return
        if now - self.last_message_at > self.quiet_s:
            self.probe_sent_at = now
            try:
                await asyncio.wait_for(self._redis().publish(self.probe_channel, "probe"), timeout=self.probe_timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("live hub could not publish its probe: %s", exc)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub_get() -> Hub:
    """The hub of the running event loop (one per daphne process; one per test loop)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(redis_url=settings.REDIS_URL, prefix=settings.CACHE_KEY_PREFIX)
    return hub


def hubs_health() -> list[dict[str, Any]]:
    """Every hub of this process (one per daphne process), for /readyz."""
    return [hub.health() for hub in list(_hubs.values())]
