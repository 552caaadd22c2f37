"""Mixed load against the running production topology (./scripts/prod.sh must be running).

    python -m bench.topology [--quick]

In one run:
- anonymous visitors (closed loop, keep-alive) over every public page through the nginx edge;
- logged-in sessions, each on its own keep-alive connection to the edge, viewing a page now and then
  (10,000; 1,000 with --quick);
- an admin save every few seconds (a broker's description, through the ORM: the same signals as the
  admin), with the seconds until the edge serves the change, and until the origin does;
- the background work beat starts every 5 minutes, started at the beginning of the run so that the
  saves meet it: a full trust recompute and the prerender of every page (the Celery backlog that used
  to hold page regenerations back);
- PostgreSQL's server connections sampled throughout (target <= 50: PgBouncer holds the sessions);
- then the same anonymous load straight to one daphne, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import random
import re
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "prod"


def _prod_env() -> None:
    """This process talks to prod.sh's database and Redis directly (sessions, saves, pg_stat_activity)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brokerwatch_prod")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6390/0")
    os.environ.setdefault("CACHE_KEY_PREFIX", "prod")
    os.environ.setdefault("HTTPS", "0")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1")
    if "SECRET_KEY" not in os.environ:
        os.environ["SECRET_KEY"] = (VAR / "secret-key").read_text().strip()
    if "ADMIN_URL" not in os.environ:
        os.environ["ADMIN_URL"] = (VAR / "admin-url").read_text().strip()


@dataclass
class Stats:
    latencies_ms: list[float] = field(default_factory=list)
    edge: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0

    def pct(self, q: float) -> float:
        if len(self.latencies_ms) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=1000, method="inclusive")[int(q * 1000) - 1]


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str, cookie: str = ""
) -> tuple[int, dict[str, str], bytes]:
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).strip(), 16)
            if size == 0:
                await reader.readline()
                break
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        body = b"".join(chunks)
    else:
        body = b""
    return status, headers, body


async def _visitor(base: str, paths: list[str], deadline: float, stats: Stats) -> None:
    url = urlsplit(base)
    rng = random.Random()
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(url.hostname, url.port)
            while time.monotonic() < deadline:
                started = time.perf_counter()
                status, headers, _ = await _request(reader, writer, "localhost", rng.choice(paths))
                stats.latencies_ms.append((time.perf_counter() - started) * 1000)
                stats.statuses[status] += 1
                stats.edge[headers.get("x-edge-cache", "-")] += 1
            writer.close()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            stats.errors += 1
            await asyncio.sleep(0.05)


async def _session(
    base: str, paths: list[str], cookie: str, start_in: float, every: float, deadline: float, stats: Stats
) -> None:
    url = urlsplit(base)
    await asyncio.sleep(random.uniform(0, 2.0))  # connect over the first seconds, not in one burst
    try:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
    except OSError:
        stats.errors += 1
        return
    rng = random.Random()
    try:
        await asyncio.sleep(max(0.0, min(start_in, deadline - time.monotonic())))
        while time.monotonic() < deadline:
            started = time.perf_counter()
            status, headers, _body = await _request(reader, writer, "localhost", rng.choice(paths), cookie)
            stats.latencies_ms.append((time.perf_counter() - started) * 1000)
            stats.statuses[status] += 1
            stats.edge[headers.get("x-edge-cache", "-")] += 1
            await asyncio.sleep(min(every, max(0.0, deadline - time.monotonic())))
        # Held open to the end: a session is a keep-alive connection.
    except (OSError, asyncio.IncompleteReadError, ValueError):
        stats.errors += 1
    finally:
        writer.close()


def _sessions_create(n: int) -> list[str]:
    """n real logged-in sessions of the demo user, written straight to the session store."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    user = get_user_model().objects.get(username="demo")
    data = {
        SESSION_KEY: str(user.pk),
        BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    }
    store = SessionStore()
    encoded = store.encode(data)
    expire = timezone.now() + datetime.timedelta(hours=2)
    keys = [get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n)]
    Session.objects.bulk_create([Session(session_key=k, session_data=encoded, expire_date=expire) for k in keys])
    return [f"{settings.SESSION_COOKIE_NAME}={k}" for k in keys]


class PgSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.max = 0
        self.samples: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            while not self.stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = 'brokerwatch_prod' AND pid <> pg_backend_pid()"
                ).fetchone()
                n = int(row[0]) if row else 0
                self.samples.append(n)
                self.max = max(self.max, n)
                self.stop.wait(0.25)


def _saves(edge: str, direct: str, every: float, deadline: float, out: list[float], origin_out: list[float]) -> None:
    """Save a broker every few seconds; seconds until the edge serves the new description (out), and
    until the origin does when asked directly (origin_out): the edge's share is the difference."""
    import urllib.request

    from brokers.models import Broker

    def shows(base: str, marker: str) -> bool:
        try:
            with urllib.request.urlopen(f"{base}/brokers/kestrel-fx/", timeout=10) as response:  # noqa: S310
                return marker.encode() in response.read()
        except OSError:  # a slow answer on the loaded machine: ask again
            return False

    broker = Broker.objects.get(slug="kestrel-fx")
    original = broker.description
    n = 0
    try:
        while time.monotonic() + every < deadline:
            time.sleep(every)
            n += 1
            marker = f"bench-save-{os.getpid()}-{n}"
            broker.description = f"{original} {marker}"
            saved = time.monotonic()
            broker.save()  # the admin's save: the same signals, revalidation on commit
            seen: dict[str, float] = {}
            while len(seen) < 2 and time.monotonic() - saved < 30:
                for name, base in (("edge", edge), ("origin", direct)):
                    if name not in seen and shows(base, marker):
                        seen[name] = time.monotonic() - saved
                time.sleep(0.05)
            if "edge" in seen:
                out.append(seen["edge"])
            if "origin" in seen:
                origin_out.append(seen["origin"])
    finally:
        broker.description = original
        broker.save()


