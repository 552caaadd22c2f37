"""Writes of the page cache: revalidation by tag, prerendering."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.cache import cache
from django.db import transaction
from django.http import QueryDict
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from common import cachetags
from pagecache import isr
from pagecache.tags import tag_index

# Apps register functions that list their public URLs, for prerendering.
_url_sources: list[Callable[[], Iterable[str]]] = []


def pages_register_urls(source: Callable[[], Iterable[str]]) -> Callable[[], Iterable[str]]:
    _url_sources.append(source)
    return source


def _parameterless_pages(patterns: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[str]:
    """Every regenerated page whose URL has no parameters, found in the URLconf."""
    for entry in patterns:
        pattern = entry.pattern
        if not isinstance(pattern, RoutePattern) or pattern.converters:
            continue
        route = prefix + str(pattern)
        if isinstance(entry, URLResolver):
            yield from _parameterless_pages(entry.url_patterns, route)
        elif hasattr(entry.callback, "page_spec"):
            yield "/" + route


def pages_all_urls() -> Iterator[str]:
    """Parameterless regenerated pages, then what the apps list (profiles, compare pairs, ...)."""
    seen: set[str] = set()
    for url in (*_parameterless_pages(get_resolver().url_patterns), *(u for s in _url_sources for u in s())):
        if url not in seen:
            seen.add(url)
            yield url


def pages_revalidate(*, tags: Iterable[str]) -> list[str]:
    """Mark every page carrying one of the tags stale and regenerate it in the background now."""
    tags = set(tags)
    cachetags.revalidated(tags)  # the other caches of these figures (the API's answers)
    keys = sorted(tag_index.members(tags))
    entries = cache.get_many(keys)
    isr.mark_stale(keys)
    for key, entry in entries.items():
        isr.start_background_regeneration(key, path=entry["path"], query=entry["query"], force=True)
    return keys


def pages_revalidate_on_commit(*, tags: Iterable[str]) -> None:
    """Revalidate once the current transaction commits (at once outside a transaction).

    Public API only: each call queues a flush with transaction.on_commit, and the first flush to
    run takes every tag pending in this thread, so the tags of one transaction go together and the
    later flushes find nothing left. Tags from a rolled-back transaction stay pending and go with
    the next flush: a page may be revalidated once more than needed, never left stale.
    """
    _pending().update(tags)
    transaction.on_commit(_flush_pending)


_local = threading.local()


def _pending() -> set[str]:
    pending: set[str] | None = getattr(_local, "tags", None)
    if pending is None:
        pending = _local.tags = set()
    return pending


def _flush_pending() -> None:
    pending = _pending()
    if pending:
        tags = set(pending)
        pending.clear()
        pages_revalidate(tags=tags)


@dataclass(frozen=True)
class Rendered:
    url: str
    outcome: str
    bytes: int
    ms: float


def pages_prerender(*, urls: Iterable[str] | None = None) -> list[Rendered]:
    """Render and store every public page now, like a static site build."""
    results = []
    for url in urls if urls is not None else pages_all_urls():
        parts = urlsplit(url)
        started = time.perf_counter()
        spec, _ = isr.page_spec_for(parts.path)
        query = spec.cache_query(QueryDict(parts.query))
        key = isr.page_key(parts.path, query)
        outcome = isr.regenerate(key, path=parts.path, query=query)
        entry = cache.get(key) if outcome == "rendered" else None
        size = len(entry["body"]) if entry else 0
        results.append(Rendered(url, outcome, size, (time.perf_counter() - started) * 1000))
    return results
