from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.services import event_reports_missing_generate


class Command(BaseCommand):
    help = "Write the stress report of every high-impact release in the last N days that has none yet (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=float, default=30.0)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] <= 0:
            raise CommandError("--days must be positive")
        began = time.monotonic()
        reports = event_reports_missing_generate(days=options["days"])
        self.stdout.write(
            self.style.SUCCESS(f"Event reports written: {len(reports)} in {time.monotonic() - began:.1f}s.")
        )
