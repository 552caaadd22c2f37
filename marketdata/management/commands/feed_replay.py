from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.ticks import Quote, now_us
from marketdata.feeds.base import ADAPTERS, parser_create
from marketdata.feeds.venue import Reject, SymbolMap, VenueParser
from marketdata.validation import QuoteValidator, Reason
from simulator.instruments import SPECS


class SimulatorCapture(VenueParser):
    """The simulator has no wire format of its own: its capture is one normalised quote per line, as
    JSON ({"instrument", "bid", "ask", "bid_size", "ask_size", "ts_broker", "seq"})."""

    name = "simulator"

    def parse(self, raw: bytes | str, ts_recv: int) -> list[Reject | Quote]:
        try:
            d = orjson.loads(raw)
            instrument = str(d["instrument"])
            spec = self.symbols.get(instrument)
            self.seq += 1
            return [
                Quote(
                    self.broker,
                    spec.instrument if spec is not None else instrument,
                    d["bid"],
                    d["ask"],
                    d.get("bid_size", 1.0),
                    d.get("ask_size", 1.0),
                    d.get("ts_broker", ts_recv),
                    ts_recv,
                    d.get("seq", self.seq),
                )
            ]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return [Reject("garbled", str(raw[:40]))]


def _quote_json(q: Quote) -> bytes:
    return orjson.dumps(
        {
            "instrument": q.instrument,
            "bid": q.bid,
            "ask": q.ask,
            "bid_size": q.bid_size,
            "ask_size": q.ask_size,
            "ts_broker": q.ts_broker,
            "seq": q.seq,
            "depth": [[list(lv) for lv in side] for side in q.depth] if q.depth else None,
        }
    )


class Command(BaseCommand):
    help = "Run a captured feed (the venue's wire format) through the adapter's parser and the validator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--adapter", required=True, choices=ADAPTERS)
        parser.add_argument("--broker", help="Use this broker's configured symbol mapping (default: usual names).")
        parser.add_argument("file", help="Capture: one raw message per line (FIX: SOH or | separated fields).")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["adapter"]
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        broker = options["broker"] or "replay"
        params: dict[str, Any] = {}
        known = {s: s for s in SPECS}
        if options["broker"]:
            from marketdata.models import FeedConfig
            from marketdata.selectors import feed_adapter_params, symbol_maps

            config = FeedConfig.objects.filter(broker__slug=broker).select_related("broker").first()
            if config is None:
                raise CommandError(f"no feed configuration for broker {broker!r}")
            params = feed_adapter_params(config=config, resolve_secrets=False)
            known = symbol_maps(brokers=[broker]).get(broker, {})
            for spec in params.get("symbols", []):
                known[spec.instrument] = spec.instrument
        if name == "simulator":
            parser: VenueParser = SimulatorCapture(broker, SymbolMap.from_params(params))
        else:
            parser = parser_create(name, broker=broker, params=params)
        validator = QuoteValidator(symbols={broker: known})
        accepted = 0
        reasons: Counter[str] = Counter()
        out = self.stdout
        for raw in self._messages(name, data):
            try:
                items = parser.parse(raw, now_us())
            except Exception as exc:  # a parser bug on one line must not end the replay
                items = [Reject("parser_error", repr(exc)[:100])]
            for item in items:
                if isinstance(item, Reject):
                    reasons[item.reason] += 1
                    out.write(orjson.dumps({"rejected": item.reason, "detail": item.detail}).decode())
                    continue
                # A capture has no receive times: the venue's time stands in, so staleness is not judged.
                checked = validator.check(dataclasses.replace(item, ts_recv=item.ts_broker))
                if isinstance(checked, Reason):
                    reasons[str(checked)] += 1
                    out.write(orjson.dumps({"rejected": str(checked), "instrument": item.instrument}).decode())
                else:
                    accepted += 1
                    out.write(_quote_json(checked).decode())
        rejected = sum(reasons.values())
        out.write(f"REPLAY accepted={accepted} rejected={rejected} reasons={orjson.dumps(dict(reasons)).decode()}")

    @staticmethod
    def _messages(name: str, data: bytes) -> list[bytes]:
        if name != "fix":
            return [line for line in data.splitlines() if line.strip()]
        # FIX: one message per line, or several back to back; fields split by SOH or "|".
        out: list[bytes] = []
        for line in data.splitlines():
            line = line.strip().replace(b"|", b"\x01")
            if not line:
                continue
            starts = []
            i = line.find(b"8=FIX")
            while i >= 0:
                starts.append(i)
                i = line.find(b"8=FIX", i + 5)
            if not starts or starts[0] > 0:  # junk before (or instead of) a message: a line of its own
                out.append(line[: starts[0]] if starts else line)
            ends = [*starts[1:], len(line)] if starts else []
            out.extend(line[a:b] for a, b in zip(starts, ends, strict=True))
        return out
