"""The tick streams survive a Redis crash: deploy/redis.conf.in's append-only file, for real.

A Redis process killed with SIGKILL loses nothing it acknowledged (each write is in the AOF, in the
kernel's page cache, before the reply); only a machine crash can lose the last second (everysec).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import redis

from deploy.render import fill
from testing.daphne import free_port
from testing.support import wait_for

REDIS_SERVER = shutil.which("redis-server")
TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "redis.conf.in"

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


def _start(conf: Path) -> subprocess.Popen[bytes]:
    assert REDIS_SERVER is not None
    return subprocess.Popen([REDIS_SERVER, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_tick_stream_entries_acknowledged_before_a_redis_crash_are_there_after_the_restart(tmp_path):
    port = free_port()
    conf = tmp_path / "redis.conf"
    conf.write_text(fill(TEMPLATE.read_text(), {"PORT": str(port), "DIR": str(tmp_path)}))
    client = redis.Redis(port=port, socket_timeout=2)
    server = _start(conf)
    try:
        wait_for(lambda: _ping(client), timeout=10, what="redis up")
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        stream = "prod:ticks:0"
        ids = [client.xadd(stream, {"batch": f"quotes-{i}".encode()}) for i in range(500)]
        client.xgroup_create(stream, "aggregator", id="0")
        server.send_signal(signal.SIGKILL)  # a crash: no shutdown, no final save
        server.wait(timeout=10)

        server = _start(conf)
        wait_for(lambda: _ping(client), timeout=10, what="redis back")
        wait_for(lambda: client.info("persistence").get("loading") == 0, timeout=10, what="AOF loaded")
        assert [entry_id for entry_id, _ in client.xrange(stream)] == ids
        assert client.xinfo_groups(stream)[0]["name"] in (b"aggregator", "aggregator")
    finally:
        server.kill()
        server.wait(timeout=10)
