"""The fast lane for regenerated pages: an ASGI layer in front of Django, like an nginx proxy cache.

A fresh copy asked for by an anonymous visitor is answered straight from Redis, in the event loop,
with one round trip and no thread hop, middleware or ORM; gzip-compressed (the copy stored beside it,
see ``pagecache.isr``) when the visitor accepts that. Everything else goes to Django, where
``pagecache.isr`` handles misses, stale copies (and their background regeneration) and
logged-in visitors. Both lanes send the same headers; a test holds them to it.
"""

from __future__ import annotations

import asyncio
import pickle
import time
import weakref
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.request import split_domain_port, validate_host
from django.urls import Resolver404, resolve
from django.utils.module_loading import import_string

from common.http import etag_weak_match
from common.metrics import STATS_KEY
from common.redis import REDIS_DOWN, redis_async, redis_breaker
from pagecache import isr
from pagecache.inline import inline_digest

LOCAL_MAX_PAGES = 2048
HIT_FLUSH_S = 0.25

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]


@lru_cache(maxsize=4096)
def _page_spec(path: str) -> isr.PageSpec | None:
    """The spec (declared query parameters) of the regenerated page at path, or None if it is not one."""
    try:
        spec: isr.PageSpec | None = getattr(resolve(path).func, "page_spec", None)
    except Resolver404:
        return None
    return spec


VARY = ", ".join(isr.VARY).encode()


# Middleware that only adds response headers. The fast lane runs the configured ones on an empty
# response and sends what they added, so both lanes' headers come from Django's own code.
HEADER_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "pagecache.inline.InlineStyleCSPMiddleware",
)


def security_headers(*, secure: bool) -> tuple[tuple[bytes, bytes], ...]:
    """The headers the configured header-only middleware adds to a page (HSTS only when secure)."""
    return _security_headers(secure=secure, inline=inline_digest())


@lru_cache(maxsize=4)
def _security_headers(*, secure: bool, inline: str) -> tuple[tuple[bytes, bytes], ...]:
    """inline: the inlined stylesheets' and scripts' digest, whose hashes the policy names (pagecache/inline.py)."""

    class _Request(HttpRequest):
        def _get_scheme(self) -> str:
            return "https" if secure else "http"

    request, response = _Request(), HttpResponse()
    for path in settings.MIDDLEWARE:
        if path in HEADER_MIDDLEWARE:
            middleware = import_string(path)(lambda _request: HttpResponse())
            response = middleware.process_response(request, response)
    skip = {"content-type"}
    return tuple((k.lower().encode(), v.encode()) for k, v in response.headers.items() if k.lower() not in skip)


@receiver(setting_changed)
def _forget_headers(**_: Any) -> None:
    _security_headers.cache_clear()


_instances: weakref.WeakSet[CachedPagesMiddleware] = weakref.WeakSet()


def forget_local_state() -> None:
    """Drop this process's micro-cached pages and uncounted hits (tests start from a clean slate)."""
    for instance in _instances:
        instance._local.clear()
        instance._reading.clear()
        instance._hits = 0


class CachedPagesMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        _instances.add(self)
        self.app = app
        self.enabled = settings.USE_REDIS and settings.PAGECACHE_ENABLED
        self._undecodable = 0
        self._hit_key = cache.make_key(STATS_KEY.format(name="pages_hit"))
        self._undecodable_key = cache.make_key(STATS_KEY.format(name="pages_undecodable"))
        self._hits = 0
        self._flushing: asyncio.Future[Any] | None = None
        # Each process keeps the copies it just served for a moment (a micro-cache), so a hot page
        # costs no Redis round trip at all. Short enough that a revalidation still shows within a second.
        self._local: dict[tuple[str, bytes], tuple[float, isr.PageEntry]] = {}
        self._local_ttl = settings.PAGECACHE_LOCAL_S
        # The Redis read of a page in flight: visitors who come while it is read wait for it. When a hot
        # page's copy expired, every request in flight read Redis for it at once (fifty at 4,000 a second).
        self._reading: dict[tuple[str, bytes], asyncio.Future[isr.PageEntry | None]] = {}

    def _client(self) -> Any:
        # The loop's shared client: connect and read timeouts, a bounded pool (common/redis.py).
        return redis_async()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted = self.enabled and scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
        if not (wanted and await self._serve_fresh(scope, send)):
            await self.app(scope, receive, send)

    async def _fresh_entry(self, path: str, raw_query: bytes) -> isr.PageEntry | None:
        local = self._local.get((path, raw_query))
        if local is not None and local[0] > time.monotonic():
            return local[1]
        spec = _page_spec(path)
        if spec is None:
            return None  # not a regenerated page: no read to share
        where = (path, raw_query)
        reading = self._reading.get(where)
        if reading is None or reading.get_loop() is not asyncio.get_running_loop():
            reading = self._reading[where] = asyncio.ensure_future(self._read_entry(spec, path, raw_query, local))
            reading.add_done_callback(
                lambda done: self._reading.pop(where, None) if self._reading.get(where) is done else None
            )
        # Shielded: a visitor who leaves does not cancel the read the others wait for.
        return await asyncio.shield(reading)

    async def _read_entry(
        self, spec: isr.PageSpec, path: str, raw_query: bytes, local: tuple[float, isr.PageEntry] | None
    ) -> isr.PageEntry | None:
        now = time.monotonic()
        key = isr.page_key(path, spec.cache_query(QueryDict(raw_query)))
        try:
            redis_breaker.check()
            raw_entry, fresh = await self._client().mget(cache.make_key(key), cache.make_key(isr.fresh_key(key)))
        except REDIS_DOWN as exc:
            # Redis down or frozen: this process's last copy, however old, beats a render against a
            # database that is busy with every other visitor; without one, Django renders.
            redis_breaker.trip(exc)
            return None if local is None else local[1]
        if raw_entry is None or fresh is None:
            return None
        try:
            entry = isr.entry_or_none(pickle.loads(raw_entry))  # noqa: S301 (our own Redis, written by isr.store_entry)
            if entry is None:
                raise ValueError("not a page entry")
        except Exception:
            self._undecodable += 1  # counted like the hits; Django renders instead
            self._flush_soon()
            return None
        if self._local_ttl > 0:
            if len(self._local) >= LOCAL_MAX_PAGES:
                self._local.clear()  # bounded memory; the hot pages come back on their next request
            self._local[(path, raw_query)] = (now + self._local_ttl, entry)
        return entry

    def _count_hit(self) -> None:
        """Hits are added up here and written with one INCRBY a moment later, off the visitor's clock."""
        self._hits += 1
        self._flush_soon()

    def _flush_soon(self) -> None:
        flushing = self._flushing
        if flushing is None or flushing.done() or flushing.get_loop() is not asyncio.get_running_loop():
            self._flushing = asyncio.ensure_future(self._flush_hits())

    async def _flush_hits(self) -> None:
        await asyncio.sleep(HIT_FLUSH_S)
        hits, self._hits = self._hits, 0
        undecodable, self._undecodable = self._undecodable, 0
        try:
            redis_breaker.check()
            if hits:
                await self._client().incrby(self._hit_key, hits)
            if undecodable:
                await self._client().incrby(self._undecodable_key, undecodable)
        except REDIS_DOWN as exc:
            redis_breaker.trip(exc)
            self._hits += hits  # try again with the next batch
            self._undecodable += undecodable

    async def _serve_fresh(self, scope: Scope, send: Send) -> bool:
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers[name] = headers[name] + b"; " + value if name == b"cookie" and name in headers else value
        if settings.SESSION_COOKIE_NAME.encode() + b"=" in headers.get(b"cookie", b""):
            return False  # may be logged in: Django personalises
        host, _ = split_domain_port(headers.get(b"host", b"").decode("latin-1"))
        if not host or not validate_host(host, settings.ALLOWED_HOSTS):
            return False  # Django answers with its own 400
        secure = scope.get("scheme") == "https" or headers.get(b"x-forwarded-proto") == b"https"
        if settings.SECURE_SSL_REDIRECT and not secure:
            return False
        entry = await self._fresh_entry(scope["path"], scope.get("query_string", b""))
        if entry is None:
            return False
        content, etag, encoding = isr.representation(
            entry, accept_encoding=headers.get(b"accept-encoding", b"").decode("latin-1")
        )
        not_modified = etag_weak_match(if_none_match=headers.get(b"if-none-match", b"").decode("latin-1"), etag=etag)
        response_headers = [
            (b"content-type", entry["content_type"].encode()),
            (b"etag", etag.encode()),
            (b"cache-control", isr.public_cache_control(entry).encode()),
            (b"age", isr.entry_age(entry).encode()),
            (b"x-page-cache", b"hit"),
            (b"vary", VARY),
            *security_headers(secure=secure),
        ]
        if not not_modified:
            response_headers.append((b"content-length", str(len(content)).encode()))
            if encoding:
                response_headers.append((b"content-encoding", encoding.encode()))
        body = b"" if not_modified or scope["method"] == "HEAD" else content
        await send({"type": "http.response.start", "status": 304 if not_modified else 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})
        self._count_hit()
        return True
