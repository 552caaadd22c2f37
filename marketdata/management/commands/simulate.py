from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.ticks import now_us
from marketdata.backfill import BackfillStats, backfill_window, history_backfill
from marketdata.services import calendar_seed, feed_configs_ensure, feed_configs_ensure_accounts


class Command(BaseCommand):
    help = "Backfill N days of simulated spread history (bars, feed status history) faster than real time."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=float, default=7.0)
        parser.add_argument(
            "--quotes-per-minute", type=float, default=1.0, help="Per broker and instrument (lower is faster)."
        )
        parser.add_argument(
            "--minute-days", type=float, default=1.0, help="Write 1-minute bars for the last N days (older: 1h/1d)."
        )
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--broker", action="append", help="Broker slug (repeatable); default: all 14.")
        parser.add_argument("--instrument", action="append", help="Canonical symbol (repeatable); default: all.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        days, qpm = options["days"], options["quotes_per_minute"]
        if days <= 0 or qpm <= 0:
            raise CommandError("--days and --quotes-per-minute must be positive")
        start_us, end_us = backfill_window(days, now_us=now_us())
        today = datetime.now(tz=UTC).date()
        calendar_seed(start=today - timedelta(days=int(days) + 2), end=today + timedelta(days=60))
        feed_configs_ensure()
        feed_configs_ensure_accounts()  # simulated brokers quote each account they price apart on its own feed
        began = time.monotonic()
        show = not options["no_progress"]

        def progress(done: int, total: int, stats: BackfillStats) -> None:
            if not show:
                return
            width = 30
            filled = width * done // total
            rate = stats.quotes / max(time.monotonic() - began, 1e-9)
            sys.stderr.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * done // total:3d}% "
                f"{done}/{total} h  {stats.quotes:,} quotes  {rate:,.0f} quotes/s"
            )
            sys.stderr.flush()

        try:
            stats = history_backfill(
                start_us=start_us,
                end_us=end_us,
                seed=options["seed"] if options["seed"] is not None else settings.LIVE_SIM_SEED,
                quotes_per_minute=qpm,
                minute_days=options["minute_days"],
                brokers=options["broker"],
                instruments=options["instrument"],
                progress=progress,
            )
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        if show:
            sys.stderr.write("\n")
        rejected = ", ".join(f"{k}={v}" for k, v in sorted(stats.rejected.items())) or "none"
        self.stdout.write(
            self.style.SUCCESS(
                f"Simulated {days:g} days in {time.monotonic() - began:.1f}s: {stats.quotes:,} quotes, "
                f"{stats.accepted:,} accepted (rejected: {rejected}); bars 1m={stats.bars_1m:,} "
                f"1h={stats.bars_1h:,} 1d={stats.bars_1d:,}; {stats.status_changes} feed status changes."
            )
        )
