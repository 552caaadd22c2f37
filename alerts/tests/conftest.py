from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from brokers.models import Broker, BrokerInstrument, Instrument


@pytest.fixture
def market() -> dict[str, object]:
    eur = Instrument.objects.create(
        symbol="EURUSD", name="Euro", asset_class="fx_major", pip_size=Decimal("0.0001"), display_precision=5
    )
    brokers = {}
    for slug in ("acme", "zeta"):
        broker = brokers[slug] = Broker.objects.create(
            name=slug.title(),
            slug=slug,
            website="https://x.example",
            year_founded=2000,
            headquarters_country="UK",
            company_type="private",
            min_deposit=0,
            max_leverage=30,
        )
        BrokerInstrument.objects.create(broker=broker, instrument=eur, broker_symbol="EURUSD")
    return {"eur": eur, **brokers}


def quote_json(broker: str, instrument: str, bid: float, ask: float, seq: int = 1) -> str:
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
            "ts_broker": now,
            "ts_ingest": now,
            "seq": seq,
        }
    )
