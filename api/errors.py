"""Every API error is JSON: {"error": "...", "fields": {"param": ["message", ...]}}, never an HTML page.

422: a parameter failed the schema (type, range, pattern); 400: a value the schema allows but the data
does not (an unknown regulator); 404: no such broker or path; 401: live quotes without a valid key;
429: past the rate limit (with Retry-After). Each is counted (common.metrics).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from common import metrics

logger = logging.getLogger(__name__)


class FieldErrors(Exception):
    """A 400 with messages per parameter (from a page's form, or a check across parameters); ``status`` 404
    when the parameter names something that does not exist (an account the broker does not have)."""

    def __init__(self, fields: Mapping[str, Sequence[Any]], *, status: int = 400) -> None:
        self.fields = {name: [str(m) for m in messages] for name, messages in fields.items()}
        self.status = status
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.fields.items()))


def error_response(status: int, message: str, fields: dict[str, list[str]] | None = None) -> JsonResponse:
    return JsonResponse({"error": message, "fields": fields or {}}, status=status)


def _field_name(loc: Sequence[Any]) -> str:
    # ninja reports ("query", "tier") or ("path", "slug"); the caller knows parameters by name.
    names = [str(p) for p in loc if p not in ("query", "path", "body", "header", "cookie")]
    return ".".join(names) or "request"


def install(api: NinjaAPI) -> None:
    @api.exception_handler(ValidationError)
    def invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        metrics.incr("api_bad_request")
        fields: dict[str, list[str]] = {}
        for err in exc.errors:
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")  # pydantic's prefix for our checks
            fields.setdefault(_field_name(err.get("loc", ())), []).append(message)
        text = "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items())
        return error_response(422, f"Invalid parameters: {text}", fields)

    @api.exception_handler(FieldErrors)
    def bad_value(request: HttpRequest, exc: FieldErrors) -> HttpResponse:
        metrics.incr("api_not_found" if exc.status == 404 else "api_bad_request")
        return error_response(exc.status, str(exc), exc.fields)

    @api.exception_handler(AuthenticationError)
    def unauthorised(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        metrics.incr("api_unauthorised")
        response = error_response(
            401, "Send a valid API key in the X-API-Key header (create one on your account page)."
        )
        response["WWW-Authenticate"] = 'ApiKey header="X-API-Key"'
        return response

    @api.exception_handler(Throttled)
    def throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        return error_response(429, "Too many requests: slow down, or send an API key for a higher limit.")

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return error_response(exc.status_code, str(exc))

    @api.exception_handler(Exception)
    def server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("API error on %s", request.path)
        metrics.incr("api_server_error")
        return error_response(500, "Something went wrong on our side; it has been logged.")


def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Unknown paths under /api/v1/ (the site's HTML 404 page is for people)."""
    metrics.incr("api_not_found")
    if rest.endswith("/"):
        return error_response(404, f"No such API path; paths end without a slash: /api/v1/{rest.rstrip('/')[:200]}")
    return error_response(404, "No such API path; see /api/v1/docs.")


View = Callable[..., HttpResponseBase]


def json_methods(view: View) -> View:
    """An API view that answers HEAD like GET without the body, and a method it does not take with a JSON 405.

    ninja answers both with a plain-text 405 (a HEAD too, which caches and link checkers send)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        head = request.method == "HEAD"
        if head:
            request.method = "GET"
        response = view(request, *args, **kwargs)
        if response.status_code == 405:
            allowed = response.get("Allow", "GET")
            response = error_response(405, f"Method {request.method} not allowed here; use {allowed}.")
            response["Allow"] = f"{allowed}, HEAD" if "GET" in allowed else allowed
        if head:
            if isinstance(response, StreamingHttpResponse):
                response.streaming_content = []
            elif isinstance(response, HttpResponse):
                response["Content-Length"] = str(len(response.content))
                response.content = b""
        return response

    return wrapper
