"""Stream entries are acknowledged only after their bars are committed: a commit that fails (a real
PostgreSQL error, raised by a trigger) leaves every entry pending, and the next pass records them."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.db import connection

from marketdata import keys
from marketdata.aggregator import StreamAggregator
from marketdata.codec import entry_encode
from marketdata.models import SpreadBar

pytestmark = pytest.mark.django_db(transaction=True)

REFUSE_BARS = """
CREATE OR REPLACE FUNCTION bw_refuse_bars() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'bars refused by the test'; END; $$ LANGUAGE plpgsql;
CREATE TRIGGER bw_refuse_bars BEFORE INSERT OR UPDATE ON marketdata_spreadbar
FOR EACH ROW EXECUTE FUNCTION bw_refuse_bars();
"""


def _pending(r: redis.Redis, stream: str) -> int:
    return int(r.xpending(stream, keys.AGGREGATOR_GROUP)["pending"])


def test_entries_stay_pending_when_the_commit_fails_and_are_recorded_by_the_next_pass(demo_committed):
    r = redis.Redis.from_url(settings.REDIS_URL)
    shard = keys.shard_of("EURUSD", settings.LIVE_STREAM_SHARDS)
    stream = keys.tick_stream(shard)
    ts = 1_790_000_000_000_000
    quotes = [
        ("northwind-markets", "EURUSD", 1.1, 1.1001, 1.0, 1.0, ts + i * 1000, ts + i * 1000 + 5, ts, 0)
        for i in range(10)
    ]
    aggregator = StreamAggregator(
        redis_url=settings.REDIS_URL, prefix=settings.CACHE_KEY_PREFIX, shards=[shard], block_ms=50
    )
    aggregator.step()  # takes the shard over: creates the consumer group
    r.xadd(stream, entry_encode("producer-a", 1, quotes))
    with connection.cursor() as cur:
        cur.execute(REFUSE_BARS)
    try:
        aggregator.step()
        assert _pending(r, stream) == 1, "an entry whose bars were not committed must stay pending"
        assert not SpreadBar.objects.exists()
    finally:
        with connection.cursor() as cur:
            cur.execute("DROP TRIGGER bw_refuse_bars ON marketdata_spreadbar; DROP FUNCTION bw_refuse_bars();")
    for _ in range(5):
        aggregator.step()
        if SpreadBar.objects.exists():
            break
    assert SpreadBar.objects.get(broker__slug="northwind-markets", instrument__symbol="EURUSD").count == 10
    assert _pending(r, stream) == 0
