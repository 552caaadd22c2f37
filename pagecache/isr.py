"""Statically regenerated pages, like Next.js ISR.

A view decorated with ``@regenerated_page`` is rendered once for an anonymous visitor and the
result is kept in the shared cache:

* fresh copy: served as is (``X-Page-Cache: hit``);
* stale copy (its revalidate window passed): served at once, and one background regeneration is
  started, however many requests see it stale at the same moment: a lock in the cache decides who
  starts it (``X-Page-Cache: stale``);
* outdated copy (a change revalidated it: an admin save, a new score): the first request to find it
  renders the page and is served the new copy (``X-Page-Cache: revalidated``); requests arriving
  while that render runs get the old copy at once, like a stale one. The change is thus visible as
  soon as anyone (the edge's next revalidation, within a second) asks, whatever the Celery queue
  holds; the background regenerations queued by the revalidation skip pages already current.
* no copy: rendered in the request, stored and served (``X-Page-Cache: miss``).

Pages carry tags (common.cachetags: ``broker:<id>``, ``broker-list``, ...); :func:`pagecache.services.pages_revalidate`
marks every page with a tag outdated (a new *generation*) and regenerates it. Only the query parameters
a page declares are part of its cache key, so junk parameters can neither split nor poison the cache.

Personal content never reaches the cache: pages are always rendered for an anonymous request,
and the account navigation between ``ACCOUNT_NAV_START`` and ``ACCOUNT_NAV_END`` is swapped for
the visitor's own when a logged-in visitor asks.

Each copy is stored with a gzip copy of it, compressed once when stored, and served to anonymous
visitors who accept gzip (``Vary: Accept-Encoding``, an ETag of its own). Only the shared copy is ever
compressed: it holds no CSRF token (such a page is never cached) and nothing personal, so BREACH has no
secret to guess. A personalised answer (the logged-in menu, its log-out form's token) is never compressed.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.template.loader import render_to_string
from django.template.response import SimpleTemplateResponse
from django.urls import Resolver404, resolve
from django.utils.cache import patch_vary_headers

from common import metrics
from common.http import etag_weak_match
from common.redis import REDIS_DOWN
from pagecache.inline import inline_digest
from pagecache.tags import tag_index

logger = logging.getLogger(__name__)

ACCOUNT_NAV_START = "<!--account-nav-->"
ACCOUNT_NAV_END = "<!--/account-nav-->"
# {% signed_in_only %} (pagecache/templatetags/signed_in.py): stored commented out, opened by personalise().
SIGNED_IN_START = "<!--signed-in-only:"
SIGNED_IN_END = ":signed-in-only-->"
_SIGNED_IN = re.compile(re.escape(SIGNED_IN_START.encode()) + b"(.*?)" + re.escape(SIGNED_IN_END.encode()), re.S)
CACHE_VERSION = 1
LOCK_TIMEOUT_S = 60
# At most one request renders an outdated page at a time; the lock outlives any sane render.
RENDER_LOCK_S = 30
# How long a cache revalidating an outdated copy waits for the render another request has under way.
RENDER_WAIT_S = 1.5
RENDER_POLL_S = 0.03

View = Callable[..., HttpResponseBase]


class PageEntry(TypedDict):
    path: str
    query: str
    body: bytes
    etag: str
    content_type: str
    rendered_at: float
    revalidate: int
    tags: list[str]
    # The page's generation when its render started (absent in entries of older releases: 0).
    generation: NotRequired[int]
    # The body compressed with gzip, when that is smaller (absent in entries of older releases).
    gzip: NotRequired[bytes]


@dataclass(frozen=True)
class PageSpec:
    view: View
    revalidate: int
    params: tuple[str, ...]
    # Declared parameters whose presence with no value is a meaning of its own (a form sent with
    # nothing chosen), kept in the cache key as ``name=``; other blank parameters are dropped.
    keep_blank: tuple[str, ...] = ()

    def cache_query(self, query: QueryDict) -> str:
        return canonical_query(query, self.params, keep_blank=self.keep_blank)


def tag_response(response: HttpResponseBase, *tags: str) -> None:
    """Attach cache tags to a response a regenerated view returns."""
    existing: set[str] = getattr(response, "page_tags", set())
    response.page_tags = existing | set(tags)  # type: ignore[attr-defined]


def canonical_query(query: QueryDict, params: Iterable[str], *, keep_blank: Iterable[str] = ()) -> str:
    """The declared parameters only, sorted, empty values dropped: one cache key per meaning.
    A ``keep_blank`` parameter given with only blank values stays, as ``name=``."""
    pairs: list[tuple[str, str]] = []
    for name in sorted(params):
        values = sorted({value.strip() for value in query.getlist(name)})
        kept = [value for value in values if value]
        if not kept and values and name in keep_blank:
            kept = [""]
        pairs.extend((name, value) for value in kept)
    return urlencode(pairs)


# Worth compressing: text, and the text formats that do not say so in their type.
COMPRESSIBLE_TYPES = ("text/", "application/xml", "application/json", "application/javascript", "image/svg+xml")
GZIP_LEVEL = 9  # once per render, not per request: the smallest copy is worth the few milliseconds


@functools.lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (RFC 9110 12.5.3: q=0 refuses it, and ``*``
    stands for any coding the header does not name)."""
    star = False
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        coding = coding.lower()
        if coding in ("gzip", "x-gzip"):
            return quality > 0
        if coding == "*":
            star = quality > 0
    return star


