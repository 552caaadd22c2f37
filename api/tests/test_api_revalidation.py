"""The API's cached answers go stale by cache tag, like the pages: an edit or a new score shows at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api import cache as answer_cache
from brokers import selectors
from brokers.models import Broker, Regulator
from brokers.services import demo_seed
from pagecache.services import pages_revalidate_on_commit
from trustmetrics import services as trust_services
from trustmetrics.synthetic_load import synthetic_market_write

pytestmark = pytest.mark.django_db

API = "/api/v1"
START = datetime(2026, 11, 2, tzinfo=UTC)
AS_OF = START + timedelta(days=3)


@pytest.fixture
def settled(demo, django_capture_on_commit_callbacks):
    """The demo data, with the revalidation its seeding queued already done (it would drop every answer)."""
    with django_capture_on_commit_callbacks(execute=True):
        pages_revalidate_on_commit(tags=[])
    return demo


def cached(client, path):
    """The answer after making sure it is in the cache (a second request is a hit)."""
    client.get(API + path)
    response = client.get(API + path)
    assert response["X-Api-Cache"] == "hit", path
    return response


def test_an_edit_to_a_broker_shows_in_its_detail_and_the_list_at_once(
    client, settled, django_capture_on_commit_callbacks
):
    broker = Broker.objects.get(slug="northwind-markets")
    other = Broker.objects.exclude(pk=broker.pk).filter(status="active").first()
    assert other is not None
    detail = cached(client, f"/brokers/{broker.slug}")
    cached(client, f"/brokers/{other.slug}")
    cached(client, "/brokers")
    assert detail.json()["max_leverage"] != 77

    with django_capture_on_commit_callbacks(execute=True):
        broker.max_leverage = 77
        broker.save()  # what the admin's change form does

    again = client.get(f"{API}/brokers/{broker.slug}")
    assert again["X-Api-Cache"] == "miss"
    assert again.json()["max_leverage"] == 77
    assert again["ETag"] != detail["ETag"]
    listed = {b["slug"]: b for b in client.get(f"{API}/brokers").json()}
    assert listed[broker.slug]["max_leverage"] == 77
    # Another broker's answer did not show this broker's figures: it stays cached.
    assert client.get(f"{API}/brokers/{other.slug}")["X-Api-Cache"] == "hit"


def test_a_change_every_page_shows_drops_every_answer(client, demo, django_capture_on_commit_callbacks):
    cached(client, "/brokers/northwind-markets")
    cached(client, "/events")
    with django_capture_on_commit_callbacks(execute=True):
        regulator = Regulator.objects.first()
        assert regulator is not None
        regulator.save()
    assert client.get(f"{API}/brokers/northwind-markets")["X-Api-Cache"] == "miss"
    assert client.get(f"{API}/events")["X-Api-Cache"] == "miss"


def test_a_new_score_shows_in_the_detail_the_history_and_the_list_at_once(client, django_capture_on_commit_callbacks):
    demo_seed()
    synthetic_market_write(start=START, days=3, symbols=["EURUSD", "USDJPY"])
    slug = "coral-reef-trading"
    assert cached(client, f"/brokers/{slug}").json()["latest_score"] is None
    assert cached(client, f"/brokers/{slug}/scores").json() == []
    cached(client, "/brokers")

    with django_capture_on_commit_callbacks(execute=True):
        run = trust_services.trust_scores_compute(as_of=AS_OF)
    assert Broker.objects.get(slug=slug).pk in run.changed

    profile = selectors.broker_profile(slug=slug)
    latest = selectors.broker_score_history(broker=profile)[-1]
    detail = client.get(f"{API}/brokers/{slug}").json()
    assert detail["latest_score"]["overall"] == latest.overall
    assert detail["trust_score"] == profile.trust_score  # type: ignore[attr-defined]
    assert [s["overall"] for s in client.get(f"{API}/brokers/{slug}/scores").json()] == [latest.overall]
    listed = {b["slug"]: b for b in client.get(f"{API}/brokers").json()}
    assert listed[slug]["trust_score"] == profile.trust_score  # type: ignore[attr-defined]


def test_an_answer_rendered_while_its_figures_changed_is_not_kept(demo):
    key = answer_cache.answer_key("race")
    answer: answer_cache.Answer = {"body": b"{}", "etag": '"x"', "at": 0.0, "tags": ["broker:1"]}
    before = answer_cache.generation()
    answer_cache.answers_drop(["broker:2"])  # a revalidation lands while the answer renders
    assert not answer_cache.answer_store(key, answer, ttl=30, rendered_in_generation=before)
    assert answer_cache.answer_get(key) is None
    # Rendered after it: kept, and dropped by the next revalidation of its own tag.
    assert answer_cache.answer_store(key, answer, ttl=30, rendered_in_generation=answer_cache.generation())
    assert answer_cache.answer_get(key) is not None
    assert answer_cache.answers_drop(["broker:1"]) == 1
    assert answer_cache.answer_get(key) is None
