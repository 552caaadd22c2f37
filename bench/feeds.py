"""Benchmark of the feed adapters' parsers: ``python -m bench.feeds [--quick]``.

For each venue, a stream of real wire messages (built as the venue documents them, see
marketdata/tests/wire.py) is run through the adapter's parser (framing and checks, sequence logic,
book upkeep, the normalised quote with depth) and then the quote validator, one message at a time,
as the ingestor does. Compared in the same run with the naive baseline a developer would write
first, which only decodes: ``json.loads`` into dicts for the JSON venues, a split on SOH into a dict
for FIX (no checks, no book, no validation). For FIX, simplefix's own parser is timed as well.

Throughput is messages per CPU-second of the benchmark process (time.process_time): a parser is
single-threaded and CPU-bound, so what it costs is CPU time, and that figure moves far less than wall
clock with whatever else the machine runs. Wall-clock rates are printed beside it; on a quiet machine
the two agree. On a busy one CPU-seconds stretch too (shared caches, a virtual machine's stolen time):
at a load average of 7 to 8 on 2 cores, the same code measured 8 to 23 % below its rates at a load
of 1, the baselines 5 to 18 %. The load average is printed at the start and the end; compare runs
made at the same load (or the ratio to the baseline of the same run).

Messages per venue: FIX X increments (bid and offer change), OANDA PRICE lines (2 levels a side),
Binance diff-depth updates after a snapshot, Kraken v2 book updates with their CRC32 checksum
(checked after every message), Coinbase l2_data updates. A last row (not in RESULT) runs Binance on a
book of 1,000 levels a side, as deep as the REST snapshot a real session starts from.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from typing import Any

import orjson
import simplefix  # type: ignore[import-untyped]

from common.ticks import Quote
from marketdata.feeds.base import parser_create
from marketdata.feeds.venue import VenueParser
from marketdata.tests import wire as w
from marketdata.validation import QuoteValidator, ValidationConfig
from simulator.instruments import SPECS

NOW_MS = w.NOW_MS
STREAMS = w.STREAMS


class _Timer:
    """CPU and wall seconds of one timed block."""

    def __enter__(self) -> _Timer:
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall


def run_adapter(name: str, msgs: list[bytes]) -> tuple[_Timer, int]:
    parser: VenueParser = parser_create(name, broker="bench", params={})
    # Captured times are replayed now: no staleness judgement here, every other check runs.
    cfg = ValidationConfig(max_age_us=10**15, max_future_us=10**15)
    validator = QuoteValidator(symbols={"bench": {s: s for s in SPECS}}, config=cfg)
    parse, check = parser.parse, validator.check
    accepted = 0
    ts = NOW_MS * 1000 - 1  # before every venue time of the stream: nothing is out of order
    with _Timer() as timer:
        for raw in msgs:
            for item in parse(raw, ts):
                if type(item) is Quote and type(check(item)) is Quote:
                    accepted += 1
    return timer, accepted


def run_baseline(name: str, msgs: list[bytes]) -> _Timer:
    with _Timer() as timer:
        if name == "fix":
            for raw in msgs:
                dict(f.split(b"=", 1) for f in raw.split(b"\x01")[:-1])
        else:
            loads = json.loads
            for raw in msgs:
                loads(raw)
    return timer


def run_simplefix(msgs: list[bytes]) -> _Timer:
    parser = simplefix.FixParser()
    with _Timer() as timer:
        for raw in msgs:
            parser.append_buffer(raw)
            parser.get_message()
    return timer


def _best(timers: list[_Timer]) -> tuple[float, float]:
    """Fewest CPU seconds and fewest wall seconds over the rounds."""
    return min(t.cpu for t in timers), min(t.wall for t in timers)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="fewer messages (under a minute)")
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else 200_000
    rounds = 3
    rng = random.Random(16)
    print(f"{n:,} messages per venue, best of {rounds} rounds (parse + validate, one message at a time)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; rates per CPU-second, wall-clock after /")
    print(f"{'venue':<10}{'adapter msgs/s':>22}{'baseline msgs/s':>22}{'ratio':>7}{'accepted':>10}   baseline")
    results: dict[str, float] = {}
    for name, make in STREAMS.items():
        msgs = make(n, rng)
        cpu, wall = _best([run_adapter(name, msgs)[0] for _ in range(rounds)])
        accepted = run_adapter(name, msgs)[1]
        base_cpu, base_wall = _best([run_baseline(name, msgs) for _ in range(rounds)])
        m = len(msgs)
        results[name] = m / cpu
        kind = "split on SOH into a dict" if name == "fix" else "json.loads into dicts"
        print(
            f"{name:<10}{m / cpu:>12,.0f} /{m / wall:>8,.0f}{m / base_cpu:>12,.0f} /{m / base_wall:>8,.0f}"
            f"{base_cpu / cpu:>7.2f}{accepted:>10,}   {kind}"
        )
        if name == "fix":
            sf_cpu, sf_wall = _best([run_simplefix(msgs) for _ in range(rounds)])
            print(
                f"{'':<10}{'':>22}{m / sf_cpu:>12,.0f} /{m / sf_wall:>8,.0f}{sf_cpu / cpu:>7.2f}{'':>10}"
                "   simplefix.FixParser"
            )
    # Not in RESULT: Binance with a book as deep as a real one (the streams above keep a level or ten
    # a side), where keeping the book in order is what costs; the same parser and validator.
    msgs = w.binance_deep_stream(n, rng)
    cpu, wall = _best([run_adapter("binance", msgs)[0] for _ in range(rounds)])
    base_cpu, base_wall = _best([run_baseline("binance", msgs) for _ in range(rounds)])
    m = len(msgs)
    print(
        f"{'(deep)':<10}{m / cpu:>12,.0f} /{m / wall:>8,.0f}{m / base_cpu:>12,.0f} /{m / base_wall:>8,.0f}"
        f"{base_cpu / cpu:>7.2f}{run_adapter('binance', msgs)[1]:>10,}   binance, 1,000 levels a side"
    )
    _ = orjson  # the JSON venues parse with orjson (pinned in requirements.txt)
    result = " ".join(f"{k}_msgs_per_s={v:.0f}" for k, v in results.items())
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"RESULT {result}")


if __name__ == "__main__":
    main()


__all__: list[Any] = []