def gzip_etag(etag: str) -> str:
    """The gzip copy's strong ETag: a different representation must not share the identity's."""
    return etag[:-1] + '-gzip"'


def representation(entry: PageEntry, *, accept_encoding: str) -> tuple[bytes, str, str | None]:
    """The body, ETag and Content-Encoding (None: identity) of the copy to send."""
    compressed = entry.get("gzip")
    if compressed is not None and accepts_gzip(accept_encoding):
        return compressed, gzip_etag(entry["etag"]), "gzip"
    return entry["body"], entry["etag"], None


def _compressed(body: bytes, content_type: str) -> bytes | None:
    if not content_type.startswith(COMPRESSIBLE_TYPES):
        return None
    # mtime=0: the same page always compresses to the same bytes.
    compressed = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    return compressed if len(compressed) < len(body) else None


def page_key(path: str, query: str) -> str:
    digest = hashlib.sha1(f"{path}?{query}".encode(), usedforsecurity=False).hexdigest()
    # The inlined stylesheets' digest: a copy with other styles than the policy's hashes is never served.
    return f"page:{CACHE_VERSION}:{inline_digest()}:{digest}"


def entry_or_none(value: Any) -> PageEntry | None:
    """A cached value that is a usable page entry, or None (treated as a miss): e.g. one written by an
    older release, or corrupted. Both lanes read entries through this."""
    if isinstance(value, dict) and {"body", "etag", "content_type", "path", "query", "revalidate"} <= value.keys():
        return cast(PageEntry, value)
    return None


def fresh_key(key: str) -> str:
    return f"{key}:fresh"


def lock_key(key: str) -> str:
    return f"{key}:lock"


def render_lock_key(key: str) -> str:
    return f"{key}:render"


def _generation_key(key: str) -> str:
    return f"{key}:gen"


def is_outdated(entry: PageEntry, generation: int) -> bool:
    """Whether a change revalidated the page after this copy's render started."""
    return entry.get("generation", 0) < generation


def is_current(key: str) -> bool:
    """Whether the cached copy is fresh and no change has revalidated it since it was rendered."""
    found = cache.get_many([key, fresh_key(key), _generation_key(key)])
    entry = entry_or_none(found.get(key))
    return (
        entry is not None and fresh_key(key) in found and not is_outdated(entry, found.get(_generation_key(key)) or 0)
    )


def anonymous_request(path: str, query: str) -> HttpRequest:
    """A bare GET request with no user, session or cookies: what every cached page is rendered for."""
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = path
    request.GET = QueryDict(query)
    host = (settings.ALLOWED_HOSTS or ["localhost"])[0].lstrip(".")
    if host == "*":
        host = "localhost"
    request.META = {"SERVER_NAME": host, "SERVER_PORT": "443" if settings.HTTPS else "80", "HTTP_HOST": host}
    request.user = AnonymousUser()
    request.COOKIES = {}
    return request


def page_spec_for(path: str) -> tuple[PageSpec, dict[str, Any]]:
    match = resolve(path)
    spec: PageSpec | None = getattr(match.func, "page_spec", None)
    if spec is None:
        raise LookupError(f"{path} is not a regenerated page")
    return spec, match.kwargs


def render_entry(path: str, query: str) -> tuple[HttpResponseBase, PageEntry | None]:
    """Render a page for an anonymous visitor. Returns the response and, if it may be cached, its entry."""
    spec, kwargs = page_spec_for(path)
    metrics.incr("pages_rendered")
    response = spec.view(anonymous_request(path, query), **kwargs)
    if isinstance(response, SimpleTemplateResponse):
        response.render()
    if response.status_code != 200 or not isinstance(response, HttpResponse):
        return response, None
    body = response.content
    if b"csrfmiddlewaretoken" in body:
        # A form with a CSRF token must never be shared between visitors.
        logger.error("refusing to cache %s: it contains a CSRF token", path)
        return response, None
    content_type = response.get("Content-Type", "text/html; charset=utf-8")
    entry: PageEntry = {
        "path": path,
        "query": query,
        "body": body,
        "etag": '"' + hashlib.sha256(body).hexdigest()[:40] + '"',
        "content_type": content_type,
        "rendered_at": time.time(),
        "revalidate": spec.revalidate,
        "tags": sorted(getattr(response, "page_tags", set())),
    }
    compressed = _compressed(body, content_type)
    if compressed is not None:
        entry["gzip"] = compressed
    return response, entry


