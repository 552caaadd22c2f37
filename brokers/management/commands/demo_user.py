from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"  # noqa: S105 (a local demo account, printed in the README)


class Command(BaseCommand):
    help = "Create the demo staff account (demo / demo-password) unless it exists. For local demos only."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(username=DEMO_USERNAME).exists():
            self.stdout.write("Demo account exists.")
            return
        User.objects.create_superuser(DEMO_USERNAME, "demo@brokerwatch.example", DEMO_PASSWORD)
        self.stdout.write(self.style.SUCCESS(f"Created demo account {DEMO_USERNAME} / {DEMO_PASSWORD}."))
