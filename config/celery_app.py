import os
import time
from typing import Any

import structlog
from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("brokerwatch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_started: dict[str, float] = {}


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """A task enqueued while a request (or a task) is handled carries its request id along."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if headers is not None and request_id:
        headers["request_id"] = request_id


@task_prerun.connect
def _bind_task(task_id: str = "", task: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    request_id = getattr(getattr(task, "request", None), "request_id", None) or task_id
    structlog.contextvars.bind_contextvars(task_id=task_id, task=getattr(task, "name", ""), request_id=request_id)
    _started[task_id] = time.perf_counter()


@task_postrun.connect
def _record_task(task_id: str = "", task: Any = None, **_: Any) -> None:
    from config.metrics import task_duration_record

    started = _started.pop(task_id, None)
    if started is not None and task is not None:
        try:
            task_duration_record(task=task.name, seconds=time.perf_counter() - started)
        except Exception:  # metrics must never fail a task
            structlog.get_logger("celery").warning("task metrics not recorded", exc_info=True)
    structlog.contextvars.clear_contextvars()


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """METRICS_PORT: the worker's own registry on that port (the shared counters are on /metrics)."""
    port = int(os.environ.get("METRICS_PORT", "0") or 0)
    if port:
        from config.metrics import metrics_serve

        metrics_serve(port=port)
