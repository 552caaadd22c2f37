from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from marketdata.services import calendar_seed


class Command(BaseCommand):
    help = "Put the usual recurring economic releases (NFP, CPI, rate decisions, ...) on the calendar. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days-back", type=int, default=60)
        parser.add_argument("--days-ahead", type=int, default=60)

    def handle(self, *args: Any, **options: Any) -> None:
        today = datetime.now(tz=UTC).date()
        n = calendar_seed(
            start=today - timedelta(days=options["days_back"]), end=today + timedelta(days=options["days_ahead"])
        )
        self.stdout.write(self.style.SUCCESS(f"Calendar ready: {n} events added."))
