"""If-None-Match is compared weakly (RFC 9110 13.1.2) by every API answer: nginx's gzip weakens our ETags."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from api.http import etag_matches

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.mark.parametrize(
    ("sent", "ours", "matches"),
    [
        ('"x"', '"x"', True),
        ('W/"x"', '"x"', True),  # what a browser sends back after nginx gzipped our "x"
        ('"x"', 'W/"x"', True),
        ('W/"x"', 'W/"x"', True),
        ('"y", W/"x"', '"x"', True),
        ('"y",W/"x" , "z"', 'W/"x"', True),
        ("*", '"x"', True),
        ('"y"', '"x"', False),
        ('W/"y", "z"', '"x"', False),
        ('"x', '"x"', False),  # malformed: not a tag
        ("", '"x"', False),
        ('"xx"', '"x"', False),
    ],
)
def test_if_none_match_compares_weakly_with_lists_and_star(sent, ours, matches):
    request = RequestFactory().get("/", HTTP_IF_NONE_MATCH=sent)
    assert etag_matches(request, ours) is matches


@pytest.mark.parametrize("path", ["/brokers", "/brokers?format=csv", "/brokers/kestrel-fx/scores?format=csv"])
def test_a_weakened_or_listed_etag_gets_a_304_from_json_cached_and_streamed_answers(client, demo, path):
    first = client.get(API + path)
    assert first.status_code == 200
    tag = first["ETag"]
    opaque = tag.removeprefix("W/")
    for sent in (f"W/{opaque}", opaque, f'"other", W/{opaque}', "*"):
        again = client.get(API + path, HTTP_IF_NONE_MATCH=sent)
        assert again.status_code == 304, sent
        assert again["ETag"] == tag
    assert client.get(API + path, HTTP_IF_NONE_MATCH='W/"other"').status_code == 200
