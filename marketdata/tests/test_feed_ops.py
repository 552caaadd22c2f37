"""Operating real feeds: replay of captures, credentials by reference, the admin's connection test,
and status history through the ingestor for a real adapter as for the simulator."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from websockets.asyncio.server import ServerConnection

from brokers.models import Broker, Instrument
from marketdata.feeds.kraken import KrakenFeed
from marketdata.feeds.secrets import SecretMissing, secret_resolve
from marketdata.ingest import Ingestor
from marketdata.models import FeedConfig, FeedStatusChange, FeedSymbol, QuoteRejectionCount
from marketdata.selectors import feed_adapter_params, feed_symbol_specs, symbol_maps
from marketdata.services import feed_status_record, rejections_record_once, us_to_dt
from marketdata.validation import QuoteValidator
from testing.support import wait_for

from . import wire as w
from .feedservers import ws_server


def _replay(tmp_path: Path, adapter: str, lines: Sequence[str | bytes], *args: str) -> tuple[list[dict], str]:
    capture = tmp_path / f"{adapter}.capture"
    capture.write_bytes(b"\n".join(x.encode() if isinstance(x, str) else x for x in lines) + b"\n")
    out = io.StringIO()
    call_command("feed_replay", "--adapter", adapter, *args, str(capture), stdout=out)
    text = out.getvalue().strip().splitlines()
    return [json.loads(line) for line in text[:-1]], text[-1]


def test_replay_of_a_fix_capture_prints_quotes_rejections_and_a_summary(tmp_path):
    w_msg = w.fix_snapshot(2, "EUR/USD", [("1.08500", "1000000")], [("1.08510", "1000000")])
    x_msg = w.fix_incremental(3, [(0, 0, "EUR/USD", "1.08505", "500000")])
    crossed = w.fix_incremental(4, [(0, 0, "EUR/USD", "1.08600", "1")])
    lines = [
        w.fix_msg("A", 1, [(98, 0), (108, 30)]).replace(b"\x01", b"|"),  # a logon: neither quote nor rejection
        w_msg,
        w.corrupt_checksum(x_msg),
        x_msg.replace(b"\x01", b"|"),
        crossed,
        b"this is not FIX",
        w.fix_snapshot(6, "ZZZ/ZZZ", [("1", "1")], [("2", "1")]),  # 5 is missing too
    ]
    rows, summary = _replay(tmp_path, "fix", lines)
    assert [r.get("rejected") or r["bid"] for r in rows] == [
        1.085,
        "bad_checksum",
        1.08505,
        "crossed",
        "garbled",
        "seq_gap",
        "unknown_symbol",
    ]
    assert rows[0]["instrument"] == "EURUSD" and rows[0]["depth"] == [[[1.085, 1e6]], [[1.0851, 1e6]]]
    assert summary.startswith("REPLAY accepted=2 rejected=5 reasons=")
    reasons = json.loads(summary.split("reasons=", 1)[1])
    assert reasons == {"bad_checksum": 1, "crossed": 1, "garbled": 1, "seq_gap": 1, "unknown_symbol": 1}


@pytest.mark.parametrize(
    ("adapter", "lines", "expected"),
    [
        (
            "oanda",
            [
                w.oanda_heartbeat(),
                w.oanda_price("EUR_USD", "1.08500", "1.08510"),
                "{not json",
                w.oanda_price_legacy("EUR_JPY", "164.000", "164.020"),
            ],
            [("EURUSD", 1.085), ("garbled", None), ("EURJPY", 164.0)],
        ),
        (
            "binance",
            [
                w.binance_book_ticker("BTCUSDT", 1, "65000.10", "65000.30"),
                w.binance_book_ticker("BTCUSDT", 1, "65000.10", "65000.30"),
            ],
            [("BTCUSD", 65000.1), ("duplicate", None)],
        ),
        (
            "kraken",
            [
                w.kraken_book(
                    "snapshot",
                    "BTC/USD",
                    [("45283.5", "0.10000000")],
                    [("45285.2", "0.00100000")],
                    w.kraken_checksum({"45283.5": "0.10000000"}, {"45285.2": "0.00100000"}, 1, 8),
                ),
                w.kraken_book("update", "BTC/USD", [("45283.6", "1.00000000")], [], 42),
            ],
            [("BTCUSD", 45283.5), ("checksum_mismatch", None)],
        ),
        (
            "coinbase",
            [
                w.coinbase_l2(0, "snapshot", "BTC-USD", [("bid", "65000.01", "1"), ("offer", "65000.50", "2")]),
                w.coinbase_heartbeat(1),
                w.coinbase_ticker(3, "BTC-USD", "65000.02", "65000.40"),
            ],
            [("BTCUSD", 65000.01), ("seq_gap", None)],
        ),
        (
            "simulator",
            [
                '{"instrument": "EURUSD", "bid": 1.1, "ask": 1.2, "ts_broker": 1, "seq": 1}',
                '{"instrument": "EURUSD", "bid": 1.3, "ask": 1.2, "ts_broker": 2, "seq": 2}',
            ],
            [("EURUSD", 1.1), ("crossed", None)],
        ),
    ],
)
def test_replay_reads_each_venue_s_wire_format(tmp_path, adapter, lines, expected):
    rows, summary = _replay(tmp_path, adapter, lines)
    got = [(r["rejected"], None) if "rejected" in r else (r["instrument"], r["bid"]) for r in rows]
    assert got == expected
    assert summary.startswith(f"REPLAY accepted={sum(1 for _, b in expected if b)} ")


def test_replay_with_a_broker_uses_its_configured_mapping(tmp_path, demo):
    config = FeedConfig.objects.get_or_create(broker=Broker.objects.get(slug="kestrel-fx"))[0]
    config.adapter = FeedConfig.Adapter.OANDA
    config.save()
    FeedSymbol.objects.create(
        feed_config=config,
        venue_symbol="EURO.DOLLAR",
        instrument=Instrument.objects.get(symbol="EURUSD"),
        price_precision=5,
    )
    lines = [w.oanda_price("EURO.DOLLAR", "1.08500", "1.08510"), w.oanda_price("EUR_USD", "1.08500", "1.08510")]
    rows, summary = _replay(tmp_path, "oanda", lines, "--broker", "kestrel-fx")
    assert [r.get("instrument") or r["rejected"] for r in rows] == ["EURUSD", "unknown_symbol"]
    assert summary.startswith("REPLAY accepted=1 rejected=1")


def test_a_mapped_venue_symbol_takes_its_pip_size_from_the_site_instrument(demo):
    # One pip size per instrument (brokers.Instrument): a venue symbol keeps only what is the venue's own,
    # its price and size precision, so an admin cannot give a mapped symbol a second, different pip.
    config = FeedConfig.objects.get_or_create(broker=Broker.objects.get(slug="kestrel-fx"))[0]
    usdjpy = Instrument.objects.get(symbol="USDJPY")
    FeedSymbol.objects.create(feed_config=config, venue_symbol="USD/JPY", instrument=usdjpy, price_precision=3)
    assert "pip_size" not in {f.name for f in FeedSymbol._meta.get_fields()}
    [spec] = feed_symbol_specs(config=config)
    assert spec.pip_size == float(usdjpy.pip_size) == 0.01
    Instrument.objects.filter(pk=usdjpy.pk).update(pip_size=Decimal("0.001"))
    assert feed_symbol_specs(config=config)[0].pip_size == 0.001


def test_credentials_are_stored_as_references_never_in_clear(db, demo, tmp_path, monkeypatch):
    config = FeedConfig.objects.get_or_create(broker=Broker.objects.get(slug="kestrel-fx"))[0]
    config.adapter = FeedConfig.Adapter.OANDA
    config.secret_refs = {"token": "abc123-my-real-token"}
    with pytest.raises(ValidationError, match="never the secret itself"):
        config.full_clean()
    secret_file = tmp_path / "token"
    secret_file.write_text("from-a-file\n")
    config.secret_refs = {"token": "env:BW_TEST_OANDA_TOKEN", "password": f"file:{secret_file}"}
    config.full_clean()
    config.save()
    monkeypatch.setenv("BW_TEST_OANDA_TOKEN", "from-the-env")
    assert feed_adapter_params(config=config)["credentials"] == {"token": "from-the-env", "password": "from-a-file"}
    monkeypatch.delenv("BW_TEST_OANDA_TOKEN")
    with pytest.raises(SecretMissing, match="BW_TEST_OANDA_TOKEN is not set"):
        secret_resolve("env:BW_TEST_OANDA_TOKEN")


def test_the_admin_connection_test_reports_a_quote_or_the_failure(admin_client, demo):
    ok = FeedConfig.objects.get_or_create(broker=Broker.objects.get(slug="kestrel-fx"))[0]
    ok.params = {"quotes_per_s": 50, "tick_ms": 10}
    ok.save()
    down = FeedConfig.objects.get_or_create(broker=Broker.objects.get(slug="northwind-markets"))[0]
    down.adapter = FeedConfig.Adapter.FIX
    down.params = {"host": "127.0.0.1", "port": 9, "connect_timeout_s": 2}
    down.save()
    response = admin_client.post(
        "/admin/marketdata/feedconfig/",
        {"action": "test_connection", "_selected_action": [ok.pk, down.pk]},
        follow=True,
    )
    texts = [str(m) for m in response.context["messages"]]
    assert any(t.startswith("kestrel-fx via simulator: connected, first quote") for t in texts), texts
    assert any(
        t.startswith("northwind-markets via fix: disconnected: FIX connect to 127.0.0.1:9 failed") for t in texts
    )


def test_status_history_and_protocol_rejects_of_a_real_adapter_are_recorded(demo_committed):
    """Kraken over a local WebSocket: up, quotes, a checksum mismatch counted per hour, then down."""

    def sink(broker, status, at, detail):
        feed_status_record(broker_slug=broker, status=str(status), at=us_to_dt(at), detail=detail)
        connection.close()

    def reject_sink(writes, at):
        rejections_record_once(writes=writes, at=us_to_dt(at))
        connection.close()

    venue = w.KrakenBook()
    bids, asks = [("45283.5", "0.10000000")], [("45285.2", "0.00100000")]

    async def server(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(w.kraken_book("snapshot", "BTC/USD", bids, asks, venue.apply(bids, asks)))
        await ws.send(w.kraken_book("update", "BTC/USD", [("45283.6", "1.00000000")], [], 42))
        await ws.recv()  # unsubscribe
        await ws.recv()  # subscribe
        await ws.close()  # then the venue goes away

    validator = QuoteValidator(symbols=symbol_maps(brokers=["kestrel-fx"]))
    validator.symbols.setdefault("kestrel-fx", {})["BTCUSD"] = "BTCUSD"

    def count(reason: str, detail: str) -> None:
        validator.counts[reason] += 1
        validator.by_broker[("kestrel-fx", reason)] += 1

    async def scenario() -> Ingestor:
        async with ws_server(server) as port:
            ing = Ingestor(
                redis_url=settings.REDIS_URL,
                prefix=settings.CACHE_KEY_PREFIX,
                shards=settings.LIVE_STREAM_SHARDS,
                validator=validator,
                status_sink=sink,
                reject_sink=reject_sink,
                stale_after_s=2,
            )
            feed = KrakenFeed("kestrel-fx", {"ws_url": f"ws://127.0.0.1:{port}", "symbols": None}, on_reject=count)
            feed.symbols.fallback = True
            done = asyncio.Event()
            task = asyncio.ensure_future(ing.run([feed], until=done))
            while not any(s[1] == "down" for s in ing.stats.status_changes):
                await asyncio.sleep(0.02)
            done.set()
            await task
            return ing

    ing = asyncio.run(scenario())
    assert ing.stats.accepted == 1
    wait_for(lambda: FeedStatusChange.objects.filter(broker__slug="kestrel-fx").count() >= 2, 10, what="history")
    statuses = list(
        FeedStatusChange.objects.filter(broker__slug="kestrel-fx").order_by("at").values_list("status", flat=True)
    )
    assert statuses[:2] == ["up", "down"]
    wait_for(lambda: QuoteRejectionCount.objects.filter(reason="checksum_mismatch").exists(), 10, what="reject counts")
    row = QuoteRejectionCount.objects.get(broker__slug="kestrel-fx", reason="checksum_mismatch")
    assert row.count == 1


def test_ingest_runs_the_demo_on_the_simulator_and_refuses_a_feed_whose_credential_is_missing(
    demo_committed, monkeypatch
):
    out = io.StringIO()
    call_command("ingest", "--broker", "kestrel-fx", "--seconds", "1.5", stdout=out)
    assert "stopped: accepted=" in out.getvalue()
    config = FeedConfig.objects.get(broker__slug="northwind-markets")
    config.adapter = FeedConfig.Adapter.OANDA
    config.secret_refs = {"token": "env:BW_TEST_MISSING_TOKEN"}
    config.save()
    monkeypatch.delenv("BW_TEST_MISSING_TOKEN", raising=False)
    with pytest.raises(CommandError, match=r"northwind-markets: a credential is missing: .*BW_TEST_MISSING_TOKEN"):
        call_command("ingest", "--broker", "northwind-markets", "--seconds", "1", stdout=io.StringIO())
