from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, HttpResponseServerError, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse

from common import metrics


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the database and the cache answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    metrics.get("pages_hit")
    return JsonResponse({"status": "ok"})


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


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return HttpResponseNotFound(render_to_string("404.html", request=request))


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: whatever broke may be the database or the session store.
    return HttpResponseServerError(render_to_string("500.html"))
