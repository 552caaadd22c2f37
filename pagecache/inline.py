"""Stylesheets written into the pages themselves, under a Content-Security-Policy that names each by hash.

A linked stylesheet blocks the first paint for one more round trip after the page (on a phone, 150 ms or
more, and a new connection), so the site's few small stylesheets are inlined (``{% inline_style %}``,
pagecache/templatetags/inline_assets.py). The policy stays strict: no 'unsafe-inline', only the
SHA-256 of each stylesheet in ``INLINE_STYLES`` (CSP Level 2 hash sources), added to ``style-src`` by
:class:`InlineStyleCSPMiddleware` for both lanes (pagecache/asgi.py runs the same middleware). Their
digest is part of every page's cache key (pagecache.isr.page_key), so a deploy that changes a stylesheet
never serves a copy whose styles the new policy would block.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponseBase

# The only stylesheets a page may inline (static paths); the template tag refuses any other.
INLINE_STYLES = ("css/site.css", "css/history.css", "css/live.css", "css/execution.css")


@lru_cache(maxsize=32)
def _read(path: str) -> str:
    found = finders.find(path)
    if not isinstance(found, str):
        raise FileNotFoundError(f"static file {path} not found")
    return Path(found).read_text(encoding="utf-8")


def forget_cached() -> None:
    _read.cache_clear()
    _minified.cache_clear()
    _hashes.cache_clear()


def _fresh_in_debug() -> None:
    # Read once per process; with DEBUG every time, so an edited stylesheet shows at once.
    if settings.DEBUG:
        forget_cached()


def inline_style_text(path: str) -> str:
    """The stylesheet's text, exactly as hashed into the policy."""
    if path not in INLINE_STYLES:
        raise ValueError(f"{path} is not in pagecache.inline.INLINE_STYLES: its hash would not be in the policy")
    _fresh_in_debug()
    text = _minified(path)
    if "</style" in text.lower():
        raise ValueError(f"{path} contains </style, which would end the element early")
    return text


@lru_cache(maxsize=32)
def _minified(path: str) -> str:
    """Comments and runs of white space out: every page carries these bytes. Conservative on purpose:
    spaces inside selectors and values (descendant combinators, calc(), shorthands) stay as one."""
    css = re.sub(r"/\*.*?\*/", "", _read(path), flags=re.S)
    css = re.sub(r"\s+", " ", css)
    return re.sub(r" ?([{};]) ?", r"\1", css).strip()


@lru_cache(maxsize=1)
def _hashes() -> tuple[tuple[str, ...], str]:
    sources = tuple(
        "'sha256-" + base64.b64encode(hashlib.sha256(inline_style_text(p).encode()).digest()).decode() + "'"
        for p in INLINE_STYLES
    )
    return sources, hashlib.sha1("".join(sources).encode(), usedforsecurity=False).hexdigest()[:10]


def style_hashes() -> tuple[str, ...]:
    """The CSP hash source of each inlinable stylesheet."""
    _fresh_in_debug()
    return _hashes()[0]


def styles_digest() -> str:
    """A short digest of the inlinable stylesheets: part of every page's cache key."""
    _fresh_in_debug()
    return _hashes()[1]


def data_uri(path: str) -> str:
    """A small SVG static file as a data: URI (the policy allows data: images): one request fewer."""
    if not path.endswith(".svg"):
        raise ValueError(f"{path}: only SVG files are inlined as data: URIs")
    _fresh_in_debug()
    return "data:image/svg+xml," + quote(" ".join(_read(path).split()), safe=" :/=;,'")


class InlineStyleCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, with the inlined stylesheets' hashes added to style-src."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only:
            update = dict(parts.update or {})
            existing = update.get("style-src") or []
            update["style-src"] = [*([existing] if isinstance(existing, str) else existing), *style_hashes()]
            parts.update = update
        return parts
