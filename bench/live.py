"""Tick-to-browser latency of /ws/spreads/ at 100, 1,000 and 5,000 WebSocket clients.

    python -m bench.live [--quick]

Real parts only: daphne server processes (the project's consumer behind AllowedHostsOriginValidator
and AuthMiddlewareStack), Redis, logged-in WebSocket clients in separate processes. A publisher
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
import json
import multiprocessing as mp
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BROKERS = 14
INSTRUMENTS = 20
BIN_US = 50
BINS = 40_000  # 50 µs bins up to 2 s; anything slower counts in the last bin (max is kept exactly)
ROOT = Path(__file__).resolve().parent.parent


# -- the server side (run inside daphne) ---------------------------------------------------------
def _build_application() -> Any:
    import django

    django.setup()
    from channels.auth import AuthMiddlewareStack
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from django.urls import path

    from live.consumers import SpreadsConsumer

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

    return ProtocolTypeRouter(
        {
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(
                    URLRouter(
                        [path("ws/spreads/", SpreadsConsumer.as_asgi()), path("ws/naive/", NaiveConsumer.as_asgi())]
                    )
                )
            )
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
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _symbols() -> list[str]:
    from brokers.demo_data import INSTRUMENTS as DEMO

    return [row[0] for row in DEMO][:INSTRUMENTS]


# -- clients -------------------------------------------------------------------------------------
def _client_proc(
    urls: list[str], cookie: str, n: int, per_client: int, seed: int, ready: Any, go: Any, stop: Any, out: Any
) -> None:
    _raise_fd_limit()
    import websockets

    symbols = _symbols()
    rng = random.Random(seed)
    hist = [0] * BINS
    state = {"count": 0, "max": 0, "connected": 0, "errors": 0, "measuring": False}

    connecting = asyncio.Semaphore(100)  # handshakes in flight, so thousands of clients do not storm the server

    async def one(i: int) -> None:
        subset = rng.sample(symbols, per_client)
        url = f"{urls[i % len(urls)]}?instruments={','.join(subset)}"
        headers = {"Cookie": cookie, "Origin": "http://127.0.0.1"}
        for attempt in range(5):
            try:
                async with connecting:
                    ws = await websockets.connect(url, additional_headers=headers, max_size=2**22, open_timeout=60)
                break
            except Exception:
                await asyncio.sleep(0.5 + attempt)
        else:
            state["errors"] += 1
            return
        state["connected"] += 1
        try:
            async for frame in ws:
                message = frame if isinstance(frame, str) else frame.decode()
                if not state["measuring"]:
                    continue
                now = time.time_ns() // 1000
                # Cheap scan instead of a full parse: this process must keep up with thousands of sockets.
                start = 0
                while True:
                    j = message.find('"ts_ingest":', start)
                    if j < 0:
                        break
                    k = j + 12
                    end = k
                    while message[end] in " 0123456789":
                        end += 1
                    lat = now - int(message[k:end])
                    hist[min(BINS - 1, max(0, lat // BIN_US))] += 1
                    state["count"] += 1
                    if lat > state["max"]:
                        state["max"] = lat
                    start = end
        except Exception:
            state["errors"] += 1

    async def main() -> None:
        tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
        while state["connected"] + state["errors"] < n:
            await asyncio.sleep(0.05)
        ready.set()
        while not go.is_set():
            await asyncio.sleep(0.01)
        state["measuring"] = True
        while not stop.is_set():
            await asyncio.sleep(0.01)
        state["measuring"] = False
        out.put({"hist": hist, "count": state["count"], "max": state["max"], "errors": state["errors"]})
        for t in tasks:
            t.cancel()

    asyncio.run(main())


# -- publisher -----------------------------------------------------------------------------------
def _publisher_proc(mode: str, rate: float, stop: Any, go: Any, counter: Any) -> None:
    import django

    django.setup()
    import redis

    from live import keys

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
def _percentile(hist: list[int], total: int, p: float) -> float:
    if not total:
        return float("nan")
    rank = p * total
    seen = 0
    for i, c in enumerate(hist):
        seen += c
        if seen >= rank:
            return (i + 0.5) * BIN_US / 1000
    return BINS * BIN_US / 1000


def run_config(
    *, mode: str, clients: int, servers: list[tuple[int, subprocess.Popen[bytes]]], cookie: str, args: Any
) -> dict[str, float]:
    path = "/ws/spreads/" if mode == "hub" else "/ws/naive/"
    urls = [f"ws://127.0.0.1:{port}{path}" for port, _ in servers]
    ctx = mp.get_context("spawn")
    ready_events, outs, procs = [], [], []
    go, stop = ctx.Event(), ctx.Event()
    n_procs = max(1, min(args.client_procs, clients // 50 or 1))
    rss_before = sum(_proc_rss_kb(p.pid) for _, p in servers)
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
    counter = ctx.Value("l", 0)
    pub_stop = ctx.Event()
    publisher = ctx.Process(target=_publisher_proc, args=(mode, args.rate, pub_stop, go, counter), daemon=True)
    publisher.start()
    time.sleep(args.warmup)
    cpu_before = sum(_proc_cpu_s(p.pid) for _, p in servers)
    started = time.monotonic()
    go.set()
    time.sleep(args.duration)
    stop.set()
    elapsed = time.monotonic() - started
    cpu_used = sum(_proc_cpu_s(p.pid) for _, p in servers) - cpu_before
    rss_after = sum(_proc_rss_kb(p.pid) for _, p in servers)
    pub_stop.set()
    hist = [0] * BINS
    total = errors = 0
    worst = 0
    for out in outs:
        r = out.get(timeout=60)
        hist = [a + b for a, b in zip(hist, r["hist"], strict=True)]
        total += r["count"]
        worst = max(worst, r["max"])
        errors += r["errors"]
    for proc in procs + [publisher]:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    time.sleep(0.5)  # let the servers notice the disconnects before the next configuration
    return {
        "p50": _percentile(hist, total, 0.50),
        "p99": _percentile(hist, total, 0.99),
        "max": worst / 1000,
        "msgs_per_s": total / elapsed,
        "quotes_per_s": counter.value / elapsed,
        "cpu_pct": 100 * cpu_used / elapsed,
        "cpu_us_per_msg": 1e6 * cpu_used / max(1, total),
        "kb_per_conn": max(0, rss_after - rss_before) / clients,
        "errors": errors,
    }


def _setup(workdir: Path) -> tuple[dict[str, str], str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "CACHE_KEY_PREFIX": f"benchlive{os.getpid()}",
        "SECRET_KEY": "bench-only-" + "x" * 40,
        "DEBUG": "0",
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


def _start_servers(env: dict[str, str], count: int) -> list[tuple[int, subprocess.Popen[bytes]]]:
    servers = []
    for _ in range(count):
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "bench.live:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        servers.append((port, proc))
    for port, proc in servers:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("daphne did not start") from None
                time.sleep(0.1)
    return servers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer clients, shorter runs (under a minute)")
    parser.add_argument("--clients", type=str, default=None, help="comma-separated client counts")
    parser.add_argument("--rate", type=float, default=100.0, help="quotes per second over all brokers+instruments")
    parser.add_argument("--per-client", type=int, default=2, help="instruments each client subscribes to")
    parser.add_argument("--servers", type=int, default=2, help="daphne processes behind the clients")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    counts = (
        [int(c) for c in args.clients.split(",")]
        if args.clients
        else ([100, 1000] if args.quick else [100, 1000, 5000])
    )
    args.duration = args.duration or (5.0 if args.quick else 15.0)
    _raise_fd_limit()

    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        env, cookie = _setup(Path(tmp))
        servers = _start_servers(env, args.servers)
        print(
            f"# {args.servers} daphne processes, {BROKERS} brokers x {INSTRUMENTS} instruments, "
            f"{args.rate:.0f} quotes/s in total, each client subscribed to {args.per_client} instruments "
            f"(~{args.rate * args.per_client / INSTRUMENTS:.0f} quotes/s per client), {args.duration:.0f}s per run, "
            f"{os.cpu_count()} cores shared with the clients and the publisher"
        )
        header = (
            f"{'clients':>7} {'design':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'msgs/s':>9} "
            f"{'cpu %':>6} {'µs cpu/msg':>10} {'KB/conn':>8} {'errors':>6}"
        )
        print(header)
        results = []
        try:
            for n in counts:
                row = {}
                for mode in ("hub", "naive"):
                    r = run_config(mode=mode, clients=n, servers=servers, cookie=cookie, args=args)
                    row[mode] = r
                    print(
                        f"{n:>7} {mode:>9} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['max']:>8.1f} {r['msgs_per_s']:>9.0f} "
                        f"{r['cpu_pct']:>6.0f} {r['cpu_us_per_msg']:>10.1f} {r['kb_per_conn']:>8.1f} {r['errors']:>6}",
                        flush=True,
                    )
                ratio = row["naive"]["p99"] / row["hub"]["p99"] if row["hub"]["p99"] else float("nan")
                print(f"{n:>7} {'ratio':>9}  baseline p99 / hub p99 = {ratio:.1f}x", flush=True)
                results.append((n, row))
        finally:
            for _, proc in servers:
                proc.terminate()
            for _, proc in servers:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            _cleanup_redis(env["CACHE_KEY_PREFIX"])
        for n, row in results:
            hub, naive = row["hub"], row["naive"]
            print(
                f"RESULT clients={n} p50_ms={hub['p50']:.2f} p99_ms={hub['p99']:.2f} max_ms={hub['max']:.1f} "
                f"msgs_per_s={hub['msgs_per_s']:.0f} baseline_p99_ms={naive['p99']:.2f}"
            )


def _cleanup_redis(prefix: str) -> None:
    import redis

    conn = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    for key in conn.scan_iter(f"{prefix}:*", count=1000):
        conn.delete(key)


if __name__ == "__main__":
    main()
