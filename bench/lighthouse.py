"""Benchmark: Lighthouse (mobile defaults) on the public pages, against the same pages saved as static files.

    python -m bench.lighthouse [--quick]

Starts the site under daphne (one process, as bench.pages does) on real PostgreSQL and Redis with a small
demo world of its own (testing/demo_world.py: brokers, two days of bars, scores, a release report), warms
the page cache, and runs Lighthouse 12 from npm (package.json; `npm ci` installs it) in Debian's headless
chromium on: home, directory, a profile, compare, methodology and an event report. The reference is the
same pages' HTML saved and served as static files by the same server (whitenoise, gzip beside them): the
ceiling a static site would get. Prints each page's category scores and LCP, CLS, TBT and TTFB, and the
audits that lost points; ends with
RESULT perf_min=N a11y_min=N best_practices_min=N seo_min=N lcp_ms_max=N cls_max=N (static_perf_min=N ...)

--quick (about a minute): one run each of the profile, compare and the event report (the heaviest pages,
and the slowest in the last full runs) and of the profile's static copy, all in one browser; the full run
measures every page three times. --pages names other pages; --json-dir keeps each run's whole report.

LCP here is Lantern's simulation: from the run on this machine it takes the dependency graph of what came
before the observed paint, and each main-thread task's wall time times 4. On a shared machine that wall
time is mostly waiting for a core, so the "cpu idx" column gives Lighthouse's own benchmark index of the
run (lower: a slower or busier machine; Lighthouse expects several hundred or more).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field

from bench.pages import _env, _server
from bench.site import ROOT, site_database_migrated

DB_NAME = "bw_bench_lighthouse"
NODE_DRIVER = ROOT / "bench" / "lighthouse_run.mjs"
LIGHTHOUSE = ROOT / "node_modules" / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
# Production-like settings the site needs with DEBUG off (bench.pages' own environment predates ADMIN_URL).
EXTRA_ENV = {"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}", "ADMIN_URL": "bench-admin/"}
PAGES = {
    "home": "/",
    "directory": "/brokers/",
    "profile": "/brokers/northwind-markets/",
    "compare": "/compare/?brokers=kestrel-fx,northwind-markets,coral-reef-trading",
    "methodology": "/methodology/",
    "event report": "{event}",
}
# --quick: the heaviest pages (the largest documents, the most to lay out); the static copy is the profile's.
QUICK_PAGES = ("profile", "compare", "event report")


@dataclass
class Run:
    scores: dict[str, int]
    lcp_ms: float
    cls: float
    tbt_ms: float
    ttfb_ms: float
    benchmark_index: float
    lost: list[str] = field(default_factory=list)


def _manage(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_env(**EXTRA_ENV),
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def _prepare_database() -> str:
    """A fresh database with the demo world; returns the event report's path."""
    # collectstatic needs no database: it runs beside the migration and the demo world.
    collect = subprocess.Popen(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=_env(**EXTRA_ENV),
        stdout=subprocess.DEVNULL,
    )
    try:
        site_database_migrated(_env(**EXTRA_ENV), db_name=DB_NAME)
        build = "from testing.demo_world import demo_world_build; print(demo_world_build().event_report_path)"
        out = _manage("shell", "-c", build)
    finally:
        if collect.wait() != 0:
            raise RuntimeError("collectstatic failed")
    return out.strip().splitlines()[-1]


