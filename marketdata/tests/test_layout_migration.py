"""Models that moved between apps kept their rows: a database filled under the old layout (market
data in `live`, board choices in `accounts`) is migrated forward and everything is still there."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from live.models import BoardPreference
from marketdata.models import EconomicEvent, FeedStatusChange, SpreadBar

OLD_LAYOUT = [("live", "0002_market_data"), ("accounts", "0001_initial"), ("brokers", "0001_initial")]


def _fill_old_layout(old: Any) -> None:
    broker = old.get_model("brokers", "Broker").objects.create(
        name="Old Layout FX",
        slug="old-layout-fx",
        website="https://old-layout.example",
        year_founded=2001,
        headquarters_country="Cyprus",
        company_type="private",
        min_deposit=100,
        max_leverage=30,
    )
    instrument = old.get_model("brokers", "Instrument").objects.create(
        symbol="EURUSD", name="Euro", asset_class="fx_major", pip_size="0.0001", display_precision=5
    )
    at = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    old.get_model("live", "SpreadBar").objects.create(
        broker=broker, instrument=instrument, resolution="1m", start=at, open=1, high=2, low=1, close=2,
        mean=1.5, count=10, dev_min=0, dev_max=0,
    )  # fmt: skip
    old.get_model("live", "FeedStatusChange").objects.create(broker=broker, at=at, status="up")
    old.get_model("live", "EconomicEvent").objects.create(
        name="Non-Farm Payrolls", currency="USD", scheduled_at=at, impact="high"
    )
    user = old.get_model("auth", "User").objects.create(username="trader")
    old.get_model("accounts", "BoardPreference").objects.create(user=user, instruments=["EURUSD"], brokers=[])


@pytest.mark.django_db(transaction=True)
def test_rows_written_under_the_old_layout_are_still_there_after_the_move():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([*OLD_LAYOUT, ("marketdata", None)])  # marketdata did not exist yet
    try:
        _fill_old_layout(MigrationExecutor(connection).loader.project_state(OLD_LAYOUT).apps)
    finally:
        # Always back to the current schema, or every later test would run on the old one.
        MigrationExecutor(connection).migrate(latest)

    bar = SpreadBar.objects.get()
    assert (bar.broker.slug, bar.instrument.symbol, bar.count, bar.mean) == ("old-layout-fx", "EURUSD", 10, 1.5)
    assert FeedStatusChange.objects.get().status == "up"
    assert EconomicEvent.objects.get().name == "Non-Farm Payrolls"
    assert BoardPreference.objects.get(user__username="trader").instruments == ["EURUSD"]
    assert SpreadBar._meta.db_table == "marketdata_spreadbar"
    assert BoardPreference._meta.db_table == "live_boardpreference"


@pytest.mark.django_db(transaction=True)
def test_venue_symbols_lose_their_own_pip_size_and_get_the_instruments_back_when_migrated_backwards():
    before, after = (
        [("marketdata", "0006_merge_write_mark_and_reliability")],
        [("marketdata", "0007_feedsymbol_pip_size_is_the_instruments")],
    )
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        MigrationExecutor(connection).migrate(before)
        old = MigrationExecutor(connection).loader.project_state(before).apps
        broker = old.get_model("brokers", "Broker").objects.create(
            name="Pip FX", slug="pip-fx", website="https://pip.example", year_founded=2001,
            headquarters_country="Cyprus", company_type="private", min_deposit=100, max_leverage=30,
        )  # fmt: skip
        usdjpy = old.get_model("brokers", "Instrument").objects.create(
            symbol="USDJPY", name="Yen", asset_class="fx_major", pip_size="0.01", display_precision=3
        )
        config = old.get_model("marketdata", "FeedConfig").objects.create(broker=broker)
        old.get_model("marketdata", "FeedSymbol").objects.create(
            feed_config=config, venue_symbol="USD/JPY", instrument=usdjpy, price_precision=3, pip_size="0.0001"
        )
        MigrationExecutor(connection).migrate(after)
        new = MigrationExecutor(connection).loader.project_state(after).apps
        assert new.get_model("marketdata", "FeedSymbol").objects.get().venue_symbol == "USD/JPY"
        MigrationExecutor(connection).migrate(before)
        back = MigrationExecutor(connection).loader.project_state(before).apps
        assert str(back.get_model("marketdata", "FeedSymbol").objects.get().pip_size) == "0.01000000"
    finally:
        MigrationExecutor(connection).migrate(latest)