def _public_paths(edge: str) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(f"{edge}/sitemap.xml", timeout=30) as response:  # noqa: S310
        locs = re.findall(r"<loc>([^<]+)</loc>", response.read().decode())
    paths = {urlsplit(u).path + (f"?{urlsplit(u).query}" if urlsplit(u).query else "") for u in locs}
    paths |= {"/", "/brokers/", "/methodology/"}
    return sorted(paths)


async def _phase(base: str, paths: list[str], clients: int, seconds: float) -> Stats:
    stats = Stats()
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(_visitor(base, paths, deadline, stats) for _ in range(clients)))
    return stats


async def _mixed(
    edge: str, paths: list[str], cookies: list[str], clients: int, seconds: float, session_rps: float
) -> tuple[Stats, Stats]:
    anon, logged = Stats(), Stats()
    deadline = time.monotonic() + seconds
    # Every session opens its keep-alive connection at once and holds it to the end; their page views
    # start at session_rps (what this shared machine's origin can render personalised), then repeat
    # every `every` seconds. Sessions whose turn does not come within the run only hold the connection.
    every = max(30.0, seconds / 2)
    sessions = [_session(edge, paths, c, i / session_rps, every, deadline, logged) for i, c in enumerate(cookies)]
    visitors = [_visitor(edge, paths, deadline, anon) for _ in range(clients)]
    await asyncio.gather(*sessions, *visitors)
    return anon, logged


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.topology")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--edge", default="http://127.0.0.1:8080")
    parser.add_argument("--direct", default="http://127.0.0.1:8101")
    parser.add_argument("--sessions", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--session-rps", type=float, default=20.0, help="logged-in page views per second")
    args = parser.parse_args()
    sessions = args.sessions or (1000 if args.quick else 10000)
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    direct_seconds = min(seconds, 10.0 if args.quick else 30.0)

    _prod_env()
    import django

    django.setup()
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass

    paths = _public_paths(args.edge)
    cookies = _sessions_create(sessions)
    asyncio.run(_phase(args.edge, paths, 1, 2.0))  # warm the edge: every page cached once
    print(
        f"{len(paths)} public pages; {sessions} logged-in sessions; "
        f"{seconds:.0f} s mixed, {direct_seconds:.0f} s direct"
    )
    print("(measured on a shared 2-core machine under load from other work: read ratios, not absolutes)")

    sampler = PgSampler()
    sampler.start()
    from pagecache.tasks import pages_prerender_all
    from trustmetrics.tasks import trust_recompute_full

    trust_recompute_full.delay()
    pages_prerender_all.delay()
    revalidate: list[float] = []
    origin_revalidate: list[float] = []
    saver = threading.Thread(
        target=_saves,
        args=(args.edge, args.direct, 3.0, time.monotonic() + seconds, revalidate, origin_revalidate),
        daemon=True,
    )
    saver.start()
    anon, logged = asyncio.run(_mixed(args.edge, paths, cookies, args.clients, seconds, args.session_rps))
    saver.join(timeout=40)
    sampler.stop.set()
    sampler.join()
    direct = asyncio.run(_phase(args.direct, paths, args.clients, direct_seconds))

    from django.contrib.sessions.models import Session

    Session.objects.filter(session_key__in=[c.split("=", 1)[1] for c in cookies]).delete()

    total = sum(anon.edge.values()) or 1
    strict_hits = anon.edge["HIT"] + anon.edge["UPDATING"] + anon.edge["STALE"]
    from_edge = strict_hits + anon.edge["REVALIDATED"]
    edge_hit_pct = 100 * strict_hits / total
    logged_in_cached = sum(v for k, v in logged.edge.items() if k not in ("BYPASS", "-"))
    print()
    print(f"{'load':<34}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    rows = [
        ("anonymous through the edge", anon, seconds),
        ("logged-in sessions (edge bypass)", logged, seconds),
        ("anonymous straight to one daphne", direct, direct_seconds),
    ]
    for name, s, secs in rows:
        n = len(s.latencies_ms)
        print(f"{name:<34}{n:>10}{n / secs:>9.0f}{s.pct(0.5):>9.1f}{s.pct(0.99):>9.1f}{s.errors:>8}")
    print()
    print(f"edge cache statuses (anonymous): {dict(anon.edge)}")
    print(
        f"  served without asking the origin: {edge_hit_pct:.1f}%"
        f"  (+ revalidated by a 304: {100 * from_edge / total:.1f}%)"
    )
    print(f"logged-in answers stored or served by the edge cache: {logged_in_cached} (must be 0)")
    print(f"PostgreSQL server connections: max {sampler.max}, median {statistics.median(sampler.samples or [0]):.0f}")
    print(f"admin save -> edge serves it: {[round(r, 2) for r in revalidate]} s (target <= 2 s)")
    print(f"admin save -> origin serves it (asked directly): {[round(r, 2) for r in origin_revalidate]} s")
    p99_ratio = direct.pct(0.99) / anon.pct(0.99) if anon.pct(0.99) else float("nan")
    print(f"p99 direct / p99 edge: {p99_ratio:.1f}x")
    worst = max(revalidate) if revalidate else float("nan")
    print(
        f"RESULT sessions={sessions} pg_server_conns_max={sampler.max} edge_hit_pct={edge_hit_pct:.1f} "
        f"edge_p99_ms={anon.pct(0.99):.1f} direct_p99_ms={direct.pct(0.99):.1f} revalidate_s={worst:.2f}"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
