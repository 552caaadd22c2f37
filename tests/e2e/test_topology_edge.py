"""The nginx edge of deploy/nginx.conf.in, run for real in front of daphne.

Revalidation reaches visitors through the edge, logged-in pages never enter the edge cache, and the
client's address reaches Django only as nginx saw it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from deploy.render import nginx_conf
from testing.daphne import Daphne, daphne_start, daphne_stop, daphne_wait, free_port
from testing.support import subprocess_env, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed (apt-get install nginx)"),
]


@dataclass
class Edge:
    url: str
    origin: Daphne

    def origin_log(self) -> list[dict[str, object]]:
        """The origin's JSON log lines so far."""
        self.origin.stderr.seek(0)
        lines = []
        for raw in self.origin.stderr.read().decode(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    continue
        return lines


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    yield from _edge(tmp_path, background="thread")


@pytest.fixture
def edge_on_celery(tmp_path: Path) -> Iterator[Edge]:
    """The edge in front of an origin that leaves regeneration to Celery, as in production."""
    yield from _edge(tmp_path, background="celery")


def _edge(tmp_path: Path, *, background: str) -> Iterator[Edge]:
    origin = daphne_start(
        subprocess_env(TRUSTED_PROXY_IPS="127.0.0.1/32", PAGECACHE_BACKGROUND=background, LOG_LEVEL="INFO")
    )
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        nginx_conf(
            listen=f"127.0.0.1:{port}",
            upstreams=[f"127.0.0.1:{origin.port}"],
            static_root=str(settings.STATIC_ROOT),
            var=str(tmp_path),
            user="root" if os.geteuid() == 0 else "",
            workers="1",
            access_log=str(tmp_path / "access.log"),
        )
    )
    errors = (tmp_path / "nginx-errors.log").open("wb")
    nginx = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=errors)
    try:
        daphne_wait(origin)
        wait_for(lambda: _answers(port) or nginx.poll() is not None, timeout=10, what="nginx listening")
        assert nginx.poll() is None, (tmp_path / "nginx-errors.log").read_text()
        yield Edge(f"http://127.0.0.1:{port}", origin)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        errors.close()
        daphne_stop(origin)


def _answers(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def _title(html: str) -> str:
    found = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    return found.group(1).strip() if found else ""


def test_an_admin_save_is_served_by_the_edge_within_seconds_not_after_s_maxage(demo_committed, edge, settings):
    from brokers.models import Broker

    settings.PAGECACHE_BACKGROUND = "thread"
    url = edge.url + "/brokers/kestrel-fx/"
    with httpx.Client(timeout=5) as client:
        wait_for(
            lambda: client.get(url).headers.get("x-edge-cache") == "HIT", timeout=10, what="the edge caching the page"
        )
        first = client.get(url)
        assert "Kestrel FX" in _title(first.text)
        # The origin still says s-maxage=300 for other caches; the edge tells browsers to come back.
        assert first.headers["cache-control"] == "public, max-age=0, must-revalidate"

        broker = Broker.objects.get(slug="kestrel-fx")
        broker.name = "Kestrel FX Renamed"
        broker.save()

        wait_for(
            lambda: "Kestrel FX Renamed" in _title(client.get(url).text), timeout=5, what="the edge serving the save"
        )
        # The edge answers from its copy again once it has the new one.
        wait_for(lambda: client.get(url).headers.get("x-edge-cache") == "HIT", timeout=5, what="a hit on the new copy")


def test_an_admin_save_reaches_the_edge_while_no_celery_worker_takes_the_regeneration(
    demo_committed, edge_on_celery, settings
):
    # Production's setting, and no worker at all: the regenerations this save queues stay queued,
    # as they would behind a backlog. The edge's next revalidation must fetch the change regardless.
    from brokers.models import Broker
    from config.celery_app import app

    settings.PAGECACHE_BACKGROUND = "celery"
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(settings.PAGECACHE_QUEUE)  # type: ignore[attr-defined]
    url = edge_on_celery.url + "/brokers/kestrel-fx/"
    with httpx.Client(timeout=5) as client:
        wait_for(
            lambda: client.get(url).headers.get("x-edge-cache") == "HIT", timeout=10, what="the edge caching the page"
        )
        broker = Broker.objects.get(slug="kestrel-fx")
        broker.name = "Kestrel FX Saved"
        broker.save()  # post_save: the page cache is revalidated on commit, as after the admin's save

        wait_for(
            lambda: "Kestrel FX Saved" in _title(client.get(url).text),
            timeout=5,
            what="the edge serving the save with the regeneration still queued",
        )
    with app.connection_for_write() as conn:
        queued = conn.default_channel.queue_declare(settings.PAGECACHE_QUEUE).message_count  # type: ignore[attr-defined]
        conn.default_channel.queue_purge(settings.PAGECACHE_QUEUE)  # type: ignore[attr-defined]
    assert queued >= 1  # no worker took it: the origin rendered the page for the edge's request


def test_the_edge_revalidates_with_the_origin_conditionally(demo_committed, edge):
    url = edge.url + "/brokers/"
    with httpx.Client(timeout=5) as client:
        statuses: set[str] = set()

        def revalidated() -> bool:
            statuses.add(client.get(url).headers.get("x-edge-cache", ""))
            return "REVALIDATED" in statuses

        wait_for(
            revalidated,
            timeout=10,
            what="a conditional revalidation (304 from the origin)",
        )


def test_logged_in_pages_never_enter_the_edge_cache_and_anonymous_visitors_never_see_them(demo_committed, edge):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("edgetrader", password="a-long-edge-password-1")
    pages = ["/", "/brokers/", "/brokers/kestrel-fx/", "/methodology/"]
    with httpx.Client(base_url=edge.url, timeout=5) as trader:
        login_page = trader.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)
        assert token is not None
        response = trader.post(
            "/accounts/login/",
            data={
                "username": "edgetrader",
                "password": "a-long-edge-password-1",
                "csrfmiddlewaretoken": token.group(1),
            },
            headers={"Referer": edge.url + "/accounts/login/"},
        )
        assert response.status_code in (200, 302), response.text[:500]
        assert "sessionid" in trader.cookies
        for path in pages:
            page = trader.get(path)
            assert "edgetrader" in page.text, path
            assert page.headers.get("x-edge-cache") == "BYPASS", path
            assert "private" in page.headers.get("cache-control", ""), path

    with httpx.Client(base_url=edge.url, timeout=5) as visitor:
        for path in pages:
            for _ in range(3):
                page = visitor.get(path)
                assert page.status_code == 200, path
                assert "edgetrader" not in page.text, path
                assert "csrfmiddlewaretoken" not in page.text or page.headers.get("x-edge-cache") in ("MISS", None)


