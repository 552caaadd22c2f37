"""The live path publishes every accepted quote once and keeps the newest one per broker and instrument,
also when one flush carries more quotes than one publish call takes (real Redis)."""

from __future__ import annotations

import asyncio
import json

import redis
import redis.asyncio as aioredis
from django.conf import settings

from common.ticks import Quote, now_us, quote_live_message
from marketdata import keys
from marketdata.ingest import PUBLISH_CHUNK, Ingestor
from marketdata.selectors import symbol_maps
from marketdata.validation import QuoteValidator

from .test_aggregation import BROKERS, simulated_quotes

PREFIX = settings.CACHE_KEY_PREFIX


def test_one_flush_of_several_publish_chunks_publishes_each_quote_once_and_keeps_the_newest(demo_committed):
    raw = simulated_quotes(minutes=2, rate=4.0)[: 2 * PUBLISH_CHUNK + 300]
    t = now_us()
    quotes = [Quote(b, i, bid, ask, 1.0, 1.0, t, t, n) for n, (b, i, bid, ask, _) in enumerate(raw, start=1)]
    instruments = sorted({q.instrument for q in quotes})
    validator = QuoteValidator(symbols=symbol_maps(brokers=BROKERS))

    async def scenario():
        sub = aioredis.Redis.from_url(settings.REDIS_URL)
        pubsub = sub.pubsub()
        await pubsub.subscribe(*(keys.live_channel(i) for i in instruments))
        confirmed = 0
        while confirmed < len(instruments):  # the subscriptions are active before anything is published
            m = await pubsub.get_message(timeout=5)
            assert m is not None, "no subscribe confirmation"
            confirmed += m["type"] == "subscribe"
        ing = Ingestor(
            redis_url=settings.REDIS_URL,
            prefix=PREFIX,
            shards=settings.LIVE_STREAM_SHARDS,
            validator=validator,
        )
        for q in quotes:  # all in one event-loop tick: one flush
            ing.accept(q)
        await ing.stop()
        received = []
        while (m := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)) is not None:
            received.append((m["channel"].decode(), m["data"].decode()))
        await sub.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
        return ing, received

    ing, received = asyncio.run(scenario())
    assert ing.stats.accepted > 2 * PUBLISH_CHUNK and ing.stats.flushes == 1
    assert len(received) == ing.stats.accepted
    messages = [json.loads(data) for _, data in received]
    assert [m["seq"] for m in messages] == sorted(m["seq"] for m in messages)  # in acceptance order
    pairs = list(zip(received, messages, strict=True))
    assert all(channel == keys.live_channel(m["instrument"]) for (channel, _), m in pairs)
    newest = {f"{m['broker']}:{m['instrument']}": data for (_, data), m in pairs}
    stored = redis.Redis.from_url(settings.REDIS_URL).hgetall(keys.latest_hash())
    assert {k.decode(): v.decode() for k, v in stored.items()} == newest
    first = next(q for q in quotes if q.seq == messages[0]["seq"])
    assert received[0][1] == quote_live_message(first, messages[0]["ts_ingest"])
