"""Long CSV downloads are streamed: written a page of rows at a time as they are read, with an ETag known
before the first row (weak, from the rows' version and the cache tags' tokens) and 304 without a row read."""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api import stream
from brokers.models import Broker
from common import cachetags
from events.models import EventReport
from marketdata.models import EconomicEvent
from pagecache.services import pages_revalidate_on_commit
from trustmetrics.models import TrustScore

pytestmark = pytest.mark.django_db

API = "/api/v1"
SLUG = "kestrel-fx"
RUNS = 7


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(stream, "PAGE", 2)
    return 2


@pytest.fixture
def history(demo):
    """RUNS daily scoring runs of one broker (the last one two hours ago), and a run of another broker."""
    broker = Broker.objects.get(slug=SLUG)
    last = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    for i in range(RUNS):
        TrustScore.objects.create(
            broker=broker,
            computed_at=last - timedelta(days=RUNS - 1 - i),
            methodology_version="2.3",
            overall=50 + i,
            label="Good",
            confidence=0.5 + i / 100,
            components={"cost": 60 + i},
            reason=f"run {i}, with a comma",
            band_low=40 + i if i % 2 else None,
            band_high=60 + i if i % 2 else None,
        )
    other = Broker.objects.exclude(pk=broker.pk).first()
    assert other is not None
    TrustScore.objects.create(
        broker=other, computed_at=last, methodology_version="2.3", overall=1, label="Poor", confidence=1, components={}
    )
    return broker


def rows_of(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode())))


def cells(values: list[object]) -> list[str]:
    """A JSON row as csv.writer writes it."""
    return ["" if v is None else str(v) for v in values]


