from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from alerts.evaluator import Evaluator


class Command(BaseCommand):
    help = "Evaluate watchlist alerts against the live quote and feed-status channels; notify by WebSocket and email."

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        evaluator = Evaluator(
            redis_url=settings.REDIS_URL,
            prefix=settings.CACHE_KEY_PREFIX,
            cooldown_s=settings.ALERTS_COOLDOWN_S,
            reload_s=settings.ALERTS_RELOAD_S,
            score_poll_s=settings.ALERTS_SCORE_POLL_S,
        )
        self.stdout.write("alerts: evaluating", ending="\n")
        self.stdout.flush()
        await evaluator.run(until=stop)
