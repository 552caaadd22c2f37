"""The alert process against the real Redis and PostgreSQL: quotes in, one toast message and one email out."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail

from alerts import services
from alerts.evaluator import Evaluator
from alerts.models import Alert, Notification
from alerts.tests.conftest import quote_json
from live.notify import user_channel
from marketdata import keys
from testing.support import await_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _evaluator(**kw):
    options = {"cooldown_s": 3600, "reload_s": 30, "score_poll_s": 30, **kw}
    return Evaluator(redis_url=settings.REDIS_URL, prefix=settings.CACHE_KEY_PREFIX, **options)


async def _started(evaluator):
    stop = asyncio.Event()
    task = asyncio.ensure_future(evaluator.run(until=stop))
    await asyncio.wait_for(evaluator.ready.wait(), 10)
    return stop, task


@pytest.fixture
def trader(market):
    user = User.objects.create_user("trader", email="trader@example.com", password="pw-long-enough-1")
    services.alert_create(
        user=user,
        kind=Alert.Kind.SPREAD_ABOVE,
        broker=market["acme"],
        instrument=market["eur"],
        threshold_pips=Decimal("2"),
    )
    return user


async def test_a_crossing_quote_reaches_the_trader_once_with_one_email_and_a_history_row(trader):
    conn = aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    pubsub = conn.pubsub()
    await pubsub.subscribe(user_channel(trader.pk))
    evaluator = _evaluator()
    stop, task = await _started(evaluator)
    try:
        channel = keys.live_channel("EURUSD")
        await conn.publish(channel, quote_json("acme", "EURUSD", 1.10000, 1.10010))  # 1 pip: below
        await conn.publish(channel, quote_json("zeta", "EURUSD", 1.10000, 1.10050))  # another broker
        for seq, ask in enumerate((1.10030, 1.10040, 1.10035), start=2):  # 3, 4, 3.5 pips: one episode
            await conn.publish(channel, quote_json("acme", "EURUSD", 1.10000, ask, seq))
        await conn.publish(channel, quote_json("acme", "EURUSD", 1.10000, 1.10010, 9))  # back below
        await conn.publish(channel, quote_json("acme", "EURUSD", 1.10000, 1.10050, 10))  # within the cool-down
        messages = []

        async def collect():
            while True:
                m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if m is not None:
                    messages.append(json.loads(m["data"]))

        reader = asyncio.ensure_future(collect())
        await await_for(lambda: evaluator.stats.quotes >= 7, timeout=10, what="quotes evaluated")
        await await_for(lambda: evaluator.stats.recorded >= 1, timeout=10, what="notification recorded")
        await await_for(lambda: messages, timeout=5, what="toast message")
        reader.cancel()
    finally:
        stop.set()
        await task
        await pubsub.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
        await conn.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
    assert [m["type"] for m in messages] == ["alert"]
    assert "acme EURUSD spread 3.0 pips" in messages[0]["message"]
    rows = await sync_to_async(lambda: list(Notification.objects.values_list("user_id", "broker", "instrument")))()
    assert rows == [(trader.pk, "acme", "EURUSD")]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["trader@example.com"]
    assert "spread 3.0 pips" in mail.outbox[0].subject


async def test_an_alert_set_while_the_process_runs_is_picked_up_at_once(market):
    user = await sync_to_async(User.objects.create_user)("late", email="", password="pw-long-enough-1")
    evaluator = _evaluator(reload_s=600)
    stop, task = await _started(evaluator)
    try:
        await sync_to_async(services.alert_create)(user=user, kind=Alert.Kind.FEED_DOWN, broker=market["zeta"])
        await await_for(lambda: evaluator.engine.rules, timeout=10, what="reload on change")
        conn = aioredis.Redis.from_url(settings.REDIS_URL)
        await conn.publish(keys.status_channel(), json.dumps({"broker": "zeta", "status": "down", "since": 1}))
        await conn.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
        await await_for(lambda: evaluator.stats.recorded == 1, timeout=10, what="feed alert recorded")
    finally:
        stop.set()
        await task
    assert await sync_to_async(Notification.objects.filter(kind="feed_down", broker="zeta").count)() == 1
    assert mail.outbox == []  # no address: no email


async def test_garbage_on_the_live_channels_is_counted_and_skipped(trader):
    evaluator = _evaluator()
    stop, task = await _started(evaluator)
    conn = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        await conn.publish(keys.live_channel("EURUSD"), b"not json")
        await conn.publish(keys.live_channel("EURUSD"), json.dumps({"broker": "acme"}))
        await conn.publish(keys.live_channel("EURUSD"), quote_json("acme", "EURUSD", 1.1, 1.1005))
        await await_for(lambda: evaluator.stats.fired == 1, timeout=10, what="the good quote evaluated")
    finally:
        stop.set()
        await task
        await conn.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
    assert evaluator.stats.bad == 2


async def test_a_stored_event_report_notifies_the_watchers_of_its_brokers_once():
    from datetime import UTC, datetime, timedelta

    from brokers.models import Broker
    from brokers.services import demo_seed
    from events.services import event_report_generate
    from marketdata.models import EconomicEvent
    from trustmetrics.synthetic_load import synthetic_market_write

    nfp_at = datetime(2026, 11, 6, 12, 30, tzinfo=UTC)

    def market():
        demo_seed()
        synthetic_market_write(
            start=datetime(2026, 11, 5, tzinfo=UTC),
            days=2,
            symbols=["EURUSD"],
            news_before=timedelta(minutes=60),
            news_after=timedelta(minutes=30),
        )
        user = User.objects.create_user("watcher", email="watcher@example.com", password="pw-long-enough-1")
        services.alert_create(user=user, kind=Alert.Kind.EVENT_REPORT, broker=Broker.objects.get(slug="kestrel-fx"))
        return user, EconomicEvent.objects.get(name="US Non-Farm Payrolls", scheduled_at=nfp_at).pk

    user, nfp = await sync_to_async(market)()
    conn = aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    pubsub = conn.pubsub()
    await pubsub.subscribe(user_channel(user.pk))
    # No cool-down: it would hide a second notification for the rebuilt report.
    evaluator = _evaluator(score_poll_s=0.05, cooldown_s=0)
    stop, task = await _started(evaluator)
    try:
        await await_for(lambda: evaluator.engine.rules, timeout=10, what="the alert loaded")
        report = await sync_to_async(event_report_generate)(event_id=nfp, now=nfp_at + timedelta(hours=2))
        assert report is not None
        await await_for(lambda: evaluator.stats.recorded == 1, timeout=10, what="report alert recorded")
        message = None
        while message is None:
            m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            message = json.loads(m["data"]) if m else None
        # Rebuilt (a new row for the same release): no second notification.
        await sync_to_async(event_report_generate)(event_id=nfp, now=nfp_at + timedelta(hours=3), force=True)
        await await_for(lambda: evaluator._last_report_id > report.pk, timeout=10, what="the rebuild seen")
    finally:
        stop.set()
        await task
        await pubsub.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
        await conn.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
    assert message["kind"] == "event_report"
    assert message["broker"] == "kestrel-fx"
    assert "US Non-Farm Payrolls" in message["message"]
    assert evaluator.stats.fired == 1
    rows = await sync_to_async(lambda: list(Notification.objects.values_list("kind", "broker", "episode")))()
    assert rows == [("event_report", "kestrel-fx", f"report:{nfp}")]
    assert len(mail.outbox) == 1


async def test_an_alert_on_an_account_with_its_own_feed_is_evaluated_on_that_feeds_quotes(market):
    """Standard is published 1.2 pips over the feed account, but measured on a feed of its own: the figure that
    counts is its own quote, not the feed account's spread plus 1.2."""
    from brokers.models import AccountType
    from marketdata.models import FeedConfig

    def setup():
        acme = market["acme"]
        AccountType.objects.create(broker=acme, name="Raw", spread_type="raw", commission_per_lot=7, min_deposit=0)
        standard = AccountType.objects.create(
            broker=acme,
            name="Standard",
            spread_type="standard",
            commission_per_lot=0,
            min_deposit=0,
            spread_markup_pips=Decimal("1.2"),
        )
        FeedConfig.objects.create(broker=acme)  # the default (Raw) account: the live channels
        FeedConfig.objects.create(broker=acme, account=standard)  # Standard's own feed
        user = User.objects.create_user("std", email="std@example.com", password="pw-long-enough-1")
        services.alert_create(
            user=user,
            kind=Alert.Kind.SPREAD_ABOVE,
            broker=acme,
            instrument=market["eur"],
            account=standard,
            threshold_pips=Decimal("2"),
        )
        return standard

    standard = await sync_to_async(setup)()
    evaluator = _evaluator()
    stop, task = await _started(evaluator)
    conn = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        (rule,) = evaluator.engine.rules.values()
        assert (rule.account_id, rule.offset_pips) == (standard.pk, 0.0)
        # 1.0 pip on the feed account: 2.2 derived, above 2, but not this account's measured figure.
        await conn.publish(keys.live_channel("EURUSD"), quote_json("acme", "EURUSD", 1.10000, 1.10010))
        own = keys.account_channel("EURUSD", standard.pk)
        await conn.publish(own, quote_json("acme", "EURUSD", 1.10000, 1.10015, 2))  # 1.5: below
        await conn.publish(keys.account_channel("EURUSD", standard.pk + 1000), quote_json("acme", "EURUSD", 1.1, 1.11))
        await await_for(lambda: evaluator.stats.quotes >= 3, timeout=10, what="quotes evaluated")
        assert evaluator.stats.fired == 0
        await conn.publish(own, quote_json("acme", "EURUSD", 1.10000, 1.10025, 3))  # 2.5: above
        await await_for(lambda: evaluator.stats.recorded == 1, timeout=10, what="notification recorded")
    finally:
        stop.set()
        await task
        await conn.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
    assert evaluator.stats.bad == 0
    assert len(mail.outbox) == 1
    assert "acme Standard account EURUSD spread 2.5 pips" in mail.outbox[0].subject
