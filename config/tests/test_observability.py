"""Client address behind the edge, JSON logs with request ids, Prometheus metrics."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import RequestFactory

from common import metrics
from common.http import client_ip


def test_the_forwarded_address_is_believed_only_from_a_trusted_proxy(settings):
    settings.TRUSTED_PROXY_IPS = ["10.0.0.0/8"]
    factory = RequestFactory()
    from_edge = factory.get("/", REMOTE_ADDR="10.1.2.3", HTTP_X_REAL_IP="198.51.100.7")
    assert client_ip(from_edge) == "198.51.100.7"
    spoofed = factory.get("/", REMOTE_ADDR="192.0.2.50", HTTP_X_REAL_IP="198.51.100.7", HTTP_X_FORWARDED_FOR="1.1.1.1")
    assert client_ip(spoofed) == "192.0.2.50"


def test_without_x_real_ip_the_right_most_forwarded_address_is_the_one_the_proxy_added(settings):
    settings.TRUSTED_PROXY_IPS = ["127.0.0.1"]
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.8")
    assert client_ip(request) == "198.51.100.8"


def test_garbage_in_the_forwarded_header_falls_back_to_the_peer(settings):
    settings.TRUSTED_PROXY_IPS = ["127.0.0.1"]
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="not-an-address")
    assert client_ip(request) == "127.0.0.1"


@pytest.mark.django_db
def test_every_request_logs_one_json_line_with_its_request_id(client, capsys):
    from config.observability import logging_config

    handler = logging.StreamHandler()
    formatter_spec = logging_config(level="INFO", json=True)["formatters"]["structured"]
    factory = formatter_spec.pop("()")
    from structlog.stdlib import ProcessorFormatter

    assert factory == "structlog.stdlib.ProcessorFormatter"
    handler.setFormatter(ProcessorFormatter(**formatter_spec))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        response = client.get("/healthz", HTTP_X_REQUEST_ID="edge-abc123")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert response["X-Request-ID"] == "edge-abc123"
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    request_line = next(line for line in lines if line.get("event") == "request")
    assert request_line["request_id"] == "edge-abc123"
    assert request_line["path"] == "/healthz"
    assert request_line["status"] == 200


@pytest.mark.django_db
def test_a_request_id_that_is_not_a_plain_token_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="<script>")
    assert response["X-Request-ID"] != "<script>"
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_metrics_show_the_shared_counters_and_django_prometheus(client):
    metrics.incr("pages_hit", 7)
    metrics.incr("pages_stale", 2)
    metrics.incr("ws_dropped_slow")
    from config.metrics import task_duration_record

    task_duration_record(task="trustmetrics.tasks.trust_recompute", seconds=1.5)
    body = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert "brokerwatch_pages_hit_total 7.0" in body
    assert "brokerwatch_pages_stale_total 2.0" in body
    assert "brokerwatch_ws_dropped_slow_total 1.0" in body
    assert 'brokerwatch_trust_recompute_seconds{task="trust_recompute"} 1.5' in body
    assert "brokerwatch_aggregator_lag_entries" in body
    assert "django_http_requests_before_middlewares_total" in body


@pytest.mark.django_db
def test_metrics_are_refused_to_anyone_outside_the_allowed_addresses(client, settings):
    settings.TRUSTED_PROXY_IPS = []
    assert client.get("/metrics", REMOTE_ADDR="198.51.100.9").status_code == 403
