"""The hub's lifecycle against a real, throwaway redis-server that the tests stop, freeze and restart.

The clients here are the hub's side of a consumer (the Subscriber protocol) that record what they are
sent; the consumer itself is tested through the ASGI stack in test_ws_spreads.py.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from live import hub as hub_module
from live.counters import COUNTERS, counters_flush
from live.hub import Hub, Snapshot
from live.outbox import Outbox, Update
from marketdata import keys
from testing.support import await_for, wait_for

PREFIX = f"hubtest{os.getpid()}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayRedis:
    """A redis-server of the test's own on its own port, to be killed, frozen and restarted."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(answers, 5, what="redis-server up")
        client.close()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis()
    server.start()
    yield server
    if server.proc is not None:
        server.thaw()
    server.kill()


class Recorder:
    """The hub's view of one connected client, recording every message it is sent."""

    def __init__(self, instruments: list[str]) -> None:
        self.outbox = Outbox()
        self.instruments = frozenset(instruments)
        self.brokers: frozenset[str] | None = None
        self.ready = False
        self.messages: list[dict[str, Any]] = []
        self.snapshots = 0

    def backlog(self) -> int:
        return 0

    def write(self, items: list[Update | str]) -> bool:
        for item in items:
            self.messages.append(json.loads(item.text if isinstance(item, Update) else item))
        return True

    async def deliver(self, item: Update | str) -> None:
        self.write([item])

    async def drop_slow(self) -> None:
        raise AssertionError("nothing is slow here")

    async def send_snapshot(self, snapshot: Snapshot) -> None:
        self.messages.append(json.loads(snapshot.text))
        self.snapshots += 1
        self.outbox.discard_older(quotes=snapshot.quotes, statuses=snapshot.statuses)

    def seqs(self) -> set[int]:
        return {q["seq"] for m in self.messages if m["type"] in ("quotes", "snapshot") for q in m["quotes"]}


