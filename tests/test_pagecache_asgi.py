"""The ASGI fast lane answers fresh pages for anonymous visitors exactly as Django would."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator

from config.asgi import application
from pagecache import stats

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


async def test_the_fast_lane_answers_if_none_match_with_304(demo):
    etag = header_map(await fetch(PROFILE))[b"etag"]
    response = await fetch(PROFILE, (b"if-none-match", etag))
    assert response["status"] == 304
    assert response["body"] == b""


async def test_the_fast_lane_counts_its_hits(demo):
    await fetch(PROFILE)
    before = await sync_to_async(stats.get)("pages_hit")
    await fetch(PROFILE)
    # The hit is counted just after the answer is sent.
    for _ in range(50):
        if await sync_to_async(stats.get)("pages_hit") == before + 1:
            break
        await asyncio.sleep(0.02)
    assert await sync_to_async(stats.get)("pages_hit") == before + 1


async def test_a_session_cookie_goes_to_django_for_personalisation(demo):
    await fetch(PROFILE)
    response = await fetch(PROFILE, (b"cookie", b"sessionid=abc"))
    # Django answers (an unknown session is simply anonymous), not the fast lane.
    assert header_map(response)[b"x-page-cache"] == b"hit"
    assert b"vary" in header_map(response)


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
    # Within the micro-cache's half second the old copy may still be served; after it, never.
    await asyncio.sleep(0.6)
    response = await fetch(PROFILE)
    assert header_map(response)[b"x-page-cache"] == b"stale"
