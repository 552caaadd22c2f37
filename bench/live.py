"""Tick-to-browser latency of /ws/spreads/ at 100, 1,000 and 5,000 WebSocket clients.

    python -m bench.live [--quick]

Real parts only: daphne server processes (the project's consumer behind AllowedHostsOriginValidator
and live.auth's log-in check), Redis, logged-in WebSocket clients in separate processes. A publisher
process sends quotes for 14 brokers x 20 instruments at a fixed rate, exactly as the ingestors do
(HSET latest + PUBLISH, ts_ingest stamped just before); each client subscribes to a few instruments
and measures now - ts_ingest for every quote it receives.

Compared in the same run with the naive baseline: one channel-layer group per instrument, one
``group_send`` per quote, the quote JSON-encoded again for every client.

Needs Redis at REDIS_URL; uses a throwaway SQLite database and its own Redis key prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import operator
import os
import random
import re
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from itertools import repeat
from pathlib import Path
from typing import Any

from testing.daphne import Daphne, daphne_start, daphne_stop, daphne_wait

BROKERS = 14
INSTRUMENTS = 20
BIN_US = 20  # histogram bin width; the histogram has no upper bound and the max is exact
PHASES = 4  # --burst: 0 warm-up, 1 calm, 2 burst, 3 after
ROOT = Path(__file__).resolve().parent.parent


# -- the server side (run inside daphne) ---------------------------------------------------------
def _pubsub_layer_add() -> None:
    """Reference (a) of --burst: channels_redis' RedisPubSubChannelLayer under the alias "pubsub"."""
    from django.conf import settings

    settings.CHANNEL_LAYERS = {
        **settings.CHANNEL_LAYERS,
        "pubsub": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": f"{settings.CACHE_KEY_PREFIX}-pubsub"},
        },
    }


