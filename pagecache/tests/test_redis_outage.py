"""The web tier degrades, it doesn't fail: daphne on a throwaway Redis that is killed, or frozen (SIGSTOP).

Pages are then rendered by Django from the database (or served from the process's own copy),
sessions are read from the database, log-in limits keep counting, and no request waits for Redis
longer than its configured timeout (REDIS_TIMEOUT_S) before the process stops asking for a while.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import redis
from django.contrib.auth.models import User

from testing.daphne import daphne_server, free_port
from testing.support import subprocess_env, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery-9"
REDIS_TIMEOUT_S = 1.0
PAGES = [
    "/",
    "/brokers/",
    "/brokers/?regulator=fca",
    "/brokers/kestrel-fx/",
    "/compare/?brokers=kestrel-fx,northwind-markets",
    "/methodology/",
    "/live/",
    "/execution/",
    "/accounts/login/",
    "/accounts/signup/",
    "/robots.txt",
]


@contextmanager
def throwaway_redis() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_for(answers, 10, what="throwaway redis-server")
        yield proc, f"redis://127.0.0.1:{port}/0"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait()


@contextmanager
def site_on(redis_url: str) -> Iterator[str]:
    env = subprocess_env(
        REDIS_URL=redis_url,
        REDIS_TIMEOUT_S=str(REDIS_TIMEOUT_S),
        REDIS_CONNECT_TIMEOUT_S=str(REDIS_TIMEOUT_S),
        REDIS_RETRY_AFTER_S="2",
        PAGECACHE_BACKGROUND="thread",
    )
    with daphne_server(env) as url:
        yield url


def logged_in_client(base: str) -> httpx.Client:
    """A visitor who logged in while Redis was up: their session is in the database and the cache."""
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    response = client.post(
        "/accounts/login/",
        data={"username": "trader", "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": base + "/accounts/login/"},
    )
    assert response.status_code == 302, response.text[:500]
    return client


def fetch_all(base: str, *, timeout: float) -> list[tuple[str, int, float]]:
    """Every page once, anonymously; (path, status, seconds). A request that hangs fails the test."""
    results = []
    with httpx.Client(base_url=base, timeout=timeout) as client:
        for path in PAGES:
            response = client.get(path)
            results.append((path, response.status_code, response.elapsed.total_seconds()))
    return results


@pytest.fixture
def trader(demo_committed: dict[str, int]) -> User:
    return User.objects.create_user("trader", email="trader@example.com", password=PASSWORD)


def test_with_redis_killed_every_page_renders_sessions_hold_and_log_in_limits_count(trader):
    with throwaway_redis() as (server, url), site_on(url) as base:
        warm = fetch_all(base, timeout=30)
        assert [s for _, s, _ in warm] == [200] * len(PAGES), warm
        member = logged_in_client(base)

        server.kill()
        server.wait()

        for _ in range(3):  # the first round trips over the outage, the next ones fail fast
            results = fetch_all(base, timeout=30)
            assert [(p, s) for p, s, _ in results if s >= 500] == [], results
            assert [s for _, s, _ in results] == [200] * len(PAGES), results
        # The logged-in visitor is still logged in: the session is read from the database.
        board = member.get("/live/")
        assert board.status_code == 200
        assert "Signed in as" in board.text
        assert member.get("/accounts/password/change/").status_code == 200
        # Log-in limits fall back to counters in each web process while Redis is down, so they still hold.
        with httpx.Client(base_url=base, timeout=30) as guesser:
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', guesser.get("/accounts/login/").text)
            assert token
            statuses = [
                guesser.post(
                    "/accounts/login/",
                    data={"username": "trader", "password": "wrong", "csrfmiddlewaretoken": token.group(1)},
                    headers={"Referer": base + "/accounts/login/"},
                ).status_code
                for _ in range(6)
            ]
        assert statuses[:4] == [200] * 4
        assert statuses[-1] == 429


def test_with_redis_frozen_no_request_waits_much_longer_than_the_redis_timeout(trader):
    with throwaway_redis() as (server, url), site_on(url) as base:
        assert all(s == 200 for _, s, _ in fetch_all(base, timeout=30))
        member = logged_in_client(base)

        os.kill(server.pid, signal.SIGSTOP)
        try:
            # Before the fix a request took up to 9 s (one timeout per cache call, and no timeout in the
            # fast lane). A client timeout of three Redis timeouts makes a hanging request fail the test.
            limit = 3 * REDIS_TIMEOUT_S
            results = [r for _ in range(3) for r in fetch_all(base, timeout=limit)]
            assert [s for _, s, _ in results] == [200] * len(results), results
            board = member.get("/live/", timeout=limit)
            assert board.status_code == 200
            assert "Signed in as" in board.text
        finally:
            os.kill(server.pid, signal.SIGCONT)
        # Once Redis answers again the fast lane serves from it again.
        with httpx.Client(base_url=base, timeout=30) as client:
            wait_for(
                lambda: client.get("/brokers/kestrel-fx/").headers.get("x-page-cache") == "hit",
                15,
                what="the fast lane back on Redis",
            )
