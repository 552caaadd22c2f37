"""Log-in limits: progressive delays rather than locks, counted in Redis, plugged into django-axes' hooks.

django-axes counts failures against one limit and locks until a cool-off ends; it has no growing delays
and no notion of a client the account knows. Its backend, signals and middleware are kept (they catch
every ``authenticate()``, the site's log-in and the admin's alike) and this handler decides.

Three kinds of counter, each {n: attempts, last: when}, forgotten LOGIN_FAILURE_MEMORY_S after the last
failure, kept in Redis and so shared by every web process:

- one account from one client address (``ai``): after LOGIN_FAILURE_LIMIT failures the next attempt must
  wait LOGIN_DELAY_S, the one after twice that, and so on, at most LOGIN_DELAY_MAX_S;
- one client address, any account (``ip``): the same, from the higher LOGIN_IP_FAILURE_LIMIT. An IPv6
  client is counted by its /64, which one subscriber usually holds whole;
- the owner's budget (``kd``/``kn``): a client that logged in to this account before, recognised by the
  device cookie that log-in set (``kd``, its own counter) or else by its address (``kn``), is counted
  only here, from the much looser LOGIN_KNOWN_FAILURE_LIMIT. A guesser elsewhere never touches it; one
  at the owner's address but without the cookie shares only the address's budget, never the device's.

An attempt is charged before the password is checked, atomically with the decision (a Redis
transaction watching the counters): it is refused if a counter's wait has not passed and counted
otherwise, so parallel guesses cannot all slip in before the first failure is recorded. A refused
attempt is not checked and not counted, so it extends nothing. A successful log-in gives its charge
back: it clears the account's counter for that client and takes its own attempt off the address's count
(never the whole count, or a guesser could reset their address by logging in to an account of their own).

The client address comes from common.http.client_ip (X-Forwarded-For believed from TRUSTED_PROXY_IPS
only). While Redis does not answer (and in the single-process demo without Redis) the same counters are
kept in this process's memory: the limits still hold, per process, and nobody is locked out by the
outage; what the account knew of its clients is out of reach until Redis is back.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from axes.handlers.base import AxesHandler
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from common import metrics
from common.http import client_ip
from common.redis import REDIS_DOWN, redis_sync

__all__ = ["LoginDeviceMiddleware", "LoginLimitHandler", "client_ip", "lockout_response"]

logger = logging.getLogger(__name__)

DEVICE_COOKIE = "bw_login_device"
_DEVICE_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")

# Redis not answering, or not configured at all (USE_REDIS=0: django-redis raises NotImplementedError).
_UNAVAILABLE: tuple[type[BaseException], ...] = (*REDIS_DOWN, NotImplementedError)


def _clock() -> float:
    """Wall-clock seconds, shared by every web process (a test moves it instead of sleeping)."""
    return time.time()


def account_key(username: str) -> str:
    """An account as the counters name it: the typed name, case folded, hashed (no names kept in Redis)."""
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()[:24]


def address_key(address: str | None) -> str:
    """A client address as the counters name it: IPv4 whole, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "none"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _device(request: HttpRequest) -> str:
    """The device cookie's id, if well formed (it names a Redis key)."""
    value = request.COOKIES.get(DEVICE_COOKIE, "")
    return value if _DEVICE_RE.match(value) else ""


@dataclass(frozen=True)
class Keys:
    known: str  # sorted set: "d:<device>" and "a:<address>" members, scored by their last log-in
    kd: str
    kn: str
    ai: str
    ip: str

    @classmethod
    def of(cls, *, account: str, address: str, device: str) -> Keys:
        p = f"{settings.CACHE_KEY_PREFIX}:login"
        return cls(
            known=f"{p}:known:{account}",
            kd=f"{p}:kd:{account}:{device or '-'}",
            kn=f"{p}:kn:{account}:{address}",
            ai=f"{p}:ai:{account}:{address}",
            ip=f"{p}:ip:{address}",
        )


@dataclass(frozen=True)
class Verdict:
    account: str
    address: str
    device: str
    who: str  # "device" or "network" (a client the account knows), or "new"
    wait_s: float


