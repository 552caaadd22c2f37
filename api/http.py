"""Responses of the API: JSON and CSV answers with ETag and Cache-Control like the pages.

A JSON answer is rendered once per path and canonical query and kept in the shared cache (Redis) for
API_CACHE_S or until the pages with its cache tags are revalidated (api/cache.py), so every web
process serves the same bytes and the same ETag, and an edit shows at once. A short table's CSV is cached
the same way. A table that can be long (score histories, report and release lists) is streamed instead:
written as its rows are read, a page of rows at a time (api/stream.py), with a weak ETag taken before the
first row from the rows' count and range and the cache tags' tokens. Rate limits run before all this (ninja
checks throttles before the view), so a cached answer is counted like any other.

If-None-Match is compared weakly everywhere (RFC 9110 13.1.2): nginx's gzip turns our "x" into W/"x" on
the way out, and a browser sends back what it got.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.cache import patch_vary_headers
from pydantic import BaseModel
from pydantic_core import to_json

from api.cache import Answer, answer_get, answer_key, answer_store, generation, tag_versions
from api.stream import Window
from common import cachetags, metrics
from common.http import etag_weak_match

ALWAYS_TAGS = (cachetags.ALL,)  # every answer goes stale on a change that makes every page stale


def _canonical(request: HttpRequest, params: Iterable[str]) -> str:
    """The declared parameters only: junk parameters can neither split nor poison the cache."""
    return "&".join(f"{k}={v}" for k in sorted(set(params)) for v in sorted(request.GET.getlist(k)))


def _cache_control() -> str:
    return f"public, max-age=0, s-maxage={settings.API_CACHE_S}, stale-while-revalidate={settings.API_CACHE_S}"


Render = Callable[[], tuple[bytes, Iterable[str]]]


def _answer(request: HttpRequest, render: Render, *, params: Iterable[str], kind: str) -> tuple[Answer, str]:
    """The answer from the shared cache, or rendered and stored there: (entry, "hit" or "miss")."""
    query = _canonical(request, params)
    digest = hashlib.sha1(f"{kind} {request.path}?{query}".encode(), usedforsecurity=False).hexdigest()
    key = answer_key(digest)
    found = answer_get(key) if settings.API_CACHE_S else None
    if found is not None:
        metrics.incr("api_hit")
        return found, "hit"
    before = generation() if settings.API_CACHE_S else 0
    body, tags = render()
    entry: Answer = {
        "body": body,
        "etag": '"' + hashlib.sha256(body).hexdigest()[:40] + '"',
        "at": time.time(),
        "tags": sorted({*ALWAYS_TAGS, *tags}),
    }
    if settings.API_CACHE_S:
        answer_store(key, entry, ttl=settings.API_CACHE_S, rendered_in_generation=before)
    metrics.incr("api_miss")
    return entry, "miss"


def _validators(request: HttpRequest, response: HttpResponseBase, entry: Answer, state: str) -> HttpResponseBase:
    response["ETag"] = entry["etag"]
    response["Cache-Control"] = _cache_control()
    response["Age"] = str(max(0, int(time.time() - entry["at"])))
    response["X-Api-Cache"] = state
    # Keyed and anonymous callers get the same bytes; the key only changes the rate limit.
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


def etag_matches(request: HttpRequest, etag: str) -> bool:
    """Whether If-None-Match names this ETag, by weak comparison (RFC 9110 13.1.2): W/"x" and "x" are the
    same tag either way round, any member of a list counts, and * matches whatever we have."""
    return etag_weak_match(if_none_match=request.META.get("HTTP_IF_NONE_MATCH", ""), etag=etag)


def cached_json(request: HttpRequest, render: Render, *, params: Iterable[str] = ()) -> HttpResponse:
    """The JSON body from the cache or from render(), with a strong ETag; 304 on a matching If-None-Match.

    ``render`` returns the body and the cache tags of what it shows (common.cachetags), so revalidating
    those tags (an admin edit, a new score) drops the answer at once; otherwise it lives API_CACHE_S.
    ``params``: the query parameters the answer depends on (the endpoint's query schema's fields).
    """
    entry, state = _answer(request, render, params=params, kind="json")
    if etag_matches(request, entry["etag"]):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(entry["body"], content_type="application/json")
    _validators(request, response, entry, state)
    return response


CSV_CHUNK = 64 * 1024
RenderRows = Callable[[], tuple[Iterable[Iterable[Any]], Iterable[str]]]


def cached_csv(
    request: HttpRequest, render: RenderRows, *, filename: str, header: list[str], params: Iterable[str] = ()
) -> HttpResponseBase:
    """A CSV download cached like a JSON answer (cached_json): a strong ETag of its bytes, 304 on a match.

    ``render`` returns the rows and the cache tags of what they show. It runs before the response starts,
    so an error in it (an unknown broker) is still a JSON error. The ETag must be known before the first
    byte, so the body is written once into the shared cache (every web process then sends the same bytes
    and the same ETag, and `as_of` stays put for as long as the answer lives); it is sent in CSV_CHUNK
    pieces.
    """

    def render_csv() -> tuple[bytes, Iterable[str]]:
        rows, tags = render()
        return b"".join(line.encode() for line in csv_lines(header=header, rows=rows)), tags

    entry, state = _answer(request, render_csv, params=params, kind="csv")
    response: HttpResponseBase
    if etag_matches(request, entry["etag"]):
        response = HttpResponse(status=304)
    else:
        body = entry["body"]
        response = StreamingHttpResponse(
            (body[i : i + CSV_CHUNK] for i in range(0, len(body), CSV_CHUNK)), content_type="text/csv; charset=utf-8"
        )
        response["Content-Length"] = str(len(body))
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return _validators(request, response, entry, state)


Out = TypeVar("Out", bound=BaseModel | list[Any])


def json_or_csv(
    request: HttpRequest,
    *,
    fmt: str,
    build: Callable[[], tuple[Out, Iterable[str]]],
    csv_rows: Callable[[Out], Iterable[Iterable[Any]]],
    columns: dict[str, str],
    filename: str,
    params: Iterable[str],
) -> HttpResponseBase:
    """One table's answer, cached: JSON (the schema ``build()`` returns, or a list of them), or with
    ``fmt == "csv"`` a CSV of ``columns`` whose rows ``csv_rows`` takes from that same answer, so the two
    formats cannot differ. ``build`` also names the cache tags of what it shows (see cached_json)."""
    if fmt == "csv":

        def render_rows() -> tuple[Iterable[Iterable[Any]], Iterable[str]]:
            out, tags = build()
            return csv_rows(out), tags

        return cached_csv(request, render_rows, filename=filename, header=list(columns), params=params)

    def render() -> tuple[bytes, Iterable[str]]:
        out, tags = build()
        return to_json(out), tags

    return cached_json(request, render, params=params)


STREAM_FORMAT = 1  # part of every streamed ETag: raise it when a streamed CSV's bytes change for the same rows


def streamed_csv(
    request: HttpRequest,
    *,
    window: Window,
    row: Callable[[Any], Sequence[Any]],
    columns: dict[str, str],
    filename: str,
    params: Iterable[str],
    tags: Iterable[str],
) -> HttpResponseBase:
    """A CSV of a table that can be long, written while its rows are read, PAGE at a time (api/stream.py):
    memory stays bounded whatever its length, and the first bytes leave before the last row is read.

    The ETag is weak and needs no body: a digest of the query, the columns, the rows' version (one aggregate
    query) and the tokens of ``tags`` (renewed by every revalidation of them: an edit in place). A matching
    If-None-Match gets a 304 without a row read. Tokens are read before the rows, so a change in between
    can only make the body newer than its ETag (the next conditional request then gets it again), never
    older. Call it after anything that can fail (an unknown broker): once the response starts, an error
    can no longer be a JSON answer.
    """
    tokens = tag_versions([*ALWAYS_TAGS, *tags])
    version = window.version()
    header = list(columns)
    ident = repr((STREAM_FORMAT, request.path, _canonical(request, params), header, version, tokens))
    etag = 'W/"' + hashlib.sha256(ident.encode()).hexdigest()[:40] + '"'
    response: HttpResponseBase
    if etag_matches(request, etag):
        response = HttpResponse(status=304)
    else:
        pages = ([row(r) for r in page] for page in window.pages(version=version))
        response = StreamingHttpResponse(_served(request, csv_chunks(header=header, pages=pages)))
        response["Content-Type"] = "text/csv; charset=utf-8"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["ETag"] = etag
    response["Cache-Control"] = _cache_control()
    response["X-Api-Cache"] = "stream"
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


def _served(request: HttpRequest, chunks: Iterator[bytes]) -> Iterator[bytes] | AsyncIterator[bytes]:
    """The chunks as the server reads them. Under ASGI (daphne) Django would read a plain iterator to its end
    before sending a byte (StreamingHttpResponse.__aiter__), so there they are handed over one by one."""
    if isinstance(request, ASGIRequest):
        return _one_by_one(chunks)
    return chunks


async def _one_by_one(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    # Each step on the request's own thread (thread_sensitive): the database connection the view used.
    step = sync_to_async(_next, thread_sensitive=True)
    try:
        while (chunk := await step(chunks)) is not None:
            yield chunk
    finally:
        await sync_to_async(_close, thread_sensitive=True)(chunks)


def _next(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


def _close(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def csv_chunks(*, header: list[str], pages: Iterable[Iterable[Iterable[Any]]]) -> Iterator[bytes]:
    """The header line on its own (sent before the first page is read), then one chunk per page of rows."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header).encode()
    for page in pages:
        text = "".join(writer.writerow(["" if v is None else v for v in row]) for row in page)
        if text:
            yield text.encode()


class _Echo:
    """A file-like object whose write() returns the line, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


def live_csv(
    request: HttpRequest,
    *,
    rows: Iterable[Iterable[Any]],
    filename: str,
    header: list[str],
    moving: Iterable[str] = (),
) -> HttpResponseBase:
    """A CSV of live figures (best execution): never cached, but with an ETag and 304 on a match, like every
    other CSV answer, so a poller that asks again before the market moved gets no body.

    The tag is weak (W/"..."): it covers every column but the ``moving`` ones (the depth's age, which grows
    by the millisecond), so two answers with the same prices, fills and costs are the same answer."""
    table = [list(row) for row in rows]
    body = "".join(csv_lines(header=header, rows=table)).encode()
    skip = {header.index(name) for name in moving}
    steady = [[v for i, v in enumerate(row) if i not in skip] for row in table]
    digest = hashlib.sha256("".join(csv_lines(header=header, rows=steady)).encode()).hexdigest()[:40]
    etag = f'W/"{digest}"'
    response: HttpResponseBase
    if etag_matches(request, etag):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["ETag"] = etag
    response["Cache-Control"] = "no-store"  # live market data
    return response


def csv_lines(*, header: list[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The CSV text line by line (empty cells for None)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(["" if v is None else v for v in row])


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
