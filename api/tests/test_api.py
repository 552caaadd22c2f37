"""The public API answers with the pages' figures, caches like the pages, and fails in JSON."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from django.test import override_settings

from api.endpoints import SPREADS_CSV
from api.models import ApiKey
from api.schemas import DIRECTORY_CSV
from brokers import selectors
from brokers.models import Broker

pytestmark = pytest.mark.django_db

API = "/api/v1"


def get(client, path, **headers):
    return client.get(API + path, headers=headers)


def test_every_brokers_list_figure_equals_the_directory_selectors(client, measured):
    body = get(client, "/brokers").json()
    page = selectors.broker_directory(filters=selectors.DirectoryFilters())
    assert [b["slug"] for b in body] == [e.broker.slug for e in page]
    assert len(body) == Broker.objects.filter(status="active").count() > 10
    for row, entry in zip(body, page, strict=True):
        broker = entry.broker
        assert row["all_in_eurusd_usd"] == (entry.cost.all_in_usd if entry.cost else None)
        assert row["trust_score"] == broker.trust_score is not None  # type: ignore[attr-defined]
        assert row["trust_label"] == broker.trust_label  # type: ignore[attr-defined]
        assert float(row["min_deposit"]) == float(broker.min_deposit)
        assert row["max_leverage"] == broker.max_leverage
        assert row["platforms"] == [p.name for p in broker.platforms.all()]


def test_every_brokers_detail_equals_the_profile_selectors(client, measured):
    for broker in Broker.objects.all():
        body = get(client, f"/brokers/{broker.slug}").json()
        profile = selectors.broker_profile(slug=broker.slug)
        scores = selectors.broker_score_history(broker=profile)
        spreads = selectors.broker_spread_history(broker=profile)
        assert spreads, "the fixture measured every broker"
        assert body["trust_score"] == profile.trust_score  # type: ignore[attr-defined]
        assert body["latest_score"]["overall"] == scores[-1].overall
        assert body["latest_score"]["components"] == scores[-1].components
        assert [s["instrument"] for s in body["spreads"]] == [r.instrument.symbol for r in spreads]
        for got, row in zip(body["spreads"], spreads, strict=True):
            assert got["windows"] == {name: w.pips for name, w in row.windows.items()}
            assert got["sessions"] == row.sessions
        assert [a["name"] for a in body["accounts"]] == [a.name for a in profile.account_types.all()]
        assert len(body["licences"]) == profile.licences.count()


def test_the_directory_filters_and_sorts_are_the_pages(client, measured):
    by_deposit = get(client, "/brokers?sort=deposit&tier=1").json()
    page = selectors.broker_directory(filters=selectors.DirectoryFilters(tier=1, sort="deposit"))
    assert [b["slug"] for b in by_deposit] == [e.broker.slug for e in page]
    assert 0 < len(page) < 14


def test_answers_carry_an_etag_and_a_matching_if_none_match_gets_304(client, measured):
    first = get(client, "/brokers")
    assert first.status_code == 200
    assert first["ETag"].startswith('"')
    assert "s-maxage=" in first["Cache-Control"]
    assert first["X-Api-Cache"] == "miss"
    again = client.get(API + "/brokers", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]
    assert again["X-Api-Cache"] == "hit"
    assert client.get(API + "/brokers", HTTP_IF_NONE_MATCH='"other"').status_code == 200
    # Parameters the endpoint does not read share the cached answer instead of splitting the cache.
    assert get(client, "/brokers?junk=1")["X-Api-Cache"] == "hit"


def test_a_bad_parameter_gets_422_json_with_a_message_for_that_field(client, measured):
    response = get(client, "/brokers?tier=7&sort=cheapest")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body["fields"]) == {"tier", "sort"}


def test_an_unknown_regulator_gets_400_json_from_the_directory_form(client, measured):
    response = get(client, "/brokers?regulator=nobody")
    assert response.status_code == 400
    assert "regulator" in response.json()["fields"]


def test_an_unknown_broker_and_an_unknown_path_get_404_json_never_html(client, measured):
    for path in ("/brokers/no-such-broker", "/brokers/no-such-broker/scores", "/nothing/here"):
        response = get(client, path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert "error" in response.json()


def test_the_directory_downloads_as_streamed_csv_with_the_documented_columns(client, measured):
    response = get(client, "/brokers?format=csv")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == list(DIRECTORY_CSV)
    assert len(rows) == 1 + Broker.objects.filter(status="active").count()
    schema = get(client, "/openapi.json").json()
    documented = schema["paths"]["/api/v1/brokers"]["get"]["responses"]["200"]["description"]
    assert all(f"`{name}`" in documented for name in DIRECTORY_CSV)


def test_spreads_and_score_history_download_as_csv(client, measured):
    broker = Broker.objects.order_by("name")[0]
    spreads = get(client, f"/brokers/{broker.slug}/spreads?format=csv")
    rows = list(csv.reader(io.StringIO(b"".join(spreads.streaming_content).decode())))
    assert rows[0] == list(SPREADS_CSV)
    assert len(rows) - 1 == len(selectors.broker_spread_history(broker=broker))
    scores = get(client, f"/brokers/{broker.slug}/scores?format=csv")
    rows = list(csv.reader(io.StringIO(b"".join(scores.streaming_content).decode())))
    assert len(rows) == 2 and rows[0][0] == "computed_at"


def test_the_schema_and_the_interactive_docs_are_served(client, measured):
    schema = get(client, "/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/brokers/{slug}/spreads" in schema["paths"]
    assert get(client, "/docs").status_code == 200


def _new_key(client, django_user_model, username="researcher"):
    user = django_user_model.objects.create_user(username, password="a-long-password-1")
    client.force_login(user)
    page = client.post("/account/api-keys/", {"name": "notebook"})
    assert page.status_code == 200
    secret = page.context["secret"]
    client.logout()
    return user, secret


def test_a_key_is_shown_once_and_stored_only_as_a_digest(client, django_user_model, measured):
    user, secret = _new_key(client, django_user_model)
    assert secret.startswith("bw_")
    key = ApiKey.objects.get(user=user)
    assert secret not in json.dumps([key.prefix, key.digest, key.name])
    client.force_login(user)
    listing = client.get("/account/api-keys/").content.decode()
    assert secret not in listing and key.prefix in listing


def test_live_quotes_need_a_key_and_a_revoked_key_stops_working(
    client, django_user_model, measured, django_capture_on_commit_callbacks
):
    assert get(client, "/live/quotes").status_code == 401
    assert get(client, "/live/quotes", **{"X-API-Key": "bw_made-up"}).status_code == 401
    user, secret = _new_key(client, django_user_model)
    ok = get(client, "/live/quotes", **{"X-API-Key": secret})
    assert ok.status_code == 200
    assert ok.json() == {"quotes": [], "status": {}}
    client.force_login(user)
    key = ApiKey.objects.get(user=user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/account/api-keys/{key.pk}/revoke/")
    client.logout()
    assert get(client, "/live/quotes", **{"X-API-Key": secret}).status_code == 401


def test_someone_elses_key_cannot_be_revoked(client, django_user_model, measured):
    owner, _ = _new_key(client, django_user_model, "owner")
    other = django_user_model.objects.create_user("other", password="a-long-password-2")
    client.force_login(other)
    client.post(f"/account/api-keys/{ApiKey.objects.get(user=owner).pk}/revoke/")
    assert ApiKey.objects.get(user=owner).revoked_at is None


def test_the_key_pages_need_a_login(client, measured):
    assert client.get("/account/api-keys/").status_code == 302
    assert client.post("/account/api-keys/", {"name": "x"}).status_code == 302


@override_settings(API_RATE_ANON="3/m", API_RATE_KEYED="6/m")
def test_past_the_limit_the_api_answers_429_with_retry_after_and_a_key_gets_more(client, django_user_model, measured):
    codes = [get(client, "/brokers").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = get(client, "/brokers")
    assert int(limited["Retry-After"]) >= 1
    assert limited.json()["error"].startswith("Too many requests")
    _, secret = _new_key(client, django_user_model)
    keyed = [get(client, "/brokers", **{"X-API-Key": secret}).status_code for _ in range(7)]
    assert keyed == [200] * 6 + [429]


def test_the_schemas_choices_are_the_pages():
    from typing import get_args

    from api.schemas import Sort, SpreadType
    from brokers.models import AccountType

    assert set(get_args(Sort)) == set(selectors.SORTS)
    from api.schemas import LEVERAGES
    from brokers.forms import DirectoryFilterForm

    assert [str(v) for v in LEVERAGES] == [k for k, _ in DirectoryFilterForm.base_fields["min_leverage"].choices if k]  # type: ignore[attr-defined]
    assert set(get_args(SpreadType)) == set(AccountType.SpreadType.values)


@pytest.mark.django_db
def test_an_event_window_outside_1970_to_2100_gets_400_json_not_a_server_error(client):
    # Found by schemathesis: a year-215 start with a CSV answer used to fail while streaming.
    response = client.get("/api/v1/events?since=0215-08-14T13:36:18-21:16&format=csv")
    assert response.status_code == 400
    assert "since" in response.json()["fields"]


def test_a_lookup_that_read_the_key_just_before_its_revocation_cannot_revive_it(
    client, django_user_model, measured, django_capture_on_commit_callbacks
):
    from api.selectors import api_key_digest, api_key_remember

    user, secret = _new_key(client, django_user_model)
    key = ApiKey.objects.get(user=user)
    # Another process read the key as active, then the revocation committed, then that process caches
    # what it read: the revocation must win.
    with django_capture_on_commit_callbacks(execute=True):
        client.force_login(user)
        client.post(f"/account/api-keys/{key.pk}/revoke/")
    api_key_remember(digest=api_key_digest(secret), user_id=user.pk)
    client.logout()
    assert get(client, "/live/quotes", **{"X-API-Key": secret}).status_code == 401


def test_every_directory_filter_is_a_parameter_and_filters_like_the_page(client, measured):
    from api.endpoints import DirectoryQuery
    from brokers.forms import DirectoryFilterForm

    assert set(DirectoryFilterForm.base_fields) <= set(DirectoryQuery.model_fields)
    Broker.objects.filter(slug=Broker.objects.order_by("name")[0].slug).update(status="suspended")
    cases = [
        ({"include_suspended": "true"}, selectors.DirectoryFilters(include_suspended=True)),
        ({"negative_balance_protection": "true"}, selectors.DirectoryFilters(negative_balance_protection=True)),
        ({"segregated_funds": "true", "sort": "cost"}, selectors.DirectoryFilters(segregated_funds=True, sort="cost")),
        ({"min_leverage": "200"}, selectors.DirectoryFilters(min_leverage=200)),
        ({"max_deposit": "100"}, selectors.DirectoryFilters(max_deposit=Decimal(100))),
        ({"max_cost": "8.5"}, selectors.DirectoryFilters(max_cost=Decimal("8.5"))),
    ]
    for params, filters in cases:
        body = client.get(API + "/brokers", params).json()
        assert isinstance(body, list), (params, body)
        page = selectors.broker_directory(filters=filters)
        assert [b["slug"] for b in body] == [e.broker.slug for e in page], params
    assert len(client.get(API + "/brokers", {"include_suspended": "true"}).json()) == Broker.objects.count()
    assert get(client, "/brokers?min_leverage=7").status_code == 422
    assert get(client, "/brokers?max_cost=-1").status_code == 422
    unknown = get(client, "/brokers?funding=pigeon")
    assert unknown.status_code == 400 and "funding" in unknown.json()["fields"]


def test_every_brokers_detail_has_the_profiles_fees_accounts_and_all_in_costs(client, measured):
    for broker in Broker.objects.all():
        body = get(client, f"/brokers/{broker.slug}").json()
        profile = selectors.broker_profile(slug=broker.slug)
        costs = selectors.broker_costs(broker=profile)
        assert body["non_trading_fees"] == {
            "deposit_usd": str(broker.deposit_fee),
            "withdrawal_usd": str(broker.withdrawal_fee),
            "inactivity_usd_per_month": str(broker.inactivity_fee),
            "inactivity_after_months": broker.inactivity_after_months,
        }
        got = [(r["instrument"], r["account"], r["all_in_usd"], r["spread_pips"]) for r in body["costs"]["rows"]]
        assert got == [(c.symbol, c.account, c.all_in_usd, c.spread_pips) for c in costs.rows]
        assert any(r["all_in_usd"] is not None for r in body["costs"]["rows"]), broker.slug
        assert body["costs"]["feed_account"] == (costs.feed_account.name if costs.feed_account else None)
        accounts = {a["name"]: a for a in body["accounts"]}
        for account in profile.account_types.all():
            assert float(accounts[account.name]["lot_step"]) == float(account.lot_step)
            assert accounts[account.name]["feed_account"] == (account == costs.feed_account)
        assert body["spreads"][0]["account"] == body["costs"]["feed_account"]
        assert body["spreads"][0]["as_of"] == body["costs"]["as_of"]


def test_the_cost_table_downloads_as_csv_with_the_documented_columns(client, measured):
    from api.schemas import COSTS_CSV

    broker = Broker.objects.order_by("name")[0]
    response = get(client, f"/brokers/{broker.slug}/costs?format=csv&instrument=EURUSD")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == list(COSTS_CSV)
    expected = selectors.broker_costs(broker=selectors.broker_profile(slug=broker.slug)).for_symbol("EURUSD")
    assert [(r[0], r[1], r[rows[0].index("all_in_usd")]) for r in rows[1:]] == [
        (c.symbol, c.account, str(c.all_in_usd)) for c in expected
    ]
    directory = get(client, "/brokers?format=csv")
    header = next(csv.reader(io.StringIO(b"".join(directory.streaming_content).decode())))
    assert "all_in_eurusd_usd" in header


def test_head_answers_like_get_without_a_body_and_another_method_gets_405_json(client, measured):
    got = get(client, "/brokers")
    head = client.head(API + "/brokers")
    assert head.status_code == 200
    assert head.content == b""
    assert head["ETag"] == got["ETag"]
    assert client.head(API + "/brokers?format=csv").status_code == 200
    for method in (client.post, client.put, client.delete):
        response = method(API + "/brokers")
        assert response.status_code == 405
        assert response["Content-Type"] == "application/json"
        assert "GET" in response["Allow"] and "not allowed" in response.json()["error"]
    slash = get(client, "/brokers/")
    assert slash.status_code == 404 and "/api/v1/brokers" in slash.json()["error"]
