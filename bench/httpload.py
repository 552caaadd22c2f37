"""A small closed-loop HTTP/1.1 load generator: N keep-alive clients, each sending its next request
when the previous answer has fully arrived. Measures requests/s and time to first byte (TTFB)."""

from __future__ import annotations

import asyncio
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


async def _read_response(reader: asyncio.StreamReader, first: bytes) -> tuple[int, int]:
    status_line = first + await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length: int | None = None
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    size = 0
    if chunked:
        while True:
            chunk_len = int((await reader.readline()).strip().split(b";")[0], 16)
            if chunk_len == 0:
                await reader.readline()
                break
            size += len(await reader.readexactly(chunk_len))
            await reader.readline()
    elif length:
        size = len(await reader.readexactly(length))
    return status, size


async def _client(url: str, headers: dict[str, str], deadline: float, result: LoadResult) -> None:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.hostname}\r\n{extra}\r\n".encode()
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            first = await reader.readexactly(1)  # the first byte of the answer
            ttfb = time.perf_counter() - started
            status, size = await _read_response(reader, first)
            result.requests += 1
            result.ttfb_ms.append(ttfb * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.body_bytes += size
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        result.errors += 1
    finally:
        writer.close()


async def run_load(url: str, *, clients: int, seconds: float, headers: dict[str, str] | None = None) -> LoadResult:
    result = LoadResult()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_client(url, headers or {}, deadline, result) for _ in range(clients)))
    result.seconds = time.perf_counter() - started
    return result


def load(url: str, *, clients: int, seconds: float, headers: dict[str, str] | None = None) -> LoadResult:
    return asyncio.run(run_load(url, clients=clients, seconds=seconds, headers=headers))
