"""`/ws/spreads/`: live quotes for logged-in traders. Protocol: docs/websocket-protocol.md."""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from common.redis import REDIS_DOWN
from common.ticks import now_us
from live import board, transport
from live.counters import COUNTERS
from live.hub import Hub, Snapshot, hub_get
from live.notify import UserNotifier, notifier_get
from live.outbox import Outbox, SlowPolicy, Update, ws_text_frame
from live.selectors import board_choice_cached_get

logger = logging.getLogger(__name__)

MAX_CLIENT_MESSAGE_BYTES = 4096
MAX_LIST_ITEMS = 200
MAX_ERRORS = 100  # a client that keeps sending garbage is closed after this many errors
MAX_DEPTH = 3  # {"instruments": [...]} is 2 deep; anything deeper is not a message of this protocol
MAX_SYMBOL_CHARS = 64
MESSAGES_PER_S = 20  # per connection, on average ...
MESSAGES_BURST = 40  # ... with bursts up to this; beyond it each message is refused and counted

# A client whose socket holds more than this many unsent bytes gets nothing new (its outbox keeps
# conflating); still so after the grace period, it is dropped with CLOSE_TOO_SLOW.
SLOW_POLICY = SlowPolicy(hold_above_bytes=settings.LIVE_SLOW_HOLD_BYTES, drop_after_s=settings.LIVE_SLOW_DROP_S)

CLOSE_NOT_LOGGED_IN = 4401
CLOSE_TOO_SLOW = 4008
CLOSE_TOO_MANY_ERRORS = 4400


class ClientError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _symbols(value: Any, *, what: str) -> list[str]:
    if (
        not isinstance(value, list)
        or len(value) > MAX_LIST_ITEMS
        or not all(isinstance(v, str) and 0 < len(v) <= MAX_SYMBOL_CHARS for v in value)
    ):
        raise ClientError(
            "bad_request",
            f'"{what}" must be a list of at most {MAX_LIST_ITEMS} strings of 1 to {MAX_SYMBOL_CHARS} characters',
        )
    return value


def message_decode(text: str) -> dict[str, Any]:
    """One client message: a JSON object at most MAX_DEPTH deep whose text survives UTF-8 encoding.

    RecursionError (deep nesting) and UnicodeError (lone surrogates, which json.loads accepts as
    \\ud800 escapes but which cannot be sent back) are the callers' to catch, like ValueError."""
    text.encode("utf-8")  # a lone surrogate cannot be echoed in an error reply, nor stored
    message = json.loads(text)
    if not isinstance(message, dict):
        raise ClientError("malformed", "expected a JSON object")
    if _depth(message) > MAX_DEPTH:
        raise ClientError("too_deep", f"values may be nested at most {MAX_DEPTH} deep")
    return message


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


