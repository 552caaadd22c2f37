"""Throwaway servers for fault tests: a redis-server and a PostgreSQL 15 cluster of their own, on their own
ports and directories, that a test may kill, stop and restart at will without touching the shared ones."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poll(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {timeout} s")
        time.sleep(0.05)


class RedisServer:
    """redis-server on its own port and directory; AOF (appendfsync everysec) unless aof=False."""

    def __init__(self, directory: Path, *, aof: bool = True, fsync: str = "everysec") -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.aof = aof
        self.fsync = fsync
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def _up(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:  # refused, or still loading the AOF
            return False

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        args += ["--save", "", "--appendonly", "yes" if self.aof else "no", "--appendfsync", self.fsync]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _poll(self._up, 30, "redis-server up")

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): Redis fsyncs its AOF before it exits."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None

    def kill(self) -> None:
        """A crash: SIGKILL, no chance to fsync."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(30)
            self.proc = None


class PostgresCluster:
    """A PostgreSQL 15 cluster made with initdb in a temporary directory, run with pg_ctl as the postgres user."""

    def __init__(self, directory: Path) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql")
        self.bin = Path(bins[-1])
        self.dir = directory
        self.data = directory / "data"
        self.port = free_port()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._as_root = os.geteuid() == 0
        if self._as_root:  # the server refuses to run as root: the postgres user must reach and own its directory
            tmp = Path(tempfile.gettempdir())
            for parent in self.dir.parents:  # temporary directories are 0700: open the way down (tests only)
                if tmp not in parent.parents:
                    break
                os.chmod(parent, 0o755)  # noqa: S103  # the server runs as postgres, not root
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.dir}'\n"
                "shared_buffers = 32MB\nmax_connections = 40\n"
            )

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{tool} failed: {done.stderr.decode()[-1000:]}")

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def _up(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60", "start")
        _poll(self._up, 60, "PostgreSQL up")

    def stop(self, mode: str = "fast") -> None:
        """fast: a clean shutdown (sessions ended, checkpoint); immediate: a crash, recovered from the WAL."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def copy_database(self, *, source_url: str, name: str) -> str:
        """Create `name` here as a copy (schema and rows) of the database at source_url; returns its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        dump = subprocess.run(
            [str(self.bin / "pg_dump"), "--no-owner", "--no-privileges", source_url],
            check=True,
            capture_output=True,
            timeout=120,
        ).stdout
        subprocess.run(
            [str(self.bin / "psql"), "-q", "-v", "ON_ERROR_STOP=1", self.url(name)],
            input=dump,
            check=True,
            capture_output=True,
            timeout=120,
        )
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # not running
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def kill9(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