def _budgets(
    keys: Keys, *, device: str, address: str, known: Callable[[str], bool]
) -> tuple[str, list[tuple[str, int]]]:
    """Which counters an attempt is charged to, with their free failures; known(member) asks the account."""
    if device and known(f"d:{device}"):
        return "device", [(keys.kd, settings.LOGIN_KNOWN_FAILURE_LIMIT)]
    if known(f"a:{address}"):
        return "network", [(keys.kn, settings.LOGIN_KNOWN_FAILURE_LIMIT)]
    return "new", [(keys.ai, settings.LOGIN_FAILURE_LIMIT), (keys.ip, settings.LOGIN_IP_FAILURE_LIMIT)]


def _wait_s(*, n: int, last: float, limit: int, now: float) -> float:
    """How long after `now` a counter at n attempts (the latest at `last`) lets the next one in."""
    if n < limit:
        return 0.0
    delay = min(settings.LOGIN_DELAY_S * 2.0 ** min(n - limit, 64), settings.LOGIN_DELAY_MAX_S)
    return max(0.0, last + delay - now)


class _RedisCounters:
    """The counters in Redis: one transaction per decision, retried if another attempt changed them meanwhile."""

    def admit(self, keys: Keys, *, device: str, address: str, now: float) -> tuple[str, float]:
        cutoff = now - settings.LOGIN_KNOWN_FOR_S
        with redis_sync().pipeline() as pipe:
            for _ in range(5):
                try:
                    pipe.watch(keys.known, keys.kd, keys.kn, keys.ai, keys.ip)
                    who, budgets = _budgets(
                        keys,
                        device=device,
                        address=address,
                        known=lambda m: (pipe.zscore(keys.known, m) or 0) >= cutoff,
                    )
                    counters = [(key, limit, pipe.hmget(key, "n", "last")) for key, limit in budgets]
                    wait = max(
                        _wait_s(n=int(n or 0), last=float(last or 0), limit=limit, now=now)
                        for _key, limit, (n, last) in counters
                    )
                    if wait > 0:
                        pipe.unwatch()
                        return who, wait
                    pipe.multi()
                    for key, _limit in budgets:
                        pipe.hincrby(key, "n", 1)
                        pipe.hset(key, "last", repr(now))
                        pipe.expire(key, settings.LOGIN_FAILURE_MEMORY_S)
                    pipe.execute()
                    return who, 0.0
                except redis.WatchError:
                    continue  # a parallel attempt on the same counters went first: decide again
        return "new", settings.LOGIN_DELAY_S  # a burst of parallel attempts kept winning: this one waits

    def succeeded(self, keys: Keys, *, device: str, address: str, now: float, address_charged: bool) -> None:
        pipe = redis_sync().pipeline()
        pipe.delete(keys.ai, keys.kd, keys.kn)
        if address_charged:
            pipe.hincrby(keys.ip, "n", -1)
            pipe.expire(keys.ip, settings.LOGIN_FAILURE_MEMORY_S)
        pipe.zadd(keys.known, {f"a:{address}": now, f"d:{device}": now})
        pipe.zremrangebyscore(keys.known, "-inf", f"({now - settings.LOGIN_KNOWN_FOR_S!r}")
        pipe.zremrangebyrank(keys.known, 0, -41)  # the 20 latest addresses and devices, about
        pipe.expire(keys.known, settings.LOGIN_KNOWN_FOR_S)
        pipe.execute()


