"""Log-in limits, with django-axes: the client's real address, and two limits of different height.

django-axes compares one count with one limit. Its lock-out parameters here are
``[["username", "ip_address"], "ip_address"]`` (settings.AXES_LOCKOUT_PARAMETERS): failures for one
account from one address, and failures from one address for any account. The handler below scales
the second count so that it reaches AXES_FAILURE_LIMIT exactly when it reaches LOGIN_IP_FAILURE_LIMIT,
so one comparison serves both limits; and a successful log-in clears only that account's count from
that address, so a guesser cannot reset their address's count by logging in to an account of their own.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.http import HttpRequest

from common import metrics


@lru_cache(maxsize=8)
def _trusted_networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip())


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the peer's, unless the peer is a trusted proxy (settings.TRUSTED_PROXY_IPS).

    Behind trusted proxies, X-Forwarded-For is read from the right, skipping the trusted hops: the
    first address no trusted proxy vouches for is the client. Whatever a client writes into the header
    itself sits to the left of that and is never read. (django-ipware matches trusted proxies against
    the header's own entries, not the peer, so a client talking to the site directly could forge it.)
    """
    peer = str(request.META.get("REMOTE_ADDR") or "")  # None for a request from no peer (force_login)
    trusted = _trusted_networks(tuple(settings.TRUSTED_PROXY_IPS))
    peer_address = _address(peer)
    if not trusted or peer_address is None or not any(peer_address in net for net in trusted):
        return str(peer_address) if peer_address is not None else None
    hops = [h for h in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",") if h.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage from the client's side of the chain: stop at the last good hop
        if not any(address in net for net in trusted):
            return str(address)
        peer_address = address
    return str(peer_address)


class LoginLimitHandler(AxesDatabaseHandler):  # type: ignore[misc]  # django-axes ships no type hints
    """django-axes' database handler (the limits hold while Redis is down) with a higher per-IP limit."""

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        per_account_and_ip, per_ip = (
            sum(a.failures_since_start for a in attempts) for attempts in self.get_user_attempts(request, credentials)
        )
        scaled_ip = per_ip * settings.AXES_FAILURE_LIMIT // settings.LOGIN_IP_FAILURE_LIMIT
        return int(max(per_account_and_ip, scaled_ip))

    def reset_user_attempts(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        account_and_ip = self.filter_user_attempts(request, credentials)[0]
        count, _ = account_and_ip.delete()
        return int(count)

    def user_login_failed(self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
        metrics.incr("login_failed")
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is not None and getattr(request, "axes_locked_out", False):
            metrics.incr("login_rate_limited")
