"""Log-in limits: progressive delays rather than locks, counted in Redis, plugged into django-axes' hooks.

django-axes counts failures against one limit and locks until a cool-off ends; it has no growing delays
and no notion of a client the account knows. Its backend, signals and middleware are kept (they catch
every ``authenticate()``, the site's log-in and the admin's alike) and this handler decides.

Three kinds of counter, each a Redis hash {n: attempts, last: when}, forgotten LOGIN_FAILURE_MEMORY_S after
the last failure, shared by every web process:

- one account from one client address (``ai``): after LOGIN_FAILURE_LIMIT failures the next attempt must
  wait LOGIN_DELAY_S, the one after twice that, and so on, at most LOGIN_DELAY_MAX_S;
- one client address, any account (``ip``): the same, from the higher LOGIN_IP_FAILURE_LIMIT. An IPv6
  client is counted by its /64, which one subscriber usually holds whole;
- the owner's budget (``kd``/``kn``): a client that logged in to this account before, recognised by the
  device cookie that log-in set (``kd``, its own counter) or else by its address (``kn``), is counted
  only here, from the much looser LOGIN_KNOWN_FAILURE_LIMIT. A guesser elsewhere never touches it; one
  at the owner's address but without the cookie shares only the address's budget, never the device's.

An attempt is charged before the password is checked, in one Lua call that refuses it if a counter's
wait has not passed and counts it otherwise: parallel guesses cannot all slip in before the first
failure is recorded. A refused attempt is not checked and not counted, so it extends nothing. A
successful log-in gives its charge back: it clears the account's counter for that client and takes its
own attempt off the address's count (never the whole count, or a guesser could reset their address by
logging in to an account of their own).

The client address comes from common.http.client_ip (X-Forwarded-For believed from TRUSTED_PROXY_IPS
only). If Redis does not answer, log-ins are let through unlimited and a warning is logged: a Redis
outage must not lock everyone out, and guessing while it lasts is still slowed by password hashing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

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

# KEYS: known set, kd, kn, ai, ip. ARGV: now, device, address, known cutoff, delay, max delay, memory,
# known limit, account limit, address limit. Returns {who, seconds to wait (0: admitted and charged)}.
_ADMIT = """
local now = tonumber(ARGV[1])
local cutoff = tonumber(ARGV[4])
local function known(member)
  local s = redis.call('ZSCORE', KEYS[1], member)
  return s and tonumber(s) >= cutoff
end
local keys, limits, who
if ARGV[2] ~= '' and known('d:' .. ARGV[2]) then
  keys, limits, who = {KEYS[2]}, {tonumber(ARGV[8])}, 'device'
elseif known('a:' .. ARGV[3]) then
  keys, limits, who = {KEYS[3]}, {tonumber(ARGV[8])}, 'network'
else
  keys, limits, who = {KEYS[4], KEYS[5]}, {tonumber(ARGV[9]), tonumber(ARGV[10])}, 'new'
end
local delay, cap, wait = tonumber(ARGV[5]), tonumber(ARGV[6]), 0
for i, key in ipairs(keys) do
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  if n >= limits[i] then
    local last = tonumber(redis.call('HGET', key, 'last') or '0')
    local left = last + math.min(delay * 2 ^ (n - limits[i]), cap) - now
    if left > wait then wait = left end
  end
end
if wait > 0 then return {who, tostring(wait)} end
for _, key in ipairs(keys) do
  redis.call('HINCRBY', key, 'n', 1)
  redis.call('HSET', key, 'last', ARGV[1])
  redis.call('EXPIRE', key, ARGV[7])
end
return {who, '0'}
"""

# A successful log-in. KEYS: known set, the client's account counters (ai, kd, kn), the address counter.
# ARGV: now, known cutoff, known-for seconds, device ('' for none), address, whether the address was charged.
_SUCCEEDED = """
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
if ARGV[6] == '1' and tonumber(redis.call('HGET', KEYS[5], 'n') or '0') > 0 then
  redis.call('HINCRBY', KEYS[5], 'n', -1)
end
redis.call('ZADD', KEYS[1], ARGV[1], 'a:' .. ARGV[5])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[1], ARGV[1], 'd:' .. ARGV[4]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -41)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

_scripts: dict[str, Any] = {}
# Redis not answering, or not configured at all (USE_REDIS=0: django-redis raises NotImplementedError).
_UNAVAILABLE: tuple[type[BaseException], ...] = (*REDIS_DOWN, NotImplementedError)


def _clock() -> float:
    """Wall-clock seconds, shared by every web process (a test moves it instead of sleeping)."""
    return time.time()


def _script(source: str) -> Any:
    client = redis_sync()
    script = _scripts.get(source)
    if script is None or script.registered_client is not client:
        script = _scripts[source] = client.register_script(source)
    return script


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
    value = request.COOKIES.get(DEVICE_COOKIE, "")
    return value if _DEVICE_RE.match(value) else ""


@dataclass(frozen=True)
class Verdict:
    account: str
    address: str
    device: str
    who: str  # "device" or "network" (a client the account knows), "new", or "unlimited" (Redis down)
    wait_s: float

    def keys(self) -> list[str]:
        p = f"{settings.CACHE_KEY_PREFIX}:login"
        a, ip, d = self.account, self.address, self.device or "-"
        return [f"{p}:known:{a}", f"{p}:kd:{a}:{d}", f"{p}:kn:{a}:{ip}", f"{p}:ai:{a}:{ip}", f"{p}:ip:{ip}"]


def attempt_admit(*, username: str, address: str | None, device: str) -> Verdict:
    """Charge one log-in attempt, or say how long the client must wait before it may try again."""
    now = _clock()
    verdict = Verdict(account_key(username), address_key(address), device, "unlimited", 0.0)
    args = [
        repr(now),
        device,
        verdict.address,
        repr(now - settings.LOGIN_KNOWN_FOR_S),
        repr(settings.LOGIN_DELAY_S),
        repr(settings.LOGIN_DELAY_MAX_S),
        settings.LOGIN_FAILURE_MEMORY_S,
        settings.LOGIN_KNOWN_FAILURE_LIMIT,
        settings.LOGIN_FAILURE_LIMIT,
        settings.LOGIN_IP_FAILURE_LIMIT,
    ]
    try:
        who, wait = _script(_ADMIT)(keys=verdict.keys(), args=args)
    except _UNAVAILABLE as exc:
        logger.warning("log-in limits unavailable (%s): attempt let through unlimited", exc)
        return verdict
    return Verdict(verdict.account, verdict.address, device, who.decode(), float(wait))


def login_succeeded(*, request: HttpRequest, username: str) -> None:
    """Give back the attempt's charge and remember this client (address and device) for the account."""
    charged: Verdict | None = getattr(request, "login_limit", None)
    device = _device(request) or secrets.token_urlsafe(16)
    if device != _device(request):
        request.login_device_new = device  # type: ignore[attr-defined]  # set on the response (middleware)
    verdict = Verdict(account_key(username), address_key(client_ip(request)), device, "", 0.0)
    address_charged = charged is not None and charged.who == "new" and charged.account == verdict.account
    now = _clock()
    args = [repr(now), repr(now - settings.LOGIN_KNOWN_FOR_S), settings.LOGIN_KNOWN_FOR_S, device, verdict.address]
    known, kd, kn, ai, ip = verdict.keys()
    try:
        _script(_SUCCEEDED)(keys=[known, ai, kd, kn, ip], args=[*args, "1" if address_charged else "0"])
    except _UNAVAILABLE as exc:
        logger.warning("log-in limits unavailable (%s): success not recorded", exc)


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
