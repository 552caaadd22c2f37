"""The client's address, decided in one place for log-in limits, logs, metrics and rate limits."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest


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
    if not hops:  # an edge that sends only X-Real-IP (nginx's realip convention)
        hops = [str(request.META.get("HTTP_X_REAL_IP", ""))] if request.META.get("HTTP_X_REAL_IP") else []
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage from the client's side of the chain: stop at the last good hop
        if not any(address in net for net in trusted):
            return str(address)
        peer_address = address
    return str(peer_address)
