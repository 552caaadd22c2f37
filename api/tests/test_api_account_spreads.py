"""Spread statistics per account: the API answers from the pages' selectors for any of a broker's accounts."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from api.endpoints import SPREADS_CSV
from api.schemas import SESSION_PERCENTILES_CSV
from brokers import selectors
from brokers.models import AccountType, Broker, BrokerInstrument, Instrument
from events import selectors as event_selectors
from marketdata.models import FeedConfig, SpreadBar
from marketdata.selectors import default_accounts_of, feed_accounts

pytestmark = pytest.mark.django_db

API = "/api/v1"


def _bar(*, broker_id, instrument_id, account_id, resolution, start, mean, count):
    return SpreadBar(
        broker_id=broker_id,
        instrument_id=instrument_id,
        account_id=account_id,
        resolution=resolution,
        start=start,
        open=mean,
        high=mean * 2,
        low=mean / 2,
        close=mean,
        mean=mean,
        count=count,
        dev_min=0.0,
        dev_max=0.0,
        duration=3600.0 if resolution == "1h" else 60.0,
        dev_count=count,
    )


@pytest.fixture
def accounts_measured(measured):
    """On top of `measured` (the default accounts' hourly bars, stored without an account): hourly bars of
    every other account of every broker but one account, at its own level, and 1-minute EURUSD bars of every
    account that has bars. One broker's feed is configured on a non-default account."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    minute = timezone.now().replace(second=0, microsecond=0)
    brokers = list(Broker.objects.prefetch_related("account_types").order_by("pk"))
    defaults = default_accounts_of(brokers=brokers)
    eurusd = Instrument.objects.get(symbol="EURUSD")
    listed = {(bi.broker_id, bi.instrument_id): bi for bi in BrokerInstrument.objects.select_related("instrument")}
    bars = []
    skipped = None
    for n, broker in enumerate(brokers):
        others = [a for a in broker.account_types.all() if a.pk != defaults[broker.pk]]
        if n == 0 and others:
            skipped = others.pop()  # an account with no bars at all
        for k, account in enumerate([None, *others]):
            for (b_id, i_id), bi in listed.items():
                if b_id != broker.pk:
                    continue
                pip = float(bi.instrument.pip_size)
                if account is not None:
                    for h in (2, 3, 30):
                        bars.append(
                            _bar(
                                broker_id=b_id,
                                instrument_id=i_id,
                                account_id=account.pk,
                                resolution="1h",
                                start=now - timedelta(hours=h),
                                mean=pip * (1.5 + k + h / 100),
                                count=50 + k,
                            )
                        )
                if i_id == eurusd.pk:
                    for m in range(1, 200, 7):
                        bars.append(
                            _bar(
                                broker_id=b_id,
                                instrument_id=i_id,
                                account_id=account.pk if account is not None else None,
                                resolution="1m",
                                start=minute - timedelta(minutes=m),
                                mean=pip * (1 + k + (m % 11) / 10),
                                count=5,
                            )
                        )
    SpreadBar.objects.bulk_create(bars)
    # The last broker with several accounts has its feed on a non-default account: its profile and the
    # API's default show that one.
    last = [b for b in brokers if len(b.account_types.all()) > 1][-1]
    fed = next(a for a in last.account_types.all() if a.pk != defaults[last.pk])
    FeedConfig.objects.create(broker=last, account=fed)
    return {"skipped": skipped, "fed": fed}


def _accounts_with_bars():
    """(broker, account) for every account that has bars (bars stored without one: the default account's)."""
    brokers = list(Broker.objects.prefetch_related("account_types").order_by("pk"))
    defaults = default_accounts_of(brokers=brokers)
    pairs: set[tuple[int, int | None]] = set(SpreadBar.objects.values_list("broker_id", "account_id").distinct())
    out = []
    for broker in brokers:
        for account in broker.account_types.all():
            named = (broker.pk, account.pk) in pairs
            default = account.pk == defaults[broker.pk] and (broker.pk, None) in pairs
            if named or default:
                out.append((broker, account))
    return out


def _own_bars(broker, account, *, resolution, since, instrument_id=None):
    """(mean * duration, duration, mean / pip) of the account's own bars, read straight from the table (bars
    without an account are the default account's): an answer independent of the selectors."""
    default = default_accounts_of(brokers=[broker])[broker.pk]
    mine = Q(account_id=account.pk) | (Q(account__isnull=True) if account.pk == default else Q(pk__in=[]))
    qs = SpreadBar.objects.filter(mine, broker=broker, resolution=resolution, start__gte=since, count__gt=0)
    if instrument_id is not None:
        qs = qs.filter(instrument_id=instrument_id)
    return [
        (b.mean * b.duration, b.duration, b.mean / float(b.instrument.pip_size))
        for b in qs.select_related("instrument")
    ]


def test_every_accounts_spreads_equal_the_selectors_for_that_account(client, accounts_measured):
    checked = 0
    for broker, account in _accounts_with_bars():
        body = client.get(f"{API}/brokers/{broker.slug}/spreads", {"account": account.name}).json()
        rows = selectors.broker_spread_history(broker=selectors.broker_profile(slug=broker.slug), account=account)
        assert rows, f"{broker.slug} {account.name} has bars"
        assert [r["instrument"] for r in body] == [r.instrument.symbol for r in rows]
        for got, row in zip(body, rows, strict=True):
            assert got["account"] == account.name
            # And they are that account's: its own bars' time-weighted mean over the last 24 h.
            own = _own_bars(
                broker,
                account,
                resolution="1h",
                since=timezone.now() - timedelta(hours=24),
                instrument_id=row.instrument.pk,
            )
            pip = float(row.instrument.pip_size)
            assert got["windows"]["24h"] == pytest.approx(sum(o[0] for o in own) / sum(o[1] for o in own) / pip)
            assert got["windows"] == {name: w.pips for name, w in row.windows.items()}
            assert got["sessions"] == row.sessions
            assert got["quotes"] == row.quotes
            assert got["coverage"] == {name: w.coverage_text for name, w in row.windows.items()}
            assert got["coverage_days"] == pytest.approx(
                {name: round(w.coverage_days, 2) for name, w in row.windows.items()}, abs=0.011
            )
        checked += 1
    assert checked > len({b.pk for b, _ in _accounts_with_bars()}), "several accounts per broker"


def test_accounts_differ_and_the_name_is_matched_without_case(client, accounts_measured):
    fed = accounts_measured["fed"]
    broker = fed.broker
    default = client.get(f"{API}/brokers/{broker.slug}/spreads").json()
    named = client.get(f"{API}/brokers/{broker.slug}/spreads", {"account": fed.name.upper()}).json()

    def figures(rows):
        return [{k: v for k, v in r.items() if k not in ("as_of", "coverage_days")} for r in rows]

    assert figures(named) == figures(default)  # the feed account is the default
    others = [a for a in broker.account_types.all() if a.pk != fed.pk]
    other = client.get(f"{API}/brokers/{broker.slug}/spreads", {"account": others[0].name}).json()
    assert other[0]["account"] == others[0].name
    assert other[0]["windows"] != default[0]["windows"]


def test_the_default_is_the_feed_account_and_equals_the_profile_page_for_every_broker(client, accounts_measured):
    brokers = list(Broker.objects.prefetch_related("account_types"))
    feeds = feed_accounts(brokers=brokers)
    for broker in brokers:
        body = client.get(f"{API}/brokers/{broker.slug}/spreads").json()
        page = client.get(f"/brokers/{broker.slug}/").content.decode()
        shown = dict(re.findall(r'data-figure="spread-7d" data-symbol="(\w+)">([\d.]+)', page))
        assert shown, broker.slug
        api = {r["instrument"]: f"{r['windows']['7d']:.2f}" for r in body if r["windows"].get("7d") is not None}
        assert api == shown, broker.slug
        feed = feeds[broker.pk]
        assert feed is not None
        assert {r["account"] for r in body} == {feed.name}
        detail = client.get(f"{API}/brokers/{broker.slug}").json()
        assert [(s["instrument"], s["windows"]) for s in detail["spreads"]] == [
            (r["instrument"], r["windows"]) for r in body
        ]
    fed = accounts_measured["fed"]
    assert fed.pk != default_accounts_of(brokers=[fed.broker])[fed.broker_id], "the fixture moved one feed"


def test_every_accounts_spread_history_equals_the_spread_selector_for_that_account(client, accounts_measured):
    eurusd = Instrument.objects.get(symbol="EURUSD")
    checked = 0
    for broker, account in _accounts_with_bars():
        if not broker.broker_instruments.filter(instrument=eurusd).exists():
            continue
        body = client.get(f"{API}/brokers/{broker.slug}/spreads/EURUSD", {"account": account.name}).json()
        page = event_selectors.spread_history(broker=broker, instrument=eurusd, now=timezone.now(), account=account)
        assert body["account"] == account.name
        assert body["hours"] == pytest.approx(page.hours)
        assert body["peers"] == pytest.approx(page.peers)
        assert {k: [list(p) for p in v] for k, v in body["series"].items()} == {
            k: [list(p) for p in v] for k, v in page.series.items()
        }
        for name, figures in page.sessions.items():
            got = body["sessions"][name]
            assert got["minutes"] == figures["n"]
            assert (got["p50"], got["p95"], got["p99"]) == pytest.approx(
                (figures["p50"], figures["p95"], figures["p99"])
            )
        assert sum(s["minutes"] for s in body["sessions"].values()) > 0
        # And they are that account's: within its own 1-minute bars' range (the fixture's accounts do not overlap).
        values = [o[2] for o in _own_bars(broker, account, resolution="1m", since=timezone.now() - timedelta(days=7))]
        low, high = min(values) - 1e-9, max(values) + 1e-9
        assert all(low <= s["p50"] <= high for s in body["sessions"].values() if s["minutes"])
        assert all(low <= v <= high for _, v in body["series"]["24h"])
        assert set(body["coverage_days"]) == {k for k, v in page.series.items() if v}
        checked += 1
    assert checked > 14


def test_the_default_history_is_the_spread_pages(client, accounts_measured):
    eurusd = Instrument.objects.get(symbol="EURUSD")
    fed = accounts_measured["fed"]
    body = client.get(f"{API}/brokers/{fed.broker.slug}/spreads/EURUSD").json()
    page = event_selectors.spread_history(broker=fed.broker, instrument=eurusd, now=timezone.now())
    assert body["account"] == fed.name
    assert body["hours"] == pytest.approx(page.hours)
    assert body["series"]["7d"] == [list(p) for p in page.series["7d"]]


def test_an_account_without_bars_answers_empty_and_an_unknown_one_404_json(client, accounts_measured):
    skipped = accounts_measured["skipped"]
    slug = skipped.broker.slug
    another = Broker.objects.exclude(pk=skipped.broker_id).order_by("pk")[0]
    elsewhere = AccountType.objects.create(
        broker=another,
        name="Only Elsewhere",
        spread_type="standard",
        commission_per_lot=0,
        min_deposit=9000,
        spread_markup_pips=9,  # not the tightest: the bars stored without an account stay another account's
    )
    assert client.get(f"{API}/brokers/{slug}/spreads", {"account": skipped.name}).json() == []
    for path in (f"/brokers/{slug}/spreads", f"/brokers/{slug}/spreads/EURUSD"):
        for fmt in ("json", "csv"):
            response = client.get(API + path, {"account": "No Such Account", "format": fmt})
            assert response.status_code == 404, (path, fmt)
            assert response["Content-Type"] == "application/json"
            message = response.json()["fields"]["account"][0]
            assert skipped.name in message  # says which accounts exist
        # Another broker's account is unknown here too.
        assert client.get(API + path, {"account": elsewhere.name}).status_code == 404
        assert client.get(f"{API}/brokers/{elsewhere.broker.slug}/spreads", {"account": elsewhere.name}).json() == []
        too_long = client.get(API + path, {"account": "x" * 61})
        assert too_long.status_code == 422
        assert "account" in too_long.json()["fields"]


def test_account_spreads_download_as_csv_saying_the_account(client, accounts_measured):
    fed = accounts_measured["fed"]
    other = fed.broker.account_types.exclude(pk=fed.pk)[0]
    response = client.get(f"{API}/brokers/{fed.broker.slug}/spreads", {"account": other.name, "format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == list(SPREADS_CSV)
    body = client.get(f"{API}/brokers/{fed.broker.slug}/spreads", {"account": other.name}).json()
    assert len(rows) - 1 == len(body)
    column = rows[0].index("account")
    assert {r[column] for r in rows[1:]} == {other.name}
    assert [r[rows[0].index("mean_pips_7d")] for r in rows[1:]] == [str(r["windows"]["7d"]) for r in body]
    history = client.get(f"{API}/brokers/{fed.broker.slug}/spreads/EURUSD", {"account": other.name, "format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(history.streaming_content).decode())))
    assert rows[0] == list(SESSION_PERCENTILES_CSV)
    assert {r[rows[0].index("account")] for r in rows[1:]} == {other.name}
    schema = client.get(f"{API}/openapi.json").json()
    for path in ("/api/v1/brokers/{slug}/spreads", "/api/v1/brokers/{slug}/spreads/{symbol}"):
        op = schema["paths"][path]["get"]
        assert "account" in {p["name"] for p in op["parameters"]}
        assert "`account`" in op["responses"]["200"]["description"]
