from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from brokers.services import demo_seed


class Command(BaseCommand):
    help = "Create or update the demo data: real regulators, ~20 instruments, 14 fictional brokers. Idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = demo_seed()
        self.stdout.write(self.style.SUCCESS("Demo data ready: " + ", ".join(f"{v} {k}" for k, v in counts.items())))
