"""Login rate limiting: failed attempts counted in the shared cache (Redis), per IP and per username.

Counting only failures means a trader who types the password right is never slowed down, while a
guesser gets IP_LIMIT tries per window from one address, and one account gets USER_LIMIT tries from
anywhere (so guesses spread over many addresses still cannot hammer one account).
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache

from common import metrics

WINDOW_S = 15 * 60
IP_LIMIT = 10
USER_LIMIT = 5


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:{kind}:{digest}"


def _limits(*, ip: str, username: str) -> list[tuple[str, int]]:
    return [(_key("ip", ip), IP_LIMIT), (_key("user", username), USER_LIMIT)]


def _ttl(key: str) -> int:
    ttl = getattr(cache, "ttl", None)  # django-redis only; the local-memory fallback lacks it
    if ttl is None:
        return WINDOW_S
    value = ttl(key)
    return int(value) if value and value > 0 else WINDOW_S


def login_blocked_for(*, ip: str, username: str) -> int:
    """Seconds until this IP/username may try again; 0 when a try is allowed."""
    limits = _limits(ip=ip, username=username)
    found = cache.get_many([k for k, _ in limits])
    wait = 0
    for key, limit in limits:
        if int(found.get(key) or 0) >= limit:
            wait = max(wait, _ttl(key))
    return wait


def login_failure_record(*, ip: str, username: str) -> None:
    for key, _ in _limits(ip=ip, username=username):
        # add() starts the window at the first failure; incr() is atomic and keeps the expiry,
        # so concurrent failures are all counted and the window is not extended by new ones.
        cache.add(key, 0, WINDOW_S)
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, WINDOW_S)
    metrics.incr("login_failed")


def login_failures_clear(*, username: str) -> None:
    cache.delete(_key("user", username))
