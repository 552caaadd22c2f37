"""Rate limits of the API, counted in Redis by django-ratelimit so every web process shares them.

A request with a valid API key is counted against its key at the keyed rate; any other request against
its client address at the anonymous rate. django-ratelimit counts with an atomic add/incr per fixed
window, so concurrent requests in many processes are all counted (ninja's own throttles read and
rewrite a list, which loses counts under concurrency).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from ninja.throttling import BaseThrottle

from api.selectors import api_key_user_id
from common import metrics

API_KEY_HEADER = "X-API-Key"


def request_key_user_id(request: HttpRequest) -> int | None:
    """The user id behind the request's API key, or None (remembered on the request)."""
    if not hasattr(request, "_api_key_user_id"):
        raw = request.headers.get(API_KEY_HEADER, "")
        request._api_key_user_id = api_key_user_id(raw=raw) if raw else None  # type: ignore[attr-defined]
    found: int | None = request._api_key_user_id  # type: ignore[attr-defined]
    return found


class RedisRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.time_left = 0

    def allow_request(self, request: HttpRequest) -> bool:
        user_id = request_key_user_id(request)
        if user_id is not None:
            ident, rate = f"key:{user_id}", settings.API_RATE_KEYED
        else:
            ident, rate = f"ip:{self.get_ident(request)}", settings.API_RATE_ANON
        usage = get_usage(request, group="api", key=lambda _group, _request: ident, rate=rate, increment=True)
        if usage is None or not usage["should_limit"]:
            return True
        self.time_left = max(1, int(usage["time_left"]))
        metrics.incr("api_throttled")
        return False

    def wait(self) -> float | None:
        return float(self.time_left)