class TokenBucket:
    """Per-connection message rate: `rate` a second on average, bursts of up to `burst`."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, *, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.updated = time.monotonic()

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class SpreadsConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    # The hub reads Redis pub/sub directly; a per-connection channel-layer channel would only cost.
    channel_layer_alias = "__none__"

    outbox: Outbox
    instruments: frozenset[str]
    brokers: frozenset[str] | None
    ready: bool
    hub: Hub | None = None
    notifier: UserNotifier | None = None  # personal messages (alert toasts): live/notify.py

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its close_old_connections() before every handler.

        Channels runs that on its one database thread (channels.db.aclose_old_connections), so every
        connect, client message and disconnect of every client queued on that thread, behind the others: in
        an NFP burst with 500 clients connecting at once, none finished its handshake within daphne's
        timeout (bench.live --burst, storm_ok 0 of 500). This consumer never uses the database on the event
        loop; what it reads goes through database_sync_to_async, which closes old connections itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            COUNTERS.incr("ws_refused")
            await self.close(code=CLOSE_NOT_LOGGED_IN)  # before accept: the handshake is refused (403)
            return
        # Accept first: the handshake must not wait for anything a storm of reconnects would queue on.
        # What follows reads caches (the universe, the trader's board choice), and the snapshot is
        # sent by the hub once it is subscribed.
        self.outbox = Outbox(SLOW_POLICY)
        self.ready = False
        self.errors = 0
        self.bucket = TokenBucket(rate=MESSAGES_PER_S, burst=MESSAGES_BURST)
        self.connection = transport.Connection(self.base_send, hold_bytes=SLOW_POLICY.hold_above_bytes)
        await self.accept()
        universe = board.instrument_universe_local()
        if universe is None:  # once a minute per process: the cache, or the database, off the event loop
            universe = await database_sync_to_async(board.instrument_universe)()
        self.universe = universe
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        wanted = _csv(query.get("instruments"))
        if not wanted:  # the board's script always names them; only a bare URL needs the saved choice
            choice = await database_sync_to_async(board_choice_cached_get)(user_id=user.pk)
            wanted = choice.instruments
        self.instruments = frozenset(s for s in wanted if s in self.universe) or frozenset(self.universe)
        brokers = _csv(query.get("brokers"))
        self.brokers = frozenset(brokers) if brokers else None
        self.hub = hub_get()
        await self.hub.attach(self)
        # Personal messages (alert toasts) reach this socket too (live/notify.py).
        self.user_id = user.pk
        self.notifier = notifier_get()
        await self.notifier.attach(self.user_id, self)

    async def send_snapshot(self, snapshot: Snapshot) -> None:
        await self.send(text_data=snapshot.text)
        # What waited in the outbox while the snapshot was read must not roll it back.
        self.outbox.conflated += self.outbox.discard_older(quotes=snapshot.quotes, statuses=snapshot.statuses)

    async def disconnect(self, code: int) -> None:
        if self.notifier is not None:
            await self.notifier.detach(self.user_id, self)
            self.notifier = None
        if self.hub is not None:
            await self.hub.detach(self)
            self.hub = None

    # -- what the hub calls ----------------------------------------------------------------
    def backlog(self) -> int:
        return self.connection.backlog()

    def write(self, items: list[Update | str]) -> bool:
        # The same framed bytes as every other client, or this client's own batch.
        return self.connection.write([i.frame if isinstance(i, Update) else ws_text_frame(i.encode()) for i in items])

    async def deliver(self, item: Update | str) -> None:
        """The public way, when write() cannot be used."""
        text = item.text if isinstance(item, Update) else item
        if not self.connection.send_text(text):
            await self.send(text_data=text)

    async def drop_slow(self) -> None:
        await self.close(code=CLOSE_TOO_SLOW)

    # -- client messages -------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            if not self.bucket.take(time.monotonic()):
                COUNTERS.incr("ws_rate_limited")
                raise ClientError(
                    "rate_limited", f"at most {MESSAGES_PER_S} messages a second (bursts of {MESSAGES_BURST})"
                )
            if text_data is None:
                raise ClientError("bad_request", "binary messages are not supported; send JSON text")
            if len(text_data) > MAX_CLIENT_MESSAGE_BYTES:
                COUNTERS.incr("ws_oversized")
                raise ClientError("too_large", f"messages are limited to {MAX_CLIENT_MESSAGE_BYTES} bytes")
            await self._handle(message_decode(text_data))
        except ClientError as error:
            await self._refuse(error)
        except (RecursionError, UnicodeError, ValueError, TypeError) as exc:
            # Whatever a decoder or validator raised on this client's input is the client's error,
            # never a traceback and a closed connection.
            logger.info("refused a live client message: %s", type(exc).__name__)
            await self._refuse(ClientError("malformed", "the message could not be decoded"))

    async def _refuse(self, error: ClientError) -> None:
        if error.code not in ("too_large", "rate_limited"):
            COUNTERS.incr("ws_malformed")
        self.errors += 1
        await self.send(text_data=json.dumps({"type": "error", "code": error.code, "message": error.message}))
        if self.errors >= MAX_ERRORS:
            await self.close(code=CLOSE_TOO_MANY_ERRORS)

    async def _handle(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        if action == "ping":
            await self.send(text_data=json.dumps({"type": "pong", "server_time_us": now_us()}))
            return
        if action not in ("subscribe", "unsubscribe"):
            raise ClientError("bad_request", 'unknown "action"; expected subscribe, unsubscribe or ping')
        symbols = _symbols(message.get("instruments", []), what="instruments")
        unknown = sorted(set(symbols) - self.universe)
        if unknown:
            raise ClientError("unknown_instrument", "unknown instruments: " + ", ".join(unknown[:10]))
        brokers = self.brokers
        if "brokers" in message and action == "subscribe":
            raw = message["brokers"]
            brokers = None if raw is None else frozenset(_symbols(raw, what="brokers"))
        if action == "subscribe":
            instruments = self.instruments | frozenset(symbols)
        else:
            instruments = self.instruments - frozenset(symbols)
        await self._resubscribe(instruments, brokers)

    async def _resubscribe(self, instruments: frozenset[str], brokers: frozenset[str] | None) -> None:
        assert self.hub is not None
        added = instruments - self.instruments if brokers == self.brokers else instruments
        # Updates for the new set wait in the outbox until the snapshot of what was added is out.
        self.ready = False
        self.brokers = brokers
        self.hub.regroup(self, instruments)
        self.outbox.keep_only(instruments=instruments, brokers=brokers)
        await self.send(
            text_data=json.dumps(
                {
                    "type": "subscribed",
                    "instruments": sorted(instruments),
                    "brokers": sorted(brokers) if brokers is not None else None,
                }
            )
        )
        if added:
            try:
                snapshot = await self.hub.snapshot(instruments=added, brokers=brokers)
            except REDIS_DOWN:
                self.hub.resync(self)  # the whole snapshot, once Redis answers again
                return
            await self.send_snapshot(snapshot)
        self.hub.mark_ready(self)


def _csv(values: list[str] | None) -> list[str]:
    if not values:
        return []
    return [v.strip() for v in values[-1].split(",") if v.strip()][:MAX_LIST_ITEMS]
