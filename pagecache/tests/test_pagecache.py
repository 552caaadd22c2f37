"""Statically regenerated pages: fresh, stale, miss, tags, HTTP caching and privacy, on real Redis."""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from brokers.models import Broker, Licence, Regulator
from brokers.sitemaps import popular_compare_pairs
from common import metrics
from pagecache import isr
from pagecache.services import pages_all_urls
from testing.support import wait_for

PROFILE = "/brokers/kestrel-fx/"


def cached_entry(path: str, query: str = "") -> isr.PageEntry | None:
    entry: isr.PageEntry | None = cache.get(isr.page_key(path, query))
    return entry


@pytest.mark.django_db
def test_a_miss_renders_stores_and_serves(client, demo):
    assert cached_entry(PROFILE) is None
    response = client.get(PROFILE)
    assert response["X-Page-Cache"] == "miss"
    entry = cached_entry(PROFILE)
    assert entry is not None and entry["body"] == response.content


@pytest.mark.django_db
def test_a_fresh_copy_is_served_without_touching_the_database(client, demo, django_assert_num_queries):
    client.get(PROFILE)
    with django_assert_num_queries(0):
        response = client.get(PROFILE)
    assert response["X-Page-Cache"] == "hit"
    assert b"Kestrel FX" in response.content


def test_the_cache_key_drops_blank_parameters_unless_their_blankness_means_something():
    from django.http import QueryDict

    query = QueryDict("b=&a=2&a=1&junk=x&c=+")
    assert isr.canonical_query(query, ("a", "b", "c")) == "a=1&a=2"
    assert isr.canonical_query(query, ("a", "b", "c"), keep_blank=("b", "c")) == "a=1&a=2&b=&c="
    assert isr.canonical_query(QueryDict("b=&b=x"), ("b",), keep_blank=("b",)) == "b=x"
    assert isr.canonical_query(QueryDict(""), ("b",), keep_blank=("b",)) == ""
    with pytest.raises(ValueError, match="keep_blank"):
        isr.regenerated_page(params=("a",), keep_blank=("b",))


@pytest.mark.django_db
def test_junk_query_parameters_share_the_cached_copy(client, demo):
    client.get("/brokers/?sort=name")
    response = client.get("/brokers/?utm_campaign=spam&sort=name&x=1")
    assert response["X-Page-Cache"] == "hit"


