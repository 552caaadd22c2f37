"""Structured JSON logs with request ids, and the client's real address behind the edge.

Every process that loads the settings (daphne, Celery, ingestors, aggregators, management commands)
logs one JSON object per line through structlog: the standard library's records (Django, Celery,
our own ``logging.getLogger`` calls) go through the same processors, so nothing needs to change where
logs are written. Context bound with ``structlog.contextvars`` (a request id, a task id) is added to
every record written while it is bound, whichever logger writes it.

The client's address: nginx overwrites ``X-Real-IP`` and ``X-Forwarded-For`` with the address it saw
(deploy/nginx.conf), so a client cannot add its own. Django believes those headers only when the
connection comes from an address in ``TRUSTED_PROXY_IPS`` (addresses or networks); from anywhere else
the peer address is the client. ``common.http.client_ip`` is the one place that decides.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from common.http import client_ip

REQUEST_ID_HEADER = "X-Request-ID"
# Request ids come from nginx ($request_id: 32 hex digits) or are made here; anything else is replaced.
_REQUEST_ID_MAX = 64

logger = structlog.get_logger("request")

SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def logging_config(*, level: str, json: bool) -> dict[str, Any]:
    """The LOGGING dict: every standard-library record rendered by structlog (JSON or plain)."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": "structlog.stdlib.ProcessorFormatter",
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                "foreign_pre_chain": SHARED_PROCESSORS,
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.request": {"level": "ERROR"}},
    }


def structlog_configure() -> None:
    """structlog's own loggers hand their events to the standard library (one output path)."""
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _request_id(request: HttpRequest) -> str:
    given = str(request.META.get("HTTP_X_REQUEST_ID") or "")
    if 0 < len(given) <= _REQUEST_ID_MAX and all(c.isalnum() or c in "-_" for c in given):
        return given
    return uuid.uuid4().hex


class RequestLogMiddleware:
    """Binds a request id and the client's address to every log record of the request; logs one line."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        start = self._start(request)
        response: HttpResponseBase = self.get_response(request)
        return self._finish(request, response, start)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        start = self._start(request)
        get: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        response = await get(request)
        return self._finish(request, response, start)

    def _start(self, request: HttpRequest) -> float:
        structlog.contextvars.clear_contextvars()
        request_id = _request_id(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        structlog.contextvars.bind_contextvars(request_id=request_id, client_ip=client_ip(request))
        return time.perf_counter()

    def _finish(self, request: HttpRequest, response: HttpResponseBase, start: float) -> HttpResponseBase:
        # Echoed for tracing, except on shared (public) pages: a cached copy would carry one visitor's id
        # to everyone, and both lanes of the page cache must send the same headers.
        if "public" not in response.get("Cache-Control", ""):
            response[REQUEST_ID_HEADER] = request.request_id  # type: ignore[attr-defined]
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "request",
                method=request.method,
                path=request.path,
                status=response.status_code,
                ms=round((time.perf_counter() - start) * 1000, 1),
            )
        structlog.contextvars.clear_contextvars()
        return response
