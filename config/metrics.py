"""Prometheus metrics: ``/metrics`` on every web process, and a port for the other processes.

Two kinds of figures:

- **Per process** (django-prometheus's request and latency histograms, CPU, memory, GC): each process
  keeps its own; scrape every web process (and every ``METRICS_PORT``) separately.
- **Shared** (the app's own counters): written by whichever process counts them, into Redis
  (``common.metrics``, the tick streams, the rejection hash), and read here at scrape time. They are
  the same whichever web process answers: no pushgateway, and nothing lost when a process restarts.
  In Prometheus, aggregate them with ``max`` across web targets, not ``sum``.

Other processes (ingestors, aggregators, the Celery worker) run under ``python -m config.run
--metrics-port N ...``, which serves this process's registry on that port.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from common import metrics
from common.http import client_ip
from common.redis import REDIS_DOWN, redis_sync
from marketdata import keys

# common.metrics counters shown as brokerwatch_<name>_total, with what each counts.
COUNTERS: dict[str, str] = {
    "pages_hit": "Regenerated pages served fresh from the page cache (both lanes).",
    "pages_miss": "Regenerated pages rendered because no copy was cached.",
    "pages_stale": "Stale regenerated pages served while one background regeneration ran.",
    "pages_rendered": "Page renders (misses and regenerations).",
    "pages_revalidated": "Pages a change had made outdated, rendered for the first request after it.",
    "pages_awaited": "Revalidations of an outdated copy that waited for a render already under way.",
    "pages_regenerated": "Background regenerations finished.",
    "ws_dropped_slow": "WebSocket clients dropped for staying slow (close 4008).",
    "ws_conflated": "Quotes replaced in a client's outbox by a newer one before it was sent.",
    "live_superseded_upstream": "Quotes the live hub read with a newer one of the same slot behind them (not sent).",
    "ws_refused": "WebSocket connections refused.",
    "bad_query": "Requests with malformed query parameters.",
    "login_failed": "Failed log-ins.",
    "login_rate_limited": "Log-ins refused by the rate limit.",
}
TASK_SECONDS = "celery_task_ms:{task}"
TASK_RUNS = "celery_task_runs:{task}"
TASK_LAST_MS = "celery_task_last_ms:{task}"
TRUST_TASKS = ("trustmetrics.tasks.trust_recompute", "trustmetrics.tasks.trust_recompute_full")
TASKS_KEY = "celery_tasks_seen"


def task_duration_record(*, task: str, seconds: float) -> None:
    """Called after every Celery task (config/celery_app.py): run count, total and last duration."""
    ms = max(0, round(seconds * 1000))
    metrics.incr(TASK_RUNS.format(task=task))
    metrics.incr(TASK_SECONDS.format(task=task), ms)
    cache.set(metrics.STATS_KEY.format(name=TASK_LAST_MS.format(task=task)), ms, None)
    seen = set(cache.get(metrics.STATS_KEY.format(name=TASKS_KEY)) or ())
    if task not in seen:
        cache.set(metrics.STATS_KEY.format(name=TASKS_KEY), sorted(seen | {task}), None)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SharedCollector(Collector):
    """The app's counters, read from Redis at scrape time (the same from every process)."""

    def collect(self) -> Iterator[Any]:
        try:
            yield from self._counters()
            yield from self._quotes()
            yield from self._tasks()
        except REDIS_DOWN:
            up = GaugeMetricFamily("brokerwatch_shared_metrics_up", "Whether Redis answered for the shared metrics.")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("brokerwatch_shared_metrics_up", "Whether Redis answered for the shared metrics.")
        up.add_metric([], 1)
        yield up

    def _counters(self) -> Iterator[Any]:
        values = metrics.get_many(list(COUNTERS))
        for name, help_text in COUNTERS.items():
            family = CounterMetricFamily(f"brokerwatch_{name}", help_text)
            family.add_metric([], values[name])
            yield family
        hits, stale, miss = values["pages_hit"], values["pages_stale"], values["pages_miss"]
        share = GaugeMetricFamily("brokerwatch_pages_hit_ratio", "Page-cache hits over all page-cache lookups.")
        share.add_metric([], hits / (hits + stale + miss) if hits + stale + miss else 0.0)
        yield share

    def _quotes(self) -> Iterator[Any]:
        r = redis_sync()
        # Each stream entry is one batch of accepted quotes (marketdata/keys.py), so batches are what counts here.
        accepted = CounterMetricFamily(
            "brokerwatch_tick_batches_accepted",
            "Batches of accepted quotes added to the tick streams.",
            labels=["shard"],
        )
        lag = GaugeMetricFamily(
            "brokerwatch_aggregator_lag_entries", "Stream entries not yet read by the aggregator.", labels=["shard"]
        )
        pending = GaugeMetricFamily(
            "brokerwatch_aggregator_pending_entries", "Entries read but not yet committed.", labels=["shard"]
        )
        lag_s = GaugeMetricFamily(
            "brokerwatch_aggregator_lag_seconds", "Age of the oldest entry not yet committed.", labels=["shard"]
        )
        now_ms = time.time() * 1000
        for shard in range(settings.LIVE_STREAM_SHARDS):
            stream = keys.tick_stream(shard)
            label = [str(shard)]
            try:
                info = r.xinfo_stream(stream)
            except Exception as exc:  # no such stream yet: nothing accepted on this shard
                if "no such key" not in str(exc).lower():
                    raise
                accepted.add_metric(label, 0)
                continue
            accepted.add_metric(label, int(info.get("entries-added", info.get("length", 0))))
            groups = {_text(g["name"]): g for g in r.xinfo_groups(stream)}
            group = groups.get(keys.AGGREGATOR_GROUP)
            if group is None:
                lag.add_metric(label, int(info.get("length", 0)))
                continue
            lag.add_metric(label, int(group.get("lag") or 0))
            pending.add_metric(label, int(group.get("pending") or 0))
            delivered = _text(group.get("last-delivered-id") or "0-0")
            oldest = r.xrange(stream, min=f"({delivered}", count=1) if int(group.get("lag") or 0) else []
            oldest_ms = int(_text(oldest[0][0]).split("-")[0]) if oldest else now_ms
            lag_s.add_metric(label, max(0.0, (now_ms - oldest_ms) / 1000))
        rejected = CounterMetricFamily(
            "brokerwatch_quotes_rejected", "Quotes rejected by validation.", labels=["broker", "reason"]
        )
        for field, count in r.hgetall(keys.rejects_hash()).items():
            broker, _, reason = _text(field).partition(":")
            rejected.add_metric([broker, reason], int(count))
        yield from (accepted, rejected, lag, pending, lag_s)

    def _tasks(self) -> Iterator[Any]:
        tasks = list(cache.get(metrics.STATS_KEY.format(name=TASKS_KEY)) or ())
        runs = CounterMetricFamily("brokerwatch_celery_task_runs", "Celery task runs finished.", labels=["task"])
        seconds = CounterMetricFamily("brokerwatch_celery_task_seconds", "Time spent in Celery tasks.", labels=["task"])
        names = [TASK_RUNS.format(task=t) for t in tasks] + [TASK_SECONDS.format(task=t) for t in tasks]
        values = metrics.get_many(names)
        for task in tasks:
            runs.add_metric([task], values[TASK_RUNS.format(task=task)])
            seconds.add_metric([task], values[TASK_SECONDS.format(task=task)] / 1000)
        trust = GaugeMetricFamily(
            "brokerwatch_trust_recompute_seconds", "Duration of the last trust-score recompute.", labels=["task"]
        )
        for task in TRUST_TASKS:
            last = cache.get(metrics.STATS_KEY.format(name=TASK_LAST_MS.format(task=task)))
            if last is not None:
                trust.add_metric([task.rsplit(".", 1)[-1]], int(last) / 1000)
        yield from (runs, seconds, trust)


_SHARED = CollectorRegistry(auto_describe=False)
_SHARED.register(SharedCollector())


def metrics_view(request: HttpRequest) -> HttpResponse:
    """This process's metrics and the shared ones, for Prometheus; only from METRICS_ALLOWED_IPS."""
    if client_ip(request) not in settings.METRICS_ALLOWED_IPS:
        return HttpResponseForbidden("metrics are internal\n", content_type="text/plain")
    body = generate_latest(REGISTRY) + generate_latest(_SHARED)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def metrics_serve(*, port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 (scraped from other hosts)
    """Serve this process's registry on a port (a daemon thread), for processes without HTTP."""
    start_http_server(port, addr=addr)
