from collections.abc import Callable

from common.ticks import Level, Quote

class KrakenCore:
    scale: int
    bids: dict[int, float]
    asks: dict[int, float]
    _bid_keys: list[int]
    _bid_lvls: list[Level]
    _bid_texts: list[str]
    _ask_keys: list[int]
    _ask_lvls: list[Level]
    _ask_texts: list[str]
    _bid_depth: tuple[Level, ...] | None
    _ask_depth: tuple[Level, ...] | None
    _depth_n: int
    _qty_format: str
    _qty_scale: float
    _qty_limit: float
    inexact: bool
    def set_bid(self, tick: int, size: float, text: str | None = None) -> None: ...
    def set_ask(self, tick: int, size: float, text: str | None = None) -> None: ...
    def checksum(self) -> int: ...
    def quote(
        self, broker: str, instrument: str, ts_broker: int, ts_recv: int, seq: int, levels: int = ...
    ) -> Quote | None: ...

def configure(quote_type: type[Quote], quote_new: Callable[..., Quote], depth_levels: int) -> bool: ...
def iso_to_us(ts: str) -> int: ...
def set_iso_fallback(fallback: Callable[[str], int]) -> None: ...
