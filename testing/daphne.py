"""Start the real ASGI app under daphne (through config.web) in a subprocess, for benchmarks and e2e tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Daphne:
    port: int
    proc: subprocess.Popen[bytes]
    # A file, not a pipe: nobody reads the output while the server runs, and a full pipe would block it.
    stderr: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def daphne_start(env: dict[str, str], *, app: str = "config.asgi:application") -> Daphne:
    """Start daphne on a free port without waiting for it; see daphne_wait."""
    port = free_port()
    # BW_DAPHNE_LOG=path keeps the server's output for a look after the run (appended).
    log = os.environ.get("BW_DAPHNE_LOG")
    stderr = open(log, "ab") if log else tempfile.TemporaryFile()  # noqa: SIM115 (daphne_stop closes it)
    proc = subprocess.Popen(
        [sys.executable, "-m", "config.web", "-b", "127.0.0.1", "-p", str(port), app],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    return Daphne(port, proc, stderr)


def daphne_wait(server: Daphne, *, timeout: float = 30.0) -> None:
    """Return once the server accepts connections; raise with its output if it died or never did."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
                return
        except OSError:
            if server.proc.poll() is not None or time.monotonic() > deadline:
                server.proc.kill()
                server.stderr.seek(0)
                errors = server.stderr.read().decode(errors="replace")
                raise RuntimeError(f"daphne did not start: {errors[-2000:]}") from None
            time.sleep(0.1)


def daphne_stop(server: Daphne) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
    server.stderr.close()


@contextmanager
def daphne_server(env: dict[str, str], *, timeout: float = 30.0) -> Iterator[str]:
    """Yield the base URL once daphne accepts connections; stop it afterwards."""
    server = daphne_start(env)
    try:
        daphne_wait(server, timeout=timeout)
        yield server.url
    finally:
        daphne_stop(server)
