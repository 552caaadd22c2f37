"""/ws/spreads/ through the real ASGI stack (origin check, sessions, auth) and the real Redis."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from decimal import Decimal

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from brokers.models import Broker, BrokerInstrument, Instrument
from config.asgi import application
from live.counters import COUNTERS
from live.hub import Hub
from marketdata import keys

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ORIGIN = (b"origin", b"http://testserver")


@pytest.fixture
def market() -> None:
    eur = Instrument.objects.create(
        symbol="EURUSD", name="Euro", asset_class="fx_major", pip_size=Decimal("0.0001"), display_precision=5
    )
    gbp = Instrument.objects.create(
        symbol="GBPUSD", name="Cable", asset_class="fx_major", pip_size=Decimal("0.0001"), display_precision=5
    )
    for slug in ("acme", "zeta"):
        broker = Broker.objects.create(
            name=slug.title(),
            slug=slug,
            website="https://x.example",
            year_founded=2000,
            headquarters_country="UK",
            company_type="private",
            min_deposit=0,
            max_leverage=30,
        )
        for inst in (eur, gbp):
            BrokerInstrument.objects.create(broker=broker, instrument=inst, broker_symbol=inst.symbol)


@pytest.fixture
def cookie(market: None) -> tuple[bytes, bytes]:
    user = User.objects.create_user("trader", password="pw-long-enough-1")
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode())


def quote(broker: str, instrument: str, bid: float, seq: int, spread: float = 0.0001) -> str:
    ask = round(bid + spread, 6)
    now = time.time_ns() // 1000
    return json.dumps(
        {
            "broker": broker,
            "instrument": instrument,
            "bid": bid,
            "ask": ask,
            "spread": ask - bid,
            "bid_size": 1e6,
            "ask_size": 1e6,
            "ts_broker": now - 500,
            "ts_ingest": now,
            "seq": seq,
        }
    )


@pytest_asyncio.fixture
async def redis():
    conn = aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    yield conn
    await conn.delete(keys.latest_hash(), keys.status_hash())
    await conn.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs


async def publish(redis, data: str) -> None:
    q = json.loads(data)
    await redis.hset(keys.latest_hash(), keys.field(q["broker"], q["instrument"]), data)
    await redis.publish(keys.live_channel(q["instrument"]), data)


async def connect(cookie, path: str = "/ws/spreads/") -> tuple[WebsocketCommunicator, dict]:
    comm = WebsocketCommunicator(application, path, headers=[ORIGIN, (b"host", b"testserver"), cookie])
    connected, _ = await comm.connect(timeout=5)
    assert connected
    snapshot = await comm.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot"
    return comm, snapshot


async def quotes_until(comm: WebsocketCommunicator, predicate, timeout: float = 5) -> list[dict]:
    """Every quote received until one satisfies predicate."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        msg = await comm.receive_json_from(timeout=max(0.01, deadline - time.monotonic()))
        if msg["type"] != "quotes":
            continue
        seen.extend(msg["quotes"])
        if any(predicate(q) for q in msg["quotes"]):
            return seen


async def test_it_refuses_an_anonymous_connection(market):
    refused_before = COUNTERS.values["ws_refused"]
    comm = WebsocketCommunicator(application, "/ws/spreads/", headers=[ORIGIN, (b"host", b"testserver")])
    connected, _ = await comm.connect(timeout=5)
    assert not connected
    assert COUNTERS.values["ws_refused"] == refused_before + 1


async def test_it_refuses_a_logged_in_connection_from_a_foreign_origin(cookie):
    comm = WebsocketCommunicator(
        application, "/ws/spreads/", headers=[(b"origin", b"https://evil.example"), (b"host", b"testserver"), cookie]
    )
    connected, _ = await comm.connect(timeout=5)
    assert not connected


async def test_it_sends_a_snapshot_of_the_latest_quotes_then_updates(cookie, redis):
    await publish(redis, quote("acme", "EURUSD", 1.1000, 1))
    await publish(redis, quote("zeta", "GBPUSD", 1.2500, 1))
    comm, snapshot = await connect(cookie)
    by_key = {(q["broker"], q["instrument"]): q for q in snapshot["quotes"]}
    assert by_key[("acme", "EURUSD")]["bid"] == 1.1
    assert by_key[("zeta", "GBPUSD")]["bid"] == 1.25
    assert isinstance(snapshot["server_time_us"], int)

    await publish(redis, quote("acme", "EURUSD", 1.1002, 2))
    got = await quotes_until(comm, lambda q: q["seq"] == 2)
    last = got[-1]
    assert (last["broker"], last["instrument"], last["bid"]) == ("acme", "EURUSD", 1.1002)
    for name in ("ask", "spread", "ts_broker", "ts_ingest"):
        assert name in last
    await comm.disconnect()