def _lighthouse(urls: list[str], runs: int, json_dir: str | None = None) -> dict[str, Run]:
    """Median run (by performance score, then LCP) of each URL."""
    env = {**os.environ, "CHROME_PATH": shutil.which("chromium") or "/usr/bin/chromium"}
    if json_dir:
        os.makedirs(json_dir, exist_ok=True)
        env["LIGHTHOUSE_JSON_DIR"] = json_dir
    proc = subprocess.run(
        ["node", str(NODE_DRIVER), str(runs), *urls], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"lighthouse failed:\n{proc.stderr[-3000:]}")
    by_url: dict[str, list[Run]] = {}
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        if row["error"]:
            raise RuntimeError(f"{row['url']}: {row['error']}")
        run = Run(
            row["scores"], row["lcp_ms"], row["cls"], row["tbt_ms"], row["ttfb_ms"], row["benchmark_index"], row["lost"]
        )
        by_url.setdefault(row["url"], []).append(run)
    medians = {}
    for url, found in by_url.items():
        ordered = sorted(found, key=lambda r: (r.scores["performance"], -r.lcp_ms))
        medians[url] = ordered[len(ordered) // 2]
    return medians


def _save_static_copies(url: str, paths: dict[str, str]) -> dict[str, str]:
    """The pages' HTML as static files (with a gzip copy, as collectstatic makes for the site's own files)."""
    target = ROOT / "staticfiles" / "bench" / "lighthouse"
    target.mkdir(parents=True, exist_ok=True)
    copies = {}
    for name, path in paths.items():
        body = urllib.request.urlopen(url + path).read()  # noqa: S310 (local server)
        filename = name.replace(" ", "-") + ".html"
        (target / filename).write_bytes(body)
        (target / (filename + ".gz")).write_bytes(gzip.compress(body, 9))
        copies[name] = f"/static/bench/lighthouse/{filename}"
    return copies


def _row(name: str, run: Run) -> str:
    s = run.scores
    return (
        f"{name:<24}{s['performance']:>6}{s['accessibility']:>6}{s['best-practices']:>6}{s['seo']:>6}"
        f"{run.lcp_ms:>9.0f}{run.cls:>7.4f}{run.tbt_ms:>8.0f}{run.ttfb_ms:>8.0f}{run.benchmark_index:>9.0f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one run each of the profile, compare and the event report, static reference of the profile only "
        "(else every page, median of 3)",
    )
    parser.add_argument(
        "--pages",
        help=f"comma-separated page names to measure instead (of: {', '.join(PAGES)}); one run each with --quick",
    )
    parser.add_argument("--json-dir", help="also write each run's whole Lighthouse report there (NNN.json)")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else 3
    chosen = QUICK_PAGES if args.quick else tuple(PAGES)
    if args.pages:
        chosen = tuple(name.strip() for name in args.pages.split(","))
        unknown = [name for name in chosen if name not in PAGES]
        if unknown:
            parser.error(f"unknown page(s) {', '.join(unknown)}: choose from {', '.join(PAGES)}")
    if not (LIGHTHOUSE / "package.json").exists():
        print(f"{LIGHTHOUSE} is missing: run `npm ci` (scripts/test.sh and scripts/demo.sh do)", file=sys.stderr)
        return 2

    print(f"Preparing database {DB_NAME} (migrate, demo world, collectstatic)...", flush=True)
    event = _prepare_database()
    paths = {name: path.replace("{event}", event) for name, path in PAGES.items() if name in chosen}

    with _server(**EXTRA_ENV) as url:
        for path in paths.values():  # warm the page cache, as the prerender does in production
            urllib.request.urlopen(url + path).read()  # noqa: S310 (local server)
        # The reference: every page's static copy, or with --quick only the profile's (the heaviest page).
        reference = [n for n in paths if n == "profile"] or list(paths)[:1]
        copies = _save_static_copies(url, {n: p for n, p in paths.items() if not args.quick or n in reference})
    # Whitenoise indexes files at start-up: the copies are served by a server started after they were written.
    with _server(**EXTRA_ENV) as url:
        for path in paths.values():
            urllib.request.urlopen(url + path).read()  # noqa: S310 (local server)
        print(
            f"Lighthouse {json.loads((LIGHTHOUSE / 'package.json').read_text())['version']}, mobile, "
            f"{runs} run(s) per page ...",
            flush=True,
        )
        # One browser for the pages and their copies.
        measured = _lighthouse([url + p for p in [*paths.values(), *copies.values()]], runs, args.json_dir)
        site_runs = {name: measured[url + path] for name, path in paths.items()}
        static_runs = {name: measured[url + path] for name, path in copies.items()}

    print()
    print(
        f"{'page':<24}{'perf':>6}{'a11y':>6}{'bp':>6}{'seo':>6}{'LCP ms':>9}{'CLS':>7}{'TBT ms':>8}{'TTFB ms':>8}"
        f"{'cpu idx':>9}"
    )
    for name in paths:
        print(_row(name, site_runs[name]))
        if name in static_runs:
            print(_row("  static copy", static_runs[name]))
    print()
    for name, run in site_runs.items():
        if run.lost:
            print(f"{name} lost points on: {', '.join(run.lost)}")

    def worst(runs_: dict[str, Run]) -> dict[str, float]:
        return {
            "perf_min": min(r.scores["performance"] for r in runs_.values()),
            "a11y_min": min(r.scores["accessibility"] for r in runs_.values()),
            "best_practices_min": min(r.scores["best-practices"] for r in runs_.values()),
            "seo_min": min(r.scores["seo"] for r in runs_.values()),
            "lcp_ms_max": max(r.lcp_ms for r in runs_.values()),
            "cls_max": max(r.cls for r in runs_.values()),
            "cpu_index_min": min(r.benchmark_index for r in runs_.values()),
        }

    ours, ceiling = worst(site_runs), worst(static_runs)
    lcp_ratio = statistics.median(site_runs[n].lcp_ms / static_runs[n].lcp_ms for n in static_runs)
    print()
    print(
        f"Against the static copies: perf_min {ours['perf_min']:.0f} vs {ceiling['perf_min']:.0f}, "
        f"median LCP ratio site/static {lcp_ratio:.2f}x"
    )
    targets = [
        (
            "100 in all four categories",
            min(ours["perf_min"], ours["a11y_min"], ours["best_practices_min"], ours["seo_min"]) >= 100,
        ),
        ("LCP < 1 s", ours["lcp_ms_max"] < 1000),
        ("CLS 0 (as Lighthouse shows it, 3 decimals)", round(ours["cls_max"], 3) == 0),
    ]
    for label, met in targets:
        print(f"Target {label}: {'met' if met else 'NOT met'}")
    print(
        f"RESULT perf_min={ours['perf_min']:.0f} a11y_min={ours['a11y_min']:.0f} "
        f"best_practices_min={ours['best_practices_min']:.0f} seo_min={ours['seo_min']:.0f} "
        f"lcp_ms_max={ours['lcp_ms_max']:.0f} cls_max={ours['cls_max']:.4f} "
        f"static_perf_min={ceiling['perf_min']:.0f} static_lcp_ms_max={ceiling['lcp_ms_max']:.0f} "
        f"lcp_ratio={lcp_ratio:.2f} cpu_index_min={min(ours['cpu_index_min'], ceiling['cpu_index_min']):.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