def _build_application() -> Any:
    import django

    django.setup()
    _pubsub_layer_add()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from django.urls import path

    from live.auth import live_auth_stack
    from live.consumers import SpreadsConsumer

    # live.transport checks its library fields on the first connection (config.asgi does it at start-up).

    class NaiveConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
        """The baseline: channel-layer groups, one JSON encoding per client per quote."""

        async def connect(self) -> None:
            if not self.scope["user"].is_authenticated:
                await self.close()
                return
            query = self.scope["query_string"].decode()
            self.instruments = query.partition("instruments=")[2].split(",")
            for symbol in self.instruments:
                await self.channel_layer.group_add(f"live.{symbol}", self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            for symbol in getattr(self, "instruments", []):
                await self.channel_layer.group_discard(f"live.{symbol}", self.channel_name)

        async def live_quote(self, event: dict[str, Any]) -> None:
            await self.send(text_data=json.dumps({"type": "quotes", "quotes": [event["quote"]]}))

    class PubSubLayerConsumer(NaiveConsumer):
        """What a Django developer writes first: RedisPubSubChannelLayer, a group per instrument, JSON per client."""

        channel_layer_alias = "pubsub"

    # The site's own HTTP app, started as config.asgi starts it (URL modules imported up front, the
    # transport's self-check): a first request must not import views on the event loop mid-run.
    from config.asgi import django_asgi_app

    return ProtocolTypeRouter(
        {
            "http": django_asgi_app,  # /readyz: the hub's own delivery lag
            "websocket": AllowedHostsOriginValidator(
                live_auth_stack(
                    URLRouter(
                        [
                            path("ws/spreads/", SpreadsConsumer.as_asgi()),
                            path("ws/naive/", NaiveConsumer.as_asgi()),
                            path("ws/pubsub/", PubSubLayerConsumer.as_asgi()),
                        ]
                    )
                )
            ),
        }
    )


_application: Any = None


def __getattr__(name: str) -> Any:  # daphne imports bench.live:application
    global _application
    if name == "application":
        if _application is None:
            _application = _build_application()
        return _application
    raise AttributeError(name)


# -- helpers -------------------------------------------------------------------------------------
def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[float, float, float]:
    """Seconds of (busy, softirq, total) CPU time over all cores since boot, from /proc/stat.

    Loopback TCP does the receiver's work in softirq context, which the kernel does not charge to
    the sending process (IRQ time accounting), so per-process CPU alone understates a server.
    """
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    tck = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tck, fields[6] / tck, sum(fields) / tck


def _proc_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _symbols() -> list[str]:
    from simulator.world import INSTRUMENTS as DEMO

    return [row[0] for row in DEMO][:INSTRUMENTS]


# -- clients -------------------------------------------------------------------------------------
# A deliberately small WebSocket client: many connections per process on one event loop, no
# WebSocket library, no JSON parsing. Each socket has SO_TIMESTAMPNS on, so the kernel tells us
# when the bytes of a frame arrived; latency is that moment minus ts_ingest, whatever this process
# was doing at the time. The time the loop got round to the socket is recorded too: the
# difference is the clients' own overhead, reported separately instead of being blamed on the
# server.
SO_TIMESTAMPNS = 35  # Linux; the socket module does not export it
TS_NEEDLE = b'"ts_ingest":'
TS_RE = re.compile(rb'"ts_ingest": ?(\d+)')


class _Hist:
    """Latency histogram in BIN_US bins, unbounded (a dict of bins), exact max.

    add_since() only appends to an array (C loops, no Python per value): the measuring clients bin
    their values after the run, not while they are being measured."""

    __slots__ = ("bins", "count", "max", "pending")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.count = 0
        self.max = 0
        self.pending = array("q")

    def add(self, us: int) -> None:
        b = us // BIN_US if us > 0 else 0
        self.bins[b] = self.bins.get(b, 0) + 1
        self.count += 1
        if us > self.max:
            self.max = us

    def add_since(self, now_us: int, stamps: list[int]) -> None:
        """now_us - each stamp."""
        self.pending.extend(map(operator.sub, repeat(now_us, len(stamps)), stamps))

    def _settle(self) -> None:
        values, self.pending = self.pending, array("q")
        if not values:
            return
        bins = self.bins
        for b, c in Counter(map(operator.floordiv, map(max, values, repeat(0)), repeat(BIN_US))).items():
            bins[b] = bins.get(b, 0) + c
        self.count += len(values)
        self.max = max(self.max, max(values))

    def merge(self, other: dict[str, Any]) -> None:
        self._settle()
        for b, c in other["bins"].items():
            self.bins[b] = self.bins.get(b, 0) + c
        self.count += other["count"]
        self.max = max(self.max, other["max"])

    def dump(self) -> dict[str, Any]:
        self._settle()
        return {"bins": self.bins, "count": self.count, "max": self.max}

    def percentile_ms(self, p: float) -> float:
        self._settle()
        if not self.count:
            return float("nan")
        rank, seen = p * self.count, 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen >= rank:
                return (b + 0.5) * BIN_US / 1000
        return self.max / 1000


class _Conn:
    __slots__ = ("buf", "closed_code", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.closed_code: int | None = None


def _client_proc(
    urls: list[str],
    cookie: str,
    n: int,
    per_client: int,
    seed: int,
    ready: Any,
    go: Any,
    stop: Any,
    out: Any,
    phase: Any = None,
) -> None:
    """phase: a shared integer; when given, figures are kept per phase (0 = not measured)."""
    import base64
    import struct
    from urllib.parse import urlsplit

    _raise_fd_limit()
    symbols = _symbols()
    rng = random.Random(seed)
    phases = [(_Hist(), _Hist(), _Hist()) for _ in range(PHASES)]
    # ts_ingest -> the kernel had the bytes on this socket; -> this process read them; the difference
    wire, app, overhead = phases[1]
    state = {"connected": 0, "errors": 0, "closed": 0, "measuring": False}
    conns: list[_Conn] = []
    cmsg_space = socket.CMSG_SPACE(16)

    def pong(conn: _Conn, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with contextlib.suppress(OSError):
            conn.sock.send(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)

    def on_readable(conn: _Conn) -> bool:
        """Read what the socket has; False once the connection has ended."""
        app_ns = time.time_ns()
        try:
            data, anc, _flags, _addr = conn.sock.recvmsg(1 << 18, cmsg_space)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            data, anc = b"", []
        if not data:
            state["closed"] += 1
            return False
        kernel_ns = app_ns
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", cdata[:16])
                kernel_ns = sec * 1_000_000_000 + nsec
        buf = conn.buf
        buf += data
        if phase is None:
            measuring = state["measuring"]
            wire, app, overhead = phases[1]
        else:
            current = phase.value
            measuring = current > 0
            wire, app, overhead = phases[current]
        kernel_us, app_us = kernel_ns // 1000, app_ns // 1000
        # Frames are parsed by position and the buffer trimmed once: deleting each frame from the front of
        # the bytearray moved the rest of a 256 KB read every time. The timestamps of a frame's quotes are
        # found by one compiled regex and counted in C (Counter): at 400,000 quotes/s in a burst the
        # measuring clients must cost less than what they measure.
        pos0, size = 0, len(buf)
        while size - pos0 >= 2:
            length, pos = buf[pos0 + 1] & 0x7F, pos0 + 2
            if length == 126:
                if size - pos0 < 4:
                    break
                length, pos = int.from_bytes(buf[pos0 + 2 : pos0 + 4], "big"), pos0 + 4
            elif length == 127:
                if size - pos0 < 10:
                    break
                length, pos = int.from_bytes(buf[pos0 + 2 : pos0 + 10], "big"), pos0 + 10
            end = pos + length
            if size < end:
                break
            opcode = buf[pos0] & 0x0F
            pos0 = end
            if opcode == 1:
                if measuring and buf.find(b"snapshot", pos, min(end, pos + 24)) < 0:
                    overhead.add(app_us - kernel_us)
                    stamps = list(map(int, TS_RE.findall(buf, pos, end)))
                    wire.add_since(kernel_us, stamps)
                    if phase is None:  # --burst reports the wire latency and the read lag only
                        app.add_since(app_us, stamps)
            elif opcode == 9:
                pong(conn, bytes(buf[pos:end]))
            elif opcode == 8:
                conn.closed_code = int.from_bytes(buf[pos : pos + 2], "big") if length >= 2 else 1005
        if pos0:
            del buf[:pos0]
        return True

    def on_readable_asyncio(conn: _Conn) -> None:
        if not on_readable(conn):
            asyncio.get_running_loop().remove_reader(conn.sock.fileno())

    async def one(i: int, connecting: asyncio.Semaphore) -> None:
        loop = asyncio.get_running_loop()
        subset = rng.sample(symbols, per_client)
        url = urlsplit(f"{urls[i % len(urls)]}?instruments={','.join(subset)}")
        request = (
            f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\nCookie: {cookie}\r\n\r\n"
        ).encode()
        for attempt in range(5):
            sock = socket.socket()
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            try:
                async with connecting:
                    await loop.sock_connect(sock, (url.hostname, url.port))
                    await loop.sock_sendall(sock, request)
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout=60)
                        if not chunk:
                            raise ConnectionError("closed during the handshake")
                        head += chunk
                status, _, rest = head.partition(b"\r\n\r\n")
                if b" 101 " not in status.split(b"\r\n", 1)[0]:
                    raise ConnectionError(status.split(b"\r\n", 1)[0].decode())
                break
            except Exception:
                sock.close()
                await asyncio.sleep(0.5 + attempt)
        else:
            state["errors"] += 1
            return
        conn = _Conn(sock)
        conn.buf += rest
        conns.append(conn)
        loop.add_reader(sock.fileno(), on_readable_asyncio, conn)
        state["connected"] += 1

    async def connect_all() -> None:
        connecting = asyncio.Semaphore(100)  # handshakes in flight, so thousands of clients do not storm the server
        await asyncio.gather(*(one(i, connecting) for i in range(n)))
        loop = asyncio.get_running_loop()
        for c in conns:
            loop.remove_reader(c.sock.fileno())

    asyncio.run(connect_all())

    # Measuring: a bare epoll loop instead of asyncio's, whose per-event handle and bookkeeping
    # cost about as much as the reading itself at thousands of sockets per process.
    poller = select.epoll()
    by_fd = {c.sock.fileno(): c for c in conns}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)

    def pump(until: Any) -> None:
        while not until.is_set():
            deadline = time.monotonic() + 0.01
            while time.monotonic() < deadline:
                for fd, _ in poller.poll(0.005):
                    if not on_readable(by_fd[fd]):
                        poller.unregister(fd)

    ready.set()
    pump(go)
    cpu0 = time.process_time()
    t0 = time.monotonic()
    state["measuring"] = True
    pump(stop)
    state["measuring"] = False
    cpu_pct = 100 * (time.process_time() - cpu0) / (time.monotonic() - t0)
    dropped = sum(1 for c in conns if c.closed_code is not None)
    close_codes: dict[int, int] = {}
    for c in conns:
        if c.closed_code is not None:
            close_codes[c.closed_code] = close_codes.get(c.closed_code, 0) + 1
    out.put(
        {
            "wire": wire.dump(),
            "app": app.dump(),
            "overhead": overhead.dump(),
            "phases": [w.dump() for w, _a, _o in phases],
            "phases_read_lag": [o.dump() for _w, _a, o in phases],
            "close_codes": close_codes,
            "errors": state["errors"] + state["closed"],
            "dropped": dropped,
            "cpu_pct": cpu_pct,
        }
    )
    poller.close()
    for c in conns:
        c.sock.close()


def _redis_probe_proc(prefix: str, go: Any, stop: Any, out: Any, phase: Any = None) -> None:
    """The Redis leg alone: ts_ingest -> a plain pub/sub subscriber has the quote (no daphne involved).
    A bare socket read by hiredis, so the probe itself costs about 1 us a quote. phase: as the clients'."""
    import hiredis
    import redis

    conn = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    kw = conn.connection_pool.connection_kwargs
    sock = socket.create_connection((kw.get("host", "127.0.0.1"), kw.get("port", 6379)))
    sock.sendall(hiredis.pack_command(("PSUBSCRIBE", f"{prefix}:live:*")))  # type: ignore[arg-type]
    sock.settimeout(0.05)
    reader = hiredis.Reader()
    hists = [_Hist() for _ in range(PHASES)]
    while not stop.is_set():
        try:
            data = sock.recv(1 << 18)
        except TimeoutError:
            continue
        if not data:
            break
        now = time.time_ns() // 1000
        reader.feed(data)
        hist = hists[phase.value if phase is not None else 1]
        measuring = go.is_set() and (phase is None or phase.value > 0)
        while (reply := reader.gets()) is not False:
            if not measuring or not isinstance(reply, list) or reply[0] != b"pmessage":
                continue
            payload = reply[3]
            j = payload.find(TS_NEEDLE)
            if j >= 0:
                k = j + len(TS_NEEDLE)
                e = k
                while payload[e] in b" 0123456789":
                    e += 1
                hist.add(now - int(payload[k:e]))
    out.put(hists[1].dump() if phase is None else [h.dump() for h in hists])
    sock.close()


# -- publisher -----------------------------------------------------------------------------------
def _publisher_proc(mode: str, rate: float, stop: Any, go: Any, counter: Any) -> None:
    import django

    django.setup()
    import redis

    from marketdata import keys

    symbols = _symbols()
    brokers = [f"bench-broker-{i:02d}" for i in range(BROKERS)]
    from django.conf import settings

    conn = redis.Redis.from_url(settings.REDIS_URL)
    layer = None
    if mode == "naive":
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        group_send = async_to_sync(layer.group_send)
    rng = random.Random(7)
    seq = 0
    interval = 1.0 / rate
    next_at = time.perf_counter()
    while not stop.is_set():
        seq += 1
        broker, symbol = rng.choice(brokers), rng.choice(symbols)
        bid = round(1.1 + rng.random() / 100, 5)
        ask = round(bid + rng.randint(1, 20) * 0.00001, 5)
        now = time.time_ns() // 1000
        quote = {
            "broker": broker,
            "instrument": symbol,
            "bid": bid,
            "ask": ask,
            "spread": round(ask - bid, 6),
            "bid_size": 1000000.0,
            "ask_size": 1000000.0,
            "ts_broker": now - 300,
            "ts_ingest": now,
            "seq": seq,
        }
        if layer is None:
            data = json.dumps(quote)
            pipe = conn.pipeline(transaction=False)
            pipe.hset(keys.latest_hash(), keys.field(broker, symbol), data)
            pipe.publish(keys.live_channel(symbol), data)
            pipe.execute()
        else:
            group_send(f"live.{symbol}", {"type": "live.quote", "quote": quote})
        if go.is_set():
            counter.value += 1
        next_at += interval
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1:
            next_at = time.perf_counter()  # fell far behind: do not burst to catch up


# -- one configuration ---------------------------------------------------------------------------
def run_config(*, mode: str, clients: int, servers: list[Daphne], cookie: str, args: Any) -> dict[str, Any]:
    path = "/ws/spreads/" if mode == "hub" else "/ws/naive/"
    urls = [f"ws://127.0.0.1:{server.port}{path}" for server in servers]
    ctx = mp.get_context("spawn")
    ready_events, outs, procs = [], [], []
    go, stop = ctx.Event(), ctx.Event()
    n_procs = args.client_procs or max(1, -(-clients // 2500))
    rss_before = sum(_proc_rss_kb(server.proc.pid) for server in servers)
    for k in range(n_procs):
        share = clients // n_procs + (1 if k < clients % n_procs else 0)
        ready, out = ctx.Event(), ctx.Queue()
        proc = ctx.Process(
            target=_client_proc,
            args=(urls, cookie, share, args.per_client, 1000 + k, ready, go, stop, out),
            daemon=True,
        )
        proc.start()
        ready_events.append(ready)
        outs.append(out)
        procs.append(proc)
    for ready in ready_events:
        if not ready.wait(timeout=300):
            raise RuntimeError("clients did not connect in time")
    rss_after = sum(_proc_rss_kb(server.proc.pid) for server in servers)
    counter = ctx.Value("l", 0)
    pub_stop = ctx.Event()
    probe_out = ctx.Queue()
    probe = ctx.Process(target=_redis_probe_proc, args=(os.environ["CACHE_KEY_PREFIX"], go, stop, probe_out))
    if mode == "hub":
        probe.start()
    publisher = ctx.Process(target=_publisher_proc, args=(mode, args.rate, pub_stop, go, counter), daemon=True)
    publisher.start()
    time.sleep(args.warmup)
    cpu_before = sum(_proc_cpu_s(server.proc.pid) for server in servers)
    machine_before = _machine_cpu()
    started = time.monotonic()
    go.set()
    profilers = _profilers_start(servers, args, f"{mode}-{clients}")
    time.sleep(args.duration)
    stop.set()
    elapsed = time.monotonic() - started
    cpu_used = sum(_proc_cpu_s(server.proc.pid) for server in servers) - cpu_before
    machine = [after - before for after, before in zip(_machine_cpu(), machine_before, strict=True)]
    pub_stop.set()
    wire, app, overhead = _Hist(), _Hist(), _Hist()
    errors = dropped = 0
    client_cpu = 0.0
    for out in outs:
        r = out.get(timeout=60)
        wire.merge(r["wire"])
        app.merge(r["app"])
        overhead.merge(r["overhead"])
        errors += r["errors"]
        dropped += r["dropped"]
        client_cpu += r["cpu_pct"]
    redis_leg = _Hist()
    if mode == "hub":
        redis_leg.merge(probe_out.get(timeout=60))
        procs.append(probe)
    for proc in procs + [publisher]:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    _profilers_stop(profilers)
    time.sleep(0.5)  # let the servers notice the disconnects before the next configuration
    quotes_per_s = counter.value / elapsed
    return {
        "p50": wire.percentile_ms(0.50),
        "p99": wire.percentile_ms(0.99),
        "max": wire.max / 1000,
        "app_p99": app.percentile_ms(0.99),
        "client_p99": overhead.percentile_ms(0.99),
        "redis_p99": redis_leg.percentile_ms(0.99),
        "msgs_per_s": wire.count / elapsed,
        # What an unconflated stream would be: every quote of a client's instruments, every client.
        "expected_per_s": quotes_per_s * clients * args.per_client / INSTRUMENTS,
        "quotes_per_s": quotes_per_s,
        "cpu_pct": 100 * cpu_used / elapsed,
        "cpu_us_per_conn_s": 1e6 * cpu_used / elapsed / clients,
        "cpu_us_per_msg": 1e6 * cpu_used / max(1, wire.count),
        "kb_per_conn": max(0, rss_after - rss_before) / clients,
        "client_cpu_pct": client_cpu,
        "machine_busy_pct": 100 * machine[0] / machine[2],
        "softirq_pct": 100 * machine[1] / machine[2],
        "errors": errors + dropped,
    }


def _profilers_start(servers: list[Daphne], args: Any, label: str) -> list[Any]:
    """py-spy on every daphne process during the measurement (--profile DIR)."""
    if not args.profile:
        return []
    Path(args.profile).mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--nonblocking",
                "-r",
                "200",
                "-d",
                str(int(args.duration)),
                "-p",
                str(proc.pid),
            ]
            + ["-f", "raw", "-o", str(Path(args.profile) / f"{label}-{i}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, proc in enumerate(server.proc for server in servers)
    ]


def _spies_start(pids: list[int], *, seconds: float, directory: str | None, label: str) -> list[Any]:
    """py-spy on the given processes for a phase (--profile DIR), one raw file per process."""
    if not directory:
        return []
    Path(directory).mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).with_name("py-spy"))
    return [
        subprocess.Popen(
            [spy, "record", "--nonblocking", "-r", "200", "-d", str(max(1, int(seconds))), "-p", str(pid)]
            + ["-f", "raw", "-o", str(Path(directory) / f"{label}-{i}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, pid in enumerate(pids)
    ]


def _profilers_stop(profilers: list[Any]) -> None:
    for p in profilers:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def _setup(workdir: Path) -> tuple[dict[str, str], str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "CACHE_KEY_PREFIX": f"benchlive{os.getpid()}",
        "SECRET_KEY": "bench-only-" + "x" * 40,
        "DEBUG": "0",
        "ADMIN_URL": "bench-admin/",  # production refuses the default admin/ (config/settings.py)
        "HTTPS": "0",
        "REDIS_REQUIRED": "1",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    for cmd in (["migrate", "-v0"], ["seed_demo"]):
        subprocess.run([sys.executable, "manage.py", *cmd], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.create_user("bench", password=None)  # logged in by session, never by password
    client = Client()
    client.force_login(user)
    from django.conf import settings

    return env, f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _start_servers(env: dict[str, str], count: int) -> list[Daphne]:
    servers = [daphne_start(env, app="bench.live:application") for _ in range(count)]
    try:
        for server in servers:  # started together, then waited for (long: the machine may be busy)
            daphne_wait(server, timeout=180)
    except BaseException:
        for server in servers:
            daphne_stop(server)
        raise
    return servers


# -- --burst: a Non-Farm Payroll release ------------------------------------------------------------
BURST_WIDEN = 5.0  # spreads widen this much at the release
# Measuring clients per process. Each parses every quote it is sent (about 1,900 quotes/s a client in the
# burst); at 500 a process one process could not keep up (it needs more than a core at 1,000 clients), its
# sockets filled, and what was measured was the load generator's queue: burst p99 1,046 ms with 1 process
# for 1,000 clients, 90-245 with 2, 52-68 with 4 or 6, 78 with 8 (whose own CPU then crowds the servers).
BURST_CLIENTS_PER_PROC = 250
QUICK_REFERENCE_S = 3.0  # --quick: the references' calm and burst phases (see run_burst)
RSS_RETURN_BOUND_MB = 25.0  # after the burst the servers' RSS must be back within this of the calm figure
TRIM_INTERVAL_S = 5.0  # the servers' WEB_TRIM_INTERVAL_S default: the after phase lasts longer


def _burst_publisher_proc(
    mode: str, phase: Any, calm_rate: float, burst_rate: float, stop: Any, counts: Any, ready: Any
) -> None:
    """Quotes as the ingestors publish them (the same message, and the same Lua script: PUBLISH on the
    instrument's channel and HSET into the latest-quote hash), at calm_rate, then at burst_rate while
    phase is 2: at the release every broker quotes the instrument at once, with wider spreads. For the
    pub/sub-layer reference the same quotes go through its group_send instead. counts[phase] = published."""
    import django

    django.setup()
    _pubsub_layer_add()
    import msgpack  # type: ignore[import-untyped]
    import redis
    from django.conf import settings

    from common.ticks import Quote, quote_live_message
    from marketdata import keys
    from marketdata.ingest import PUBLISH_CHUNK, PUBLISH_MANY

    symbols = _symbols()
    channels = {s: keys.live_channel(s) for s in symbols}
    brokers = [f"bench-broker-{i:02d}" for i in range(BROKERS)]
    conn = redis.Redis.from_url(settings.REDIS_URL)
    publish_many = conn.register_script(PUBLISH_MANY)
    latest = keys.latest_hash()
    rng = random.Random(11)
    seq = 0
    tick = 0.002

    def quotes(n: int, burst: bool) -> list[tuple[str, str, str]]:
        """(channel, latest-hash field, message) of n new quotes."""
        nonlocal seq
        out: list[tuple[str, str, str]] = []
        while len(out) < n:
            symbol = rng.choice(symbols)
            who = brokers if burst else [rng.choice(brokers)]  # the release: all brokers tick at once
            for broker in who[: n - len(out)]:
                seq += 1
                bid = round(1.1 + rng.random() / 100, 5)
                ask = round(bid + rng.randint(1, 20) * 0.00001 * (BURST_WIDEN if burst else 1), 5)
                now = time.time_ns() // 1000
                q = Quote(broker, symbol, bid, ask, 1e6, 1e6, now - 300, now - 100, seq)
                out.append((channels[symbol], keys.field(broker, symbol), quote_live_message(q, now)))
        return out

    async def run() -> None:
        layer = None
        if mode == "pubsub":
            from channels.layers import get_channel_layer

            layer = get_channel_layer("pubsub")
        owed = 0.0
        last = time.perf_counter()
        ready.set()
        while not stop.is_set():
            now = time.perf_counter()
            current = phase.value
            owed += (now - last) * (burst_rate if current == 2 else calm_rate)
            last = now
            n = int(owed)
            if n:
                owed -= n
                owed = min(owed, burst_rate)  # fell behind: never more than a second's worth at once
                batch = quotes(n, current == 2)
                if layer is None:
                    flat = [x for triple in batch for x in triple]
                    pipe = conn.pipeline(transaction=False)
                    for i in range(0, len(flat), 3 * PUBLISH_CHUNK):
                        publish_many(keys=[latest], args=[msgpack.packb(flat[i : i + 3 * PUBLISH_CHUNK])], client=pipe)
                    pipe.execute()
                else:
                    await asyncio.gather(
                        *(
                            layer.group_send(
                                f"live.{channel.rpartition(':')[2]}", {"type": "live.quote", "quote": json.loads(data)}
                            )
                            for channel, _field, data in batch
                        )
                    )
                counts[current] += n
            await asyncio.sleep(max(0.0, tick - (time.perf_counter() - now)))

    asyncio.run(run())


def _ws_request(url: str, cookie: str) -> bytes:
    import base64
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return (
        f"GET {u.path}{'?' + u.query if u.query else ''} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\nCookie: {cookie}\r\n\r\n"
    ).encode()


def _ws_masked(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _ws_open(url: str, cookie: str, *, rcvbuf: int = 0) -> tuple[socket.socket, bytes]:
    from urllib.parse import urlsplit

    loop = asyncio.get_running_loop()
    u = urlsplit(url)
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (u.hostname, u.port))
        await loop.sock_sendall(sock, _ws_request(url, cookie))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout=10)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
    except BaseException:
        sock.close()
        raise
    return sock, head


def _hostile_proc(urls: list[str], cookie: str, storm: int, out: Any) -> None:
    """Section 4 of the issue, during the burst: a client sending garbage, one that stops reading, and
    `storm` clients connecting and dropping at once."""
    _raise_fd_limit()

    async def garbage(url: str) -> int:
        sock, _ = await _ws_open(url, cookie)
        loop = asyncio.get_running_loop()
        sent = 0
        frames = [b"[" * 1000 + b"]" * 1000, b"{not json", b'{"action":"subscribe","instruments":[[["x"]]]}', b"\xff"]
        with contextlib.suppress(OSError):
            for i in range(400):
                await loop.sock_sendall(sock, _ws_masked(frames[i % len(frames)]))
                sent += 1
                await asyncio.sleep(0.005)
        sock.close()
        return sent

    async def non_reader(url: str) -> socket.socket:
        sock, _ = await _ws_open(url.split("?")[0], cookie, rcvbuf=4096)  # every instrument, never read
        return sock

    async def storm_one(url: str) -> bool:
        try:
            sock, head = await _ws_open(url, cookie)
        except Exception:
            return False
        sock.close()
        return b" 101 " in head.split(b"\r\n", 1)[0]

    async def run() -> None:
        try:
            stuck: socket.socket | None = await non_reader(urls[0])
        except Exception as exc:  # a server too busy to answer a handshake in 10 s: said, not a traceback
            stuck, refused = None, repr(exc)
        else:
            refused = ""
        results = await asyncio.gather(
            garbage(urls[-1]), *(storm_one(urls[i % len(urls)]) for i in range(storm)), return_exceptions=True
        )
        if stuck is not None:
            stuck.close()
        out.put(
            {
                "storm_ok": sum(1 for r in results[1:] if r is True),
                "garbage_sent": results[0],
                "non_reader": refused or "connected",
            }
        )

    asyncio.run(run())


def _hub_lag_counts(urls: list[str]) -> list[int] | None:
    """The hubs' delivery-lag histogram (/readyz), summed over the servers; None where there is none."""
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    total: list[int] | None = None
    for url in urls:
        u = urlsplit(url)
        try:
            with urllib.request.urlopen(f"http://{u.netloc}/readyz", timeout=10) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:  # 503 (no feeds in the bench) still carries the figures
            body = exc.read()
        except OSError:
            return None
        hubs = json.loads(body).get("checks", {}).get("live_hub", {}).get("hubs", [])
        for hub in hubs:
            counts = hub.get("delivery_lag_ms", {}).get("counts")
            if counts:
                total = counts if total is None else [a + b for a, b in zip(total, counts, strict=True)]
    return total


def _lag_p99_ms(before: list[int] | None, after: list[int] | None) -> float:
    """The 99th percentile of the hubs' delivery lag between two readings: the bucket's upper bound."""
    from live.hub import LAG_BOUNDS_MS

    if before is None or after is None:
        return float("nan")
    diff = [b - a for a, b in zip(before, after, strict=True)]
    total, seen = sum(diff), 0
    for bound, count in zip([*LAG_BOUNDS_MS, float("inf")], diff, strict=True):
        seen += count
        if total and seen >= 0.99 * total:
            return float(bound)
    return float("nan")


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += _proc_rss_kb(pid)
    return total / 1024


def _burst_client_procs(args: Any) -> int:
    return int(args.client_procs or max(1, -(-args.burst_clients // BURST_CLIENTS_PER_PROC)))


def run_burst(*, mode: str, urls: list[str], pids: list[int], cookie: str, args: Any) -> dict[str, Any]:
    """One design under the whole schedule: calm, burst (with the hostile clients), after.

    With --quick the references get shorter phases (QUICK_REFERENCE_S) and no calm after the burst (their
    memory is not held to the bound: their "after" RSS is taken as the burst ends), so the whole run stays
    under a minute. That favours them: a reference that falls behind Redis shows a smaller backlog after
    3 s than after 6."""
    calm_s, burst_s, after_s = args.calm_s, args.burst_s, args.after_s
    if args.quick and mode != "hub":
        calm_s, burst_s, after_s = min(calm_s, QUICK_REFERENCE_S), min(burst_s, QUICK_REFERENCE_S), 0.0
    ctx = mp.get_context("spawn")
    phase = ctx.Value("i", 0, lock=False)
    counts = ctx.Array("l", PHASES, lock=False)
    go, stop = ctx.Event(), ctx.Event()
    n_procs = _burst_client_procs(args)
    outs, procs, readies = [], [], []
    rss_before = _rss_mb(pids)
    for k in range(n_procs):
        share = args.burst_clients // n_procs + (1 if k < args.burst_clients % n_procs else 0)
        ready, out = ctx.Event(), ctx.Queue()
        proc = ctx.Process(
            target=_client_proc,
            args=(urls, cookie, share, 4, 2000 + k, ready, go, stop, out, phase),
            daemon=True,
        )
        proc.start()
        outs.append(out)
        procs.append(proc)
        readies.append(ready)
    for ready in readies:
        if not ready.wait(timeout=300):
            raise RuntimeError("clients did not connect in time")
    probe_out = ctx.Queue()
    probe = ctx.Process(
        target=_redis_probe_proc, args=(os.environ["CACHE_KEY_PREFIX"], go, stop, probe_out, phase), daemon=True
    )
    probe.start()
    go.set()
    pub_stop, pub_ready = ctx.Event(), ctx.Event()
    publisher = ctx.Process(
        target=_burst_publisher_proc,
        args=(mode, phase, args.calm_rate, args.burst_rate, pub_stop, counts, pub_ready),
        daemon=True,
    )
    publisher.start()
    if not pub_ready.wait(timeout=120):
        raise RuntimeError("the publisher did not start")
    time.sleep(args.warmup)
    rss: dict[str, float] = {"before": rss_before, "connected": _rss_mb(pids)}
    timing: dict[int, float] = {}
    hostile_out = ctx.Queue()
    hostile = ctx.Process(target=_hostile_proc, args=(urls, cookie, args.storm, hostile_out), daemon=True)

    cpu: dict[int, float] = {}
    loadgen_cpu: dict[int, float] = {}
    hub_lag: dict[int, float] = {}
    loadgen = [proc.pid for proc in procs] + [publisher.pid, probe.pid]  # what measures, not what is measured

    from concurrent.futures import ThreadPoolExecutor

    readers = ThreadPoolExecutor(max_workers=2)
    lag_readings: dict[int, Any] = {}  # phase -> the hubs' histogram as that phase began (a future)

    def hold(p: int, seconds: float, key: str) -> None:
        phase.value = p
        started = time.monotonic()
        # Read in the background: the servers answer /readyz late in a burst, and the phase must not last longer.
        lag_readings[p] = readers.submit(_hub_lag_counts, urls) if mode == "hub" else None
        cpu_start = sum(_proc_cpu_s(pid) for pid in pids)
        loadgen_start = sum(_proc_cpu_s(pid) for pid in loadgen if pid is not None)
        peak = 0.0
        while time.monotonic() - started < seconds:
            peak = max(peak, _rss_mb(pids))
            time.sleep(0.25)
        timing[p] = time.monotonic() - started
        cpu[p] = sum(_proc_cpu_s(pid) for pid in pids) - cpu_start
        loadgen_cpu[p] = sum(_proc_cpu_s(pid) for pid in loadgen if pid is not None) - loadgen_start
        rss[key] = peak

    hold(1, calm_s, "calm")
    if args.storm >= 0:
        hostile.start()
    spies = _spies_start(pids, seconds=burst_s, directory=args.profile, label=f"{mode}-burst")
    hold(2, burst_s, "burst")
    _profilers_stop(spies)
    hold(3, after_s, "after_peak")
    rss["after"] = _rss_mb(pids)
    phase.value = 0
    for p in (1, 2):
        start, end = lag_readings.get(p), lag_readings.get(p + 1)
        hub_lag[p] = _lag_p99_ms(start.result(), end.result()) if start and end else float("nan")
    readers.shutdown()
    stop.set()
    pub_stop.set()
    merged = [_Hist() for _ in range(PHASES)]
    read_lag = [_Hist() for _ in range(PHASES)]
    dropped = errors = 0
    close_codes: dict[int, int] = {}
    for out in outs:
        r = out.get(timeout=120)
        for i, dump in enumerate(r["phases"]):
            merged[i].merge(dump)
        for i, dump in enumerate(r["phases_read_lag"]):
            read_lag[i].merge(dump)
        dropped += r["dropped"]
        errors += r["errors"]
        for code, count in r["close_codes"].items():
            close_codes[code] = close_codes.get(code, 0) + count
    probe_phases = [_Hist() for _ in range(PHASES)]
    with contextlib.suppress(Exception):
        for i, dump in enumerate(probe_out.get(timeout=30)):
            probe_phases[i].merge(dump)
    hostile_result: dict[str, Any] = {}
    if hostile.pid is not None:
        with contextlib.suppress(Exception):
            hostile_result = hostile_out.get(timeout=30)
    for proc in [*procs, publisher, probe, hostile]:
        if proc.pid is None:
            continue
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    time.sleep(1.0)  # the servers notice the disconnects before the next design
    figures: dict[str, Any] = {
        "rss": rss,
        "dropped": dropped + errors,
        "close_codes": close_codes,
        "hostile": hostile_result,
    }
    for p, name in ((1, "calm"), (2, "burst")):
        h = merged[p]
        published = counts[p]
        expected = published * args.burst_clients * 4 / INSTRUMENTS
        figures[name] = {
            "p50": h.percentile_ms(0.50),
            "p99": h.percentile_ms(0.99),
            "max": h.max / 1000,
            "msgs_per_s": h.count / timing[p],
            "quotes_per_s": published / timing[p],
            "conflated_pct": 100 * max(0.0, 1 - h.count / expected) if expected else 0.0,
            # the servers' CPU (100 = one core) and what it cost per quote they took in: figures that
            # load on the machine changes little, unlike latency
            "srv_cpu_pct": 100 * cpu[p] / timing[p],
            "srv_us_per_quote": 1e6 * cpu[p] / published if published else float("nan"),
            "loadgen_cpu_pct": 100 * loadgen_cpu[p] / timing[p],  # clients + publisher + probe
            "redis_p99": probe_phases[p].percentile_ms(0.99),  # ts_ingest -> a bare Redis subscriber
            # the clients' own lag: kernel had the frame -> the client process read it (the load generator
            # keeping up; when it does not, its sockets fill and the servers' writes wait for it)
            "read_lag_p99": read_lag[p].percentile_ms(0.99),
            "hub_p99": hub_lag[p],  # ts_ingest -> the hub wrote it (its /readyz histogram; bucket bound)
        }
    return figures


def _node_start(env: dict[str, str], count: int) -> list[tuple[subprocess.Popen[bytes], int]]:
    folder = ROOT / "bench" / "node_ws"
    if not (folder / "node_modules" / "ws").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=folder, check=True)
    from testing.daphne import free_port

    servers = []
    for _ in range(count):
        port = free_port()
        proc = subprocess.Popen(
            ["node", "server.js"],
            cwd=folder,
            env={**env, "PORT": str(port), "PREFIX": env["CACHE_KEY_PREFIX"]},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        servers.append((proc, port))
    for _proc, port in servers:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the node reference did not start") from None
                time.sleep(0.1)
    return servers


def run_reconnect(*, urls: list[str], cookie: str, rate: float, n: int) -> dict[str, Any]:
    """A reconnect storm (a daphne restart behind a load balancer): n clients connecting at `rate` a
    second. Success: the 101 and then the snapshot, each within daphne's 5 s handshake timeout."""
    _raise_fd_limit()

    failures: dict[str, int] = {}

    def failed(why: str) -> bool:
        failures[why] = failures.get(why, 0) + 1
        return False

    async def one(i: int, at: float, hist: _Hist, socks: list[socket.socket]) -> bool:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        started = time.monotonic()
        try:
            sock, head = await _ws_open(f"{urls[i % len(urls)]}?instruments=EURUSD,GBPUSD", cookie)
        except Exception as exc:
            return failed(type(exc).__name__)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            sock.close()
            return failed(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        hist.add(int(1e6 * (time.monotonic() - started)))
        socks.append(sock)
        rest = head.partition(b"\r\n\r\n")[2]
        loop = asyncio.get_running_loop()
        try:
            while b"snapshot" not in rest:
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout=5)
                if not chunk:
                    return failed("closed before the snapshot")
                rest += chunk
        except (TimeoutError, OSError) as exc:
            return failed(f"no snapshot ({type(exc).__name__})")
        return True

    async def run() -> dict[str, Any]:
        hist = _Hist()
        socks: list[socket.socket] = []
        t0 = time.monotonic() + 0.2
        results = await asyncio.gather(*(one(i, t0 + i / rate, hist, socks) for i in range(n)))
        for sock in socks:
            sock.close()
        return {
            "ok": sum(results),
            "of": n,
            "handshake_p99_ms": hist.percentile_ms(0.99),
            "max_ms": hist.max / 1000,
            "failures": failures,
        }

    return asyncio.run(run())


def main_burst(args: Any) -> None:
    quick = args.quick
    args.calm_s = args.phase_s or (6.0 if quick else 30.0)
    args.burst_s = args.phase_s or (6.0 if quick else 30.0)
    args.after_s = TRIM_INTERVAL_S + 1 if quick else 10.0  # at least one collection and trim after the burst
    args.burst_clients = args.clients_n or 1000
    _raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        env, cookie = _setup(Path(tmp))
        servers = _start_servers(env, args.servers)
        nodes: list[tuple[subprocess.Popen[bytes], int]] = []
        results: dict[str, dict[str, Any]] = {}
        reconnect: dict[str, Any] = {}
        short = f" (the references: {QUICK_REFERENCE_S:.0f} s, {QUICK_REFERENCE_S:.0f} s and none)" if quick else ""
        try:
            print(
                f"# NFP burst: {args.servers} daphne processes (node: as many processes), {BROKERS} brokers x "
                f"{INSTRUMENTS} instruments, {args.burst_clients} logged-in clients x 4 instruments; "
                f"calm {args.calm_rate:.0f} quotes/s for {args.calm_s:.0f} s, burst {args.burst_rate:.0f} quotes/s "
                f"(every broker at once, spreads x{BURST_WIDEN:.0f}) for {args.burst_s:.0f} s, "
                f"then {args.after_s:.0f} s calm{short}; during the burst a garbage client, "
                f"a client that stops reading and {args.storm} clients connecting and dropping at once; "
                f"{os.cpu_count()} cores shared with everything else, "
                f"load {os.getloadavg()[0]:.1f} at start, niceness {os.nice(0)}\n"
                f"# clients in {_burst_client_procs(args)} processes; "
                "'cli lag p99' = kernel had the frame -> the client process read it (the load generator's own "
                "lag: large means the clients, not the servers, set the latency)",
                flush=True,
            )
            daphne_pids = [s.proc.pid for s in servers]
            designs = [("hub", [f"ws://127.0.0.1:{s.port}/ws/spreads/" for s in servers], daphne_pids)]
            references = {"pubsub", "node"} if args.references is None else set(args.references.split(","))
            if args.no_baseline:
                references = set()
            if "pubsub" in references:
                designs.append(("pubsub", [f"ws://127.0.0.1:{s.port}/ws/pubsub/" for s in servers], daphne_pids))
            if "node" in references:
                nodes = _node_start(env, args.servers)
                designs.append(("node", [f"ws://127.0.0.1:{port}/" for _p, port in nodes], [p.pid for p, _ in nodes]))
            print(
                f"{'design':>7} {'phase':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'msgs/s':>8} "
                f"{'quotes/s':>8} {'confl%':>6} {'srv cpu%':>8} {'µs/quote':>8} {'gen cpu%':>8} {'redis p99':>9} "
                f"{'hub p99':>7} {'cli lag p99':>11} {'rss MB before/peak/after':>26} {'dropped':>7}",
                flush=True,
            )
            for mode, urls, pids in designs:
                r = run_burst(mode=mode, urls=urls, pids=pids, cookie=cookie, args=args)
                results[mode] = r
                for name in ("calm", "burst"):
                    f = r[name]
                    rss = r["rss"]
                    print(
                        f"{mode:>7} {name:>6} {f['p50']:>8.2f} {f['p99']:>8.2f} {f['max']:>8.1f} "
                        f"{f['msgs_per_s']:>8.0f} {f['quotes_per_s']:>8.0f} {f['conflated_pct']:>6.1f} "
                        f"{f['srv_cpu_pct']:>8.0f} {f['srv_us_per_quote']:>8.1f} {f['loadgen_cpu_pct']:>8.0f} "
                        f"{f['redis_p99']:>9.2f} {f['hub_p99']:>7.0f} {f['read_lag_p99']:>11.2f} "
                        f"{rss['calm']:>8.0f}/{rss['burst']:>8.0f}/{rss['after']:>8.0f} {r['dropped']:>7}",
                        flush=True,
                    )
                print(f"# {mode}: close codes {r['close_codes']}; hostile clients {r['hostile']}", flush=True)
            hub_urls = [f"ws://127.0.0.1:{s.port}/ws/spreads/" for s in servers]
            reconnect = run_reconnect(urls=hub_urls, cookie=cookie, rate=250.0, n=args.reconnects)
            print(f"# reconnect storm: {reconnect}", flush=True)
        finally:
            for proc, _port in nodes:
                proc.terminate()
                proc.wait(timeout=10)
            for server in servers:
                daphne_stop(server)
            _cleanup_redis(env["CACHE_KEY_PREFIX"])
        print(f"# load {os.getloadavg()[0]:.1f} at the end")
        hub = results["hub"]
        bound = hub["rss"]["calm"] + RSS_RETURN_BOUND_MB
        print(
            f"# server RSS after the burst {hub['rss']['after']:.0f} MB; bound {bound:.0f} MB (calm + "
            f"{RSS_RETURN_BOUND_MB:.0f} MB), measured {args.after_s:.0f} s after (servers trim every "
            f"{TRIM_INTERVAL_S:.0f} s): "
            f"{'within' if hub['rss']['after'] <= bound else 'OVER'}"
        )
        for name in ("calm", "burst"):
            f = hub[name]
            ref = {m: results[m][name]["p99"] if m in results else float("nan") for m in ("pubsub", "node")}
            for m, p99 in ref.items():
                print(f"# {name}: {m} p99 / hub p99 = {p99 / f['p99']:.1f}x" if f["p99"] else "")
            print(
                f"RESULT scenario={name} clients={args.burst_clients} p99_ms={f['p99']:.2f} max_ms={f['max']:.1f} "
                f"msgs_per_s={f['msgs_per_s']:.0f} conflated_pct={f['conflated_pct']:.1f} "
                f"rss_after_mb={hub['rss']['after']:.0f} pubsub_layer_p99_ms={ref['pubsub']:.2f} "
                f"node_ws_p99_ms={ref['node']:.2f}"
            )
        if reconnect:
            print(
                f"RESULT scenario=reconnect rate=250 ok={reconnect['ok']} of={reconnect['of']} "
                f"handshake_p99_ms={reconnect['handshake_p99_ms']:.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer clients, shorter runs (under a minute)")
    parser.add_argument("--clients", type=str, default=None, help="comma-separated client counts")
    parser.add_argument("--rate", type=float, default=100.0, help="quotes per second over all brokers+instruments")
    parser.add_argument("--per-client", type=int, default=2, help="instruments each client subscribes to")
    parser.add_argument("--servers", type=int, default=2, help="daphne processes behind the clients")
    parser.add_argument(
        "--client-procs",
        type=int,
        default=0,
        help="client processes (0: one per 2,500 clients; --burst: one per 250)",
    )
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive baseline (profiling runs)")
    parser.add_argument(
        "--references", type=str, default=None, help="--burst: which references to run (pubsub,node; default both)"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run every bench process (servers, clients, publisher) at this niceness, e.g. -10 as root: "
        "a stand-in for a machine not shared with other work",
    )
    parser.add_argument("--profile", type=str, default=None, help="directory for py-spy profiles of the servers")
    parser.add_argument("--burst", action="store_true", help="the NFP scenario: calm, burst, references, reconnects")
    parser.add_argument("--calm-rate", type=float, default=280.0, help="--burst: quotes/s before and after")
    parser.add_argument("--burst-rate", type=float, default=20000.0, help="--burst: quotes/s during the release")
    parser.add_argument("--phase-s", type=float, default=0.0, help="--burst: seconds of calm and of burst")
    parser.add_argument("--storm", type=int, default=500, help="--burst: clients connecting and dropping at once")
    parser.add_argument("--reconnects", type=int, default=1000, help="--burst: clients in the reconnect storm")
    args = parser.parse_args()
    if args.nice:
        os.nice(args.nice)  # inherited by every process started from here
        # With the kernel's autogroups on, niceness only ranks processes within one session; between
        # sessions (other engineers' shells) it is the autogroup's own niceness that counts.
        with contextlib.suppress(OSError):
            Path("/proc/self/autogroup").write_text(str(args.nice))
    if args.burst:
        args.clients_n = int(args.clients) if args.clients else 0
        main_burst(args)
        return
    counts = (
        [int(c) for c in args.clients.split(",")]
        if args.clients
        else ([100, 1000] if args.quick else [100, 1000, 5000])
    )
    args.duration = args.duration or (5.0 if args.quick else 15.0)
    _raise_fd_limit()
    modes = ("hub",) if args.no_baseline else ("hub", "naive")

    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        env, cookie = _setup(Path(tmp))
        servers = _start_servers(env, args.servers)
        print(
            f"# {args.servers} daphne processes, {BROKERS} brokers x {INSTRUMENTS} instruments, "
            f"{args.rate:.0f} quotes/s in total, each client subscribed to {args.per_client} instruments "
            f"(~{args.rate * args.per_client / INSTRUMENTS:.0f} quotes/s per client), {args.duration:.0f}s per run, "
            f"{os.cpu_count()} cores shared with the clients and the publisher; "
            f"load {os.getloadavg()[0]:.1f} at start, niceness {os.nice(0)}\n"
            "# latency = kernel receive time of the frame on the client socket (SO_TIMESTAMPNS) - ts_ingest;\n"
            "# 'read p99' = when the client process read it; 'client p99' = that difference (client overhead);\n"
            "# 'redis p99' = ts_ingest -> a plain Redis subscriber (publisher + Redis, no daphne);\n"
            "# 'srv cpu%' = both daphne processes (100 = one core); 'busy%' = the whole machine, every core,\n"
            "# other engineers' work included; 'sirq%' = its softirq share (loopback TCP delivery)"
        )
        header = (
            f"{'clients':>7} {'design':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'read p99':>8} "
            f"{'client p99':>10} {'redis p99':>9} {'msgs/s':>7} {'of':>7} {'srv cpu%':>8} {'µs cpu/conn/s':>13} "
            f"{'KB/conn':>7} {'cli cpu%':>8} {'busy%':>5} {'sirq%':>5} {'errors':>6}"
        )
        print(header)
        results = []
        try:
            for n in counts:
                row = {}
                for mode in modes:
                    r = run_config(mode=mode, clients=n, servers=servers, cookie=cookie, args=args)
                    row[mode] = r
                    print(
                        f"{n:>7} {mode:>6} {r['p50']:>7.2f} {r['p99']:>7.2f} {r['max']:>7.1f} {r['app_p99']:>8.2f} "
                        f"{r['client_p99']:>10.2f} {r['redis_p99']:>9.2f} "
                        f"{r['msgs_per_s']:>7.0f} {r['expected_per_s']:>7.0f} "
                        f"{r['cpu_pct']:>8.0f} {r['cpu_us_per_conn_s']:>13.1f} {r['kb_per_conn']:>7.1f} "
                        f"{r['client_cpu_pct']:>8.0f} {r['machine_busy_pct']:>5.0f} {r['softirq_pct']:>5.0f} "
                        f"{r['errors']:>6}",
                        flush=True,
                    )
                if "naive" in row:
                    ratio = row["naive"]["p99"] / row["hub"]["p99"] if row["hub"]["p99"] else float("nan")
                    print(f"{n:>7} {'ratio':>6}  baseline p99 / hub p99 = {ratio:.1f}x", flush=True)
                results.append((n, row))
        finally:
            for server in servers:
                daphne_stop(server)
            _cleanup_redis(env["CACHE_KEY_PREFIX"])
        print(f"# load {os.getloadavg()[0]:.1f} at the end")
        for n, row in results:
            hub = row["hub"]
            baseline = row["naive"]["p99"] if "naive" in row else float("nan")
            print(
                f"RESULT clients={n} p50_ms={hub['p50']:.2f} p99_ms={hub['p99']:.2f} max_ms={hub['max']:.1f} "
                f"msgs_per_s={hub['msgs_per_s']:.0f} baseline_p99_ms={baseline:.2f}"
            )


def _cleanup_redis(prefix: str) -> None:
    import redis

    conn = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    for key in conn.scan_iter(f"{prefix}:*", count=1000):
        conn.delete(key)


if __name__ == "__main__":
    main()
