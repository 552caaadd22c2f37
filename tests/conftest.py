"""Fixtures shared by the tests."""

from __future__ import annotations

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
