"""Log-in limits: progressive delays per account and address and per address, the owner's own budget, on the
site's log-in and the admin's alike; counted in the real Redis, shared by every web process."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts import login_limits
from accounts.login_limits import DEVICE_COOKIE, attempt_admit
from common import metrics
from common.redis import redis_breaker
from marketdata.tests.faultkit import free_port

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"
OWNER_NET = "203.0.113.20"
GUESSER = "198.51.100.7"


class Clock:
    """The limiter's clock, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(login_limits, "_clock", c)
    return c


@pytest.fixture
def limits(settings, clock):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_IP_FAILURE_LIMIT = 7
    settings.LOGIN_KNOWN_FAILURE_LIMIT = 5
    settings.LOGIN_DELAY_S = 1.0
    settings.LOGIN_DELAY_MAX_S = 8.0
    return settings


@pytest.fixture
def trader() -> User:
    return User.objects.create_user("trader", email="trader@example.com", password=PASSWORD)


def log_in(client, username, password, *, ip=GUESSER, path="/accounts/login/", **extra):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_failures_of_one_account_from_one_address_bring_waits_that_double_up_to_a_cap(client, trader, limits, clock):
    for _ in range(3):  # free
        assert log_in(client, "trader", "wrong").status_code == 200
    waits = []
    for _ in range(6):
        refused = log_in(client, "trader", PASSWORD)  # not even the right password is checked now
        assert refused.status_code == 429 and not logged_in(client)
        waits.append(int(refused["Retry-After"]))
        assert f"Try again in {waits[-1]} second".encode() in refused.content
        clock.advance(waits[-1])
        assert log_in(client, "trader", "wrong").status_code == 200  # admitted once the wait is over
    assert waits == [1, 2, 4, 8, 8, 8]
    assert metrics.get("login_failed") == 9 and metrics.get("login_rate_limited") == 6


def test_a_refused_attempt_is_not_counted_and_does_not_extend_the_wait(client, trader, limits, clock):
    for _ in range(3):
        log_in(client, "trader", "wrong")
    for _ in range(20):
        assert log_in(client, "trader", "wrong").status_code == 429
    clock.advance(1)
    assert log_in(client, "trader", PASSWORD).status_code == 302


