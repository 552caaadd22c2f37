"""Fixtures shared by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command


@pytest.fixture(scope="session", autouse=True)
def _static_manifest() -> None:
    """Pages use hashed static names, which need collectstatic's manifest."""
    if not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    """Each test starts with an empty cache (only this session's prefix is cleared)."""
    cache.delete_pattern("*")


@pytest.fixture
def demo(db: None) -> dict[str, int]:
    """The demo data set: 15 regulators, 20 instruments, 14 brokers."""
    from brokers.services import demo_seed

    return demo_seed()


@pytest.fixture
def celery_worker(transactional_db: None) -> Iterator[None]:
    """A real Celery worker on the real Redis broker, in a thread of this process."""
    from celery.contrib.testing.worker import start_worker

    from config.celery_app import app

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"):
        yield
