"""The demo site for the HTTP benchmarks: production settings, a PostgreSQL database of the benchmark's
own with the demo data, and daphne in front of it. One place for what bench.pages, bench.api,
bench.websec and bench.lighthouse all start the same way."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.httpload import LoadResult, load
from testing.daphne import daphne_server

ROOT = Path(__file__).resolve().parent.parent


def site_env(*, db_name: str, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a production-like site (DEBUG off) on the benchmark's own database."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "ADMIN_URL": "bench-admin/",  # production refuses the default admin/ (config/settings.py)
        "HTTPS": "0",
        "SECRET_KEY": "bench-" + "s3cr3t-k3y-" * 5,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "REDIS_REQUIRED": "1",
        "CACHE_KEY_PREFIX": prefix,
        "PAGECACHE_BACKGROUND": "thread",
        "LOG_LEVEL": "WARNING",
        # Opt-in: the servers log what holds their event loop (config/stalls.py).
        "WEB_STALL_REPORT_MS": os.environ.get("WEB_STALL_REPORT_MS", "0"),
    }
    env.update(extra)
    return env


def site_manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def site_database_exists(db_name: str) -> bool:
    listing = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-lqtA"], check=True, capture_output=True, text=True
    ).stdout
    return any(line.split("|", 1)[0] == db_name for line in listing.splitlines())


def site_database_prepare(env: dict[str, str], *, db_name: str, fresh: bool = True, simulate_days: int = 0) -> None:
    """The demo data (migrate, seed_demo, optionally simulated days) and collected static files.
    Without ``fresh`` an existing database is kept: migrate and seed_demo are idempotent."""
    if fresh or not site_database_exists(db_name):
        for sql in (f"DROP DATABASE IF EXISTS {db_name}", f"CREATE DATABASE {db_name}"):
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql], check=True)
    site_manage(env, "migrate", "-v0")
    site_manage(env, "seed_demo")
    if simulate_days:
        site_manage(
            env,
            *("simulate", "--days", str(simulate_days), "--quotes-per-minute", "0.05", "--minute-days", "0"),
            "--no-progress",
        )
    site_manage(env, "collectstatic", "--noinput", "-v0")


def _psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql], check=True)


def site_database_migrated(env: dict[str, str], *, db_name: str) -> None:
    """A fresh, migrated, empty database: a copy of a migrated template (CREATE DATABASE ... TEMPLATE).

    Migrating from nothing is most of a benchmark's set-up on a busy machine; the template is named by a
    digest of every migration and of the pinned requirements (the third-party apps' migrations), so any
    change to them migrates a new one, and older templates are dropped."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted([*ROOT.glob("*/migrations/*.py"), ROOT / "requirements.txt"]):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    template = f"bw_bench_template_{digest.hexdigest()[:12]}"
    if not site_database_exists(template):
        _psql(f"DROP DATABASE IF EXISTS {template}_building")
        _psql(f"CREATE DATABASE {template}_building")
        building = env["DATABASE_URL"].rsplit("/", 1)[0] + f"/{template}_building"
        site_manage({**env, "DATABASE_URL": building}, "migrate", "-v0")
        _psql(f"ALTER DATABASE {template}_building RENAME TO {template}")  # complete, or not there at all
        listing = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-lqtA"], check=True, capture_output=True, text=True
        ).stdout
        for line in listing.splitlines():
            name = line.split("|", 1)[0]
            if name.startswith("bw_bench_template_") and name != template and not name.endswith("_building"):
                _psql(f"DROP DATABASE IF EXISTS {name}")
    _psql(f"DROP DATABASE IF EXISTS {db_name}")
    _psql(f"CREATE DATABASE {db_name} TEMPLATE {template}")


@contextmanager
def site_server(env: dict[str, str]) -> Iterator[str]:
    """daphne (one process) serving the site; yields its URL once Django answers, not just the port."""
    with daphne_server(env) as url:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).read()  # noqa: S310 (local server)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("daphne did not answer /healthz") from None
                time.sleep(0.2)
        yield url


def site_measure(url: str, *, clients: int, seconds: float) -> LoadResult:
    """Keep-alive load after a short warm-up; anything but 200 is an error, not a figure."""
    load(url, clients=clients, seconds=min(1.0, seconds / 4))  # warm up: connections, caches
    result = load(url, clients=clients, seconds=seconds)
    bad = {s: n for s, n in result.statuses.items() if s != 200}
    if bad or result.errors:
        raise RuntimeError(f"{url}: unexpected answers {bad}, {result.errors} connection errors")
    return result
