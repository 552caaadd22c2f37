"""HTTP in one place: the client's address (for log-in limits, logs, metrics and rate limits) and the
comparison of If-None-Match with an ETag (pages, API)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import parse_etags


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


def etag_weak_match(*, if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match header names this ETag, by weak comparison (RFC 9110 13.1.2), as the RFC
    asks for If-None-Match: W/"x" and "x" are the same tag either way round, any member of a list counts,
    and * matches whatever we have. nginx's gzip weakens the ETags it passes on, so a browser behind it
    sends back W/"x" for our "x"."""
    opaque = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == opaque for tag in parse_etags(if_none_match))