async def test_it_follows_subscribe_and_unsubscribe_messages(cookie, redis):
    comm, snapshot = await connect(cookie, "/ws/spreads/?instruments=EURUSD")
    assert snapshot["quotes"] == []
    await publish(redis, quote("acme", "GBPUSD", 1.25, 1))
    await publish(redis, quote("acme", "EURUSD", 1.10, 2))
    got = await quotes_until(comm, lambda q: q["seq"] == 2)
    assert {q["instrument"] for q in got} == {"EURUSD"}

    await comm.send_json_to({"action": "subscribe", "instruments": ["GBPUSD"]})
    reply = await comm.receive_json_from(timeout=5)
    assert reply == {"type": "subscribed", "instruments": ["EURUSD", "GBPUSD"], "brokers": None}
    added = await comm.receive_json_from(timeout=5)
    assert added["type"] == "snapshot"
    assert [(q["instrument"], q["seq"]) for q in added["quotes"]] == [("GBPUSD", 1)]

    await comm.send_json_to({"action": "unsubscribe", "instruments": ["EURUSD"]})
    reply = await comm.receive_json_from(timeout=5)
    assert reply["instruments"] == ["GBPUSD"]
    await publish(redis, quote("acme", "EURUSD", 1.11, 3))
    await publish(redis, quote("acme", "GBPUSD", 1.26, 4))
    got = await quotes_until(comm, lambda q: q["seq"] == 4)
    assert {q["instrument"] for q in got} == {"GBPUSD"}
    await comm.disconnect()


async def test_a_broker_filter_keeps_other_brokers_quotes_away(cookie, redis):
    comm, _ = await connect(cookie, "/ws/spreads/?instruments=EURUSD&brokers=acme")
    await publish(redis, quote("zeta", "EURUSD", 1.10, 1))
    await publish(redis, quote("acme", "EURUSD", 1.10, 2))
    got = await quotes_until(comm, lambda q: q["seq"] == 2)
    assert {q["broker"] for q in got} == {"acme"}
    await comm.disconnect()