def test_a_long_csv_is_streamed_a_page_at_a_time_header_first(client, history, small_pages):
    response = client.get(f"{API}/brokers/{SLUG}/scores?format=csv&limit=1000")
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert not response.has_header("Content-Length")
    chunks = cast(Iterator[bytes], response.streaming_content)
    with CaptureQueriesContext(connection) as queries:
        header = next(chunks)
        assert rows_of(header) == [["computed_at", "overall", "label", "confidence", "methodology_version", "reason"]]
        assert len(queries) == 0  # the header leaves before any row is read
        first = next(chunks)
        assert len(queries) == 1 and len(rows_of(first)) == small_pages
        assert f"LIMIT {small_pages}" in queries[0]["sql"]  # a page at a time, never the whole table
        rest = list(chunks)
    pages = -(-RUNS // small_pages)
    assert len(rest) == pages - 1
    assert len(queries) == pages + (RUNS % small_pages == 0)  # a full last page asks once more
    assert all(f"LIMIT {small_pages}" in q["sql"] for q in queries)
    assert sum(len(rows_of(c)) for c in [first, *rest]) == RUNS


def test_a_row_added_while_the_download_runs_is_not_in_it(client, history, small_pages):
    """The body is the table the ETag was taken from: a newer run comes with the next download (here the
    latest RUNS runs: the new one pushes the oldest out of that window while the first is being sent)."""
    path = f"{API}/brokers/{SLUG}/scores?format=csv&limit={RUNS}"
    response = client.get(path)
    chunks = cast(Iterator[bytes], response.streaming_content)
    got = [next(chunks), next(chunks)]
    latest = TrustScore.objects.filter(broker=history).latest()
    latest.pk, latest.computed_at, latest.overall = None, latest.computed_at + timedelta(minutes=30), 99.0
    latest.save()
    got += list(chunks)
    body = rows_of(b"".join(got))[1:]
    assert len(body) == RUNS and "99.0" not in [r[1] for r in body]
    again = rows_of(b"".join(client.get(path).streaming_content))[1:]
    assert [r[1] for r in again] == [r[1] for r in body][1:] + ["99.0"]


def _json_scores(client, path: str) -> list[list[str]]:
    keys = ["computed_at", "overall", "label", "confidence", "methodology_version", "reason"]
    found = client.get(path).json()
    return [cells([datetime.fromisoformat(r["computed_at"]).isoformat(), *(r[k] for k in keys[1:])]) for r in found]


@pytest.mark.parametrize("limit", [1, 3, RUNS, 1000])
def test_the_score_history_csv_holds_the_json_rows(client, history, small_pages, limit):
    path = f"{API}/brokers/{SLUG}/scores?limit={limit}"
    csv_rows = rows_of(b"".join(client.get(path + "&format=csv").streaming_content))[1:]
    assert csv_rows == _json_scores(client, path)
    assert len(csv_rows) == min(limit, RUNS)


@pytest.mark.parametrize("days", [1, 3, 90])
def test_the_daily_score_csv_holds_the_json_rows(client, history, small_pages, days):
    # A second run on the last day: the day's last one counts.
    last = TrustScore.objects.filter(broker=history).latest()
    last.pk, last.computed_at, last.overall = None, last.computed_at + timedelta(minutes=30), 77.0
    last.save()
    path = f"{API}/brokers/{SLUG}/scores/daily?days={days}"
    keys = ["overall", "band_low", "band_high", "label", "confidence", "methodology_version", "reason"]
    expected = [
        cells([datetime.fromisoformat(r["computed_at"]).isoformat(), *(r[k] for k in keys)])
        for r in client.get(path).json()
    ]
    got = rows_of(b"".join(client.get(path + "&format=csv").streaming_content))[1:]
    assert got == expected and len(got) >= 1
    assert got[-1][1] == "77.0"


@pytest.fixture
def reports(demo):
    """Reports of releases, two of them at the same minute (ties in the order)."""
    at = timezone.now().replace(second=0, microsecond=0) - timedelta(days=1)
    brokers = list(Broker.objects.order_by("pk")[:2])
    made = []
    for i, minutes in enumerate([0, 0, 60, 120, 180]):
        event = EconomicEvent.objects.create(
            name=f"Release {i}", currency="USD", impact="high", scheduled_at=at - timedelta(minutes=minutes)
        )
        made.append(
            EventReport.objects.create(
                event=event,
                generated_at=at,
                brokers_measured=i + 2,
                best_broker=brokers[0],
                worst_broker=brokers[1] if i % 2 else None,
            )
        )
    return made


@pytest.mark.parametrize("limit", [1, 2, 4, 200])
def test_the_report_list_csv_holds_the_json_rows_latest_first(client, reports, small_pages, limit):
    path = f"{API}/events/reports?limit={limit}"
    found = client.get(path).json()
    keys = ["event_id", "scheduled_at", "currency", "name", "brokers_measured", "calmest_broker"]
    expected = [
        cells(
            [r["event_id"], datetime.fromisoformat(r["scheduled_at"]).isoformat()]
            + [r[k] for k in keys[2:]]
            + [r["most_stressed_broker"]]
        )
        for r in found
    ]
    got = rows_of(b"".join(client.get(path + "&format=csv").streaming_content))[1:]
    # Two releases at one minute come in the selector's own (undefined) order: compare them as a set.
    assert sorted(got) == sorted(expected) and len(got) == min(limit, len(reports))
    assert [r[1] for r in got] == [r[1] for r in expected]


def test_the_events_csv_holds_the_json_rows_with_filters(client, demo, small_pages):
    at = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)
    for i, (currency, impact) in enumerate([("USD", "high"), ("USD", "low"), ("EUR", "high"), ("usd", "high")]):
        EconomicEvent.objects.create(name=f"E{i}", currency=currency, impact=impact, scheduled_at=at)
        EconomicEvent.objects.create(
            name=f"F{i}", currency=currency, impact=impact, scheduled_at=at + timedelta(hours=i)
        )
    for query in ("", "&currency=USD", "&impact=high", "&currency=USD&impact=high", "&currency=JPY"):
        path = f"{API}/events?since=2026-03-01T00:00:00Z&until=2026-03-05T00:00:00Z{query}"
        expected = [
            cells([datetime.fromisoformat(r["scheduled_at"]).isoformat(), r["currency"], r["impact"], r["name"]])
            for r in client.get(path).json()
        ]
        got = rows_of(b"".join(client.get(path + "&format=csv").streaming_content))[1:]
        assert got == expected, query


