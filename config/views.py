from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, HttpResponseServerError, JsonResponse
from django.template.loader import render_to_string

from pagecache import stats


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the database and the cache answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    stats.get("pages_hit")
    return JsonResponse({"status": "ok"})


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return HttpResponseNotFound(render_to_string("404.html", request=request))


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: whatever broke may be the database or the session store.
    return HttpResponseServerError(render_to_string("500.html"))