def store_entry(key: str, entry: PageEntry, *, generation: int | None) -> None:
    """Keep a rendered page. It counts as fresh unless a revalidation happened while it rendered
    (then it is kept as outdated: the next request renders it again)."""
    ttl = entry["revalidate"] + settings.PAGECACHE_STALE_S
    current = cache.get(_generation_key(key)) or 0
    entry["generation"] = current if generation is None else generation
    cache.set(key, entry, ttl)
    if entry["generation"] == current:
        cache.set(fresh_key(key), 1, entry["revalidate"])
        # A revalidation between the read above and that write would be undone by it for the whole
        # revalidate window. mark_stale moves the generation before it drops fresh flags, so one
        # more look settles it.
        if (cache.get(_generation_key(key)) or 0) != current:
            cache.delete(fresh_key(key))
    try:
        tag_index.add(entry["tags"], key, ttl)
    except REDIS_DOWN as exc:
        # The cache writes above were skipped too (IGNORE_EXCEPTIONS): nothing is indexed that is not kept.
        logger.warning("page %s not tagged, Redis did not answer: %s", key, exc)


def regenerate(key: str, *, path: str, query: str, unless_current: bool = False) -> str:
    """Render a page again and store it. Used by the background task and by the prerender command.

    unless_current: skip a page that is already fresh and up to date (a visitor's request rendered it
    after the revalidation that queued this regeneration)."""
    generation = cache.get(_generation_key(key)) or 0
    try:
        if unless_current and is_current(key):
            return "current"
        try:
            response, entry = render_entry(path, query)
        except (Http404, Resolver404):
            cache.delete_many([key, fresh_key(key)])
            return "gone"
        if entry is None:
            cache.delete_many([key, fresh_key(key)])
            return f"not cached ({response.status_code})"
        store_entry(key, entry, generation=generation)
        metrics.incr("pages_regenerated")
        return "rendered"
    finally:
        # Released only once the new copy is stored, so no second regeneration starts meanwhile.
        cache.delete(lock_key(key))


def mark_stale(keys: Iterable[str]) -> list[str]:
    keys = list(keys)
    if keys:
        # The generation first, then the fresh flags (store_entry relies on this order).
        for k in keys:
            try:
                cache.incr(_generation_key(k))
            except ValueError:
                if not cache.add(_generation_key(k), 1, None):
                    cache.incr(_generation_key(k))
        cache.delete_many([fresh_key(k) for k in keys])
    return keys


def start_background_regeneration(key: str, *, path: str, query: str, force: bool = False) -> bool:
    """Start one regeneration of a page unless one is already under way. Returns whether it started."""
    if not cache.add(lock_key(key), 1, LOCK_TIMEOUT_S) and not force:
        return False
    if force:
        cache.set(lock_key(key), 1, LOCK_TIMEOUT_S)
    if settings.PAGECACHE_BACKGROUND == "celery":
        from pagecache.tasks import pages_regenerate

        pages_regenerate.delay(key, path, query)
    else:
        threading.Thread(target=regenerate, args=(key,), kwargs={"path": path, "query": query}, daemon=True).start()
    return True


def public_cache_control(entry: PageEntry) -> str:
    """For a shared copy: CDNs keep it for the revalidate window and may serve it stale meanwhile."""
    return f"public, max-age=0, s-maxage={entry['revalidate']}, stale-while-revalidate={settings.PAGECACHE_STALE_S}"


def entry_age(entry: PageEntry) -> str:
    return str(max(0, int(time.time() - entry["rendered_at"])))


# Both lanes send this (pagecache/asgi.py too): the answer depends on the session and the encoding.
VARY = ("Cookie", "Accept-Encoding")


def _build_response(request: HttpRequest, entry: PageEntry, state: str) -> HttpResponse:
    anonymous = not request.user.is_authenticated
    if anonymous:
        body, etag, encoding = representation(entry, accept_encoding=request.META.get("HTTP_ACCEPT_ENCODING", ""))
        if etag_weak_match(if_none_match=request.META.get("HTTP_IF_NONE_MATCH", ""), etag=etag):
            response = HttpResponse(status=304)
        else:
            response = HttpResponse(body, content_type=entry["content_type"])
            if encoding:
                response["Content-Encoding"] = encoding
        response["ETag"] = etag
        response["Cache-Control"] = public_cache_control(entry)
    else:
        # Never compressed: the personal menu carries a CSRF token (BREACH).
        response = HttpResponse(personalise(entry["body"], request), content_type=entry["content_type"])
        response["Cache-Control"] = "private, no-cache"
    response["Age"] = entry_age(entry)
    response["X-Page-Cache"] = state
    patch_vary_headers(response, VARY)
    return response