def _new_run() -> None:
    broker = Broker.objects.get(slug=SLUG)
    latest = TrustScore.objects.filter(broker=broker).latest()
    latest.pk, latest.computed_at = None, latest.computed_at + timedelta(hours=1)
    latest.save()


def _run_corrected_in_place() -> None:
    """No row added or dropped: only the revalidation the change makes tells the ETag."""
    broker = Broker.objects.get(slug=SLUG)
    TrustScore.objects.filter(broker=broker).update(reason="corrected")
    pages_revalidate_on_commit(tags=cachetags.broker_changed(broker.pk))


def _broker_renamed() -> None:
    broker = Broker.objects.get(pk=EventReport.objects.order_by("pk").values_list("best_broker_id", flat=True)[0])
    broker.slug += "-2"
    broker.save()  # the admin's save: revalidates the broker and every list of brokers


def _new_release() -> None:
    EconomicEvent.objects.create(
        name="Another", currency="USD", impact="high", scheduled_at=timezone.now() + timedelta(hours=2)
    )


STREAMED: list[tuple[str, Callable[[], None]]] = [
    (f"/brokers/{SLUG}/scores?format=csv", _new_run),
    (f"/brokers/{SLUG}/scores?format=csv", _run_corrected_in_place),
    (f"/brokers/{SLUG}/scores/daily?format=csv", _new_run),
    (f"/brokers/{SLUG}/scores/daily?format=csv", _run_corrected_in_place),
    ("/events/reports?format=csv", _broker_renamed),
    ("/events?format=csv", _new_release),
]


@pytest.mark.parametrize(("path", "change"), STREAMED, ids=[f"{p} {c.__name__}" for p, c in STREAMED])
def test_a_streamed_csv_has_a_weak_etag_answers_a_match_with_304_unread_and_changes_with_its_data(
    client, history, reports, django_capture_on_commit_callbacks, path, change
):
    with django_capture_on_commit_callbacks(execute=True):
        pages_revalidate_on_commit(tags=[])  # what seeding queued
    first = client.get(API + path)
    assert first.status_code == 200 and first.streaming
    etag = first["ETag"]
    assert etag.startswith('W/"') and "s-maxage=" in first["Cache-Control"]
    content = b"".join(first.streaming_content)
    assert client.get(API + path)["ETag"] == etag  # the same table, the same tag

    with CaptureQueriesContext(connection) as queries:
        again = client.get(API + path, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag and not again.content
    assert len(queries) <= 3  # the broker, the days' last runs (daily) and one aggregate: no row read
    assert client.get(API + path, HTTP_IF_NONE_MATCH='W/"other"').status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        change()
    changed = client.get(API + path, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert b"".join(changed.streaming_content) != content


def test_an_unknown_broker_is_a_json_404_not_a_stream(client, demo):
    response = client.get(f"{API}/brokers/nobody/scores?format=csv")
    assert response.status_code == 404 and "nobody" in response.json()["error"]


def test_under_asgi_the_rows_are_handed_over_page_by_page_not_read_whole_first(history, small_pages):
    """Django reads a plain iterator to its end before sending a byte under ASGI: the stream is async there."""

    async def fetch() -> tuple[Any, list[bytes]]:
        response: Any = await AsyncClient().get(f"{API}/brokers/{SLUG}/scores?format=csv")
        got = []
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "must consume synchronous iterators" would be a warning
            async for chunk in response:  # as Django's ASGI handler reads it
                got.append(chunk)
        return response, got

    response, got = async_to_sync(fetch)()
    assert response.status_code == 200 and response.is_async
    assert len(got) == 1 + -(-RUNS // small_pages)
    assert len(rows_of(b"".join(got))) == RUNS + 1
