from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from trustmetrics.tasks import trust_recompute, trust_recompute_full


class Command(BaseCommand):
    help = "Recompute every broker's trust score now, in this process (what Celery beat does on a schedule)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--full", action="store_true", help="Rebuild every day of the window from the bars.")

    def handle(self, *args: Any, **options: Any) -> None:
        stored = trust_recompute_full() if options["full"] else trust_recompute()
        self.stdout.write(self.style.SUCCESS(f"Trust scores stored for {stored} brokers."))
