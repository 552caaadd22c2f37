"""Prices per account type: a broker that prices its accounts apart is quoted, recorded and read per account,
and everything recorded before quotes carried an account stays valid as the broker's default account."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import msgpack  # type: ignore[import-untyped]
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Avg
from django.utils import timezone

from brokers.models import AccountType, Broker, Instrument
from common.ticks import Quote
from marketdata import keys
from marketdata.aggregation import SpreadAggregator, rollup_rows
from marketdata.aggregator import StreamAggregator
from marketdata.codec import entry_encode, wire
from marketdata.feeds.simulator import SimulatorFeed
from marketdata.ingest import Ingestor
from marketdata.models import FeedConfig, SpreadBar
from marketdata.selectors import (
    account_costs,
    account_spread_windows,
    feed_accounts,
    feed_adapter_params,
    ids_cache_clear,
    spread_windows,
    symbol_maps,
)
from marketdata.services import bars_rollup, bars_upsert, feed_configs_ensure, feed_configs_ensure_accounts
from marketdata.validation import QuoteValidator, Reason
from simulator.broker import BrokerFeedSimulator
from simulator.market import ReferenceMarket
from simulator.profiles import BROKER_PROFILES
from testing.support import await_for, wait_for

T0 = int(datetime(2026, 3, 3, 9, tzinfo=UTC).timestamp()) * 1_000_000
NORTHWIND = "northwind-markets"


def _quote(broker: str, bid: float, ask: float, ts: int, seq: int, account: int = 0) -> Quote:
    return Quote(broker, "EURUSD", bid, ask, 1.0, 1.0, ts, ts + 10, seq, None, account)


# -- pure: simulator, validator, aggregation ---------------------------------------------------------------
def test_a_simulated_account_feed_is_the_default_feed_widened_by_its_markup_and_stamped_with_its_account():
    profile = BROKER_PROFILES[NORTHWIND]
    markets = {"EURUSD": ReferenceMarket("EURUSD", seed=3)}

    def sim(**kw):
        return BrokerFeedSimulator(
            profile, markets, seed=3, quotes_per_s=5, start_us=T0, with_depth=False, instruments=["EURUSD"], **kw
        )

    default = [q for q in sim().events(T0, T0 + 20_000_000) if isinstance(q, Quote)]
    standard = [q for q in sim(account_markup_pips=0.8, account=77).events(T0, T0 + 20_000_000) if isinstance(q, Quote)]
    assert len(default) == len(standard) > 50
    assert {q.account for q in default} == {0} and {q.account for q in standard} == {77}
    widened = [
        (s.ask - s.bid) - (d.ask - d.bid)
        for d, s in zip(default, standard, strict=True)
        if d.bid == d.bid and s.bid == s.bid
    ]
    # Same market, timing and noise; 0.8 pips wider (within the rounding to 5 digits on each side).
    assert all(abs(w - 0.8e-4) <= 2.1e-5 for w in widened)
    assert sum(widened) / len(widened) == pytest.approx(0.8e-4, abs=2e-6)


def test_two_feeds_of_one_broker_keep_their_own_sequence_numbers():
    v = QuoteValidator(symbols={"b": {"EURUSD": "EURUSD"}})
    assert isinstance(v.check(_quote("b", 1.1, 1.1001, T0, 5)), Quote)
    # The raw account's feed counts its own sequence from 1: not a duplicate or out of order.
    assert isinstance(v.check(_quote("b", 1.1, 1.1002, T0 + 1, 1, account=9)), Quote)
    assert isinstance(v.check(_quote("b", 1.1, 1.1002, T0 + 2, 2, account=9)), Quote)
    assert v.check(_quote("b", 1.1, 1.1002, T0 + 3, 2, account=9)) == Reason.DUPLICATE
    assert isinstance(v.check(_quote("b", 1.1, 1.1001, T0 + 4, 6)), Quote)
    assert v.check(_quote("b", 1.1, 1.1001, T0 + 5, 1, account=-1)) == Reason.BAD_FIELD
    checked = v.check(_quote("b", 1.1, 1.1002, T0 + 6, 3, account=9))
    assert isinstance(checked, Quote) and checked.account == 9


def test_each_account_gets_its_own_bars_and_the_consensus_counts_each_broker_once():
    agg = SpreadAggregator()
    agg.add("a", "EURUSD", 1.1000, 1.1001, T0)
    agg.add("b", "EURUSD", 1.1010, 1.1011, T0 + 1)
    # b's standard account, marked up unevenly: the consensus takes each broker's default account only.
    agg.add("b", "EURUSD", 1.1020, 1.1022, T0 + 2, account=7)
    agg.add("c", "EURUSD", 1.1000, 1.1001, T0 + 3)
    rows = {(r.broker, r.account): r for r in agg.take_rows()}
    assert set(rows) == {("a", 0), ("b", 0), ("b", 7), ("c", 0)}
    assert rows[("b", 7)].close == pytest.approx(0.0002)
    assert rows[("b", 7)].dev_min == pytest.approx(1.1021 - 1.10005)  # measured against the others all the same
    assert rows[("b", 0)].close == pytest.approx(0.0001)
    # c's consensus: the median of a and b's default mids (1.10005, 1.10105) = 1.10055, not moved by b's
    # second account.
    assert rows[("c", 0)].dev_min == pytest.approx(1.10005 - 1.10055)
    hourly = {(r.broker, r.account) for r in rollup_rows(list(rows.values()), bucket_us=3_600_000_000)}
    assert hourly == set(rows)


def test_an_aggregator_state_saved_before_accounts_loads_as_the_default_account():
    agg = SpreadAggregator()
    agg.add("a", "EURUSD", 1.1, 1.1001, T0)
    agg.add("a", "EURUSD", 1.1, 1.1002, T0 + 1, account=4)
    state = agg.state()
    old = dict(state, bars=[row[:14] for row in state["bars"] if row[14] == 0])  # the 14-field rows of before
    restored = SpreadAggregator()
    restored.load_state(old)
    restored.add("a", "EURUSD", 1.1, 1.1003, T0 + 2)
    (row,) = restored.take_rows()
    assert (row.account, row.count) == (0, 2) and row.open == pytest.approx(0.0001)
    again = SpreadAggregator()
    again.load_state(json.loads(json.dumps(state)))  # what the checkpoint stores
    again.add("a", "EURUSD", 1.1, 1.1003, T0 + 2, account=4)
    (row,) = again.take_rows()
    assert (row.account, row.count) == (4, 2)


# -- database: bars, migration, reads ------------------------------------------------------------------------
def _accounts(slug: str) -> dict[str, AccountType]:
    return {a.name: a for a in AccountType.objects.filter(broker__slug=slug)}


@pytest.mark.django_db
def test_two_accounts_in_one_interval_are_two_bars_replays_change_nothing_and_rollups_stay_per_account(demo):
    ids_cache_clear()
    standard = _accounts(NORTHWIND)["Standard"]
    agg = SpreadAggregator()
    for k in range(30):
        agg.add(NORTHWIND, "EURUSD", 1.1, 1.1001, T0 + k * 4_000_000)
        agg.add(NORTHWIND, "EURUSD", 1.1, 1.1009, T0 + k * 4_000_000 + 1, account=standard.pk)
    rows = agg.take_rows()
    assert bars_upsert(rows=rows) == len(rows) == 4  # two minutes x two accounts
    snapshot = list(SpreadBar.objects.order_by("id").values())
    bars_upsert(rows=rows)
    assert list(SpreadBar.objects.order_by("id").values()) == snapshot
    start = datetime.fromtimestamp(T0 / 1e6, tz=UTC)
    bars_rollup(since=start, until=start + timedelta(minutes=5))
    hourly = {b.account_id: b for b in SpreadBar.objects.filter(resolution="1h")}
    assert set(hourly) == {None, standard.pk}
    assert hourly[None].mean == pytest.approx(0.0001) and hourly[standard.pk].mean == pytest.approx(0.0009)


@pytest.mark.django_db
def test_a_bar_stamped_with_another_brokers_account_is_skipped_not_stored(demo):
    ids_cache_clear()
    foreign = _accounts("kestrel-fx")["Standard"]
    agg = SpreadAggregator()
    agg.add(NORTHWIND, "EURUSD", 1.1, 1.1001, T0, account=foreign.pk)
    agg.add(NORTHWIND, "EURUSD", 1.1, 1.1001, T0, account=10**9)
    assert bars_upsert(rows=agg.take_rows()) == 0
    assert not SpreadBar.objects.exists()


@pytest.mark.django_db
def test_bars_of_an_account_added_while_the_aggregator_runs_are_stored(demo):
    ids_cache_clear()
    agg = SpreadAggregator()
    agg.add(NORTHWIND, "EURUSD", 1.1, 1.1001, T0)
    assert bars_upsert(rows=agg.take_rows()) == 1  # the account cache is read now
    added = AccountType.objects.create(
        broker=Broker.objects.get(slug=NORTHWIND), name="Zero", spread_type="raw", min_deposit=0
    )
    agg.add(NORTHWIND, "EURUSD", 1.1, 1.1001, T0, account=added.pk)
    assert bars_upsert(rows=agg.take_rows()) == 1
    assert SpreadBar.objects.filter(account=added).count() == 1


@pytest.mark.django_db
def test_an_account_with_its_own_bars_is_read_as_measured_and_the_others_are_derived_from_the_feed_account(demo):
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    broker = Broker.objects.prefetch_related("account_types").get(slug=NORTHWIND)
    accounts = _accounts(NORTHWIND)
    raw, standard = accounts["Raw"], accounts["Standard"]
    eurusd = Instrument.objects.get(symbol="EURUSD")
    bars = []
    for h in range(1, 25):
        start = now - timedelta(hours=h)
        # Before accounts: no account (the default, tightest: Raw); since then stamped with Raw's id.
        bars.append(SpreadBar(broker=broker, instrument=eurusd, account=raw if h < 12 else None, resolution="1h",
                              start=start, open=1e-4, high=1e-4, low=1e-4, close=1e-4, mean=1e-4, count=100,
                              dev_min=0, dev_max=0, duration=3600, dev_count=0))  # fmt: skip
    SpreadBar.objects.bulk_create(bars)
    windows = account_spread_windows(broker_ids=[broker.pk], now=now)
    assert set(windows) == {(broker.pk, eurusd.pk, raw.pk)}  # the unstamped bars are Raw's too: one series
    assert windows[(broker.pk, eurusd.pk, raw.pk)]["24h"].quotes == 2400
    assert feed_accounts(brokers=[broker])[broker.pk] == raw
    rows = {c.account: c for c in account_costs(brokers=[broker], symbols=["EURUSD"], now=now)[broker.pk]}
    assert rows["Raw"].measured and rows["Raw"].spread_pips == pytest.approx(1.0)
    assert not rows["Standard"].measured  # derived: Raw's measured spread plus the published mark-up difference
    assert rows["Standard"].spread_pips == pytest.approx(1.0 + float(standard.spread_markup_pips))
    assert "mark-up" in rows["Standard"].spread_basis

    # The Standard account gets a feed of its own: its measured spread replaces the derivation.
    SpreadBar.objects.bulk_create(
        SpreadBar(broker=broker, instrument=eurusd, account=standard, resolution="1h", start=now - timedelta(hours=h),
                  open=3e-4, high=3e-4, low=3e-4, close=3e-4, mean=3e-4, count=50, dev_min=0, dev_max=0,
                  duration=3600, dev_count=0)
        for h in range(1, 25)
    )  # fmt: skip
    rows = {c.account: c for c in account_costs(brokers=[broker], symbols=["EURUSD"], now=now)[broker.pk]}
    assert rows["Standard"].measured and rows["Standard"].spread_pips == pytest.approx(3.0)
    assert rows["Standard"].spread_basis == "measured on this account's feed"
    # One figure per broker (compare, directory) stays the feed account's.
    assert spread_windows(broker_ids=[broker.pk], now=now)[(broker.pk, eurusd.pk)]["24h"].pips == pytest.approx(1.0)


@pytest.mark.django_db
def test_simulated_brokers_get_a_feed_per_account_they_price_apart_and_it_quotes_that_accounts_markup(demo):
    feed_configs_ensure()
    made = feed_configs_ensure_accounts()
    assert feed_configs_ensure_accounts() == 0  # idempotent
    accounts = _accounts(NORTHWIND)
    configs = {c.account_id: c for c in FeedConfig.objects.filter(broker__slug=NORTHWIND)}
    assert set(configs) == {None, accounts["Standard"].pk}
    # Alpenbank's two raw accounts share one price: one feed.
    assert FeedConfig.objects.filter(broker__slug="alpenbank-trading").count() == 1
    assert made == sum(1 for c in FeedConfig.objects.all() if c.account_id is not None)
    params = feed_adapter_params(config=configs[accounts["Standard"].pk], resolve_secrets=False)
    assert params["account_markup_pips"] == pytest.approx(float(accounts["Standard"].spread_markup_pips))
    assert "account_markup_pips" not in feed_adapter_params(config=configs[None], resolve_secrets=False)


@pytest.mark.django_db
def test_one_feed_per_broker_and_account(demo):
    from django.core.exceptions import ValidationError

    broker = Broker.objects.get(slug=NORTHWIND)
    FeedConfig.objects.create(broker=broker)
    with pytest.raises(ValidationError, match="default account"):
        FeedConfig(broker=broker).full_clean()
    standard = _accounts(NORTHWIND)["Standard"]
    FeedConfig.objects.create(broker=broker, account=standard)
    with pytest.raises(ValidationError, match="already has a feed for this account"):
        FeedConfig(broker=broker, account=standard).full_clean()


OLD = [("marketdata", "0003_feed_account")]


@pytest.mark.django_db(transaction=True)
def test_bars_recorded_before_accounts_belong_to_the_account_their_feed_carried_after_the_migration():
    from brokers.services import demo_seed

    demo_seed()
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(OLD)
    try:
        old = MigrationExecutor(connection).loader.project_state(OLD).apps
        OldBar = old.get_model("marketdata", "SpreadBar")
        OldConfig = old.get_model("marketdata", "FeedConfig")
        OldAccount = old.get_model("brokers", "AccountType")
        eurusd = old.get_model("brokers", "Instrument").objects.get(symbol="EURUSD")
        start = datetime(2026, 1, 5, 10, tzinfo=UTC)
        for slug in (NORTHWIND, "kestrel-fx"):
            broker = old.get_model("brokers", "Broker").objects.get(slug=slug)
            OldBar.objects.create(broker=broker, instrument=eurusd, resolution="1h", start=start, open=1, high=1,
                                  low=1, close=1, mean=1, count=10, dev_min=0, dev_max=0)  # fmt: skip
        # Kestrel's feed was configured to carry its Standard account: its bars are that account's.
        kestrel_standard = OldAccount.objects.get(broker__slug="kestrel-fx", name="Standard")
        OldConfig.objects.create(broker=kestrel_standard.broker, account=kestrel_standard)
        OldConfig.objects.create(broker=old.get_model("brokers", "Broker").objects.get(slug=NORTHWIND))
    finally:
        MigrationExecutor(connection).migrate(latest)
    bars = {b.broker.slug: b for b in SpreadBar.objects.select_related("broker")}
    assert bars[NORTHWIND].account_id is None  # the default account
    assert bars["kestrel-fx"].account_id == _accounts("kestrel-fx")["Standard"].pk
    # A second account's bar for the same interval now fits beside it.
    SpreadBar.objects.create(broker=bars[NORTHWIND].broker, instrument=bars[NORTHWIND].instrument,
                             account=_accounts(NORTHWIND)["Standard"], resolution="1h", start=bars[NORTHWIND].start,
                             open=2, high=2, low=2, close=2, mean=2, count=10, dev_min=0, dev_max=0)  # fmt: skip

    # And back: one bar per broker and interval, the configured account's bars are the broker's again.
    MigrationExecutor(connection).migrate(OLD)
    try:
        old = MigrationExecutor(connection).loader.project_state(OLD).apps
        rows = sorted(old.get_model("marketdata", "SpreadBar").objects.values_list("broker__slug", "mean"))
        assert rows == [("kestrel-fx", 1.0), (NORTHWIND, 1.0)]
    finally:
        MigrationExecutor(connection).migrate(latest)


# -- the live path: ingestor -> stream -> aggregator -> bars ---------------------------------------------------
def test_a_wire_tuple_carries_the_account_and_one_written_before_accounts_reads_as_the_default():
    q = _quote("b", 1.1, 1.1002, T0, 1, account=12)
    assert wire(q, T0 + 5)[10] == 12
    fields = entry_encode("p", 1, [wire(q, T0 + 5)[:10]])  # version 1: ten fields
    decoded = msgpack.unpackb(fields["q"], raw=False)
    from marketdata.codec import wire_account

    assert wire_account(decoded[0]) == 0 and wire_account(list(wire(q, 0))) == 12


def test_an_account_feed_reaches_its_own_hashes_and_bars_and_stays_off_the_live_channels(demo_committed):
    ids_cache_clear()
    standard = _accounts(NORTHWIND)["Standard"]
    validator = QuoteValidator(symbols=symbol_maps(brokers=[NORTHWIND]))
    r = redis.Redis.from_url(settings.REDIS_URL)
    shard = keys.shard_of("EURUSD", settings.LIVE_STREAM_SHARDS)
    aggregator = StreamAggregator(
        redis_url=settings.REDIS_URL, prefix=settings.CACHE_KEY_PREFIX, shards=[shard], block_ms=50
    )
    aggregator.step()  # takes the shard over: creates the consumer group

    async def scenario() -> Ingestor:
        ing = Ingestor(
            redis_url=settings.REDIS_URL,
            prefix=settings.CACHE_KEY_PREFIX,
            shards=settings.LIVE_STREAM_SHARDS,
            validator=validator,
        )
        params = {"quotes_per_s": 20, "tick_ms": 20, "instruments": ["EURUSD"]}
        default = SimulatorFeed(NORTHWIND, params)
        # A real adapter knows nothing of accounts: the ingestor stamps what the configuration says.
        account_feed = SimulatorFeed(NORTHWIND, {**params, "account_markup_pips": 0.8})
        done = asyncio.Event()
        task = asyncio.ensure_future(ing.run([default, account_feed], until=done, accounts=[0, standard.pk]))
        await await_for(lambda: ing.stats.durable_written > 40, timeout=10, what="quotes of both feeds")
        done.set()
        await task
        return ing

    ing = asyncio.run(scenario())
    assert ing.stats.rejected == 0  # each feed's own sequence numbers: no duplicates across the two
    account_field = keys.account_field(NORTHWIND, "EURUSD", standard.pk)
    latest = json.loads(r.hget(keys.account_latest_hash(), account_field) or b"{}")
    assert latest["broker"] == NORTHWIND and latest["spread"] > 0.7e-4
    assert r.hget(keys.account_depth_hash(), account_field) is not None
    default_latest = json.loads(r.hget(keys.latest_hash(), keys.field(NORTHWIND, "EURUSD")) or b"{}")
    assert default_latest["spread"] < latest["spread"]

    def both_recorded() -> bool:
        aggregator.step()
        return set(SpreadBar.objects.values_list("account_id", flat=True).distinct()) == {None, standard.pk}

    wait_for(both_recorded, timeout=15, what="bars of both accounts")
    means = {
        a or 0: m
        for a, m in SpreadBar.objects.values("account_id").annotate(m=Avg("mean")).values_list("account_id", "m")
    }
    assert means[standard.pk] - means[0] == pytest.approx(0.8e-4, abs=0.3e-4)


def test_an_account_feeds_quotes_are_published_on_that_accounts_own_channel_for_the_alert_process(demo_committed):
    """Every accepted quote of an account feed goes out on keys.account_channel (not the live pattern the
    board reads), so alerts on that account are evaluated on its own quotes."""
    ids_cache_clear()
    standard = _accounts(NORTHWIND)["Standard"]
    validator = QuoteValidator(symbols=symbol_maps(brokers=[NORTHWIND]))
    received: list[dict[str, object]] = []
    live: list[bytes] = []

    async def scenario() -> None:
        import redis.asyncio as aioredis

        conn = aioredis.Redis.from_url(settings.REDIS_URL)
        pubsub = conn.pubsub()
        await pubsub.subscribe(keys.account_channel("EURUSD", standard.pk))
        await pubsub.psubscribe(keys.live_pattern())

        async def collect() -> None:
            while True:
                m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if m is None:
                    continue
                if m["type"] == "message":
                    received.append(json.loads(m["data"]))
                elif m["channel"] != keys.status_channel().encode():
                    live.append(m["data"])

        reader = asyncio.ensure_future(collect())
        ing = Ingestor(
            redis_url=settings.REDIS_URL,
            prefix=settings.CACHE_KEY_PREFIX,
            shards=settings.LIVE_STREAM_SHARDS,
            validator=validator,
        )
        feed = SimulatorFeed(
            NORTHWIND, {"quotes_per_s": 20, "tick_ms": 20, "instruments": ["EURUSD"], "account_markup_pips": 0.8}
        )
        done = asyncio.Event()
        task = asyncio.ensure_future(ing.run([feed], until=done, accounts=[standard.pk]))
        await await_for(lambda: len(received) >= 5, timeout=10, what="account quotes on their channel")
        done.set()
        await task
        reader.cancel()
        await pubsub.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs
        await conn.aclose()  # type: ignore[attr-defined]  # redis 5+ API, older stubs

    asyncio.run(scenario())
    assert all(q["broker"] == NORTHWIND and q["instrument"] == "EURUSD" for q in received)
    assert live == []  # the board's channels carry feed accounts only
    r = redis.Redis.from_url(settings.REDIS_URL)
    latest = json.loads(
        r.hget(keys.account_latest_hash(), keys.account_field(NORTHWIND, "EURUSD", standard.pk)) or b"{}"
    )
    assert latest["ts_ingest"] >= received[-1]["ts_ingest"]


def test_a_feed_whose_configuration_names_the_brokers_feed_account_is_streamed_on_the_live_channels(demo_committed):
    """The board shows one column per broker: its feed account's quotes, even when that account is named."""
    raw = _accounts("kestrel-fx")["Razor"]  # its tightest: the feed account
    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete(keys.latest_hash(), keys.account_latest_hash())
    validator = QuoteValidator(symbols=symbol_maps(brokers=["kestrel-fx"]))

    async def scenario() -> None:
        ing = Ingestor(
            redis_url=settings.REDIS_URL,
            prefix=settings.CACHE_KEY_PREFIX,
            shards=settings.LIVE_STREAM_SHARDS,
            validator=validator,
        )
        feed = SimulatorFeed("kestrel-fx", {"quotes_per_s": 20, "tick_ms": 20, "instruments": ["EURUSD"]})
        done = asyncio.Event()
        task = asyncio.ensure_future(ing.run([feed], until=done, accounts=[raw.pk], live=[True]))
        await await_for(lambda: ing.stats.durable_written > 5, timeout=10, what="quotes")
        done.set()
        await task

    asyncio.run(scenario())
    assert r.hget(keys.latest_hash(), keys.field("kestrel-fx", "EURUSD")) is not None
    assert r.hget(keys.account_latest_hash(), keys.account_field("kestrel-fx", "EURUSD", raw.pk)) is None
