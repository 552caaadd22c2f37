"""Reads for the live board: which instruments and brokers, and the last known quotes in Redis."""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache

from brokers.models import Broker, BrokerInstrument, Instrument
from common.redis import REDIS_DOWN, redis_sync
from common.ticks import now_us
from live.selectors import BoardChoice
from marketdata import keys
from marketdata.selectors import feed_accounts

UNIVERSE_CACHE_S = 60
_universe_local: tuple[float, frozenset[str]] | None = None


def instrument_universe() -> frozenset[str]:
    """Every instrument symbol a client may subscribe to.

    Kept in the process for UNIVERSE_CACHE_S too: WebSocket handshakes ask for it on every connect, and
    a new instrument may take a minute to become subscribable."""
    global _universe_local
    now = time.monotonic()
    if _universe_local is not None and now - _universe_local[0] < UNIVERSE_CACHE_S:
        return _universe_local[1]
    found = cache.get("live:universe")
    if found is None:
        found = sorted(Instrument.objects.values_list("symbol", flat=True))
        cache.set("live:universe", found, UNIVERSE_CACHE_S)
    universe = frozenset(found)
    if universe:
        _universe_local = (now, universe)
    return universe


def instrument_universe_local() -> frozenset[str] | None:
    """The process's copy, if it is fresh: no I/O, so callable on the event loop."""
    found = _universe_local
    if found is not None and time.monotonic() - found[0] < UNIVERSE_CACHE_S:
        return found[1]
    return None


def instrument_universe_forget() -> None:
    global _universe_local
    _universe_local = None
    cache.delete("live:universe")


@dataclass(frozen=True)
class Column:
    slug: str
    name: str
    suspended: bool = False
    account: str = ""  # the account whose prices the broker's feed carries

    @property
    def label(self) -> str:
        return f"{self.name} (suspended)" if self.suspended else self.name


@dataclass
class Cell:
    broker: str
    quoted: bool  # the broker lists this instrument at all
    bid: float | None = None
    ask: float | None = None
    spread_pips: float | None = None
    age_s: float | None = None
    best: bool = False

    @property
    def stale(self) -> bool:
        return self.age_s is not None and self.age_s > settings.LIVE_STALE_AFTER_S


@dataclass
class Row:
    symbol: str
    name: str
    pip_size: Decimal
    precision: int
    cells: list[Cell] = field(default_factory=list)


@dataclass
class Board:
    rows: list[Row]
    brokers: list[Column]
    status: dict[str, dict[str, Any]]
    all_instruments: list[str]
    all_brokers: list[Column]
    quotes_seen: int
    generated_at: datetime.datetime  # when this copy was made: the public page is a shared, cached copy

    @property
    def feeds_up(self) -> int:
        return sum(1 for st in self.status.values() if st.get("status") == "up")

    @property
    def stale_after_s(self) -> int:
        """A quote older than this is greyed and never counted as best (the script gets the same figure)."""
        return int(settings.LIVE_STALE_AFTER_S)

    def as_config(self) -> dict[str, Any]:
        """What the board script needs to build and update the grid."""
        return {
            "instruments": [
                {"symbol": r.symbol, "pip": float(r.pip_size), "precision": r.precision} for r in self.rows
            ],
            "brokers": [{"slug": b.slug, "name": b.name} for b in self.brokers],
            "staleAfterMs": self.stale_after_s * 1000,
            # The socket is open but no quote came for this long: the board says "Delayed", not "Live".
            "delayedAfterMs": self.stale_after_s * 1000,
        }


def _column(b: Broker, accounts: dict[int, Any] | None = None) -> Column:
    account = (accounts or {}).get(b.pk)
    return Column(
        slug=b.slug,
        name=b.name,
        suspended=b.status == Broker.Status.SUSPENDED,
        account=account.name if account is not None else "",
    )


def broker_columns() -> list[Column]:
    return [_column(b) for b in Broker.objects.order_by("name")]


def latest_quotes() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(field -> quote, broker -> status) as the ingestors left them in Redis."""
    if not settings.USE_REDIS:
        return {}, {}
    conn = redis_sync()
    pipe = conn.pipeline(transaction=False)
    pipe.hgetall(keys.latest_hash())
    pipe.hgetall(keys.status_hash())
    try:
        latest_raw, status_raw = pipe.execute()
    except REDIS_DOWN:
        return {}, {}  # Redis down: the board renders without quotes (every broker shows as stale)
    latest: dict[str, dict[str, Any]] = {}
    for name, data in latest_raw.items():
        try:
            latest[name.decode()] = json.loads(data)
        except ValueError:
            continue
    status: dict[str, dict[str, Any]] = {}
    for name, data in status_raw.items():
        try:
            status[name.decode()] = json.loads(data)
        except ValueError:
            continue
    return latest, status


def board_build(*, choice: BoardChoice) -> Board:
    instruments = list(Instrument.objects.all())
    brokers = list(Broker.objects.prefetch_related("account_types").order_by("name"))
    accounts = feed_accounts(brokers=brokers)
    all_brokers = [_column(b, accounts) for b in brokers]
    if choice.instruments:
        order = {s: i for i, s in enumerate(choice.instruments)}
        instruments = sorted((i for i in instruments if i.symbol in order), key=lambda i: order[i.symbol])
    if choice.brokers:
        picked = set(choice.brokers)
        brokers = [b for b in brokers if b.slug in picked]
    listed = set(BrokerInstrument.objects.filter(broker__in=brokers).values_list("broker__slug", "instrument__symbol"))
    latest, status = latest_quotes()
    now = now_us()
    rows = []
    for inst in instruments:
        row = Row(symbol=inst.symbol, name=inst.name, pip_size=inst.pip_size, precision=inst.display_precision)
        pip = float(inst.pip_size)
        for b in brokers:
            cell = Cell(broker=b.slug, quoted=(b.slug, inst.symbol) in listed)
            q = latest.get(keys.field(b.slug, inst.symbol))
            if q is not None:
                try:
                    cell.bid, cell.ask = float(q["bid"]), float(q["ask"])
                    cell.spread_pips = round((cell.ask - cell.bid) / pip, 2)
                    cell.age_s = max(0.0, (now - int(q["ts_ingest"])) / 1e6)
                except (KeyError, TypeError, ValueError):
                    cell.bid = cell.ask = cell.spread_pips = cell.age_s = None
            row.cells.append(cell)
        live = [c for c in row.cells if c.spread_pips is not None and not c.stale]
        if live:
            best = min(c.spread_pips for c in live if c.spread_pips is not None)
            for c in live:
                c.best = c.spread_pips == best
        rows.append(row)
    return Board(
        rows=rows,
        brokers=[_column(b, accounts) for b in brokers],
        status=status,
        all_instruments=[i.symbol for i in Instrument.objects.all()],
        all_brokers=all_brokers,
        quotes_seen=len(latest),
        generated_at=datetime.datetime.now(tz=datetime.UTC),
    )


def broker_instruments(*, slug: str) -> list[dict[str, Any]]:
    """The instruments one broker quotes, for its profile's live widget."""
    return [
        {
            "symbol": bi.instrument.symbol,
            "pip": float(bi.instrument.pip_size),
            "precision": bi.instrument.display_precision,
        }
        for bi in BrokerInstrument.objects.filter(broker__slug=slug).select_related("instrument")
    ]
