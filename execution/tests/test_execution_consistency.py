"""Best execution shows one set of figures: the page, its JSON and /api/v1/execution agree on every row."""

from __future__ import annotations

import html
import json
import re
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from django_redis import get_redis_connection

from brokers.models import AccountType, BrokerInstrument
from execution.forms import DEFAULT_UNIT
from marketdata import keys

pytestmark = pytest.mark.django_db

# Figures the page shows per row, as the page formats them, from a JSON row.
MONEY = ("spread_cost_usd", "commission_usd", "all_in_usd", "penalty_usd", "all_in_with_penalty_usd")
# Fields that may differ between two requests a few milliseconds apart.
MOVING = {"age_s", "max_age_s", "as_of"}


def _money(value: float | None) -> str:
    """As the page's floatformat:"2g" shows it (half up, grouped)."""
    if value is None:
        return "–"
    return f"{Decimal(str(value)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def _qty(value: float) -> str:
    """As floatformat:"-2g": no decimals for a whole number, two for any other."""
    exact = Decimal(str(value))
    if exact == exact.to_integral_value():
        return f"{exact:,.0f}"
    return f"{exact.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


@pytest.fixture
def market(demo):
    """Fresh depth for every broker quoting EURUSD, each book its own (some too thin for the order), and accounts
    with lot steps of their own."""
    conn = get_redis_connection("default")
    slugs = list(
        BrokerInstrument.objects.filter(instrument__symbol="EURUSD", broker__status="active")
        .order_by("broker__name")
        .values_list("broker__slug", flat=True)
    )
    assert len(slugs) >= 8
    now = time.time_ns() // 1000
    for i, slug in enumerate(slugs):
        ask = round(1.10010 + (i % 5) * 0.00002, 5)
        bid = round(1.09990 - (i % 3) * 0.00002, 5)
        if i % 4 == 0:  # one thin level: cannot fill 2.34 lots
            book = {"bids": [[bid, 150_000.5]], "asks": [[ask, 150_000.5]]}
        else:
            size = 5_618_040.52
            book = {"bids": [[bid, size], [round(bid - 0.0001, 5), size]], "asks": [[ask, size], [ask + 0.0001, size]]}
        conn.hset(keys.depth_hash(), keys.field(slug, "EURUSD"), json.dumps({**book, "ts": now}))
    AccountType.objects.filter(broker__slug=slugs[1]).update(lot_step=Decimal("0.1"), min_lots=Decimal("0.5"))
    AccountType.objects.filter(broker__slug=slugs[2]).update(lot_step=Decimal("1"), min_lots=Decimal("3"))
    yield slugs
    conn.delete(keys.depth_hash())


def _page_rows(body: str) -> dict[tuple[str, str], dict[str, str]]:
    rows = {}
    for broker, account, cells in re.findall(
        r'<tr class="exec-row[^"]*" data-broker="([^"]+)" data-account="([^"]*)">(.*?)</tr>', body, re.S
    ):
        figures = dict(re.findall(r'data-figure="(\w+)">(?:<strong>)?([^<]*)', cells))
        rows[(broker, html.unescape(account))] = {k: html.unescape(v).strip() for k, v in figures.items()}
    return rows


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return row["broker"], row["account"]


def _steady(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in MOVING}


@pytest.mark.parametrize(("side", "size"), [("buy", "2.34"), ("sell", "0.75"), ("buy", "40")])
def test_the_page_its_json_and_the_api_show_the_same_figures_for_every_broker_and_account(client, market, side, size):
    params = {"instrument": "EURUSD", "side": side, "size": size, "unit": "lots"}
    page = client.get("/execution/?" + urlencode(params))
    page_json = client.get("/execution/api/?" + urlencode(params))
    api = client.get("/api/v1/execution?" + urlencode(params))
    assert page.status_code == page_json.status_code == api.status_code == 200
    mine, theirs = page_json.json(), api.json()

    # The two JSON answers are one body: every key, every row, every figure.
    assert _steady(mine) | {"brokers": None, "split": None} == _steady(theirs) | {"brokers": None, "split": None}
    assert [_steady(r) for r in mine["brokers"]] == [_steady(r) for r in theirs["brokers"]]
    assert mine["split"] == theirs["split"]
    every_account = {
        (a.broker.slug, a.name) for a in AccountType.objects.filter(broker__slug__in=market).select_related("broker")
    }
    assert {_key(r) for r in mine["brokers"]} == every_account

    # The page shows those figures, row by row, in the same order.
    body = page.content.decode()
    shown = _page_rows(body)
    assert list(shown) == [_key(r) for r in mine["brokers"]]
    kinds = set()
    for row in mine["brokers"]:
        cells = shown[_key(row)]
        assert row["status"] == "ok"
        for name in MONEY:
            assert cells[name] == _money(row[name]), (_key(row), name)
        assert cells["filled_units"] == _qty(row["filled_units"])
        assert cells.get("unfilled_units", "0") == _qty(row["unfilled_units"])  # shown only when some is short
        assert cells["split_size"] == _qty(row["split_size"])
        assert cells["lot_step"] == f"{row['lot_step_lots']:g} lot / {row['min_lots']:g} lot"
        kinds.add("full" if row["unfilled_units"] == 0 else row["unfilled_reason"])
    if size == "2.34":  # the fixture makes this order hit every case
        assert kinds == {"full", "depth", "lot_step", "minimum"}
    assert html.escape(mine["penalty_rule"]) in body
    split = re.search(r'id="exec-split">(.*?)</tfoot>', body, re.S)
    assert split is not None
    split_cells = dict(re.findall(r'data-figure="(\w+)">(?:<strong>)?([^<]*)', split.group(1)))
    for name in MONEY:
        assert split_cells[name].strip() == _money(mine["split"][name]), name


def test_the_api_and_the_form_read_a_size_without_a_unit_the_same_way(client, market):
    params = {"instrument": "EURUSD", "side": "buy", "size": "2"}
    api = client.get("/api/v1/execution?" + urlencode(params)).json()
    mine = client.get("/execution/api/?" + urlencode(params)).json()
    assert DEFAULT_UNIT == "lots"
    assert api["size"] == mine["size"] == 200_000 and api["lots"] == mine["lots"] == 2
    assert api["default_request_unit"] == mine["default_request_unit"] == DEFAULT_UNIT
    page = client.get("/execution/").content.decode()
    assert re.search(r'<option value="lots" selected>', page)


def test_the_api_schema_documents_every_row_field_the_answer_carries(client, market):
    spec = client.get("/api/v1/openapi.json").json()
    operation = spec["paths"]["/api/v1/execution"]["get"]
    unit = next(p for p in operation["parameters"] if p["name"] == "unit")
    assert unit["schema"]["default"] == DEFAULT_UNIT
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    schemas = spec["components"]["schemas"]
    answer = schemas[ref.rsplit("/", 1)[1]]
    row_ref = answer["properties"]["brokers"]["items"]["$ref"]
    row = schemas[row_ref.rsplit("/", 1)[1]]["properties"]
    body = client.get("/api/v1/execution?" + urlencode({"instrument": "EURUSD", "side": "buy", "size": "3"})).json()
    assert set(body) == set(answer["properties"])
    assert set(body["brokers"][0]) == set(row)
    for name in ("penalty_usd", "all_in_with_penalty_usd", "penalty_price", "lot_step_lots", "min_lots"):
        assert row[name].get("description"), name
    assert "penalty_rule" in answer["properties"] and "as_of" in answer["properties"]
