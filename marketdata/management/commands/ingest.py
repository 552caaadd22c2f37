from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from brokers.models import Broker
from common.ticks import FeedStatus
from marketdata.feeds.base import FeedAdapter, adapter_create
from marketdata.feeds.secrets import SecretMissing
from marketdata.ingest import Ingestor
from marketdata.management.commands._startup import StartupClock
from marketdata.selectors import calendar_events, feed_accounts, feed_adapter_params, feed_configs, symbol_maps
from marketdata.services import (
    RejectionWrite,
    feed_configs_ensure,
    feed_status_record,
    rejections_record_once,
    us_to_dt,
)
from marketdata.validation import QuoteValidator
from marketdata.wal import WalLockedError

logger = logging.getLogger(__name__)


# Both run in the ingestor's database thread, which retries them with backoff until they succeed. A
# connection broken by a database restart is closed first, so a retry connects afresh.
def _status_sink(broker: str, status: FeedStatus, at: int, detail: str) -> None:
    close_old_connections()
    feed_status_record(broker_slug=broker, status=str(status), at=us_to_dt(at), detail=detail)


def _reject_sink(writes: list[RejectionWrite], at: int) -> None:
    close_old_connections()
    rejections_record_once(writes=writes, at=us_to_dt(at))


def _protocol_reject_counter(validator: QuoteValidator, broker: str) -> Callable[[str, str], None]:
    """Protocol-level rejects of an adapter (bad checksum, sequence gap, unknown symbol...) are counted
    with the validator's, so they reach the same per-hour rejection counts."""

    def count(reason: str, detail: str) -> None:
        validator.counts[reason] += 1
        validator.by_broker[(broker, reason)] += 1
        logger.debug("%s: %s (%s)", broker, reason, detail)

    return count


def wal_path_default(slugs: list[str], *, everything: bool) -> Path:
    """One write-ahead file per ingestor, named after the site's key prefix (sites and test runs sharing a
    machine never collide) and the brokers it runs."""
    name = "all" if everything else "-".join(sorted(slugs))
    if len(name) > 100:
        name = hashlib.sha256(name.encode()).hexdigest()[:16]
    return Path(settings.INGEST_WAL_DIR) / f"ingest-{settings.CACHE_KEY_PREFIX}-{name}.wal"


class Command(BaseCommand):
    help = "Run broker feeds: validate quotes, publish them live and append them to the durable tick stream."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--broker", action="append", help="Broker slug (repeatable); default: all enabled.")
        parser.add_argument("--seconds", type=float, default=0.0, help="Stop after this long (0: run until killed).")
        parser.add_argument(
            "--wal",
            help="Write-ahead file for quotes accepted while Redis is unreachable "
            "(default: INGEST_WAL_DIR/ingest-<brokers>.wal; one per ingestor).",
        )
        parser.add_argument(
            "--audit-log", help="Append a JSON line per batch made, confirmed by Redis or kept in the write-ahead file."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        clock = StartupClock()
        feed_configs_ensure()
        configs = feed_configs(brokers=options["broker"])
        if not configs:
            raise CommandError("no enabled feed configuration matches (see Live spreads > Feed configs in admin)")
        now = datetime.now(tz=UTC)
        events = calendar_events(since=now - timedelta(days=2), until=now + timedelta(days=30))
        slugs = sorted({c.broker.slug for c in configs})
        validator = QuoteValidator(symbols=symbol_maps(brokers=slugs))
        adapters: list[FeedAdapter] = []
        accounts: list[int] = []  # the account type each feed carries (0: the broker's default account)
        # The live channels stream each broker's feed account (the board shows one column per broker).
        feeds = feed_accounts(brokers=list(Broker.objects.filter(slug__in=slugs).prefetch_related("account_types")))
        live: list[bool] = []
        for c in configs:
            slug = c.broker.slug
            try:
                params = {
                    "seed": settings.LIVE_SIM_SEED,
                    "quotes_per_s": settings.LIVE_SIM_QUOTES_PER_S,
                    **feed_adapter_params(config=c),
                }
            except SecretMissing as exc:
                raise CommandError(f"{slug}: a credential is missing: {exc}") from exc
            params["events"] = events
            params["on_reject"] = _protocol_reject_counter(validator, slug)
            # The instruments a real feed is mapped to are accepted as themselves.
            for spec in params.get("symbols", []):
                validator.symbols.setdefault(slug, {})[spec.instrument] = spec.instrument
            try:
                adapters.append(adapter_create(c.adapter, broker=slug, params=params))
            except ValueError as exc:
                raise CommandError(f"{slug}: {exc}") from exc
            accounts.append(c.account_id or 0)
            feed = feeds.get(c.broker_id)
            live.append(c.account_id is None or (feed is not None and feed.pk == c.account_id))
        wal = options["wal"] or wal_path_default(slugs, everything=not options["broker"])
        try:
            ingestor = Ingestor(
                redis_url=settings.REDIS_URL,
                prefix=settings.CACHE_KEY_PREFIX,
                shards=settings.LIVE_STREAM_SHARDS,
                validator=validator,
                status_sink=_status_sink,
                reject_sink=_reject_sink,
                stale_after_s=settings.LIVE_STALE_AFTER_S,
                wal_path=wal,
                audit_path=options["audit_log"],
            )
        except WalLockedError as exc:
            raise CommandError(str(exc)) from exc
        clock.mark("set-up")
        self.stdout.write(f"ingesting {', '.join(slugs)}")
        asyncio.run(self._run(ingestor, adapters, accounts, live, options["seconds"], clock))
        s = ingestor.stats
        counts = ", ".join(f"{k}={v}" for k, v in sorted(ingestor.validator.counts.items()))
        self.stdout.write(
            f"stopped: {counts}; reconnects={s.reconnects}; flush errors={s.flush_errors}; "
            f"write-ahead: {s.wal_written} written, {s.wal_replayed} replayed"
        )

    async def _run(
        self,
        ingestor: Ingestor,
        adapters: list[FeedAdapter],
        accounts: list[int],
        live: list[bool],
        seconds: float,
        clock: StartupClock,
    ) -> None:
        async def at_work() -> None:
            await ingestor.at_work.wait()
            clock.mark("first work")
            self.stdout.write(clock.line())

        timing = asyncio.ensure_future(at_work())
        until = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, until.set)
        if seconds:
            loop.call_later(seconds, until.set)
        try:
            await ingestor.run(adapters, until=until, accounts=accounts, live=live)
        finally:
            timing.cancel()
