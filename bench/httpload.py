"""A small closed-loop HTTP/1.1 load generator: N keep-alive clients, each sending its next request
when the previous answer has fully arrived. Measures requests/s and time to first byte (TTFB).

Built on asyncio protocols rather than streams so that the load generator, which shares the
machine with the server, spends as little CPU per request as possible.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    ttfb_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    body_bytes: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.ttfb_ms:
            return float("nan")
        if len(self.ttfb_ms) == 1:
            return self.ttfb_ms[0]
        return statistics.quantiles(self.ttfb_ms, n=1000, method="inclusive")[int(q * 1000) - 1]


class _Client(asyncio.Protocol):
    """One keep-alive connection: send, wait for the whole answer, record, send again."""

    def __init__(self, request: bytes, deadline: float, result: LoadResult, done: asyncio.Future[None]) -> None:
        self.request = request
        self.deadline = deadline
        self.result = result
        self.done = done
        self.transport: asyncio.Transport | None = None
        self._reset()

    def _reset(self) -> None:
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.first_byte_at = 0.0
        self.header_end = -1
        self.length: int | None = None
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if time.perf_counter() >= self.deadline:
            self.transport.close()
            return
        self._reset()
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.buffer:
            self.first_byte_at = time.perf_counter()
        self.buffer += data
        if self.header_end < 0:
            self.header_end = self.buffer.find(b"\r\n\r\n")
            if self.header_end < 0:
                return
            head = bytes(self.buffer[: self.header_end]).decode("latin-1").split("\r\n")
            self.status = int(head[0].split()[1])
            self.length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    self.length = int(value.strip())
                elif name.strip().lower() == "transfer-encoding":
                    raise ValueError("chunked answers are not supported by this load generator")
        assert self.length is not None
        if len(self.buffer) - self.header_end - 4 < self.length:
            return
        result = self.result
        result.requests += 1
        result.ttfb_ms.append((self.first_byte_at - self.sent_at) * 1000)
        result.statuses[self.status] = result.statuses.get(self.status, 0) + 1
        result.body_bytes += self.length
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None or time.perf_counter() < self.deadline:
            self.result.errors += 1
        if not self.done.done():
            self.done.set_result(None)


async def run_load(url: str, *, clients: int, seconds: float, headers: dict[str, str] | None = None) -> LoadResult:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.hostname}\r\n{extra}\r\n".encode()
    loop = asyncio.get_running_loop()
    result = LoadResult()
    started = time.perf_counter()
    deadline = started + seconds
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    waits = []
    for _ in range(clients):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(functools.partial(_Client, request, deadline, result, done), host, port)
        waits.append(done)
    await asyncio.gather(*waits)
    result.seconds = time.perf_counter() - started
    return result


def load(url: str, *, clients: int, seconds: float, headers: dict[str, str] | None = None) -> LoadResult:
    return asyncio.run(run_load(url, clients=clients, seconds=seconds, headers=headers))
