"""The ASGI fast lane answers fresh pages for anonymous visitors exactly as Django would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.conf import settings
from django.core.cache import cache

from common import metrics
from config.asgi import application
from pagecache.asgi import _instances, forget_local_state

PROFILE = "/brokers/kestrel-fx/"
IGNORED = {b"age", b"x-page-cache", b"content-length"}

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def fetch(path: str, *headers: tuple[bytes, bytes]) -> dict:
    communicator = HttpCommunicator(application, "GET", path, headers=[(b"host", b"testserver"), *headers])
    return await communicator.get_response(timeout=10)


def header_map(response: dict) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in response["headers"]}


async def test_both_lanes_send_the_same_page_and_headers(demo):
    through_django = await fetch(PROFILE)
    fast = await fetch(PROFILE)
    assert header_map(through_django)[b"x-page-cache"] == b"miss"
    assert header_map(fast)[b"x-page-cache"] == b"hit"
    assert fast["body"] == through_django["body"]
    slow_headers = {k: v for k, v in header_map(through_django).items() if k not in IGNORED}
    fast_headers = {k: v for k, v in header_map(fast).items() if k not in IGNORED}
    assert fast_headers == slow_headers
    # The strict Content-Security-Policy comes from the same middleware in both lanes.
    assert b"script-src 'self'" in fast_headers[b"content-security-policy"]


async def test_the_fast_lane_answers_if_none_match_with_304(demo):
    etag = header_map(await fetch(PROFILE))[b"etag"]
    response = await fetch(PROFILE, (b"if-none-match", etag))
    assert response["status"] == 304
    assert response["body"] == b""


async def test_the_fast_lane_compares_if_none_match_weakly_as_behind_nginx_gzip(demo):
    etag = header_map(await fetch(PROFILE))[b"etag"]
    assert (await fetch(PROFILE, (b"if-none-match", b"W/" + etag)))["status"] == 304
    assert (await fetch(PROFILE, (b"if-none-match", b'"other", W/' + etag)))["status"] == 304
    assert (await fetch(PROFILE, (b"if-none-match", b'W/"other"')))["status"] == 200


async def test_the_fast_lane_counts_its_hits(demo):
    await fetch(PROFILE)
    before = await sync_to_async(metrics.get)("pages_hit")
    await fetch(PROFILE)
    # The hit is counted just after the answer is sent.
    for _ in range(50):
        if await sync_to_async(metrics.get)("pages_hit") == before + 1:
            break
        await asyncio.sleep(0.02)
    assert await sync_to_async(metrics.get)("pages_hit") == before + 1


def _logged_in_cookie() -> bytes:
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.create_user("fastlane-trader"))
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


async def test_a_session_cookie_goes_to_django_for_personalisation(demo):
    await fetch(PROFILE)
    await fetch(PROFILE)  # fresh in Redis and in this process's micro-cache: the fast lane would answer
    cookie = await sync_to_async(_logged_in_cookie)()
    response = await fetch(PROFILE, (b"cookie", b"theme=dark; " + cookie))
    # Django answers: the logged-in visitor's own menu, never the shared copy.
    assert response["status"] == 200
    assert b"fastlane-trader" in response["body"]
    assert header_map(response)[b"cache-control"].startswith(b"private")


async def test_an_entry_that_cannot_be_decoded_is_a_miss_not_a_500(demo):
    from pagecache import isr

    await fetch(PROFILE)
    key = isr.page_key(PROFILE, "")
    await sync_to_async(cache.set)(key, "not a page entry", None)  # e.g. written by an older release
    forget_local_state()
    response = await fetch(PROFILE)
    assert response["status"] == 200
    assert b"Kestrel" in response["body"]


async def test_a_foreign_host_is_refused_by_django_not_served_from_cache(demo):
    await fetch(PROFILE)
    communicator = HttpCommunicator(application, "GET", PROFILE, headers=[(b"host", b"evil.example")])
    response = await communicator.get_response(timeout=10)
    assert response["status"] == 400


async def test_a_revalidated_page_reaches_the_fast_lane_within_a_second(demo):
    from pagecache import isr

    await fetch(PROFILE)
    await fetch(PROFILE)  # now also in this process's micro-cache
    await sync_to_async(isr.mark_stale)([isr.page_key(PROFILE, "")])
    # Within the micro-cache's half second the old copy may still be served; within a second, never.
    states: list[bytes] = []

    async def now_stale() -> bool:
        states.append(header_map(await fetch(PROFILE))[b"x-page-cache"])
        return states[-1] == b"revalidated"  # Django rendered it for the first request after the change

    deadline = asyncio.get_running_loop().time() + 1.0
    while not await now_stale():
        assert asyncio.get_running_loop().time() < deadline, states
        await asyncio.sleep(0.02)


async def test_with_redis_down_the_fast_lane_serves_its_own_last_copy(demo):
    from common.redis import redis_breaker

    await fetch(PROFILE)
    fast = await fetch(PROFILE)
    assert header_map(fast)[b"x-page-cache"] == b"hit"
    redis_breaker.trip(ConnectionError("test: Redis went away"))
    try:
        # Past the micro-cache's half second, with Redis not answering: the process's own copy.
        for instance in _instances:
            instance._local = {k: (0.0, entry) for k, (_, entry) in instance._local.items()}
        response = await fetch(PROFILE)
        assert response["status"] == 200
        assert header_map(response)[b"x-page-cache"] == b"hit"
        assert response["body"] == fast["body"]
    finally:
        redis_breaker.reset()


async def test_a_blank_parameter_that_means_something_has_its_own_key_in_the_fast_lane(demo):
    await fetch("/compare/")
    assert header_map(await fetch("/compare/"))[b"x-page-cache"] == b"hit"
    # ?brokers= (the picker sent with nothing ticked) is not the bare page: Django says so.
    response = await fetch("/compare/?brokers=")
    assert response["status"] == 400
    assert b"No broker chosen" in response["body"]


async def test_visitors_asking_at_once_for_a_page_whose_copy_expired_share_one_redis_read(demo, monkeypatch):
    """At 4,000 requests a second, every visitor in flight when the process's copy expired read Redis
    for the same page at once: fifty round trips instead of one, and more than the pool's connections."""
    await fetch(PROFILE)
    await fetch(PROFILE)
    reads: list[int] = []
    for instance in _instances:
        instance._local = {k: (0.0, entry) for k, (_, entry) in instance._local.items()}  # expired
        real = instance._client

        def counting(real: Any = real) -> Any:
            client = real()

            class Counted:
                def __getattr__(self, name: str) -> Any:
                    return getattr(client, name)

                async def mget(self, *keys: str) -> Any:
                    reads.append(1)
                    return await client.mget(*keys)

            return Counted()

        monkeypatch.setattr(instance, "_client", counting)
    responses = await asyncio.gather(*(fetch(PROFILE) for _ in range(30)))
    assert {header_map(r)[b"x-page-cache"] for r in responses} == {b"hit"}
    assert len(reads) == 1
