"""Helpers shared by tests that run the app in a subprocess."""

from __future__ import annotations

import os

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