async def test_malformed_and_oversized_messages_get_an_error_and_are_counted(cookie):
    comm, _ = await connect(cookie)
    malformed_before = COUNTERS.values["ws_malformed"]
    oversized_before = COUNTERS.values["ws_oversized"]
    cases = [
        ("{not json", "malformed"),
        ("[1, 2]", "malformed"),
        (json.dumps({"action": "dance"}), "bad_request"),
        (json.dumps({"action": "subscribe", "instruments": "EURUSD"}), "bad_request"),
        (json.dumps({"action": "subscribe", "instruments": ["NOPE"]}), "unknown_instrument"),
        ("x" * 5000, "too_large"),
    ]
    for text, code in cases:
        await comm.send_to(text_data=text)
        reply = await comm.receive_json_from(timeout=5)
        assert reply["type"] == "error"
        assert reply["code"] == code, text[:40]
    await comm.send_to(bytes_data=b"\x00\x01")
    assert (await comm.receive_json_from(timeout=5))["code"] == "bad_request"
    assert COUNTERS.values["ws_malformed"] == malformed_before + 6
    assert COUNTERS.values["ws_oversized"] == oversized_before + 1
    # Still serving.
    await comm.send_json_to({"action": "ping"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "pong"
    await comm.disconnect()


async def test_bad_messages_from_the_feed_are_counted_and_skipped(cookie, redis):
    comm, _ = await connect(cookie)
    before = COUNTERS.values["live_bad_upstream"]
    await redis.publish(keys.live_channel("EURUSD"), "{broken")
    await redis.publish(keys.live_channel("EURUSD"), json.dumps({"broker": "acme", "instrument": "EURUSD"}))
    await redis.publish(keys.live_channel("EURUSD"), quote("acme", "GBPUSD", 1.2, 9))  # wrong channel
    # Another broker's: had acme's good quote come in the same read of Redis as its bad ones, the hub
    # would have kept only that newest one and never looked at the others (counted as superseded).
    await publish(redis, quote("zeta", "EURUSD", 1.1, 10))
    got = await quotes_until(comm, lambda q: q["seq"] == 10)
    assert [q["seq"] for q in got] == [10]
    assert COUNTERS.values["live_bad_upstream"] == before + 3
    await comm.disconnect()


async def test_feed_status_changes_reach_the_client(cookie, redis):
    comm, _ = await connect(cookie)
    await redis.publish(keys.status_channel(), json.dumps({"broker": "zeta", "status": "stale", "since": 123}))
    msg = await comm.receive_json_from(timeout=5)
    assert msg == {"type": "status", "broker": "zeta", "status": "stale", "since": 123}
    await comm.disconnect()


async def test_a_burst_is_conflated_to_the_latest_quote_per_broker_and_instrument(cookie, redis):
    comm, _ = await connect(cookie)
    burst = 3000
    async with redis.pipeline(transaction=False) as pipe:
        for seq in range(1, burst + 1):
            broker = "acme" if seq % 2 else "zeta"
            pipe.publish(keys.live_channel("EURUSD"), quote(broker, "EURUSD", 1.1 + seq * 1e-6, seq))
        await pipe.execute()
    got = await quotes_until(comm, lambda q: q["seq"] == burst)
    # Fewer messages than quotes, yet the latest of each broker arrives and nothing goes backwards.
    assert len(got) < burst
    latest = {}
    for q in got:
        assert q["seq"] > latest.get(q["broker"], 0)
        latest[q["broker"]] = q["seq"]
    assert latest == {"zeta": burst, "acme": burst - 1}
    await comm.disconnect()


async def test_updates_that_arrive_while_a_snapshot_is_read_never_roll_it_back(cookie, redis, monkeypatch):
    await publish(redis, quote("acme", "EURUSD", 1.1002, 2))
    await redis.hset(keys.status_hash(), "acme", json.dumps({"broker": "acme", "status": "up", "since": 200}))
    old = json.loads(quote("acme", "EURUSD", 1.1001, 1))
    old["ts_ingest"] -= 1_000_000  # ingested a second before the quote the snapshot will hold
    real_snapshot_read = Hub._snapshot_read

    async def snapshot_during_a_race(self: Hub):
        # Older updates reach the hub after the client joined its group but before the snapshot is
        # read, as when pub/sub delivery lags the latest-quote hash.
        self.on_message(keys.live_channel("EURUSD"), json.dumps(old))
        self.on_message(keys.status_channel(), json.dumps({"broker": "acme", "status": "down", "since": 100}))
        return await real_snapshot_read(self)

    monkeypatch.setattr(Hub, "_snapshot_read", snapshot_during_a_race)
    comm, snapshot = await connect(cookie)
    assert [(q["broker"], q["seq"]) for q in snapshot["quotes"]] == [("acme", 2)]
    assert [(s["broker"], s["status"]) for s in snapshot["status"]] == [("acme", "up")]

    await publish(redis, quote("zeta", "GBPUSD", 1.25, 3))
    after = []
    while True:
        msg = await comm.receive_json_from(timeout=5)
        after.append(msg)
        if msg["type"] == "quotes" and any(q["seq"] == 3 for q in msg["quotes"]):
            break
    assert [m["type"] for m in after] == ["quotes"]
    assert [q["seq"] for q in after[0]["quotes"]] == [3]
    await comm.disconnect()


async def test_deeply_nested_json_is_an_error_reply_counted_towards_the_error_limit(cookie):
    comm, _ = await connect(cookie)
    malformed_before = COUNTERS.values["ws_malformed"]
    await comm.send_to(text_data="[" * 1000 + "]" * 1000)  # RecursionError inside json.loads
    reply = await comm.receive_json_from(timeout=5)
    assert (reply["type"], reply["code"]) == ("error", "malformed")
    await comm.send_json_to({"action": "subscribe", "instruments": [[["EURUSD"]]]})  # parses, but too deep
    reply = await comm.receive_json_from(timeout=5)
    assert reply["code"] == "too_deep"
    await comm.send_json_to({"action": "subscribe", "instruments": ["X" * 65]})  # an over-long value
    assert (await comm.receive_json_from(timeout=5))["code"] == "bad_request"
    await comm.send_to(text_data='{"action": "subscribe", "instruments": ["\\ud800"]}')  # a lone surrogate
    assert (await comm.receive_json_from(timeout=5))["type"] == "error"
    assert COUNTERS.values["ws_malformed"] == malformed_before + 4
    await comm.send_json_to({"action": "ping"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "pong"
    await comm.disconnect()


async def test_a_client_that_keeps_sending_deep_json_is_closed_after_the_error_limit(cookie):
    from live.consumers import CLOSE_TOO_MANY_ERRORS, MAX_ERRORS, MESSAGES_BURST, MESSAGES_PER_S

    comm, _ = await connect(cookie)
    codes = []
    for _ in range(MAX_ERRORS):
        await comm.send_to(text_data="[" * 1000 + "]" * 1000)
        msg = await comm.receive_output(timeout=5)
        if msg["type"] == "websocket.close":
            codes.append(msg["code"])
            break
        codes.append(json.loads(msg["text"])["code"])
    assert set(codes[:-1]) <= {"malformed", "rate_limited"}
    assert codes[-1] == "malformed" or codes[-1] == "rate_limited"
    close = await comm.receive_output(timeout=5)
    assert close == {"type": "websocket.close", "code": CLOSE_TOO_MANY_ERRORS}
    assert MESSAGES_PER_S < MAX_ERRORS and MESSAGES_BURST < MAX_ERRORS


async def test_messages_beyond_the_rate_limit_are_refused_with_an_error_and_counted(cookie):
    from live.consumers import MESSAGES_BURST

    comm, _ = await connect(cookie)
    limited_before = COUNTERS.values["ws_rate_limited"]
    sent = MESSAGES_BURST * 2
    for _ in range(sent):
        await comm.send_json_to({"action": "ping"})
    replies = [await comm.receive_json_from(timeout=5) for _ in range(sent)]
    refused = [r for r in replies if r["type"] == "error"]
    assert {r["code"] for r in refused} == {"rate_limited"}
    # The burst goes through; of the rest only what the rate refilled meanwhile.
    assert len(refused) >= MESSAGES_BURST // 2
    assert sum(1 for r in replies if r["type"] == "pong") >= MESSAGES_BURST
    assert COUNTERS.values["ws_rate_limited"] == limited_before + len(refused)
    await comm.disconnect()


async def test_a_reconnect_reads_neither_the_instruments_nor_the_board_choice_from_the_database(
    cookie, redis, monkeypatch
):
    from django.db.backends.utils import CursorWrapper

    comm, _ = await connect(cookie)  # the first connect may fill the caches
    await comm.disconnect()
    statements: list[str] = []
    real_execute = CursorWrapper.execute

    def recording_execute(self, sql, params=None):
        statements.append(sql)
        return real_execute(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", recording_execute)
    comm, _ = await connect(cookie)
    await comm.disconnect()
    touched = [s for s in statements if "boardpreference" in s or "brokers_instrument" in s]
    assert touched == []


async def test_a_changed_board_choice_is_what_the_next_connect_subscribes_to(cookie, redis):
    from django.contrib.auth.models import User

    from live.services import board_preference_set

    comm, _ = await connect(cookie)  # caches the choice "everything"
    await comm.disconnect()
    user = await User.objects.aget(username="trader")
    await database_sync_to_async(board_preference_set)(user=user, instruments=["GBPUSD"], brokers=[])
    await publish(redis, quote("acme", "EURUSD", 1.1, 1))
    await publish(redis, quote("acme", "GBPUSD", 1.2, 2))
    comm, snapshot = await connect(cookie)
    assert [q["instrument"] for q in snapshot["quotes"]] == ["GBPUSD"]
    await comm.disconnect()


async def test_a_handshake_does_not_wait_behind_work_queued_on_the_database_thread(cookie, redis):
    # Channels runs database_sync_to_async on one shared thread. A handshake's log-in check (the session and
    # the cached user, live/auth.py) used it too, so in a burst every new connection queued behind the others
    # and behind whatever else was on that thread (bench.live --burst: 0 of 500 storm clients connected within
    # daphne's handshake timeout). The check runs on the executor's threads instead.
    from asgiref.sync import sync_to_async

    from live import board

    await database_sync_to_async(board.instrument_universe)()  # as a running process has it
    release = threading.Event()
    blocker = asyncio.ensure_future(sync_to_async(release.wait, thread_sensitive=True)(10))
    try:
        comm = WebsocketCommunicator(
            application, "/ws/spreads/?instruments=EURUSD", headers=[ORIGIN, (b"host", b"testserver"), cookie]
        )
        connected, _ = await comm.connect(timeout=3)
        assert connected
        assert not blocker.done()  # the database thread was still busy all along
        await comm.disconnect()
    finally:
        release.set()
        await blocker
