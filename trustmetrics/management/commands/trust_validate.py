from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from trustmetrics.services import trust_validation_store


class Command(BaseCommand):
    help = (
        "Compute and store the methodology page's validation figures for the current methodology version (run at "
        "deploy; the page reads the stored figures and never computes them while a visitor waits)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Compute again even if this version is stored.")

    def handle(self, *args: Any, **options: Any) -> None:
        row = trust_validation_store(force=options["force"])
        s = row.summary
        self.stdout.write(
            self.style.SUCCESS(
                f"Validation of methodology {row.methodology_version} (computed {row.computed_at:%Y-%m-%d %H:%M} "
                f"UTC in {row.seconds:.1f} s): "
                + ", ".join(f"{r['key']} {r['spearman']:.3f}" for r in s["scenarios"])
                + f"; held-out {s['held_out_passing']} of {s['held_out_count']} reach 0.9, median "
                f"{s['held_out_median']:.3f}, lowest {s['held_out_min']:.3f}"
                + (
                    f"; reassigned {s['reassigned_passing']} of {s['reassigned_count']} reach 0.9, lowest "
                    f"{s['reassigned_min']:.3f}."
                    if "reassigned_count" in s
                    else "."
                )
            )
        )
