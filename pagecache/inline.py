"""Stylesheets (and one script) written into the pages themselves, under a Content-Security-Policy that
names each by hash.

A linked stylesheet blocks the first paint for one more round trip after the page (on a phone, 150 ms or
more, and a new connection), so the site's few small stylesheets are inlined (``{% inline_style %}``,
pagecache/templatetags/inline_assets.py). The same goes for the one script in ``INLINE_SCRIPTS``, the
loader that starts the page's own scripts once its first content is on screen (static/js/after-paint.js:
a linked loader would be one more request before them). The policy stays strict: no 'unsafe-inline',
only the SHA-256 of each inlinable file (CSP Level 2 hash sources), added to ``style-src`` and
``script-src`` by :class:`InlineStyleCSPMiddleware` for both lanes (pagecache/asgi.py runs the same
middleware). Their digest is part of every page's cache key (pagecache.isr.page_key), so a deploy that
changes one never serves a copy whose inline code the new policy would block.
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

# The only stylesheets and scripts a page may inline (static paths); the template tags refuse any other.
INLINE_STYLES = ("css/site.css", "css/history.css", "css/live.css", "css/execution.css")
INLINE_SCRIPTS = ("js/after-paint.js",)


@lru_cache(maxsize=32)
def _read(path: str) -> str:
    found = finders.find(path)
    if not isinstance(found, str):
        raise FileNotFoundError(f"static file {path} not found")
    return Path(found).read_text(encoding="utf-8")


def forget_cached() -> None:
    _read.cache_clear()
    _minified.cache_clear()
    _script.cache_clear()
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


def inline_script_text(path: str) -> str:
    """The script's text, exactly as hashed into the policy."""
    if path not in INLINE_SCRIPTS:
        raise ValueError(f"{path} is not in pagecache.inline.INLINE_SCRIPTS: its hash would not be in the policy")
    _fresh_in_debug()
    text = _script(path)
    if "</script" in text.lower() or "<!--" in text:
        raise ValueError(f"{path} contains </script or <!--, which would change where the element ends")
    return text


@lru_cache(maxsize=8)
def _script(path: str) -> str:
    """Whole-line // comments and indentation out, line breaks kept (no reliance on how a minifier would
    insert semicolons): the comments stay in the file, not in every page."""
    lines = (line.strip() for line in _read(path).splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//"))


def _source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@lru_cache(maxsize=1)
def _hashes() -> tuple[tuple[str, ...], tuple[str, ...], str]:
    styles = tuple(_source(inline_style_text(p)) for p in INLINE_STYLES)
    scripts = tuple(_source(inline_script_text(p)) for p in INLINE_SCRIPTS)
    digest = hashlib.sha1("".join(styles + scripts).encode(), usedforsecurity=False).hexdigest()[:10]
    return styles, scripts, digest


def style_hashes() -> tuple[str, ...]:
    """The CSP hash source of each inlinable stylesheet."""
    _fresh_in_debug()
    return _hashes()[0]


def script_hashes() -> tuple[str, ...]:
    """The CSP hash source of each inlinable script."""
    _fresh_in_debug()
    return _hashes()[1]


def inline_digest() -> str:
    """A short digest of the inlinable stylesheets and scripts: part of every page's cache key."""
    _fresh_in_debug()
    return _hashes()[2]


def data_uri(path: str) -> str:
    """A small SVG static file as a data: URI (the policy allows data: images): one request fewer."""
    if not path.endswith(".svg"):
        raise ValueError(f"{path}: only SVG files are inlined as data: URIs")
    _fresh_in_debug()
    return "data:image/svg+xml," + quote(" ".join(_read(path).split()), safe=" :/=;,'")


class InlineStyleCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, with the inlined stylesheets' hashes added to style-src and the inlined
    scripts' to script-src."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only:
            update = dict(parts.update or {})
            existing = update.get("style-src") or []
            update["style-src"] = [*([existing] if isinstance(existing, str) else existing), *style_hashes()]
            existing = update.get("script-src") or []
            update["script-src"] = [*([existing] if isinstance(existing, str) else existing), *script_hashes()]
            parts.update = update
        return parts
