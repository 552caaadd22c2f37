from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from pagecache.services import pages_prerender


class Command(BaseCommand):
    help = "Render every public page into the shared cache now (like a static site build) and report it."

    def handle(self, *args: Any, **options: Any) -> None:
        results = pages_prerender()
        width = max((len(r.url) for r in results), default=10)
        for r in results:
            self.stdout.write(f"{r.url:<{width}}  {r.outcome:<16} {r.bytes:>8} B {r.ms:8.1f} ms")
        rendered = sum(1 for r in results if r.outcome == "rendered")
        total_ms = sum(r.ms for r in results)
        style = self.style.SUCCESS if rendered == len(results) else self.style.WARNING
        self.stdout.write(style(f"Prerendered {rendered} of {len(results)} pages in {total_ms / 1000:.2f} s."))
