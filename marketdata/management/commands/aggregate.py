from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketdata.aggregator import StreamAggregator
from marketdata.management.commands._startup import StartupClock


class Command(BaseCommand):
    help = "Fold the tick streams into 1-minute spread bars (and 1h/1d roll-ups) in PostgreSQL, exactly once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shard", type=int, action="append", help="Only these shards (default: all).")
        parser.add_argument("--count", type=int, default=200, help="Stream entries per batch/transaction.")
        parser.add_argument(
            "--rollup-every",
            type=float,
            default=0.0,
            help="Seconds between roll-ups in this process (default 0: Celery beat owns them; for beat-less runs).",
        )
        parser.add_argument("--exit-when-idle", type=float, default=0.0, help="Exit after this many idle seconds.")

    def handle(self, *args: Any, **options: Any) -> None:
        clock = StartupClock()
        total = settings.LIVE_STREAM_SHARDS
        shards = options["shard"] or list(range(total))
        if any(not 0 <= s < total for s in shards):
            raise CommandError(f"shards are 0..{total - 1}")
        try:
            agg = StreamAggregator(
                redis_url=settings.REDIS_URL,
                prefix=settings.CACHE_KEY_PREFIX,
                shards=shards,
                count=options["count"],
                rollup_every_s=options["rollup_every"],
            )
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        clock.mark("set-up")
        self.stdout.write(f"aggregating shards {shards} as {agg.consumer}")
        if agg.single_process:
            self.stdout.write("no PostgreSQL: shard locks skipped, run only this one aggregator")

        def at_work() -> None:
            clock.mark("first work")
            self.stdout.write(clock.line())

        agg.on_first_commit = at_work
        agg.run(stop=lambda: stopping, exit_when_idle=options["exit_when_idle"])
        s = agg.stats
        self.stdout.write(
            f"stopped: {s.quotes} quotes in {s.entries} entries, {s.commits} commits, "
            f"{s.skipped_entries} redelivered entries skipped, {s.malformed} malformed"
        )
