"""Helpers shared by tests that run the app in a subprocess."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from django.conf import settings


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a server subprocess on this test's database and Redis prefix."""
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CACHE_KEY_PREFIX": settings.CACHE_KEY_PREFIX,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **extra,
    }


def wait_for(predicate: Callable[[], object], timeout: float = 5.0, *, what: str = "condition") -> float:
    """Poll until predicate() is true (never a fixed sleep); return the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


async def await_for(predicate: Callable[[], object], timeout: float = 5.0, *, what: str = "condition") -> float:
    """wait_for inside an event loop: the loop keeps running while it polls."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def without_script_loader(html: str) -> str:
    """The page without the one inline script every page carries (static/js/after-paint.js, allowed by its
    hash: pagecache/inline.py), so that a test can check that nothing else is inline."""
    from pagecache.inline import inline_script_text

    loader = f"<script>{inline_script_text('js/after-paint.js')}</script>"
    assert html.count(loader) <= 1, "the loader is written into a page once"
    return html.replace(loader, "")
