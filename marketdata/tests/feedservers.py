"""Local servers that speak the venues' real protocols, for the adapter tests: FIX over TCP, a chunked
HTTP stream (OANDA), WebSocket servers (Binance, Kraken, Coinbase)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import simplefix  # type: ignore[import-untyped]
from websockets.asyncio.server import ServerConnection, serve

from common.ticks import FeedItem, Quote, StatusEvent
from marketdata.feeds.base import FeedDisconnected


class Collected:
    """Everything one adapter connection produced."""

    def __init__(self) -> None:
        self.items: list[FeedItem] = []
        self.rejects: list[tuple[str, str]] = []
        self.ended: BaseException | None = None
        self.done = asyncio.Event()

    @property
    def quotes(self) -> list[Quote]:
        return [i for i in self.items if isinstance(i, Quote)]

    @property
    def events(self) -> list[StatusEvent]:
        return [i for i in self.items if isinstance(i, StatusEvent)]

    def on_reject(self, reason: str, detail: str) -> None:
        self.rejects.append((reason, detail))

    def reasons(self) -> list[str]:
        return [r for r, _ in self.rejects]

    async def run(self, items: AsyncIterator[FeedItem]) -> None:
        try:
            async for item in items:
                self.items.append(item)
        except FeedDisconnected as exc:
            self.ended = exc
        finally:
            self.done.set()


@contextlib.asynccontextmanager
async def consuming(collected: Collected, items: AsyncIterator[FeedItem]) -> AsyncIterator[Collected]:
    task = asyncio.ensure_future(collected.run(items))
    try:
        yield collected
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class FixPeer:
    """The server side of one FIX connection: reads the client's messages with simplefix's parser."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = simplefix.FixParser()
        self.received: list[Any] = []

    async def read(self, timeout: float = 5.0) -> Any:
        while True:
            msg = self.parser.get_message()
            if msg is not None:
                self.received.append(msg)
                return msg
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise ConnectionError("client closed")
            self.parser.append_buffer(data)

    async def read_type(self, msg_type: bytes, timeout: float = 5.0) -> Any:
        while True:
            msg = await self.read(timeout)
            if msg.get(35) == msg_type:
                return msg

    async def send(self, *frames: bytes) -> None:
        for f in frames:
            self.writer.write(f)
        await self.writer.drain()


@contextlib.asynccontextmanager
async def fix_server(script: Callable[[FixPeer], Awaitable[None]], *, ssl: Any = None) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = FixPeer(reader, writer)
        try:
            await script(peer)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()


@contextlib.asynccontextmanager
async def http_stream_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]],
) -> AsyncIterator[int]:
    """A raw HTTP/1.1 server: `handler` gets the request head and writes the response itself (chunked)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            await handler(reader, writer, head)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@contextlib.asynccontextmanager
async def ws_server(handler: Callable[[ServerConnection], Awaitable[None]]) -> AsyncIterator[int]:
    async with serve(handler, "127.0.0.1", 0) as server:
        sock = next(iter(server.sockets))
        yield sock.getsockname()[1]
