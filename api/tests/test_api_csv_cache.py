"""CSV answers are cached like JSON ones: a strong ETag of their bytes, 304 on a match, a new tag on new data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from brokers.models import AccountType, Broker, Licence
from common import cachetags
from marketdata.models import SpreadBar
from pagecache.services import pages_revalidate_on_commit

pytestmark = pytest.mark.django_db

API = "/api/v1"
SLUG = "kestrel-fx"


def _broker() -> Broker:
    return Broker.objects.get(slug=SLUG)


def _more_leverage() -> None:
    broker = _broker()
    broker.max_leverage += 1
    broker.save()  # what the admin's change form does: revalidates the broker's pages


def _dearer_commission() -> None:
    account = AccountType.objects.filter(broker=_broker()).order_by("pk").first()
    assert account is not None
    account.commission_per_lot += 1
    account.save()


def _wider_spreads() -> None:
    """New bars; the answer goes when the broker's pages are next revalidated (or after API_CACHE_S)."""
    broker = _broker()
    bars = list(SpreadBar.objects.filter(broker=broker))
    for bar in bars:
        bar.pk = None
        bar.start -= timedelta(hours=5)
        bar.mean *= 3
    minute = timezone.now().replace(second=0, microsecond=0)
    first = bars[0]
    bars.append(
        SpreadBar(
            broker=broker,
            instrument=next(b.instrument for b in bars if b.instrument.symbol == "EURUSD"),
            resolution=SpreadBar.Resolution.MINUTE,
            start=minute - timedelta(minutes=3),
            open=first.mean,
            high=first.mean,
            low=first.mean,
            close=first.mean,
            mean=first.mean,
            count=10,
            duration=60.0,
            dev_count=10,
            dev_min=0.0,
            dev_max=0.0,
        )
    )
    SpreadBar.objects.bulk_create(bars)
    pages_revalidate_on_commit(tags=[cachetags.broker(broker.pk)])


def _licence_verified_today() -> None:
    licence = Licence.objects.filter(broker=_broker()).order_by("pk").first()
    assert licence is not None
    licence.licence_number += "-2"
    licence.save()


# The long tables (score histories, releases, reports) are streamed instead: api/tests/test_api_stream.py.
CSV_ENDPOINTS: list[tuple[str, Callable[[], None]]] = [
    ("/brokers?format=csv", _more_leverage),
    (f"/brokers/{SLUG}/costs?format=csv", _dearer_commission),
    (f"/brokers/{SLUG}/spreads?format=csv", _wider_spreads),
    (f"/brokers/{SLUG}/spreads/EURUSD?format=csv", _wider_spreads),
    (f"/brokers/{SLUG}/spreads/EURUSD/hours?format=csv", _wider_spreads),
    ("/compare?brokers=kestrel-fx,northwind-markets&format=csv", _more_leverage),
    (f"/brokers/{SLUG}/licences?format=csv", _licence_verified_today),
    (f"/brokers/{SLUG}/accounts?format=csv", _dearer_commission),
]


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize(("path", "change"), CSV_ENDPOINTS, ids=[p for p, _ in CSV_ENDPOINTS])
def test_every_csv_answer_has_an_etag_answers_a_match_with_304_and_changes_with_its_data(
    client, measured, django_capture_on_commit_callbacks, path, change
):
    with django_capture_on_commit_callbacks(execute=True):
        pages_revalidate_on_commit(tags=[])  # what seeding queued: done before anything is cached
    first = client.get(API + path)
    assert first.status_code == 200, body(first)
    assert first["Content-Type"].startswith("text/csv")
    assert first["ETag"].startswith('"') and "s-maxage=" in first["Cache-Control"]
    content = body(first)
    assert int(first["Content-Length"]) == len(content)

    again = client.get(API + path, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"] and not again.content
    other = client.get(API + path, HTTP_IF_NONE_MATCH='"not-this-one"')
    assert other.status_code == 200
    assert body(other) == content  # the same bytes, from the cache

    with django_capture_on_commit_callbacks(execute=True):
        change()
    changed = client.get(API + path, HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200
    assert changed["ETag"] != first["ETag"]
    assert body(changed) != content


def test_a_csv_and_a_json_answer_of_one_path_are_cached_apart(client, measured):
    as_json = client.get(f"{API}/brokers")
    as_csv = client.get(f"{API}/brokers?format=csv")
    assert as_json["ETag"] != as_csv["ETag"]
    assert client.get(f"{API}/brokers?format=csv", HTTP_IF_NONE_MATCH=as_json["ETag"]).status_code == 200


def test_the_validation_csv_has_an_etag_and_changes_when_the_figures_are_computed_again(
    client, demo, django_capture_on_commit_callbacks
):
    from trustmetrics.methodology import METHODOLOGY
    from trustmetrics.models import TrustValidation

    scenario = {"key": "a", "title": "Mark-up", "period": "week 1", "brokers": 8, "releases": 3, "spearman": 0.97}
    row = TrustValidation.objects.create(
        methodology_version=METHODOLOGY.version, summary={"scenarios": [scenario]}, computed_at=timezone.now()
    )
    path = f"{API}/methodology/validation?format=csv"
    first = client.get(path)
    assert client.get(path, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    with django_capture_on_commit_callbacks(execute=True):
        row.summary = {"scenarios": [{**scenario, "spearman": 0.91}]}
        row.save()
        pages_revalidate_on_commit(tags=[cachetags.METHODOLOGY])  # what storing new figures does
    again = client.get(path, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200 and again["ETag"] != first["ETag"]