class _LocalCounters:
    """The same counters in this process's memory, while Redis does not answer (bounded; a lock for threads)."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, float]] = {}
        self._known: dict[str, dict[str, float]] = {}

    def admit(self, keys: Keys, *, device: str, address: str, now: float) -> tuple[str, float]:
        cutoff = now - settings.LOGIN_KNOWN_FOR_S
        with self._lock:
            known = self._known.get(keys.known, {})
            who, budgets = _budgets(keys, device=device, address=address, known=lambda m: known.get(m, 0) >= cutoff)
            counters = [(key, limit, self._live(key, now)) for key, limit in budgets]
            wait = max(_wait_s(n=n, last=last, limit=limit, now=now) for _key, limit, (n, last) in counters)
            if wait > 0:
                return who, wait
            if len(self._counters) >= self.MAX_KEYS:
                self._counters = {k: v for k, v in self._counters.items() if self._live(k, now)[0]}
            for key, _limit, (n, _last) in counters:
                self._counters[key] = (n + 1, now)
            return who, 0.0

    def _live(self, key: str, now: float) -> tuple[int, float]:
        n, last = self._counters.get(key, (0, 0.0))
        return (n, last) if now - last < settings.LOGIN_FAILURE_MEMORY_S else (0, 0.0)

    def succeeded(self, keys: Keys, *, device: str, address: str, now: float, address_charged: bool) -> None:
        with self._lock:
            for key in (keys.ai, keys.kd, keys.kn):
                self._counters.pop(key, None)
            if address_charged and keys.ip in self._counters:
                n, last = self._counters[keys.ip]
                self._counters[keys.ip] = (max(0, n - 1), last)
            if len(self._known) >= self.MAX_KEYS:
                self._known.clear()
            self._known.setdefault(keys.known, {}).update({f"a:{address}": now, f"d:{device}": now})


_redis_counters = _RedisCounters()
_local_counters = _LocalCounters()
_warned_at = [0.0]


def _fallback(exc: BaseException) -> _LocalCounters:
    if time.monotonic() - _warned_at[0] > 60:
        _warned_at[0] = time.monotonic()
        logger.warning("log-in limits counted in this process only: Redis did not answer (%s)", exc)
    return _local_counters


def attempt_admit(*, username: str, address: str | None, device: str) -> Verdict:
    """Charge one log-in attempt, or say how long the client must wait before it may try again."""
    now = _clock()
    account, addr = account_key(username), address_key(address)
    keys = Keys.of(account=account, address=addr, device=device)
    try:
        who, wait = _redis_counters.admit(keys, device=device, address=addr, now=now)
    except _UNAVAILABLE as exc:
        who, wait = _fallback(exc).admit(keys, device=device, address=addr, now=now)
    return Verdict(account, addr, device, who, wait)


def login_succeeded(*, request: HttpRequest, username: str) -> None:
    """Give back the attempt's charge and remember this client (address and device) for the account."""
    charged: Verdict | None = getattr(request, "login_limit", None)
    device = _device(request) or secrets.token_urlsafe(16)
    if device != _device(request):
        request.login_device_new = device  # type: ignore[attr-defined]  # set on the response (middleware)
    account, addr = account_key(username), address_key(client_ip(request))
    address_charged = charged is not None and charged.who == "new" and charged.account == account
    keys = Keys.of(account=account, address=addr, device=device)
    args: dict[str, Any] = {"device": device, "address": addr, "now": _clock(), "address_charged": address_charged}
    try:
        _redis_counters.succeeded(keys, **args)
    except _UNAVAILABLE as exc:
        _fallback(exc).succeeded(keys, **args)


class LoginLimitHandler(AxesHandler):  # type: ignore[misc]  # django-axes ships no type hints
    """django-axes' handler interface, answered by the progressive delays above."""

    def is_locked(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        if request is None:
            return False
        username = str((credentials or {}).get("username") or "")
        verdict = attempt_admit(username=username, address=request.axes_ip_address, device=_device(request))
        request.login_limit = verdict
        if verdict.wait_s > 0:
            request.axes_locked_out = True
            return True
        return False

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        return 0  # not a count against one limit: is_locked decides

    def user_login_failed(self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
        # Already counted when admitted (is_locked); a refused attempt was never checked.
        if request is not None and getattr(request, "axes_locked_out", False):
            metrics.incr("login_rate_limited")
        else:
            metrics.incr("login_failed")

    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        if request is not None:
            login_succeeded(request=request, username=user.get_username())

    def user_logged_out(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        pass


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """settings.AXES_LOCKOUT_CALLABLE: 429 with Retry-After and the wait in words."""
    verdict: Verdict | None = getattr(request, "login_limit", None)
    wait = max(1, math.ceil(verdict.wait_s)) if verdict is not None else 1
    response = render(request, "registration/locked_out.html", {"wait_s": wait}, status=429)
    response["Retry-After"] = str(wait)
    return response


class LoginDeviceMiddleware:
    """Sets the device cookie a successful log-in chose (login_succeeded): the owner's looser budget."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        return self._cookie(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._cookie(request, await self.get_response(request))

    @staticmethod
    def _cookie(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        device = getattr(request, "login_device_new", None)
        if device:
            response.set_cookie(
                DEVICE_COOKIE,
                device,
                max_age=settings.LOGIN_KNOWN_FOR_S,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response