@pytest.mark.django_db
def test_anonymous_pages_carry_cdn_headers_and_a_strong_etag(client, demo):
    response = client.get(PROFILE)
    cache_control = response["Cache-Control"]
    assert "public" in cache_control and "s-maxage=" in cache_control and "stale-while-revalidate=" in cache_control
    etag = response["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert "Cookie" in response["Vary"]


@pytest.mark.django_db
def test_if_none_match_gets_a_304_with_no_body(client, demo):
    etag = client.get(PROFILE)["ETag"]
    response = client.get(PROFILE, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert client.get(PROFILE, HTTP_IF_NONE_MATCH='"something-else"').status_code == 200


@pytest.mark.django_db
def test_if_none_match_is_compared_weakly_as_behind_nginx_gzip(client, demo):
    """nginx's gzip weakens the ETag it passes on: the browser sends W/"x" back for our "x"."""
    etag = client.get(PROFILE)["ETag"]
    assert client.get(PROFILE, HTTP_IF_NONE_MATCH=f"W/{etag}").status_code == 304
    assert client.get(PROFILE, HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304
    assert client.get(PROFILE, HTTP_IF_NONE_MATCH='W/"other"').status_code == 200


def expire(path: str, query: str = "") -> None:
    """What the passing of a page's revalidate window does (no change revalidated it)."""
    cache.delete(isr.fresh_key(isr.page_key(path, query)))


@pytest.mark.django_db
def test_a_stale_copy_is_served_at_once_and_regenerated_in_the_background(client, demo, celery_worker):
    client.get(PROFILE)
    Broker.objects.filter(slug="kestrel-fx").update(headquarters_country="Atlantis")
    expire(PROFILE)

    response = client.get(PROFILE)
    assert response["X-Page-Cache"] == "stale"
    assert b"Atlantis" not in response.content  # served the old copy, did not render in the request

    # The new copy is stored, then marked fresh: wait for both.
    wait_for(
        lambda: (
            b"Atlantis" in (cached_entry(PROFILE) or {"body": b""})["body"]
            and _present(isr.fresh_key(isr.page_key(PROFILE, "")))
        )
    )
    response = client.get(PROFILE)
    assert response["X-Page-Cache"] == "hit"
    assert b"Atlantis" in response.content


def _present(key: str) -> bool:
    return cache.get(key) is not None


def _queued_tasks(queue: str | None = None) -> int:
    from django.conf import settings

    from config.celery_app import app

    with app.connection_for_write() as conn:
        channel: Any = conn.default_channel
        # Not passive: kombu's Redis transport answers a passive declare with NOT_FOUND even for a
        # queue holding messages (which made an earlier version of this helper always say 0).
        return int(channel.queue_declare(queue or settings.PAGECACHE_QUEUE).message_count)


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_for_a_stale_page_start_exactly_one_regeneration(demo, celery_worker):
    Client().get(PROFILE)
    expire(PROFILE)
    before = metrics.get_many(["pages_regenerated", "pages_stale"])
    # Twenty visitors arrive at once; the lock lets only one of them start a regeneration.
    barrier = threading.Barrier(20)
    states: list[str] = []

    def visit() -> None:
        barrier.wait()
        states.append(Client().get(PROFILE)["X-Page-Cache"])

    threads = [threading.Thread(target=visit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert states.count("stale") + states.count("hit") == 20
    assert states.count("stale") >= 1
    wait_for(lambda: metrics.get("pages_regenerated") > before["pages_regenerated"])
    # A duplicate regeneration would still be queued or hold the lock: wait until neither is so.
    wait_for(lambda: _queued_tasks() == 0 and cache.get(isr.lock_key(isr.page_key(PROFILE, ""))) is None)
    assert metrics.get("pages_regenerated") == before["pages_regenerated"] + 1


@pytest.mark.django_db(transaction=True)
def test_saving_a_broker_in_admin_revalidates_its_pages_within_a_second(demo, celery_worker, django_user_model):
    anonymous = Client()
    compare = "/compare/?brokers=kestrel-fx,northwind-markets"
    other_profile = "/brokers/alpenbank-trading/"
    for url in (PROFILE, "/brokers/", "/", compare, other_profile):
        assert anonymous.get(url).status_code == 200
    untouched_etag = cached_entry(other_profile)["etag"]  # type: ignore[index]

    staff = Client()
    staff.force_login(
        django_user_model.objects.create_user("ed", password="x-pw-123", is_staff=True, is_superuser=True)
    )
    licence = Licence.objects.get(broker__slug="kestrel-fx", regulator__slug="fca")
    licence.licence_number = "FRN 777777"
    # Saving through the admin's licence form, as an editor would.
    response = staff.post(
        f"/admin/brokers/licence/{licence.pk}/change/",
        {
            "broker": licence.broker_id,
            "regulator": licence.regulator_id,
            "licence_number": "FRN 777777",
            "status": "active",
            "last_verified": "",
        },
    )
    assert response.status_code == 302
    saved_at = time.monotonic()

    def shows_new_number() -> bool:
        entry = cached_entry(PROFILE)
        return entry is not None and b"FRN 777777" in entry["body"]

    wait_for(shows_new_number, timeout=1.0)
    for url, query in (("/brokers/", ""), ("/", ""), ("/compare/", "brokers=kestrel-fx%2Cnorthwind-markets")):
        fresh = isr.fresh_key(isr.page_key(url, query))
        wait_for(
            functools.partial(_present, fresh),
            timeout=max(0.05, 1.0 - (time.monotonic() - saved_at)),
        )
    assert b"FRN 777777" in anonymous.get(PROFILE).content
    # A page that does not show this broker was left alone.
    assert cached_entry(other_profile)["etag"] == untouched_etag  # type: ignore[index]


@pytest.mark.django_db
def test_a_regulator_change_revalidates_every_page(client, demo, django_capture_on_commit_callbacks):
    client.get(PROFILE)
    client.get("/brokers/")
    fresh = [isr.fresh_key(isr.page_key(path, "")) for path in (PROFILE, "/brokers/")]
    assert all(cache.get(k) is not None for k in fresh)
    regulator = Regulator.objects.get(slug="fca")
    regulator.full_name = "Renamed"
    with django_capture_on_commit_callbacks(execute=True):
        regulator.save()  # through the signal receiver, as the admin does
    assert all(cache.get(k) is None for k in fresh)


@pytest.mark.django_db
def test_a_page_that_disappears_is_dropped_on_regeneration(client, demo):
    client.get(PROFILE)
    key = isr.page_key(PROFILE, "")
    Broker.objects.filter(slug="kestrel-fx").delete()
    assert isr.regenerate(key, path=PROFILE, query="") == "gone"
    assert cached_entry(PROFILE) is None
    assert client.get(PROFILE).status_code == 404


@pytest.mark.django_db
def test_a_logged_in_visitor_sees_their_name_but_the_cache_never_does(client, demo, django_user_model):
    user = django_user_model.objects.create_user("alice-private", password="pw-alice-123")
    client.force_login(user)
    response = client.get(PROFILE)  # a miss, rendered while logged in
    body = response.content.decode()
    assert "alice-private" in body
    assert "csrfmiddlewaretoken" in body  # the personal log-out form
    assert "private" in response["Cache-Control"] and "ETag" not in response

    entry = cached_entry(PROFILE)
    assert entry is not None
    assert b"alice-private" not in entry["body"] and b"csrfmiddlewaretoken" not in entry["body"]
    anonymous = Client().get(PROFILE).content.decode()
    assert "alice-private" not in anonymous and "csrfmiddlewaretoken" not in anonymous


@pytest.mark.django_db
def test_a_page_with_a_csrf_token_is_never_cached(monkeypatch):
    from django.http import HttpResponse

    leaky = isr.PageSpec(
        view=lambda request, **kw: HttpResponse(b'<form><input name="csrfmiddlewaretoken" value="s"></form>'),
        revalidate=60,
        params=(),
    )
    monkeypatch.setattr(isr, "page_spec_for", lambda path: (leaky, {}))
    response, entry = isr.render_entry("/anything/", "")
    assert response.status_code == 200
    assert entry is None


@pytest.mark.django_db
def test_prerender_renders_every_public_page_and_reports_it(demo, capsys):
    call_command("prerender")
    out = capsys.readouterr().out
    assert "/brokers/northwind-markets/" in out
    assert "/compare/?brokers=" in out
    # 5 pages without parameters (found in the URLconf), 14 profiles, the popular pairs of active brokers.
    for url in ("/", "/brokers/", "/compare/", "/methodology/", "/live/"):
        assert f"\n{url} " in "\n" + out
    total = len(list(pages_all_urls()))  # the URLconf's pages, 14 profiles, the popular pairs
    assert total >= 5 + 14 + len(popular_compare_pairs())
    assert f"Prerendered {total} of {total} pages" in out
    assert cached_entry("/brokers/northwind-markets/") is not None


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_save_does_not_stop_later_saves_from_revalidating(demo):
    from django.db import transaction

    Client().get(PROFILE)
    fresh = isr.fresh_key(isr.page_key(PROFILE, ""))
    with pytest.raises(RuntimeError), transaction.atomic():
        Broker.objects.get(slug="kestrel-fx").save()
        raise RuntimeError("editor cancelled")
    assert cache.get(fresh) is not None  # nothing committed, nothing revalidated
    with transaction.atomic():
        Broker.objects.get(slug="kestrel-fx").save()
    assert cache.get(fresh) is None  # marked stale, regeneration queued


@pytest.mark.django_db
def test_after_a_change_the_first_visitor_gets_the_new_page_whatever_the_queue_holds(client, demo):
    # No Celery worker runs: the regeneration the change queued waits, like one behind score jobs.
    client.get(PROFILE)
    Broker.objects.filter(slug="kestrel-fx").update(headquarters_country="Atlantis")
    isr.mark_stale([isr.page_key(PROFILE, "")])
    etag_before = cached_entry(PROFILE)["etag"]  # type: ignore[index]

    # The edge revalidating its copy: the old ETag is not answered with a 304.
    response = Client().get(PROFILE, HTTP_IF_NONE_MATCH=etag_before)
    assert response.status_code == 200
    assert response["X-Page-Cache"] == "revalidated"
    assert b"Atlantis" in response.content and response["ETag"] != etag_before
    assert Client().get(PROFILE)["X-Page-Cache"] == "hit"


@pytest.mark.django_db
def test_while_one_visitor_renders_a_changed_page_the_others_get_the_old_copy_at_once(client, demo):
    client.get(PROFILE)
    Broker.objects.filter(slug="kestrel-fx").update(headquarters_country="Atlantis")
    key = isr.page_key(PROFILE, "")
    isr.mark_stale([key])
    assert cache.add(isr.render_lock_key(key), 1, 30)  # someone else is rendering it
    response = Client().get(PROFILE)
    assert response["X-Page-Cache"] == "stale"
    assert b"Atlantis" not in response.content


@pytest.fixture(params=["outdated copy", "older copy"])
def edge_copy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.django_db(transaction=True)
def test_a_cache_revalidating_a_changed_page_waits_for_the_render_under_way_not_a_304(demo_committed, edge_copy):
    # A second edge replica revalidates while the first one's request renders the page: answered a
    # 304 for the old ETag, it would keep the wrong page for another round.
    Client().get(PROFILE)
    key = isr.page_key(PROFILE, "")
    old_etag = cached_entry(PROFILE)["etag"]  # type: ignore[index]
    Broker.objects.filter(slug="kestrel-fx").update(headquarters_country="Atlantis")
    isr.mark_stale([key])
    assert cache.add(isr.render_lock_key(key), 1, 30)  # the first replica's request is rendering
    awaited = metrics.get("pages_awaited")
    answers: list[Any] = []
    # Its copy may be this outdated one or an older one: either way it should keep the page as it is now.
    etag = old_etag if edge_copy == "outdated copy" else '"an-older-copy"'
    edge = threading.Thread(target=lambda: answers.append(Client().get(PROFILE, HTTP_IF_NONE_MATCH=etag)))
    edge.start()
    wait_for(lambda: metrics.get("pages_awaited") > awaited, what="the revalidation waiting for the render")
    _, entry = isr.render_entry(PROFILE, "")  # the first replica's render finishes and is stored
    assert entry is not None
    isr.store_entry(key, entry, generation=cache.get(f"{key}:gen"))
    cache.delete(isr.render_lock_key(key))
    edge.join(timeout=10)
    assert answers[0].status_code == 200
    assert answers[0]["X-Page-Cache"] == "revalidated"
    assert b"Atlantis" in answers[0].content


@pytest.mark.django_db
def test_a_page_that_only_aged_is_not_rendered_in_the_request(client, demo):
    client.get(PROFILE)
    Broker.objects.filter(slug="kestrel-fx").update(headquarters_country="Atlantis")
    expire(PROFILE)
    response = Client().get(PROFILE)
    assert response["X-Page-Cache"] == "stale"
    assert b"Atlantis" not in response.content


@pytest.mark.django_db
def test_a_queued_regeneration_skips_a_page_a_visitor_already_rendered_after_the_change(client, demo):
    from pagecache.tasks import pages_regenerate

    client.get(PROFILE)
    key = isr.page_key(PROFILE, "")
    isr.mark_stale([key])
    assert pages_regenerate(key, PROFILE, "") == "rendered"  # outdated: rendered
    isr.mark_stale([key])
    assert Client().get(PROFILE)["X-Page-Cache"] == "revalidated"
    assert pages_regenerate(key, PROFILE, "") == "current"  # the visitor's render is the current one
    expire(PROFILE)
    assert pages_regenerate(key, PROFILE, "") == "rendered"  # aged: rendered again


class _RevalidatedDuringStore:
    """The real cache, with a revalidation landing between store_entry's look at the generation and
    its fresh flag: a save committed while a regeneration was being stored."""

    def __init__(self, key: str) -> None:
        self._key = key
        self._done = False

    def __getattr__(self, name: str) -> Any:
        return getattr(cache, name)

    def set(self, key: str, value: Any, timeout: Any = None) -> Any:
        if key == isr.fresh_key(self._key) and not self._done:
            self._done = True
            isr.mark_stale([self._key])
        return cache.set(key, value, timeout)


@pytest.mark.django_db
def test_a_change_committed_while_a_page_is_stored_is_not_lost_for_the_revalidate_window(demo, monkeypatch):
    client = Client()
    client.get(PROFILE)
    key = isr.page_key(PROFILE, "")
    isr.mark_stale([key])
    Broker.objects.filter(slug="kestrel-fx").update(headquarters_country="Atlantis")
    monkeypatch.setattr(isr, "cache", _RevalidatedDuringStore(key))
    isr.regenerate(key, path=PROFILE, query="")
    monkeypatch.undo()
    assert cache.get(isr.fresh_key(key)) is None
    assert not isr.is_current(key)


@pytest.mark.django_db
def test_page_regenerations_go_to_their_own_queue_and_nothing_else_does(demo, settings):
    from config.celery_app import app
    from pagecache.tasks import pages_prerender_all, pages_regenerate

    with app.connection_for_write() as conn:
        for queue in app.amqp.queues.values():
            queue(conn.default_channel).declare()  # with their bindings, as the workers declare them
            conn.default_channel.queue_purge(queue.name)  # type: ignore[attr-defined]
    pages_regenerate.delay(isr.page_key(PROFILE, ""), PROFILE, "")
    assert (_queued_tasks(settings.PAGECACHE_QUEUE), _queued_tasks(settings.CELERY_TASK_DEFAULT_QUEUE)) == (1, 0)
    pages_prerender_all.delay()
    assert (_queued_tasks(settings.PAGECACHE_QUEUE), _queued_tasks(settings.CELERY_TASK_DEFAULT_QUEUE)) == (1, 1)
    with app.connection_for_write() as conn:
        for queue in (settings.CELERY_TASK_DEFAULT_QUEUE, settings.PAGECACHE_QUEUE):
            conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]
