"""Tests run against the real PostgreSQL and Redis given by DATABASE_URL and REDIS_URL.

Each test session gets its own Redis key prefix (and Celery queue), so parallel runs and a
developer's demo on the same Redis never see each other's keys.
"""

from __future__ import annotations

import os
import uuid

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "x" * 40)
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("HTTPS", "0")
os.environ.setdefault("REDIS_REQUIRED", "1")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ["CACHE_KEY_PREFIX"] = f"t{uuid.uuid4().hex[:8]}{os.environ.get('PYTEST_XDIST_WORKER', '')}"

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    """Each test starts with an empty cache (only this session's prefix is cleared)."""
    cache.delete_pattern("*")
