"""Configuration from the environment: production checks, failing loudly, and the no-Redis fallback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import ConfigError, env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k3y-" + "a1b2c3d4e5f6g7h8" * 4,
    "ALLOWED_HOSTS": "brokerwatch.example",
    "REDIS_REQUIRED": "1",
    "ADMIN_URL": "staff-7f3a9c/",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Only what a fresh shell has: none of the test suite's own settings leak in.
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "CACHE_KEY_PREFIX": "cfgtest"}
    clean.update(env)
    clean["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_production_settings_pass_check_deploy_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", env={**PRODUCTION, "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_with_the_default_or_no_admin_url():
    default = manage("check", env={**PRODUCTION, "ADMIN_URL": "admin/"})
    assert default.returncode != 0
    assert "ADMIN_URL must not be the default admin/" in default.stderr
    missing = manage("check", env={k: v for k, v in PRODUCTION.items() if k != "ADMIN_URL"})
    assert missing.returncode != 0
    assert "ADMIN_URL must be set" in missing.stderr


def test_the_demo_keeps_the_default_admin_url_and_production_requires_a_second_factor():
    show = "from django.conf import settings; print(settings.ADMIN_URL, settings.ADMIN_REQUIRE_2FA)"
    demo = manage("shell", "--no-imports", "-c", show, env={**PRODUCTION, "ADMIN_URL": "", "DEMO": "1"})
    assert demo.stdout.split() == ["admin/", "False"], demo.stderr
    production = manage("shell", "--no-imports", "-c", show, env=PRODUCTION)
    assert production.stdout.split() == ["staff-7f3a9c/", "True"], production.stderr


def test_production_refuses_the_single_process_fallback():
    result = manage("check", env={**PRODUCTION, "USE_REDIS": "0"})
    assert result.returncode != 0
    assert "USE_REDIS=0 needs REDIS_REQUIRED=0" in result.stderr


PYTHON_NO_NETWORK = """
import os, socket, sys
def refuse(*args, **kwargs):
    raise AssertionError("network I/O during start-up: %r" % (args,))
socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse
import django
django.setup()
import gc, threading
before = (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count(), threading.active_count())
import config.asgi
after = (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count(), threading.active_count())
print("GC", before == after, before, after)
from django.urls import get_resolver
print("URLCONF", "url_patterns" in get_resolver().__dict__)
"""


def test_settings_and_the_asgi_app_load_without_network_io_and_leave_gc_alone():
    """No Redis probe at import, and importing config.asgi (as tests do) changes neither the process's
    garbage collection nor its threads: only the web launcher (config.web) tunes GC."""
    env = {**PRODUCTION, "REDIS_URL": "redis://127.0.0.1:1/0", "DJANGO_SETTINGS_MODULE": "config.settings"}
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "CACHE_KEY_PREFIX": "cfgtest", **env}
    result = subprocess.run(
        [sys.executable, "-c", PYTHON_NO_NETWORK], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("GC True"), result.stdout


def test_the_asgi_app_imports_every_url_module_at_start_up_not_on_the_first_request():
    """Django resolves a request's URL on the event loop, so the URLconf's first import (every app's
    views, the API's schemas: 100-200 ms) would hold the live board of every client of the process."""
    env = {**PRODUCTION, "REDIS_URL": "redis://127.0.0.1:1/0", "DJANGO_SETTINGS_MODULE": "config.settings"}
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "CACHE_KEY_PREFIX": "cfgtest", **env}
    result = subprocess.run(
        [sys.executable, "-c", PYTHON_NO_NETWORK], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "URLCONF True" in result.stdout, result.stdout


def test_without_redis_the_demo_falls_back_to_one_process_and_says_so(tmp_path):
    env = {"DEBUG": "1", "USE_REDIS": "0", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    assert manage("migrate", "-v0", env=env).returncode == 0
    assert manage("seed_demo", env=env).returncode == 0
    script = (
        "from django.test import Client; from django.conf import settings; "
        "c = Client(); r1 = c.get('/brokers/kestrel-fx/'); r2 = c.get('/brokers/kestrel-fx/'); "
        "print(settings.CACHES['default']['BACKEND'], settings.PAGECACHE_BACKGROUND, r1.status_code, "
        "r1['X-Page-Cache'], r2['X-Page-Cache'])"
    )
    result = manage("shell", "-c", script, env={**env, "ALLOWED_HOSTS": "testserver"})
    assert result.returncode == 0, result.stderr
    assert "SINGLE-PROCESS FALLBACK" in result.stderr
    assert "LocMemCache thread 200 miss hit" in result.stdout


def test_env_helpers_fail_loudly_on_bad_values(monkeypatch):
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ConfigError, match="X_BOOL='maybe' is not a boolean"):
        env_bool("X_BOOL", False)
    monkeypatch.setenv("X_INT", "ten")
    with pytest.raises(ConfigError, match="not an integer"):
        env_int("X_INT", 1)
    monkeypatch.setenv("X_INT", "3")
    with pytest.raises(ConfigError, match="below the minimum"):
        env_int("X_INT", 1, minimum=10)
    monkeypatch.setenv("X_LIST", " a, b ,,c ")
    assert env_list("X_LIST", []) == ["a", "b", "c"]


def test_env_float_fails_loudly(monkeypatch):
    from config.env import env_float

    monkeypatch.setenv("X_FLOAT", "half")
    with pytest.raises(ConfigError, match="not a number"):
        env_float("X_FLOAT", 0.5)
    monkeypatch.setenv("X_FLOAT", "nan")
    with pytest.raises(ConfigError, match="at least 0"):
        env_float("X_FLOAT", 0.5, minimum=0)
    monkeypatch.setenv("X_FLOAT", "0.25")
    assert env_float("X_FLOAT", 0.5, minimum=0) == 0.25


@pytest.mark.asyncio
async def test_websocket_connections_share_one_redis_client_instead_of_each_making_its_own() -> None:
    # Django gives every asyncio task its own cache object (asgiref's Local), and django-redis gave
    # every cache object its own redis.Redis: 500 WebSocket connections held 500 clients, each with its
    # callback table and event listeners, in every full garbage collection of the web process.
    import asyncio
    import contextvars

    from django_redis import get_redis_connection

    async def client_seen_by_a_connection() -> object:
        await asyncio.sleep(0)
        return get_redis_connection("default")  # the client of this task's cache object

    # Each in a context of its own, as daphne starts each connection's application.
    first, second = await asyncio.gather(
        asyncio.create_task(client_seen_by_a_connection(), context=contextvars.Context()),
        asyncio.create_task(client_seen_by_a_connection(), context=contextvars.Context()),
    )
    assert first is second