class Publisher:
    """What an ingestor does for each accepted quote: HSET latest, PUBLISH."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seq = 0

    async def quote(self, instrument: str = "EURUSD", broker: str = "acme") -> int:
        self.seq += 1
        now = time.time_ns() // 1000
        data = json.dumps(
            {
                "broker": broker,
                "instrument": instrument,
                "bid": 1.1,
                "ask": 1.1001,
                "spread": 0.0001,
                "ts_ingest": now,
                "seq": self.seq,
            }
        )
        conn = aioredis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            async with conn.pipeline(transaction=False) as pipe:
                pipe.hset(keys.latest_hash(PREFIX), keys.field(broker, instrument), data)
                pipe.publish(keys.live_channel(instrument, PREFIX), data)
                await pipe.execute()
        finally:
            await conn.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
        return self.seq


def _all_got(clients: list[Recorder], seq: int) -> bool:
    return all(seq in c.seqs() for c in clients)


async def every_client_gets_a_new_quote(hub: Hub, publisher: Publisher, *, within: float = 2.0) -> None:
    """The property the issue asks for: each connected client receives a quote within 2 s."""
    clients: list[Recorder] = [c for c in hub.clients if isinstance(c, Recorder)]
    await await_for(lambda: hub.subscribed, within, what="hub subscribed")
    started = time.monotonic()
    seq = -1
    while time.monotonic() - started < within:
        # Published until it arrives: one published just before a reconnect is lost with the connection.
        seq = await publisher.quote()
        try:
            await await_for(functools.partial(_all_got, clients, seq), 0.3)
            return
        except AssertionError:
            continue
    missing = sum(1 for c in clients if seq not in c.seqs())
    raise AssertionError(f"{missing} of {len(clients)} clients got no quote within {within} s")


def test_of_a_batch_read_at_once_only_the_newest_valid_quote_per_broker_and_instrument_is_fanned_out() -> None:
    hub = Hub(redis_url="redis://127.0.0.1:1/0", prefix=PREFIX)  # no connection: the batch is handed in
    client = Recorder(["EURUSD", "GBPUSD"])
    hub.clients.add(client)
    hub._group(client, client.instruments)
    eur, gbp = keys.live_channel("EURUSD", PREFIX), keys.live_channel("GBPUSD", PREFIX)

    def q(broker: str, seq: int, instrument: str = "EURUSD", **extra: Any) -> str:
        body = {"broker": broker, "instrument": instrument, "bid": 1.1, "ask": 1.1001, "spread": 0.0001}
        return json.dumps({**body, "ts_ingest": 1_000 + seq, "seq": seq, **extra})

    batch = [(eur, q("acme", n)) for n in range(1, 101)]  # a burst: 100 quotes of one broker
    batch += [(eur, q("zeta", 1)), (gbp, q("acme", 7, "GBPUSD")), (eur, q("zeta", 2, bid=float("nan")))]
    batch += [(eur, "{not json"), (hub.status_channel, json.dumps({"broker": "acme", "status": "up", "since": 5}))]
    superseded, bad = COUNTERS.values["live_superseded_upstream"], COUNTERS.values["live_bad_upstream"]

    hub.on_messages(batch)
    hub.fan_out()

    pending = {key: json.loads(update.fragment)["seq"] for key, update in client.outbox.pending_quotes().items()}
    # The newest of acme's burst; zeta's newest was not a valid quote, so its older valid one stands.
    assert pending == {"acme:EURUSD": 100, "zeta:EURUSD": 1, "acme:GBPUSD": 7}
    assert client.outbox.conflated == 0  # nothing offered only to be replaced: the hub did not fan it out
    assert list(client.outbox.statuses) == ["acme"]
    assert COUNTERS.values["live_superseded_upstream"] - superseded == 99
    assert COUNTERS.values["live_bad_upstream"] - bad == 2
    assert hub.received == len(batch)


def test_an_instruments_quotes_from_one_read_go_to_every_subscriber_as_one_shared_group_filtered_per_broker() -> None:
    hub = Hub(redis_url="redis://127.0.0.1:1/0", prefix=PREFIX)  # no connection: the batch is handed in
    everyone, also, zeta_only = Recorder(["EURUSD"]), Recorder(["EURUSD"]), Recorder(["EURUSD"])
    zeta_only.brokers = frozenset({"zeta"})
    for client in (everyone, also, zeta_only):
        hub.clients.add(client)
        hub._group(client, client.instruments)
    eur = keys.live_channel("EURUSD", PREFIX)

    def q(broker: str, seq: int) -> str:
        body = {"broker": broker, "instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "spread": 0.0001}
        return json.dumps({**body, "ts_ingest": 1_000 + seq, "seq": seq})

    hub.on_messages([(eur, q("acme", 1)), (eur, q("zeta", 2)), (eur, q("kite", 3))])
    hub.on_messages([(eur, q("zeta", 4))])  # another read before the flush: merged once, in the hub
    hub.fan_out()

    (group,) = everyone.outbox.take()
    (same,) = also.outbox.take()
    assert group is same  # serialised and framed once for every subscriber
    assert isinstance(group, Update)
    assert [m["seq"] for m in json.loads(group.text)["quotes"]] == [1, 3, 4]  # in the order they came
    assert [json.loads(u.fragment)["seq"] for u in zeta_only.outbox.pending_quotes().values()] == [4]
    (alone,) = zeta_only.outbox.take()  # one quote of a larger group, sent on its own: framed now
    assert json.loads(alone if isinstance(alone, str) else alone.text)["quotes"][0]["seq"] == 4
    assert everyone.outbox.conflated == 0  # nothing was offered only to be replaced


def test_a_hub_keeping_up_with_redis_sends_at_once_and_one_falling_behind_batches_harder() -> None:
    """In calm a pause as long as every flush made quotes wait a flush-and-pause cycle (12-19 ms at the
    median in bench.live --burst's calm); in a burst the reads of Redis need as much time as the flushes."""
    from common.ticks import now_us

    hub = Hub(redis_url="redis://127.0.0.1:1/0", prefix=PREFIX)  # no connection: the batch is handed in
    client = Recorder(["EURUSD"])
    hub.clients.add(client)
    hub._group(client, client.instruments)
    eur = keys.live_channel("EURUSD", PREFIX)
    body = {"broker": "acme", "instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "spread": 0.0001}

    hub.on_messages([(eur, json.dumps({**body, "ts_ingest": now_us() - 2_000, "seq": 1}))])  # 2 ms old
    keeping_up = hub.flush_pause(took_s=0.010)
    hub.on_messages([(eur, json.dumps({**body, "ts_ingest": now_us() - 400_000, "seq": 2}))])  # older: still 2 ms
    assert hub.flush_pause(took_s=0.010) == keeping_up
    assert 0.001 <= keeping_up <= 0.0012  # a ninth of the flush

    hub = Hub(redis_url="redis://127.0.0.1:1/0", prefix=PREFIX)
    hub.clients.add(client)
    hub._group(client, client.instruments)
    hub.on_messages([(eur, json.dumps({**body, "ts_ingest": now_us() - 400_000, "seq": 3}))])  # 400 ms behind
    assert hub.flush_pause(took_s=0.010) == pytest.approx(0.010)  # as long as the flush
    assert hub.flush_pause(took_s=0.200) == 0.025  # bounded
    assert hub.flush_pause(took_s=0.0005) == 0.0  # too short to be worth a timer


def test_readiness_shows_how_late_the_hub_wrote_quotes_counted_per_client_written() -> None:
    from common.ticks import now_us

    hub = Hub(redis_url="redis://127.0.0.1:1/0", prefix=PREFIX)  # no connection: the batch is handed in
    clients = [Recorder(["EURUSD"]) for _ in range(3)]
    for client in clients:
        client.ready = True
        hub.clients.add(client)
        hub._group(client, client.instruments)
    eur = keys.live_channel("EURUSD", PREFIX)
    body = {"broker": "acme", "instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "spread": 0.0001}
    late = now_us() - 30_000  # ingested 30 ms ago
    hub.on_messages([(eur, json.dumps({**body, "ts_ingest": late, "seq": 1}))])

    asyncio.run(hub._flush())

    lag = hub.health()["delivery_lag_ms"]
    assert [m["quotes"][0]["seq"] for c in clients for m in c.messages] == [1, 1, 1]
    assert dict(zip(lag["le"], lag["counts"], strict=False)) == {
        **dict.fromkeys(lag["le"], 0),
        50: 3,  # 30 ms (and a little more): in the <= 50 ms bucket, once per client written
    }
    asyncio.run(hub._flush())  # nothing new: nothing counted
    assert sum(hub.health()["delivery_lag_ms"]["counts"]) == 3


@pytest.mark.asyncio
async def test_a_storm_of_snapshots_lets_the_rest_of_the_loop_run_between_them() -> None:
    from django.conf import settings

    hub = Hub(redis_url=settings.REDIS_URL, prefix=PREFIX)  # the real Redis: an empty snapshot
    turns = 0
    seen: list[int] = []  # the other task's turn count as each snapshot went out

    class Watched(Recorder):
        async def send_snapshot(self, snapshot: Snapshot) -> None:
            seen.append(turns)
            await super().send_snapshot(snapshot)

    clients = [Watched(["EURUSD"]) for _ in range(5 * hub_module.SNAPSHOTS_PER_TURN)]
    for client in clients:
        hub.clients.add(client)
    hub.unsynced = set(clients)
    hub.subscribed = True

    async def other_work() -> None:  # e.g. the Redis read, which must not wait for the last snapshot
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.ensure_future(other_work())
    sync = asyncio.ensure_future(hub._sync_loop())
    hub._sync_wake.set()
    try:
        await await_for(lambda: all(c.snapshots == 1 for c in clients), timeout=10)
    finally:
        other.cancel()
        sync.cancel()
        await asyncio.gather(other, sync, return_exceptions=True)
        await hub.stop()
    assert all(c.ready for c in clients)
    assert seen[-1] - seen[0] >= 4  # the other task ran between every SNAPSHOTS_PER_TURN snapshots


@pytest.mark.asyncio
async def test_a_client_that_attaches_while_the_last_one_is_stopping_the_hub_gets_live_quotes(
    throwaway_redis: ThrowawayRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = Hub(redis_url=throwaway_redis.url, prefix=PREFIX)
    publisher = Publisher(throwaway_redis.url)
    first, second = Recorder(["EURUSD"]), Recorder(["EURUSD"])
    await hub.attach(first)
    await every_client_gets_a_new_quote(hub, publisher)

    # Hold the stop inside its awaits (the counters' flush) until the second client has attached.
    stopping, go_on = asyncio.Event(), asyncio.Event()
    real_flush = counters_flush

    async def paused_flush() -> None:
        stopping.set()
        await go_on.wait()
        await real_flush()

    monkeypatch.setattr(hub_module, "counters_flush", paused_flush)
    detaching = asyncio.ensure_future(hub.detach(first))
    await asyncio.wait_for(stopping.wait(), 5)
    attaching = asyncio.ensure_future(hub.attach(second))
    await await_for(lambda: second in hub.clients, what="second client attaching")
    go_on.set()
    await asyncio.gather(detaching, attaching)
    monkeypatch.setattr(hub_module, "counters_flush", real_flush)

    await every_client_gets_a_new_quote(hub, publisher)
    assert hub.running and hub.subscribed
    assert second.snapshots >= 1
    await hub.stop()


@pytest.mark.asyncio
async def test_a_hub_stopped_just_as_a_subscription_attempt_fails_stops() -> None:
    # Python 3.11's asyncio.wait_for returns the awaited result when a cancel arrives as it completes. The failed
    # attempt's error then read as "lost Redis, reconnect", the cancel was gone, and stop() waited forever (a CI
    # run hung on test_readyz's unreachable Redis). Stop each hub in the loop steps between the failure and the
    # connection task seeing it.
    for _ in range(20):
        hub = Hub(redis_url=f"redis://127.0.0.1:{_free_port()}/0", prefix=PREFIX)
        await hub.attach(Recorder(["EURUSD"]))
        while hub._reader is None or not hub._reader.subscribed.done():
            await asyncio.sleep(0)
        async with asyncio.timeout(5):
            await hub.stop()
        assert not hub.running


@pytest.mark.asyncio
async def test_a_stopped_hub_starts_again_on_the_next_attach(throwaway_redis: ThrowawayRedis) -> None:
    hub = Hub(redis_url=throwaway_redis.url, prefix=PREFIX)
    publisher = Publisher(throwaway_redis.url)
    for _ in range(3):
        client = Recorder(["EURUSD"])
        await hub.attach(client)
        await every_client_gets_a_new_quote(hub, publisher)
        await hub.detach(client)
        assert not hub.running and not hub.subscribed


@pytest.mark.asyncio
async def test_after_a_redis_restart_the_hub_subscribes_again_and_every_client_gets_quotes(
    throwaway_redis: ThrowawayRedis,
) -> None:
    hub = Hub(redis_url=throwaway_redis.url, prefix=PREFIX)
    publisher = Publisher(throwaway_redis.url)
    clients = [Recorder(["EURUSD"]) for _ in range(5)]
    for c in clients:
        await hub.attach(c)
    await every_client_gets_a_new_quote(hub, publisher)
    lost_before = COUNTERS.values["live_hub_redis_lost"]

    throwaway_redis.kill()
    await await_for(lambda: not hub.subscribed, 5, what="the hub noticing")
    assert not hub.health()["subscribed"]
    await asyncio.to_thread(throwaway_redis.start)
    await every_client_gets_a_new_quote(hub, publisher, within=2.0 + hub_module.RECONNECT_MAX_S)
    assert hub.connects >= 2
    assert COUNTERS.values["live_hub_redis_lost"] > lost_before
    assert all(c.snapshots >= 2 for c in clients)  # a fresh snapshot after the outage
    await hub.stop()


@pytest.mark.asyncio
async def test_the_watchdog_heals_a_hub_whose_redis_froze(throwaway_redis: ThrowawayRedis) -> None:
    hub = Hub(redis_url=throwaway_redis.url, prefix=PREFIX, quiet_s=0.5, probe_timeout_s=0.5)
    publisher = Publisher(throwaway_redis.url)
    client = Recorder(["EURUSD"])
    await hub.attach(client)
    await every_client_gets_a_new_quote(hub, publisher)
    stuck_before = COUNTERS.values["live_hub_stuck"]

    # SIGSTOP: the TCP connection stays open and nothing ever arrives on it, so only the watchdog can tell.
    throwaway_redis.freeze()
    await await_for(lambda: hub.heals >= 1, 10, what="the watchdog healing the hub")
    assert COUNTERS.values["live_hub_stuck"] > stuck_before
    throwaway_redis.thaw()
    await every_client_gets_a_new_quote(hub, publisher, within=2.0 + hub_module.SUBSCRIBE_TIMEOUT_S)
    await hub.stop()


# -- randomised: any interleaving of attach, detach, snapshots and Redis losses ---------------------
def test_no_interleaving_of_attach_detach_snapshot_and_redis_loss_leaves_a_client_without_quotes(
    throwaway_redis: ThrowawayRedis,
) -> None:
    """A hypothesis state machine drives one hub on its own event loop. After every step, every
    connected client must receive a new quote within 2 s (of connecting, or of Redis coming back)."""
    from hypothesis import HealthCheck, settings
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

    server = throwaway_redis

    class HubMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.hub = self.run(self._make_hub())
            self.publisher = Publisher(server.url)

        async def _make_hub(self) -> Hub:
            return Hub(redis_url=server.url, prefix=PREFIX, quiet_s=1.0, probe_timeout_s=1.0)

        def run(self, coro: Any) -> Any:
            return self.loop.run_until_complete(coro)

        def teardown(self) -> None:
            if server.proc is None:
                server.start()
            self.run(self.hub.stop())
            self.loop.close()

        @rule(n=st.integers(min_value=1, max_value=20), instrument=st.sampled_from(["EURUSD", "GBPUSD"]))
        def attach(self, n: int, instrument: str) -> None:
            async def go() -> None:
                await asyncio.gather(*(self.hub.attach(Recorder(["EURUSD", instrument])) for _ in range(n)))

            self.run(go())

        @precondition(lambda self: self.hub.clients)
        @rule(data=st.data())
        def detach_some(self, data: st.DataObject) -> None:
            clients = sorted(self.hub.clients, key=id)
            leaving = data.draw(st.lists(st.sampled_from(clients), unique=True, min_size=1))

            async def go() -> None:  # gather inside the loop: outside, it needs a current event loop
                await asyncio.gather(*(self.hub.detach(c) for c in leaving))

            self.run(go())

        @precondition(lambda self: self.hub.clients)
        @rule(yields=st.integers(min_value=0, max_value=5))
        def last_detaches_as_another_attaches(self, yields: int) -> None:
            """The reported race, with the attach landing anywhere in the stop's awaits."""

            async def go() -> None:
                leaving = list(self.hub.clients)
                detaching = asyncio.ensure_future(asyncio.gather(*(self.hub.detach(c) for c in leaving)))
                for _ in range(yields):
                    await asyncio.sleep(0)
                await self.hub.attach(Recorder(["EURUSD"]))
                await detaching

            self.run(go())

        @rule()
        def snapshot_while_detaching(self) -> None:
            async def go() -> None:
                leaving = list(self.hub.clients)[:1]
                await asyncio.gather(
                    self.hub.snapshot(instruments=["EURUSD"], brokers=None),
                    *(self.hub.detach(c) for c in leaving),
                    return_exceptions=True,
                )

            self.run(go())

        @rule()
        def redis_drops_the_subscription(self) -> None:
            conn = redis.Redis.from_url(server.url)
            conn.client_kill_filter(_type="pubsub")
            conn.close()

        @rule()
        def redis_restarts(self) -> None:
            server.kill()
            server.start()

        @invariant()
        def every_connected_client_gets_quotes(self) -> None:
            if self.hub.clients:
                self.run(every_client_gets_a_new_quote(self.hub, self.publisher, within=2.0 + 2 * RECONNECT_S))
                assert self.hub.running
                # Subscribed again soon if Redis dropped it just after those quotes (a kill still in flight).
                self.run(await_for(lambda: self.hub.subscribed, timeout=2.0 + 2 * RECONNECT_S, what="subscribed"))
            health = self.hub.health()
            assert health["clients"] == len(self.hub.clients)

    RECONNECT_S = hub_module.RECONNECT_MAX_S
    HubMachine.TestCase.settings = settings(
        max_examples=int(os.environ.get("HUB_STRESS_EXAMPLES", "8")),
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(HubMachine, settings=HubMachine.TestCase.settings)


def _publish_burst(url: str, *, count: int, first_seq: int, hub: Hub) -> int:
    """One broker's quotes for EURUSD, published as fast as Redis takes them, while the event loop is
    held (a synchronous call); returns the last seq once the hub has read them all."""
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    body = {"broker": "acme", "instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "spread": 0.0001}
    for seq in range(first_seq, first_seq + count):
        pipe.publish(
            keys.live_channel("EURUSD", PREFIX), json.dumps({**body, "ts_ingest": time.time_ns() // 1000, "seq": seq})
        )
    pipe.execute()
    pubsub_output_bytes = 1
    deadline = time.monotonic() + 10
    while pubsub_output_bytes and time.monotonic() < deadline:  # Redis has handed every quote to the socket
        pubsub_output_bytes = sum(int(c["omem"]) for c in client.client_list() if c.get("cmd") == "psubscribe")
    client.close()
    reader = hub._reader
    # Read, not yet taken: on a loaded machine the thread needs a moment for the last of them.
    wait_for(lambda: reader is not None and reader.waiting() >= count, 10, what="the burst read by the thread")
    return first_seq + count - 1


@pytest.mark.asyncio
async def test_quotes_that_piled_up_while_the_event_loop_was_busy_reach_clients_as_the_newest_at_once(
    throwaway_redis: ThrowawayRedis,
) -> None:
    # A reconnect storm or a long flush can hold the event loop for a while. Read on the loop, the
    # subscription then came in a socket read (256 KB) per loop turn, and each turn's flush sent
    # clients quotes that newer ones, already in the socket, had replaced. Read in its own thread, all of
    # it is taken at once and conflated to the newest.
    hub = Hub(redis_url=throwaway_redis.url, prefix=PREFIX)
    publisher = Publisher(throwaway_redis.url)
    client = Recorder(["EURUSD"])
    await hub.attach(client)
    try:
        await every_client_gets_a_new_quote(hub, publisher)
        await await_for(lambda: not client.outbox, 2, what="nothing pending")
        before = len(client.messages)
        # The loop is held (a synchronous call) while 8,000 quotes, about 1.4 MB, are published.
        last = _publish_burst(throwaway_redis.url, count=8000, first_seq=publisher.seq + 1, hub=hub)
        await await_for(lambda: last in client.seqs(), 5, what="the newest quote delivered")
        after = [m for m in client.messages[before:] if m["type"] == "quotes"]
        assert len(after) <= 2, [[q["seq"] for q in m["quotes"]] for m in after]
    finally:
        await hub.stop()
