from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trustmetrics.services import trust_backfill


class Command(BaseCommand):
    help = "Score every broker as of the end of each of the last N days, from data up to that day only (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] <= 0:
            raise CommandError("--days must be positive")
        began = time.monotonic()
        run = trust_backfill(days=options["days"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Daily trust history: {len(run.days)} days, {run.stored} scores stored, "
                f"{run.skipped} days already scored, in {time.monotonic() - began:.1f}s."
            )
        )