def test_the_origin_sees_the_client_address_nginx_saw_never_one_the_client_claims(demo_committed, edge):
    response = httpx.get(
        edge.url + "/healthz",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"},
        timeout=5,
    )
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # nginx's $request_id, carried to the origin

    def logged() -> dict[str, object] | None:
        return next((line for line in edge.origin_log() if line.get("request_id") == request_id), None)

    wait_for(lambda: logged() is not None, timeout=5, what="the origin's log line of the request")
    line = logged()
    assert line is not None
    assert line["client_ip"] == "127.0.0.1"
    assert line["path"] == "/healthz"


def test_the_edge_serves_hashed_static_files_from_disk_and_hides_metrics(demo_committed, edge):
    manifest = json.loads((Path(settings.STATIC_ROOT) / "staticfiles.json").read_text())
    hashed = next(v for k, v in manifest["paths"].items() if k.endswith(".css"))
    response = httpx.get(f"{edge.url}/static/{hashed}", timeout=5)
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    assert "x-request-id" not in response.headers  # nginx answered: the origin never saw it
    assert httpx.get(edge.url + "/metrics", timeout=5).status_code == 404


def test_the_edge_sends_the_origins_gzip_copy_and_unzips_it_only_for_a_client_without_gzip(demo_committed, edge):
    url = edge.url + "/brokers/kestrel-fx/"
    with httpx.Client(timeout=5) as client:
        wait_for(
            lambda: client.get(url).headers.get("x-edge-cache") == "HIT", timeout=10, what="the edge caching the page"
        )
        raw = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert raw.headers["content-encoding"] == "gzip"
        assert "Accept-Encoding" in raw.headers["vary"]
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.headers.get("x-edge-cache") == "HIT"  # the same cached copy, unzipped by the edge
        assert raw.text == plain.text  # httpx unzipped the one and "Kestrel FX" in plain.text

        # Static text: the .gz copies collectstatic wrote, or compressed by nginx.
        script = re.search(r'src="(/static/js/[^"]+\.js)"', plain.text)
        assert script is not None
        static = client.get(edge.url + script.group(1), headers={"Accept-Encoding": "gzip"})
        assert static.status_code == 200 and static.headers["content-encoding"] == "gzip"


def test_the_edge_never_compresses_a_logged_in_page(demo_committed, edge):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("gziptrader", password="a-long-edge-password-2")
    with httpx.Client(base_url=edge.url, timeout=5) as trader:
        login_page = trader.get("/accounts/login/", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in login_page.headers  # a form with a CSRF token: BREACH
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)
        assert token is not None
        trader.post(
            "/accounts/login/",
            data={
                "username": "gziptrader",
                "password": "a-long-edge-password-2",
                "csrfmiddlewaretoken": token.group(1),
            },
            headers={"Referer": edge.url + "/accounts/login/"},
        )
        for path in ("/", "/brokers/kestrel-fx/"):
            page = trader.get(path, headers={"Accept-Encoding": "gzip"})
            assert "gziptrader" in page.text and "csrfmiddlewaretoken" in page.text, path
            assert "content-encoding" not in page.headers, path
