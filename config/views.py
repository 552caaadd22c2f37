from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotFound,
    HttpResponsePermanentRedirect,
    HttpResponseServerError,
    JsonResponse,
)
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.cache import never_cache

from common import metrics
from common.redis import redis_sync
from live.hub import hubs_health
from marketdata import keys

READY_AGGREGATOR_LAG_S = 30.0  # ticks waiting longer than this for the aggregator: history is falling behind
READY_HUB_QUIET_S = 15.0  # a hub with clients that heard nothing this long while feeds are up is not serving


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the database and the cache answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    metrics.get("pages_hit")
    return JsonResponse({"status": "ok"})


def _check(name: str, checks: dict[str, dict[str, Any]], probe: Any) -> None:
    try:
        checks[name] = probe()
    except Exception as exc:  # readiness reports what failed; it never fails itself
        checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _redis() -> dict[str, Any]:
    started = time.monotonic()
    redis_sync().ping()
    return {"ok": True, "ms": round(1000 * (time.monotonic() - started), 2)}


def _feeds() -> dict[str, Any]:
    counts = {"up": 0, "stale": 0, "down": 0}
    for data in redis_sync().hvals(keys.status_hash()):
        try:
            status = json.loads(data).get("status")
        except (ValueError, AttributeError):
            continue
        if status in counts:
            counts[status] += 1
    return {"ok": counts["up"] > 0, **counts}


def _stream_id_ms(entry_id: Any) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return int(text.partition("-")[0])


def _aggregator() -> dict[str, Any]:
    """How far the aggregator is behind, per tick stream: entries not yet read (the group's lag) and
    entries read but not yet committed (pending), as the age of the oldest of them (stream ids are
    milliseconds)."""
    conn = redis_sync()
    now_ms = time.time() * 1000
    worst_s = 0.0
    shards: list[dict[str, Any]] = []
    for shard in range(settings.LIVE_STREAM_SHARDS):
        stream = keys.tick_stream(shard)
        if not conn.exists(stream):
            shards.append({"shard": shard, "entries": 0})
            continue
        groups = {
            g["name"].decode() if isinstance(g["name"], bytes) else g["name"]: g for g in conn.xinfo_groups(stream)
        }
        group = groups.get(keys.AGGREGATOR_GROUP)
        if group is None:
            shards.append({"shard": shard, "error": "no aggregator group"})
            worst_s = float("inf")
            continue
        lag = int(group.get("lag") or 0)
        behind_s = 0.0
        if lag:
            last = conn.xinfo_stream(stream)["last-generated-id"]
            first_unread = conn.xrange(stream, min="(" + _id_text(group["last-delivered-id"]), count=1)
            oldest = _stream_id_ms(first_unread[0][0]) if first_unread else _stream_id_ms(last)
            behind_s = max(behind_s, (now_ms - oldest) / 1000)
        pending = int(group.get("pending") or 0)
        if pending:
            summary = conn.xpending(stream, keys.AGGREGATOR_GROUP)
            if summary.get("min"):
                behind_s = max(behind_s, (now_ms - _stream_id_ms(summary["min"])) / 1000)
        worst_s = max(worst_s, behind_s)
        shards.append({"shard": shard, "lag": lag, "pending": pending, "behind_s": round(behind_s, 3)})
    return {"ok": worst_s <= READY_AGGREGATOR_LAG_S, "bound_s": READY_AGGREGATOR_LAG_S, "shards": shards}


def _id_text(entry_id: Any) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def _hub(feeds_up: bool) -> dict[str, Any]:
    hubs = hubs_health()
    ok = all(
        h["healthy"] and not (feeds_up and h["clients"] and h["last_message_age_s"] > READY_HUB_QUIET_S) for h in hubs
    )
    return {"ok": ok, "hubs": hubs}


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: this web process can serve traders what is true. 503 with the failing parts otherwise.

    Unlike /healthz (liveness: restart me if this fails), a load balancer only stops sending new
    traffic here while it fails."""
    checks: dict[str, dict[str, Any]] = {}
    _check("database", checks, _database)
    _check("redis", checks, _redis)
    _check("feeds", checks, _feeds)
    _check("aggregator", checks, _aggregator)
    feeds_up = bool(checks["feeds"].get("up"))
    _check("live_hub", checks, lambda: _hub(feeds_up))
    ready = all(c["ok"] for c in checks.values())
    return JsonResponse({"status": "ready" if ready else "unready", "checks": checks}, status=200 if ready else 503)


def robots_txt(request: HttpRequest) -> HttpResponse:
    """Crawl the public pages; keep out of accounts, admin and the personal parts."""
    lines = [
        "User-agent: *",
        "Disallow: /accounts/",
        "Disallow: /admin/",
        "Disallow: /execution/",
        "Disallow: /live/preferences/",
        f"Sitemap: {request.build_absolute_uri(reverse('sitemap'))}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers and crawlers ask for whatever the page links: the hashed static copy
    (served with a far-future cache by whitenoise), so the answer is never a 404."""
    response = HttpResponsePermanentRedirect(static("favicon.ico"))
    response["Cache-Control"] = "public, max-age=86400"
    return response


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return HttpResponseNotFound(render_to_string("404.html", request=request))


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: whatever broke may be the database or the session store.
    return HttpResponseServerError(render_to_string("500.html"))
