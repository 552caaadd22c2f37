"""Settings for the test suite: the environment defaults below, then the normal settings.

Tests run against the real PostgreSQL and Redis given by DATABASE_URL and REDIS_URL. Each test
session gets its own Redis key prefix, Celery queue and test database, so parallel runs and a
developer's demo on the same servers never see each other's data.
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
# The suite runs as the demo does: admin at /admin/, no second factor unless a test turns it on.
os.environ.setdefault("DEMO", "1")
os.environ.setdefault("ADMIN_URL", "admin/")
os.environ.setdefault("ADMIN_REQUIRE_2FA", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# One id per test session, shared by its xdist workers through the environment.
_RUN_ID = os.environ.setdefault("BW_TEST_RUN_ID", uuid.uuid4().hex[:8])
os.environ["CACHE_KEY_PREFIX"] = f"t{_RUN_ID}{os.environ.get('PYTEST_XDIST_WORKER', '')}"
os.environ.setdefault("TEST_DATABASE_NAME", f"test_bw_{_RUN_ID}")

from config.settings import *  # noqa: E402, F403
