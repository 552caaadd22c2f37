"""The alert process (`manage.py alerts`): reads the live channels, evaluates every active alert, notifies.

It subscribes to the same Redis pub/sub channels as the live board (every accepted quote, every feed-status
change), so it sees a quote as soon as browsers do and never touches the web processes, and to the account
feeds' own channels (marketdata.keys.account_channel), for alerts on accounts measured on a feed of their own.
A crossing is published at once on the trader's own channel (live/notify.py: the toast over their open WebSocket); the
notification row and the email are written by a thread behind it, so neither the database nor SMTP can
delay evaluation. New trust scores and new news-event reports (events.services writes one per
high-impact release once its window has closed) are looked for in the database every ALERTS_SCORE_POLL_S:
the rows are the record, so a report written while this process was down or busy is not missed.
Alerts are reread when the web process says they changed, and every ALERTS_RELOAD_S in case a message
was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.db import close_old_connections

from alerts import engine, selectors, services
from common.redis import redis_async_new
from common.ticks import now_us
from live.notify import user_channel
from marketdata import keys

logger = logging.getLogger(__name__)

TIMER_S = 0.05  # how often "above for Y seconds" episodes are looked at
# read_response() returns without suspending while replies are buffered: under a backlog the read loop
# keeps the event loop for a whole stream buffer (up to ~1,000 quotes), and the publish loop
# (notifications) and the timer loop wait that long. It yields after a crossing and every YIELD_EVERY quotes.
YIELD_EVERY = 32


@dataclass
class Stats:
    quotes: int = 0
    bad: int = 0
    fired: int = 0
    published: int = 0
    recorded: int = 0
    delays_us: list[int] = field(default_factory=list)  # source ingest -> published, last N
    keep: int = 100_000


def toast_message(fired: engine.Fired) -> bytes:
    return orjson.dumps(
        {
            "type": "alert",
            "kind": fired.kind,
            "broker": fired.broker,
            "instrument": fired.instrument,
            "message": fired.message,
            "at_us": fired.at_us,
        }
    )


class Evaluator:
    def __init__(
        self,
        *,
        redis_url: str,
        prefix: str,
        cooldown_s: float,
        reload_s: float,
        score_poll_s: float,
        record: bool = True,
    ) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.engine = engine.Engine(cooldown_s=cooldown_s)
        self.reload_s = reload_s
        self.score_poll_s = score_poll_s
        self.record = record
        self.stats = Stats()
        self.ready = asyncio.Event()
        self._reload_now = asyncio.Event()
        self._deliveries: queue.Queue[engine.Fired | None] = queue.Queue()
        self._redis: Any = None
        self._to_publish: list[engine.Fired] = []
        self._publish_wake = asyncio.Event()
        self._last_score_id = 0
        self._last_report_id = 0
        self._reported_events: set[int] = set()  # a rebuilt report (new row, same release) notifies once
        self._channel_head = keys.live_channel("", prefix)
        self._account_head = keys.account_pattern(prefix)[:-1]  # "<prefix>:account-live:"
        self._status_channel = keys.status_channel(prefix)
        self._reload_channel = services.reload_channel(prefix)

    # -- rules -----------------------------------------------------------------------------------
    async def reload(self) -> None:
        rules, pips = await sync_to_async(_load_rules)()
        self.engine.load(rules, pip_sizes=pips)
        logger.info("alerts: %d active", len(rules))

    async def skip_past(self) -> None:
        """Start after the scores and reports already stored: only what is new from now on notifies."""
        self._last_score_id, self._last_report_id = await sync_to_async(_last_ids)()

    # -- run -------------------------------------------------------------------------------------
    async def run(self, *, until: asyncio.Event | None = None) -> None:
        self._redis = redis_async_new(url=self.redis_url, socket_timeout=None)
        pubsub = self._redis.pubsub()
        # Accounts measured on their own feed are on channels of their own, outside the live pattern.
        await pubsub.psubscribe(keys.live_pattern(self.prefix), keys.account_pattern(self.prefix))
        await pubsub.subscribe(self._reload_channel)
        await self.reload()
        await self.skip_past()
        delivery = threading.Thread(target=self._delivery_loop, name="alerts-delivery", daemon=True)
        delivery.start()
        tasks = [
            asyncio.ensure_future(self._read_loop(pubsub)),
            asyncio.ensure_future(self._publish_loop()),
            asyncio.ensure_future(self._timer_loop()),
            asyncio.ensure_future(self._reload_loop()),
            asyncio.ensure_future(self._poll_loop()),
        ]
        self.ready.set()
        try:
            if until is None:
                await asyncio.gather(*tasks)
            else:
                await until.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._deliveries.put(None)
            await asyncio.get_running_loop().run_in_executor(None, delivery.join, 10)
            await pubsub.aclose()
            await self._redis.aclose()

    async def _read_loop(self, pubsub: Any) -> None:
        # Replies are read straight off the subscribed connection: redis-py's get_message() builds a dict
        # per message and goes through its retry wrapper, which cost more than evaluating the quote.
        # On a lost connection get_message() is what reconnects and subscribes again.
        head, head_len = self._channel_head.encode(), len(self._channel_head)
        account_head = self._account_head.encode()
        status = self._status_channel.encode()
        on_quote = self.engine.on_quote
        stats = self.stats
        conn = pubsub.connection
        while True:
            try:
                response = await conn.read_response()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("alerts lost Redis; reconnecting")
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    await pubsub.get_message(timeout=0.1)
                conn = pubsub.connection
                continue
            kind = response[0]
            if kind == b"pmessage":
                channel, data = response[2], response[3]
            elif kind == b"message":
                channel, data = response[1], response[2]
            else:
                continue
            if channel.startswith(head) and channel != status:
                stats.quotes += 1
                try:
                    q = orjson.loads(data)
                    instrument = channel[head_len:].decode()
                    fired = on_quote(q["broker"], instrument, q["bid"], q["ask"], int(q["ts_ingest"]), now_us())
                except (KeyError, TypeError, ValueError, UnicodeDecodeError, orjson.JSONDecodeError):
                    stats.bad += 1
                    continue
                if fired:
                    self._notify(fired)
                    await asyncio.sleep(0)  # let the publish loop send it now
                elif stats.quotes % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            elif channel.startswith(account_head):
                stats.quotes += 1
                fired = self._on_account_quote(channel, data)
                if fired:
                    self._notify(fired)
                    await asyncio.sleep(0)
            else:
                self._on_other(channel.decode(errors="replace"), data)

    def _on_account_quote(self, channel: bytes, data: bytes) -> list[engine.Fired]:
        """A quote on marketdata.keys.account_channel: "<prefix>:account-live:<account id>:<instrument>"."""
        try:
            account, _, instrument = channel[len(self._account_head) :].decode().partition(":")
            q = orjson.loads(data)
            return self.engine.on_account_quote(
                q["broker"], int(account), instrument, q["bid"], q["ask"], int(q["ts_ingest"]), now_us()
            )
        except (KeyError, TypeError, ValueError, UnicodeDecodeError, orjson.JSONDecodeError):
            self.stats.bad += 1
            return []

    def _on_other(self, channel: str, data: bytes) -> None:
        if channel == self._reload_channel:
            self._reload_now.set()
            return
        try:
            msg = orjson.loads(data)
            if channel == self._status_channel:
                self._notify(self.engine.on_status(str(msg["broker"]), str(msg["status"]), int(msg["since"]), now_us()))
        except (KeyError, TypeError, ValueError, AttributeError, orjson.JSONDecodeError):
            self.stats.bad += 1

    def _notify(self, fired: list[engine.Fired]) -> None:
        if not fired:
            return
        self.stats.fired += len(fired)
        self._to_publish.extend(fired)
        self._publish_wake.set()
        if self.record:
            for f in fired:
                self._deliveries.put(f)

    async def _publish_loop(self) -> None:
        """One pipeline per wake-up with everything that fired meanwhile: one connection, however many fire."""
        while True:
            await self._publish_wake.wait()
            self._publish_wake.clear()
            fired, self._to_publish = self._to_publish, []
            if not fired:
                continue
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for f in fired:
                        pipe.publish(user_channel(f.user_id, self.prefix), toast_message(f))
                    await pipe.execute()
            except Exception:
                logger.exception("could not publish %d alerts", len(fired))
                continue
            published = now_us()
            stats = self.stats
            stats.published += len(fired)
            stats.delays_us.extend(published - f.source_ts_us for f in fired)
            if len(stats.delays_us) > stats.keep:
                del stats.delays_us[: -stats.keep]

    async def _timer_loop(self) -> None:
        while True:
            await asyncio.sleep(TIMER_S)
            self._notify(self.engine.on_timer(now_us()))

    async def _reload_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reload_now.wait(), timeout=self.reload_s)
            self._reload_now.clear()
            try:
                await self.reload()
            except Exception:
                logger.exception("could not reload alerts")

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.score_poll_s)
            await self.poll_database()

    async def poll_database(self) -> None:
        """New trust scores and new event reports since the last look."""
        try:
            scores = await sync_to_async(_scores_after)(self._last_score_id)
        except Exception:
            logger.exception("could not read new trust scores")
        else:
            for score_id, broker, overall, previous in scores:
                self._last_score_id = max(self._last_score_id, score_id)
                if previous is not None:
                    self._notify(self.engine.on_score(broker, previous, overall, score_id, now_us()))
        try:
            reports = await sync_to_async(_reports_after)(self._last_report_id)
        except Exception:
            logger.exception("could not read new event reports")
            return
        new_events = set()
        for report_id, event_id, broker, title in reports:
            self._last_report_id = max(self._last_report_id, report_id)
            if event_id not in self._reported_events:
                new_events.add(event_id)
                self._notify(self.engine.on_report(broker, str(event_id), title, now_us()))
        self._reported_events |= new_events

    # -- delivery (a thread: database and email) ------------------------------------------------
    def _delivery_loop(self) -> None:
        while True:
            fired = self._deliveries.get()
            if fired is None:
                break
            close_old_connections()
            try:
                if services.notification_record(fired=fired) is not None:
                    self.stats.recorded += 1
            except Exception:
                logger.exception("could not record alert %s", fired.rule_id)
        close_old_connections()


def _load_rules() -> tuple[list[engine.Rule], dict[str, float]]:
    close_old_connections()
    return selectors.alert_rules_active()


def _last_ids() -> tuple[int, int]:
    close_old_connections()
    return selectors.scores_last_id(), selectors.reports_last_id()


def _scores_after(after_id: int) -> list[tuple[int, str, float, float | None]]:
    close_old_connections()
    return selectors.scores_after(after_id=after_id)


def _reports_after(after_id: int) -> list[tuple[int, int, str, str]]:
    close_old_connections()
    return selectors.reports_after(after_id=after_id)


def percentile(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])
