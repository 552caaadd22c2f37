"""The public API answers with the pages' figures, caches like the pages, and fails in JSON."""

from __future__ import annotations

import csv
import io
import json

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