def test_the_right_password_clears_the_count_of_that_account_for_that_client(client, trader, limits):
    assert log_in(client, "trader", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(4):
        assert log_in(client, "trader", "wrong").status_code == 200
    assert log_in(client, "trader", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(5):  # the whole budget again
        assert log_in(client, "trader", "wrong").status_code == 200
    assert log_in(client, "trader", "wrong").status_code == 429


def test_guesses_are_charged_before_the_password_is_checked(limits):
    """Parallel guesses cannot all slip in before the first failure is recorded: admission itself counts."""
    verdicts = [attempt_admit(username="trader", address=GUESSER, device="") for _ in range(10)]
    assert [v.wait_s == 0 for v in verdicts] == [True] * 3 + [False] * 7


def test_an_address_trying_many_accounts_is_slowed_by_its_own_higher_limit(client, trader, limits):
    for n in range(7):  # two tries on each of several accounts: below the per-account limit
        assert log_in(client, f"user{n // 2}", "wrong").status_code == 200
    assert log_in(client, "user9", "wrong").status_code == 429
    assert log_in(client, "trader", PASSWORD).status_code == 429
    assert log_in(Client(), "trader", PASSWORD, ip=OWNER_NET).status_code == 302  # other addresses are not


def test_logging_in_to_an_own_account_does_not_reset_the_address_count(client, trader, limits):
    User.objects.create_user("guesser", password=PASSWORD)
    for n in range(6):
        log_in(client, f"victim{n // 2}", "wrong")
    assert log_in(client, "guesser", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    assert log_in(client, "victim8", "wrong").status_code == 200  # the seventh failure: still free
    assert log_in(client, "victim9", "wrong").status_code == 429


def test_an_ipv6_client_is_counted_by_its_64(client, limits):
    for n in range(7):
        log_in(client, f"user{n // 2}", "wrong", ip=f"2001:db8:1:2::{n + 1:x}")
    assert log_in(client, "user9", "wrong", ip="2001:db8:1:2:ffff::1").status_code == 429
    assert log_in(client, "user9", "wrong", ip="2001:db8:1:3::1").status_code == 200


def test_the_owner_from_the_usual_network_is_not_slowed_while_a_guesser_elsewhere_is(client, trader, limits):
    assert log_in(client, "trader", PASSWORD, ip=OWNER_NET).status_code == 302  # the owner's usual network
    client.post("/accounts/logout/")
    guesser = Client()
    for _ in range(40):
        log_in(guesser, "trader", "wrong")
    assert log_in(guesser, "trader", PASSWORD).status_code == 429
    # Same browser, and a new browser on the same network: neither is slowed by the guesser.
    assert log_in(client, "trader", PASSWORD, ip=OWNER_NET).status_code == 302
    assert log_in(Client(), "trader", PASSWORD, ip=OWNER_NET).status_code == 302


def test_a_guesser_spraying_accounts_from_the_owners_network_does_not_slow_the_owner(client, trader, limits):
    assert log_in(client, "trader", PASSWORD, ip=OWNER_NET).status_code == 302
    sprayer = Client()  # behind the same NAT: the address's own limit slows it
    for n in range(20):
        log_in(sprayer, f"user{n // 2}", "wrong", ip=OWNER_NET)
    assert log_in(sprayer, "someone", PASSWORD, ip=OWNER_NET).status_code == 429
    # The owner, even from a new browser there, logs in: the address is one the account knows.
    assert log_in(Client(), "trader", PASSWORD, ip=OWNER_NET).status_code == 302


def test_a_guesser_at_the_owners_address_does_not_slow_the_owners_own_browser(client, trader, limits):
    assert log_in(client, "trader", PASSWORD, ip=OWNER_NET).status_code == 302
    assert client.cookies[DEVICE_COOKIE].value
    client.post("/accounts/logout/")
    guesser = Client()  # behind the same NAT, without the owner's device cookie
    for _ in range(40):
        log_in(guesser, "trader", "wrong", ip=OWNER_NET)
    assert log_in(guesser, "trader", PASSWORD, ip=OWNER_NET).status_code == 429
    assert log_in(client, "trader", PASSWORD, ip=OWNER_NET).status_code == 302
    client.post("/accounts/logout/")
    # The browser is known wherever it goes: from a guesser's own address too.
    assert log_in(client, "trader", PASSWORD, ip=GUESSER).status_code == 302


def test_the_owners_budget_is_looser_but_still_progressive(client, trader, limits, clock):
    assert log_in(client, "trader", PASSWORD, ip=OWNER_NET).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(5):  # LOGIN_KNOWN_FAILURE_LIMIT, above LOGIN_FAILURE_LIMIT
        assert log_in(client, "trader", "wrong", ip=OWNER_NET).status_code == 200
    refused = log_in(client, "trader", PASSWORD, ip=OWNER_NET)
    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    clock.advance(1)
    assert log_in(client, "trader", PASSWORD, ip=OWNER_NET).status_code == 302


def test_the_admin_log_in_has_the_same_limits(client, limits, clock, settings):
    User.objects.create_superuser("boss", "boss@example.com", PASSWORD)
    admin_login = f"/{settings.ADMIN_URL}login/"
    for _ in range(3):
        assert log_in(client, "boss", "wrong", path=admin_login).status_code == 200
    refused = log_in(client, "boss", PASSWORD, path=admin_login)
    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    assert not logged_in(client)
    clock.advance(1)
    assert log_in(client, "boss", "wrong", path=admin_login).status_code == 200
    assert log_in(client, "boss", PASSWORD, path=admin_login)["Retry-After"] == "2"
    # One count for both doors: the site's log-in is slowed for this account and address too.
    assert log_in(client, "boss", PASSWORD).status_code == 429
    assert log_in(Client(), "boss", PASSWORD, ip=OWNER_NET, path=admin_login).status_code == 302


def test_a_client_cannot_spoof_its_address_with_x_forwarded_for(client, trader, limits):
    for n in range(3):
        log_in(client, "trader", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert log_in(client, "trader", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200").status_code == 429


def test_behind_a_trusted_proxy_each_client_is_counted_apart(client, trader, limits):
    limits.TRUSTED_PROXY_IPS = ["10.0.0.0/8"]
    proxy = "10.1.2.3"
    for _ in range(3):
        # The client's own claim (left) is ignored; the address the proxy saw (right) counts.
        log_in(client, "trader", "wrong", ip=proxy, HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.9")
    assert log_in(client, "trader", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.9").status_code == 429
    assert log_in(Client(), "trader", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR=OWNER_NET).status_code == 302


def test_parallel_guesses_are_admitted_no_more_than_the_limit(limits):
    """Bursts of simultaneous attempts (as many web processes would see them) on fresh accounts."""
    threads = 8
    start = threading.Barrier(threads)

    def guess(address: str) -> bool:
        start.wait()
        return attempt_admit(username="trader", address=address, device="").wait_s == 0

    with ThreadPoolExecutor(threads) as pool:
        admitted = [sum(pool.map(guess, [f"192.0.2.{burst}"] * threads)) for burst in range(15)]
    assert admitted == [3] * 15


def test_the_counts_are_shared_by_every_web_process(live_site, settings):
    """Failures through a daphne process of their own slow this process's log-in too (both read Redis)."""
    User.objects.create_user("trader", email="trader@example.com", password=PASSWORD)
    with httpx.Client(base_url=live_site) as http:
        for _ in range(settings.LOGIN_FAILURE_LIMIT):
            http.get("/accounts/login/")
            token = http.cookies["csrftoken"]
            answer = http.post(
                "/accounts/login/", data={"username": "trader", "password": "wrong", "csrfmiddlewaretoken": token}
            )
            assert answer.status_code == 200
    refused = log_in(Client(), "trader", PASSWORD, ip="127.0.0.1")  # the address daphne saw
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1


def test_while_redis_does_not_answer_the_limits_hold_in_each_process(client, trader, limits, clock, caplog):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    limits.CACHES = {**limits.CACHES, "default": {**limits.CACHES["default"], "LOCATION": dead}}
    try:
        for _ in range(3):
            assert log_in(client, "trader", "wrong").status_code == 200
        refused = log_in(client, "trader", PASSWORD)
        assert refused.status_code == 429 and refused["Retry-After"] == "1"
        assert log_in(Client(), "trader", PASSWORD, ip=OWNER_NET).status_code == 302  # nobody is locked out
        clock.advance(1)
        assert log_in(client, "trader", PASSWORD).status_code == 302
    finally:
        redis_breaker.reset()
    assert "log-in limits counted in this process only" in caplog.text
