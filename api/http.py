"""Responses of the API: cached JSON with ETag and Cache-Control like the pages, and streamed CSV.

A JSON answer is rendered once per path and canonical query and kept in the shared cache (Redis) for
API_CACHE_S or until the pages with its cache tags are revalidated (api/cache.py), so every web
process serves the same bytes and the same ETag, and an edit shows at once. Rate limits run before
this (ninja checks throttles before the view), so a cached answer is counted like any other.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags

from api.cache import Answer, answer_get, answer_key, answer_store, generation
from common import cachetags, metrics

ALWAYS_TAGS = (cachetags.ALL,)  # every answer goes stale on a change that makes every page stale


def _canonical(request: HttpRequest, params: Iterable[str]) -> str:
    """The declared parameters only: junk parameters can neither split nor poison the cache."""
    return "&".join(f"{k}={v}" for k in sorted(set(params)) for v in sorted(request.GET.getlist(k)))


def _cache_control() -> str:
    return f"public, max-age=0, s-maxage={settings.API_CACHE_S}, stale-while-revalidate={settings.API_CACHE_S}"


Render = Callable[[], tuple[bytes, Iterable[str]]]


def cached_json(request: HttpRequest, render: Render, *, params: Iterable[str] = ()) -> HttpResponse:
    """The JSON body from the cache or from render(), with a strong ETag; 304 on a matching If-None-Match.

    ``render`` returns the body and the cache tags of what it shows (common.cachetags), so revalidating
    those tags (an admin edit, a new score) drops the answer at once; otherwise it lives API_CACHE_S.
    ``params``: the query parameters the answer depends on (the endpoint's query schema's fields).
    """
    query = _canonical(request, params)
    digest = hashlib.sha1(f"{request.path}?{query}".encode(), usedforsecurity=False).hexdigest()
    key = answer_key(digest)
    entry: Answer
    found = answer_get(key) if settings.API_CACHE_S else None
    state = "hit"
    if found is not None:
        entry = found
    else:
        before = generation() if settings.API_CACHE_S else 0
        body, tags = render()
        entry = {
            "body": body,
            "etag": '"' + hashlib.sha256(body).hexdigest()[:40] + '"',
            "at": time.time(),
            "tags": sorted({*ALWAYS_TAGS, *tags}),
        }
        if settings.API_CACHE_S:
            answer_store(key, entry, ttl=settings.API_CACHE_S, rendered_in_generation=before)
        state = "miss"
    metrics.incr(f"api_{state}")
    if entry["etag"] in parse_etags(request.META.get("HTTP_IF_NONE_MATCH", "")):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(entry["body"], content_type="application/json")
    response["ETag"] = entry["etag"]
    response["Cache-Control"] = _cache_control()
    response["Age"] = str(max(0, int(time.time() - entry["at"])))
    response["X-Api-Cache"] = state
    # Keyed and anonymous callers get the same bytes; the key only changes the rate limit.
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


class _Echo:
    """A file-like object whose write() returns the line, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


def csv_stream(*, filename: str, header: list[str], rows: Iterable[Iterable[Any]]) -> StreamingHttpResponse:
    """A CSV download written row by row as the client reads it (large tables never sit in memory)."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(["" if v is None else v for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = _cache_control()
    return response


def csv_doc(columns: dict[str, str]) -> dict[str, Any]:
    """OpenAPI `responses` entry documenting a CSV variant and its columns."""
    listing = "\n".join(f"- `{name}`: {meaning}" for name, meaning in columns.items())
    return {
        "responses": {
            200: {
                "description": "JSON by default; with `format=csv`, a CSV file with these columns:\n\n" + listing,
                "content": {
                    "text/csv": {"schema": {"type": "string", "description": "Columns: " + ", ".join(columns)}}
                },
            }
        }
    }