def personalise(body: bytes, request: HttpRequest) -> bytes:
    """The shared copy for a signed-in visitor: their account menu, and the blocks only they get."""
    body = _SIGNED_IN.sub(rb"\1", body)
    start, end = ACCOUNT_NAV_START.encode(), ACCOUNT_NAV_END.encode()
    head, sep, rest = body.partition(start)
    if not sep:
        return body
    _, sep2, tail = rest.partition(end)
    if not sep2:
        return body
    nav = render_to_string("_account_nav.html", {"user": request.user}, request=request).encode()
    return head + start + nav + end + tail


def _render_outdated(request: HttpRequest, key: str, entry: PageEntry, generation: int) -> HttpResponseBase:
    """A change made this copy wrong: render the page for the visitor holding the render lock.

    Without this, the edge (or a browser) would be answered the old copy, or a 304 for its old ETag,
    until a Celery worker reached the page's regeneration: seconds behind score jobs and the other
    pages of the same change. Others asking meanwhile get the old copy (the caller's lock)."""
    try:
        try:
            response, new = render_entry(entry["path"], entry["query"])
        except (Http404, Resolver404):
            cache.delete_many([key, fresh_key(key)])
            raise
        if new is None:
            cache.delete_many([key, fresh_key(key)])
            return response
        store_entry(key, new, generation=generation)
    finally:
        cache.delete(render_lock_key(key))
    metrics.incr("pages_revalidated")
    return _build_response(request, new, "revalidated")


def _revalidates(request: HttpRequest) -> bool:
    """A cache (the edge, a browser) asking whether its copy is still good: whether it holds this
    outdated copy or an older one, the answer it keeps should be the page as it is now."""
    return not request.user.is_authenticated and bool(request.META.get("HTTP_IF_NONE_MATCH"))


def _await_render(key: str, entry: PageEntry) -> PageEntry | None:
    """Wait (bounded) for the render another request has under way; the new entry, or None.

    Only a cache revalidating an outdated copy waits: answered with a 304 for the old ETag it would
    keep the wrong page for another round (a second edge replica, or one whose revalidation comes
    while a visitor's request renders), while it serves its copy to everyone else meanwhile anyway."""
    metrics.incr("pages_awaited")
    deadline = time.monotonic() + RENDER_WAIT_S
    while time.monotonic() < deadline:
        time.sleep(RENDER_POLL_S)
        found = cache.get_many([key, render_lock_key(key)])
        newer = entry_or_none(found.get(key))
        if newer is not None and newer["etag"] != entry["etag"]:
            return newer
        if render_lock_key(key) not in found:
            return None  # the render ended without a new copy (the page is gone, or unchanged)
    return None


def regenerated_page(
    *, params: tuple[str, ...] = (), keep_blank: tuple[str, ...] = (), revalidate: int | None = None
) -> Callable[[View], View]:
    """Serve a view as a statically regenerated page. ``params``: the query parameters it reads;
    ``keep_blank``: those of them whose blank presence means something (see PageSpec)."""

    if not set(keep_blank) <= set(params):
        raise ValueError(f"keep_blank {keep_blank} must be among params {params}")

    def decorator(view: View) -> View:
        spec = PageSpec(
            view=view,
            revalidate=revalidate or settings.PAGECACHE_REVALIDATE_S,
            params=params,
            keep_blank=keep_blank,
        )

        @functools.wraps(view)
        def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
            if request.method not in ("GET", "HEAD") or not settings.PAGECACHE_ENABLED:
                return view(request, **kwargs)
            query = spec.cache_query(request.GET)
            key = page_key(request.path, query)
            found = cache.get_many([key, fresh_key(key), _generation_key(key)])
            entry = entry_or_none(found.get(key))
            generation = found.get(_generation_key(key)) or 0
            if entry is None:
                response, entry = render_entry(request.path, query)
                if entry is None:
                    return response
                store_entry(key, entry, generation=generation)
                metrics.incr("pages_miss")
                return _build_response(request, entry, "miss")
            if fresh_key(key) in found:
                metrics.incr("pages_hit")
                return _build_response(request, entry, "hit")
            if is_outdated(entry, generation):
                if cache.add(render_lock_key(key), 1, RENDER_LOCK_S):
                    return _render_outdated(request, key, entry, generation)
                if _revalidates(request):
                    newer = _await_render(key, entry)
                    if newer is not None:
                        return _build_response(request, newer, "revalidated")
            metrics.incr("pages_stale")
            start_background_regeneration(key, path=entry["path"], query=entry["query"])
            return _build_response(request, entry, "stale")

        wrapper.page_spec = spec  # type: ignore[attr-defined]
        return wrapper

    return decorator
