"""The gzip copy of a cached page: stored once, sent to anonymous visitors who accept it, by both lanes,
with its own ETag; never for a logged-in (personalised) answer."""

from __future__ import annotations

import gzip

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.test import Client

from pagecache import isr
from pagecache.tests.test_pagecache_asgi import IGNORED, fetch, header_map

PROFILE = "/brokers/kestrel-fx/"
GZIP = (b"accept-encoding", b"gzip, deflate, br, zstd")


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip, deflate, br, zstd", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("*", True),
        ("", False),
        ("identity", False),
        ("br, deflate", False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),
        ("*;q=0", False),
        ("gzip;q=bogus", False),
        ("gzipx, xgzip", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header, accepted):
    assert isr.accepts_gzip(header) is accepted


@pytest.mark.django_db
def test_the_gzip_copy_decodes_to_the_page_and_has_its_own_etag(demo):
    plain = Client().get(PROFILE)
    packed = Client().get(PROFILE, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain
    assert packed["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.content) == plain.content
    assert len(packed.content) < len(plain.content) / 3
    assert packed["ETag"] != plain["ETag"] and not packed["ETag"].startswith("W/")
    for response in (plain, packed):
        vary = {v.strip() for v in response["Vary"].split(",")}
        assert {"Cookie", "Accept-Encoding"} <= vary
    # Stored once, with the page: no compression per request.
    entry = isr.entry_or_none(cache.get(isr.page_key(PROFILE, "")))
    assert entry is not None and entry.get("gzip") == packed.content


@pytest.mark.django_db
def test_a_client_that_refuses_gzip_gets_the_plain_page(demo):
    Client().get(PROFILE)
    response = Client().get(PROFILE, HTTP_ACCEPT_ENCODING="gzip;q=0, br")
    assert "Content-Encoding" not in response
    assert b"Kestrel FX" in response.content


@pytest.mark.django_db
def test_each_encoding_answers_a_304_only_for_its_own_etag(demo):
    plain_etag = Client().get(PROFILE)["ETag"]
    gzip_etag = Client().get(PROFILE, HTTP_ACCEPT_ENCODING="gzip")["ETag"]
    assert Client().get(PROFILE, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=gzip_etag).status_code == 304
    assert Client().get(PROFILE, HTTP_IF_NONE_MATCH=plain_etag).status_code == 304
    # A cache holding the plain copy that now accepts gzip gets the gzip copy, not a 304 for the other one.
    crossed = Client().get(PROFILE, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=plain_etag)
    assert crossed.status_code == 200 and crossed["Content-Encoding"] == "gzip"
    assert Client().get(PROFILE, HTTP_IF_NONE_MATCH=gzip_etag).status_code == 200


@pytest.mark.django_db
def test_a_logged_in_visitors_page_is_never_compressed(demo, django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_user("gzip-trader"))
    client.get(PROFILE)  # cached (for anonymous visitors), now personalised from the copy
    response = client.get(PROFILE, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert response.status_code == 200
    assert "Content-Encoding" not in response
    body = response.content.decode()
    assert "gzip-trader" in body and "csrfmiddlewaretoken" in body  # personal, with a token: BREACH


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_fast_lane_sends_the_same_gzip_copy_and_headers_as_django(demo):
    through_django = await fetch(PROFILE, GZIP)
    fast = await fetch(PROFILE, GZIP)
    assert header_map(through_django)[b"x-page-cache"] == b"miss"
    assert header_map(fast)[b"x-page-cache"] == b"hit"
    assert fast["body"] == through_django["body"]
    slow_headers = {k: v for k, v in header_map(through_django).items() if k not in IGNORED}
    fast_headers = {k: v for k, v in header_map(fast).items() if k not in IGNORED}
    assert fast_headers == slow_headers
    assert fast_headers[b"content-encoding"] == b"gzip"
    assert int(header_map(fast)[b"content-length"]) == len(fast["body"])
    plain = await fetch(PROFILE)
    assert b"content-encoding" not in header_map(plain)
    assert gzip.decompress(fast["body"]) == plain["body"]
    assert header_map(plain)[b"vary"] == header_map(fast)[b"vary"] == b"Cookie, Accept-Encoding"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_fast_lane_answers_304_per_encoding(demo):
    await fetch(PROFILE)
    plain_etag = header_map(await fetch(PROFILE))[b"etag"]
    gzip_etag = header_map(await fetch(PROFILE, GZIP))[b"etag"]
    assert plain_etag != gzip_etag
    packed_304 = await fetch(PROFILE, GZIP, (b"if-none-match", gzip_etag))
    assert packed_304["status"] == 304 and packed_304["body"] == b""
    assert header_map(packed_304)[b"etag"] == gzip_etag
    assert b"content-encoding" not in header_map(packed_304)
    assert (await fetch(PROFILE, (b"if-none-match", plain_etag)))["status"] == 304
    crossed = await fetch(PROFILE, GZIP, (b"if-none-match", plain_etag))
    assert crossed["status"] == 200 and header_map(crossed)[b"content-encoding"] == b"gzip"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_fast_lane_leaves_a_session_to_django_uncompressed(demo):
    from pagecache.tests.test_pagecache_asgi import _logged_in_cookie

    await fetch(PROFILE)
    await fetch(PROFILE, GZIP)  # fresh, and in this process's micro-cache
    cookie = await sync_to_async(_logged_in_cookie)()
    response = await fetch(PROFILE, GZIP, (b"cookie", cookie))
    assert response["status"] == 200
    assert b"content-encoding" not in header_map(response)
    assert b"fastlane-trader" in response["body"]
