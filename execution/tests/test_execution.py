"""/execution/: the best-execution calculator against real depth written to Redis in the ingestors' format."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django_redis import get_redis_connection

from brokers.models import BrokerInstrument
from common import metrics
from marketdata import keys

pytestmark = pytest.mark.django_db


def now_us() -> int:
    return time.time_ns() // 1000


def put_depth(broker: str, instrument: str, bids: list[list[float]], asks: list[list[float]], age_s: float = 0.0):
    """The hash field and JSON exactly as marketdata.ingest writes them (common.ticks.depth_message)."""
    body = json.dumps({"bids": bids, "asks": asks, "ts": now_us() - int(age_s * 1e6)}, separators=(",", ":"))
    get_redis_connection("default").hset(keys.depth_hash(), keys.field(broker, instrument), body)


def put_latest(broker: str, instrument: str, bid: float, ask: float, age_s: float = 0.0) -> None:
    ts = now_us() - int(age_s * 1e6)
    data = {"broker": broker, "instrument": instrument, "bid": bid, "ask": ask, "spread": ask - bid}
    data.update(bid_size=1, ask_size=1, ts_broker=ts, ts_ingest=ts, seq=1)
    get_redis_connection("default").hset(keys.latest_hash(), keys.field(broker, instrument), json.dumps(data))


@pytest.fixture(autouse=True)
def _clear_market_data():
    yield
    get_redis_connection("default").delete(keys.depth_hash(), keys.latest_hash())


def brokers_quoting(symbol: str, n: int) -> list[str]:
    slugs = list(
        BrokerInstrument.objects.filter(instrument__symbol=symbol)
        .order_by("broker__name")
        .values_list("broker__slug", flat=True)
    )
    assert len(slugs) >= n
    return slugs[:n]


@pytest.fixture
def eurusd_book(demo) -> dict[str, str]:
    """Three fresh brokers and one stale one on EURUSD. Mids 1.1001, 1.1000, 1.10015: consensus 1.1001."""
    a, b, c, d = brokers_quoting("EURUSD", 4)
    put_depth(a, "EURUSD", [[1.1000, 1_000_000]], [[1.1002, 500_000], [1.1003, 500_000]])
    put_depth(b, "EURUSD", [[1.0999, 1_000_000]], [[1.1001, 300_000], [1.1004, 1_000_000]])
    put_depth(c, "EURUSD", [[1.1001, 1_000_000]], [[1.1002, 2_000_000]])
    # Stale, and far cheaper than everyone: it must not be used for anything.
    put_depth(d, "EURUSD", [[1.0980, 9_000_000]], [[1.0990, 9_000_000]], age_s=30)
    return {"a": a, "b": b, "c": c, "stale": d}


def api(client, **params):
    params.setdefault("unit", "units")  # these tests give sizes in units; the default unit is lots
    return client.get("/execution/api/?" + urlencode(params))


@pytest.fixture(autouse=True)
def _one_spread_only_account_per_broker(request):
    """These tests are about walking depth: each broker gets one account that adds nothing to its feed
    price (accounts, mark-ups and commissions are tested in test_execution_accounts and below)."""
    if "demo" not in request.fixturenames and "eurusd_book" not in request.fixturenames:
        return
    if request.node.get_closest_marker("accounts_as_seeded"):
        return
    request.getfixturevalue("demo")
    from brokers.models import AccountType

    keep = {}
    for acc in AccountType.objects.order_by("broker_id", "spread_markup_pips", "min_deposit", "name"):
        keep.setdefault(acc.broker_id, acc.pk)
    AccountType.objects.exclude(pk__in=keep.values()).delete()
    AccountType.objects.update(commission_per_lot=0, spread_markup_pips=0)


def rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["broker"]: r for r in body["brokers"]}


def test_the_api_walks_each_brokers_depth_and_prices_it_against_the_consensus_mid(client, eurusd_book):
    response = api(client, instrument="EURUSD", side="buy", size="1000000")
    assert response.status_code == 200
    body = response.json()
    assert body["consensus_mid"] == pytest.approx(1.1001)
    got = rows(body)
    a, b, c = got[eurusd_book["a"]], got[eurusd_book["b"]], got[eurusd_book["c"]]
    # a: 500k at 1.1002 + 500k at 1.1003
    assert a["average_price"] == pytest.approx(1.10025)
    assert a["cost_pips"] == pytest.approx(1.5)
    assert a["cost_usd"] == pytest.approx(150.0)
    assert a["levels_used"] == 2
    # b: 300k at 1.1001 + 700k at 1.1004 = 1,100,310 / 1,000,000
    assert b["average_price"] == pytest.approx(1.10031)
    assert b["cost_pips"] == pytest.approx(2.1)
    assert b["cost_usd"] == pytest.approx(210.0)
    # c: all at 1.1002
    assert c["average_price"] == pytest.approx(1.1002)
    assert c["cost_usd"] == pytest.approx(100.0)
    assert body["best_broker"] == eurusd_book["c"]
    assert [r["broker"] for r in body["brokers"] if r["best"]] == [eurusd_book["c"]]
    assert body["brokers"][0]["broker"] == eurusd_book["c"]  # best first
    assert all(r["shortfall"] == 0 for r in (a, b, c))


def test_the_split_takes_the_cheapest_levels_across_brokers(client, eurusd_book):
    body = api(client, instrument="EURUSD", side="buy", size="1000000").json()
    split = body["split"]
    # 300k at 1.1001 from b, then 700k at 1.1002 from a and c: 1,100,170 / 1,000,000
    assert split["average_price"] == pytest.approx(1.10017)
    assert split["cost_pips"] == pytest.approx(0.7)
    assert split["cost_usd"] == pytest.approx(70.0)
    assert split["saving_usd_vs_best"] == pytest.approx(30.0)
    assert split["shortfall"] == 0
    got = rows(body)
    assert got[eurusd_book["b"]]["split_size"] == pytest.approx(300_000)
    assert got[eurusd_book["a"]]["split_size"] + got[eurusd_book["c"]]["split_size"] == pytest.approx(700_000)
    assert split["cost_usd"] <= min(r["cost_usd"] for r in body["brokers"] if r["status"] == "ok")


def test_stale_depth_is_excluded_and_reported(client, eurusd_book):
    body = api(client, instrument="EURUSD", side="buy", size="1000000").json()
    stale = rows(body)[eurusd_book["stale"]]
    assert stale["status"] == "stale"
    assert stale["age_s"] == pytest.approx(30, abs=1)
    assert stale["average_price"] is None and stale["split_size"] == 0 and not stale["best"]
    assert body["split"]["average_price"] > 1.1  # the stale 1.0990 offer was not used
    assert body["max_age_s"] < 5


def test_a_sell_walks_the_bids_and_sizes_can_be_given_in_lots(client, eurusd_book):
    body = api(client, instrument="EURUSD", side="sell", size="15", unit="lots").json()
    assert body["size"] == 1_500_000 and body["lots"] == 15
    got = rows(body)
    a, c = got[eurusd_book["a"]], got[eurusd_book["c"]]
    # Nobody shows 1.5m on the bid: each fills 1m at its one level and is short 500k.
    assert a["filled"] == 1_000_000 and a["shortfall"] == 500_000
    assert a["average_price"] == pytest.approx(1.1000)
    assert a["cost_pips"] == pytest.approx(1.0)  # sold 1 pip under the 1.1001 mid
    assert a["cost_usd"] == pytest.approx(100.0)  # on the million that filled
    assert c["cost_pips"] == pytest.approx(0.0)
    assert body["best_broker"] is None
    assert "No single broker account has enough depth" in " ".join(body["notes"])
    # Split: 1m at 1.1001 from c, then 500k at 1.1000 from a.
    split = body["split"]
    assert split["shortfall"] == 0
    assert split["average_price"] == pytest.approx((1_000_000 * 1.1001 + 500_000 * 1.1000) / 1_500_000)
    assert split["cost_usd"] == pytest.approx(50.0)


def test_when_the_depth_runs_out_the_shortfall_is_shown(client, eurusd_book):
    body = api(client, instrument="EURUSD", side="buy", size="5000000").json()
    split = body["split"]
    assert split["filled"] == pytest.approx(4_300_000)  # every fresh ask: 1m + 1.3m + 2m (not the stale 9m)
    assert split["shortfall"] == pytest.approx(700_000)
    assert rows(body)[eurusd_book["c"]]["shortfall"] == pytest.approx(3_000_000)
    assert "does not fill the whole order" in " ".join(body["notes"])


def test_a_yen_quoted_cost_is_converted_to_usd_at_the_current_mid(client, demo):
    a, b = brokers_quoting("USDJPY", 2)
    put_depth(a, "USDJPY", [[150.00, 2_000_000]], [[150.02, 2_000_000]])
    put_depth(b, "USDJPY", [[150.00, 2_000_000]], [[150.02, 2_000_000]])
    body = api(client, instrument="USDJPY", side="buy", size="1000000").json()
    assert body["quote_currency"] == "JPY"
    assert body["consensus_mid"] == pytest.approx(150.01)
    row = rows(body)[a]
    assert row["cost_pips"] == pytest.approx(1.0)
    assert row["cost_quote"] == pytest.approx(10_000.0)
    assert row["cost_usd"] == pytest.approx(10_000.0 / 150.01)
    assert "USDJPY" in body["conversion"]


def test_a_cross_is_converted_with_the_latest_quotes_of_its_usd_pair(client, demo):
    (a,) = brokers_quoting("EURJPY", 1)
    put_depth(a, "EURJPY", [[164.00, 1_000_000]], [[164.04, 1_000_000]])
    b, c = brokers_quoting("USDJPY", 2)
    put_latest(b, "USDJPY", 149.99, 150.01)
    put_latest(c, "USDJPY", 100.0, 100.1, age_s=60)  # stale: not used for the rate
    body = api(client, instrument="EURJPY", side="buy", size="100000").json()
    row = rows(body)[a]
    assert row["cost_quote"] == pytest.approx(0.02 * 100_000)
    assert row["cost_usd"] == pytest.approx(2_000.0 / 150.0)
    assert body["usd_per_quote"] == pytest.approx(1 / 150.0)


def test_without_a_current_conversion_rate_the_usd_cost_is_left_out_and_said(client, demo):
    (a,) = brokers_quoting("EURJPY", 1)
    put_depth(a, "EURJPY", [[164.00, 1_000_000]], [[164.04, 1_000_000]])
    body = api(client, instrument="EURJPY", side="buy", size="100000").json()
    row = rows(body)[a]
    assert row["cost_pips"] == pytest.approx(2.0)
    assert row["cost_usd"] is None
    assert "no USD figure" in body["conversion"]


def test_unreadable_depth_is_excluded_without_breaking_the_others(client, eurusd_book):
    conn = get_redis_connection("default")
    conn.hset(keys.depth_hash(), keys.field(eurusd_book["a"], "EURUSD"), b'{"bids": [[1.1, -5]], "asks": [], "ts": 1}')
    conn.hset(keys.depth_hash(), keys.field(eurusd_book["b"], "EURUSD"), b"not json")
    body = api(client, instrument="EURUSD", side="buy", size="1000000").json()
    got = rows(body)
    assert got[eurusd_book["a"]]["status"] == "bad_depth"
    assert got[eurusd_book["b"]]["status"] == "bad_depth"
    assert body["best_broker"] == eurusd_book["c"]
    assert body["consensus_mid"] == pytest.approx(1.10015)  # only c is left


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"instrument": "NOPE", "side": "buy", "size": "1000"}, "instrument"),
        ({"side": "buy", "size": "1000"}, "instrument"),
        ({"instrument": "EURUSD", "size": "1000"}, "side"),
        ({"instrument": "EURUSD", "side": "hold", "size": "1000"}, "side"),
        ({"instrument": "EURUSD", "side": "buy"}, "size"),
        ({"instrument": "EURUSD", "side": "buy", "size": "0"}, "size"),
        ({"instrument": "EURUSD", "side": "buy", "size": "-5"}, "size"),
        ({"instrument": "EURUSD", "side": "buy", "size": "NaN"}, "size"),
        ({"instrument": "EURUSD", "side": "buy", "size": "inf"}, "size"),
        ({"instrument": "EURUSD", "side": "buy", "size": "lots"}, "size"),
        ({"instrument": "EURUSD", "side": "buy", "size": "2000000000"}, "size"),  # 20,000 lots
        ({"instrument": "EURUSD", "side": "buy", "size": "10001", "unit": "lots"}, "size"),
        ({"instrument": "EURUSD", "side": "buy", "size": "1", "unit": "tonnes"}, "unit"),
    ],
)
def test_bad_input_gets_a_400_with_a_message_and_is_counted(client, demo, params, field):
    before = metrics.get("bad_query")
    response = api(client, **params)
    assert response.status_code == 400
    body = response.json()
    assert field in body["fields"]
    assert body["error"].startswith(f"{field}:") or f" {field}:" in body["error"]
    assert metrics.get("bad_query") == before + 1


def test_the_largest_sensible_order_is_accepted(client, demo):
    assert api(client, instrument="EURUSD", side="buy", size="10000", unit="lots").status_code == 200


def test_the_page_shows_the_form_without_a_query(client, demo):
    response = client.get("/execution/")
    assert response.status_code == 200
    body = response.content.decode()
    assert '<form method="get" action="/execution/"' in body
    assert 'id="exec-result"' not in body
    assert 'href="/execution/"' in body  # the nav link


def test_visitors_see_the_result_on_submit_without_live_updates(client, eurusd_book):
    response = client.get("/execution/?instrument=EURUSD&side=buy&size=10&unit=lots")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"] and "max-age=0" in response["Cache-Control"]
    body = response.content.decode()
    c_row = body.split(f'data-broker="{eurusd_book["c"]}"')[0].rsplit("<tr", 1)[1]
    assert "best" in c_row  # the best broker's row is highlighted
    stale_row = body.split(f'data-broker="{eurusd_book["stale"]}"')[1].split("</tr>")[0]
    assert "Stale depth: excluded" in stale_row
    assert "1.100200" in body  # c's average, to a tenth of a point
    assert "1.100170" in body  # the split
    assert 'data-live="0"' in body
    assert "js/execution" not in body
    assert "Log in" in body


def test_the_page_lists_which_account_each_leg_of_the_split_uses_and_says_sizes_in_lots_as_typed(client, eurusd_book):
    body = client.get("/execution/?instrument=EURUSD&side=buy&size=10.5&unit=lots").content.decode()
    answer = api(client, instrument="EURUSD", side="buy", size="10.5", unit="lots").json()
    legs = [r for r in answer["brokers"] if r["split_size"] > 0]
    assert len(legs) >= 2  # the split takes from several brokers
    shown = re.search(r'id="exec-split-legs">(.*?)</dd>', body, re.S)
    assert shown is not None
    items = re.findall(r"<li>([^<]+)</li>", shown.group(1))
    assert items == [f"{r['name']} ({r['account']}): {r['split_size']:,.0f} units" for r in legs]
    assert "(10.5 lots)" in body  # not 10.5000


def test_logged_in_traders_get_the_live_script_and_the_api_url(client, eurusd_book):
    user = User.objects.create_user("trader", password="pw-123456789")
    client.force_login(user)
    body = client.get("/execution/?instrument=EURUSD&side=sell&size=1000000&unit=units").content.decode()
    assert 'data-live="1"' in body
    assert 'data-api="/execution/api/?instrument=EURUSD&amp;side=sell&amp;size=1000000&amp;unit=units"' in body
    assert "js/execution" in body


def test_the_page_shows_form_errors_with_a_400(client, demo):
    before = metrics.get("bad_query")
    response = client.get("/execution/?instrument=EURUSD&side=buy&size=-3")
    assert response.status_code == 400
    body = response.content.decode()
    assert "Size must be greater than zero." in body
    assert 'role="alert"' in body
    assert metrics.get("bad_query") == before + 1


def test_the_api_is_not_cached(client, eurusd_book):
    first = api(client, instrument="EURUSD", side="buy", size="1000000")
    assert "no-cache" in first["Cache-Control"]
    put_depth(eurusd_book["c"], "EURUSD", [[1.1001, 1_000_000]], [[1.1005, 2_000_000]])
    second = api(client, instrument="EURUSD", side="buy", size="1000000").json()
    assert rows(second)[eurusd_book["c"]]["average_price"] == pytest.approx(1.1005)


def test_depth_in_the_exact_format_the_ingestor_writes_is_read(client, demo):
    from common.ticks import depth_message

    (a,) = brokers_quoting("XAUUSD", 1)
    msg = depth_message((((2350.00, 100.0), (2349.90, 200.0)), ((2350.20, 100.0), (2350.40, 200.0))), now_us())
    get_redis_connection("default").hset(keys.depth_hash(), keys.field(a, "XAUUSD"), msg)
    body = api(client, instrument="XAUUSD", side="buy", size="2", unit="lots").json()
    assert body["size"] == 200 and body["lot_size"] == 100  # 2 lots of 100 oz
    row = rows(body)[a]
    assert row["average_price"] == pytest.approx((100 * 2350.20 + 100 * 2350.40) / 200)
    assert row["cost_pips"] == pytest.approx(20.0)  # 0.20 over the 2350.10 mid, pip 0.01
    assert row["cost_usd"] == pytest.approx(40.0)


def test_the_page_says_how_a_yen_cost_was_converted_to_usd(client, demo):
    (a,) = brokers_quoting("USDJPY", 1)
    put_depth(a, "USDJPY", [[150.00, 2_000_000]], [[150.02, 2_000_000]])
    body = client.get("/execution/?instrument=USDJPY&side=buy&size=1000000&unit=units").content.decode()
    assert "JPY converted to USD at 1 / the USDJPY mid 150.01" in body
    assert "66.66" in body  # 10,000 JPY / 150.01


def test_head_requests_are_answered(client, demo):
    assert client.head("/execution/").status_code == 200
    assert client.post("/execution/api/?instrument=EURUSD&side=buy&size=1").status_code == 405


@pytest.mark.accounts_as_seeded
def test_the_api_prices_every_account_of_a_broker_with_its_commission_and_says_when(client, demo):
    put_depth("northwind-markets", "EURUSD", [[1.09999, 5_000_000]], [[1.10001, 5_000_000]])
    put_depth("kestrel-fx", "EURUSD", [[1.09998, 5_000_000]], [[1.10002, 5_000_000]])
    body = api(client, instrument="EURUSD", side="buy", size="1", unit="lots").json()
    assert body["as_of"]
    northwind = {r["account"]: r for r in body["brokers"] if r["broker"] == "northwind-markets"}
    assert set(northwind) == {"Standard", "Raw"}
    raw, standard = northwind["Raw"], northwind["Standard"]
    assert raw["commission_usd"] == pytest.approx(3.0)  # $6 round turn, one side
    assert raw["all_in_usd"] == pytest.approx(raw["spread_cost_usd"] + 3.0)
    # The standard account's 0.8-pip mark-up: 0.4 pip more on the ask, $4 on a lot.
    assert standard["spread_cost_usd"] == pytest.approx(raw["spread_cost_usd"] + 4.0)
    assert standard["commission_usd"] == 0
    assert {"filled_units", "unfilled_units"} <= set(raw)


def test_the_api_and_the_form_read_a_size_without_a_unit_as_lots(client, eurusd_book):
    body = client.get("/execution/api/?" + urlencode({"instrument": "EURUSD", "side": "buy", "size": "2"})).json()
    assert body["size"] == 200_000 and body["lots"] == 2


@pytest.mark.accounts_as_seeded
def test_an_account_the_broker_quotes_on_its_own_feed_is_priced_from_that_feed(client, demo):
    from brokers.models import AccountType

    try:
        put_depth("northwind-markets", "EURUSD", [[1.1000, 5_000_000]], [[1.1001, 5_000_000]])
        put_depth("kestrel-fx", "EURUSD", [[1.1000, 5_000_000]], [[1.1001, 5_000_000]])
        standard = AccountType.objects.get(broker__slug="northwind-markets", name="Standard")
        body = json.dumps({"bids": [[1.0999, 5_000_000]], "asks": [[1.1005, 5_000_000]], "ts": now_us()})
        get_redis_connection("default").hset(
            keys.account_depth_hash(), keys.account_field("northwind-markets", "EURUSD", standard.pk), body
        )
        got = {
            (r["broker"], r["account"]): r
            for r in api(client, instrument="EURUSD", side="buy", size="100000").json()["brokers"]
        }
        mine = got[("northwind-markets", "Standard")]
        assert mine["priced_from"] == "account feed" and mine["average_price"] == pytest.approx(1.1005)
        raw = got[("northwind-markets", "Raw")]
        assert raw["priced_from"] == "feed account + mark-up" and raw["average_price"] == pytest.approx(1.1001)
        # Kestrel quotes no account feed: its Standard account is its feed depth moved by the mark-up.
        assert got[("kestrel-fx", "Standard")]["priced_from"] == "feed account + mark-up"
    finally:
        get_redis_connection("default").delete(keys.account_depth_hash())


def test_the_form_says_beside_the_size_which_accounts_cannot_take_it_and_links_the_nearest_sizes(client, eurusd_book):
    from brokers.models import AccountType

    AccountType.objects.filter(broker__slug=eurusd_book["a"]).update(lot_step="0.1", min_lots="0.1")
    response = client.get("/execution/?instrument=EURUSD&side=buy&size=1.05&unit=lots")
    assert response.status_code == 200
    body = response.content.decode()
    advice = body.split('id="size-advice"')[1].split("</div>")[0]
    assert "Not a whole number of 0.1 lot steps" in advice
    assert "instrument=EURUSD&amp;side=buy&amp;size=1&amp;unit=lots" in advice
    assert "size=1.1&amp;unit=lots" in advice
    assert 'aria-describedby="size-advice"' in body
    # The other brokers take 1.05 lots: their rows are full fills.
    c_row = body.split(f'data-broker="{eurusd_book["c"]}"')[1].split("</tr>")[0]
    assert "in full" in c_row
    on_grid = client.get("/execution/?instrument=EURUSD&side=buy&size=1&unit=lots").content.decode()
    assert 'id="size-advice"' not in on_grid
