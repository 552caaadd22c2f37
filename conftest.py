"""Fixtures shared by the tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from testing.daphne import daphne_server
from testing.support import subprocess_env


@pytest.fixture(scope="session", autouse=True)
def _static_manifest() -> None:
    """Pages use hashed static names, which need collectstatic's manifest."""
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    built = manifest.stat().st_mtime if manifest.exists() else 0.0
    sources = (p for d in settings.STATICFILES_DIRS for p in Path(d).rglob("*") if p.is_file())
    if not manifest.exists() or any(p.stat().st_mtime > built for p in sources):
        call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    """Each test starts with nothing in Redis under this session's prefix: cache entries, live
    quotes, tick streams, page tags, queued tasks. Other runs' keys are left alone."""
    from django_redis import get_redis_connection

    from marketdata.selectors import ids_cache_clear
    from pagecache.asgi import forget_local_state

    redis = get_redis_connection("default")
    keys = list(redis.scan_iter(match=f"{settings.CACHE_KEY_PREFIX}:*", count=1000))
    for start in range(0, len(keys), 500):
        redis.delete(*keys[start : start + 500])
    forget_local_state()
    ids_cache_clear()  # ids of an earlier test's brokers would be wrong in this one


@pytest.fixture
def demo(db: None) -> dict[str, int]:
    """The demo data set: 15 regulators, 20 instruments, 14 brokers."""
    from brokers.services import demo_seed

    return demo_seed()


@pytest.fixture
def demo_committed(transactional_db: None) -> dict[str, int]:
    """The demo data, committed for real: for code that reads it from other threads or processes."""
    from brokers.services import demo_seed

    return demo_seed()


@pytest.fixture
def celery_worker(transactional_db: None) -> Iterator[None]:
    """A real Celery worker on the real Redis broker, in a thread of this process."""
    from celery.contrib.testing.worker import start_worker

    from config.celery_app import app

    # Tasks queued by earlier tests (with no worker then) must not delay this test's tasks.
    with app.connection_for_write() as conn:
        for queue in (app.conf.task_default_queue, settings.PAGECACHE_QUEUE):
            conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"):
        yield


@pytest.fixture
def live_site(transactional_db: None) -> Iterator[str]:
    """The real ASGI app under daphne in a subprocess, on this test's database and Redis prefix.

    Yields its base URL. Data must be committed to be seen, hence the transactional database.
    """
    with daphne_server(subprocess_env()) as url:
        yield url


CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page() -> Iterator[Any]:
    """A Playwright page in Debian's headless chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop; the test's own ORM calls are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.set_default_timeout(10_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="session", autouse=True)
def _close_stray_connections(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Worker threads and daphne subprocesses may leave connections open; close them before the
    test database is dropped, or it stays behind."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
