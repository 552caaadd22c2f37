"""Quote validation: every quote is accepted or rejected with one reason, and reasons are counted.

Pure: no Django. The validator never raises on bad input; hostile values (NaN, strings, None, huge
numbers) become a counted rejection. It keeps per-broker/instrument state (last good quote, last
sequence number), so one validator serves one ingestor process. A broker may run one feed per account
type: sequence numbers and timestamp order are kept per feed (broker, account).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from itertools import compress
from operator import is_not
from typing import Any

from common.ticks import Quote


class Reason(StrEnum):
    NOT_NUMERIC = "not_numeric"  # NaN, infinity, or not a number at all
    NON_POSITIVE = "non_positive"  # price or size <= 0
    CROSSED = "crossed"  # bid above ask
    JUMP = "jump"  # mid too far from the last good mid
    UNKNOWN_SYMBOL = "unknown_symbol"
    OUT_OF_ORDER = "out_of_order"  # sequence or broker timestamp went backwards
    DUPLICATE = "duplicate"  # same sequence number again
    STALE = "stale"  # broker timestamp too old when received
    FUTURE = "future"  # broker timestamp too far ahead of our clock
    BAD_FIELD = "bad_field"  # timestamps or sequence not integers, broker missing, bad depth


@dataclass(frozen=True)
class ValidationConfig:
    max_age_us: int = 5_000_000  # older than this on receipt: stale
    max_future_us: int = 2_000_000  # tolerated clock skew
    max_jump: float = 0.05  # relative mid move against the last good quote
    jump_confirm: int = 3  # this many consecutive "jumps" to the same level re-anchor: the market really moved
    max_price: float = 1e9
    max_size: float = 1e12


_INF = math.inf
_NEG_INF = -math.inf


def _num(value: object) -> float | None:
    if type(value) is float:  # the common case, fast
        return value if -math.inf < value < math.inf else None
    # bool is an int subclass but never a price.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        f = float(value)
    except (OverflowError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


class QuoteValidator:
    """Checks quotes from feeds; `check` returns the normalised quote or the rejection reason."""

    def __init__(
        self,
        *,
        symbols: Mapping[str, Mapping[str, str]],
        config: ValidationConfig | None = None,
        jump_limits: Mapping[str, float] | None = None,
    ) -> None:
        # symbols: broker -> {feed symbol -> canonical symbol}; canonical symbols map to themselves too.
        self.symbols = {b: dict(m) for b, m in symbols.items()}
        self.config = config or ValidationConfig()
        self.jump_limits = dict(jump_limits or {})
        self.counts: Counter[str] = Counter()  # reason -> count, plus "accepted"
        self.by_broker: Counter[tuple[str, str]] = Counter()  # (broker, reason) -> count
        # Keyed by feed: (broker, account), account 0 being the broker's default account.
        self._last_seq: dict[tuple[str, int], int] = {}
        self._last: dict[tuple[str, str, int], tuple[int, float]] = {}  # last good quote: (broker ts, mid)
        self._jump_run: dict[tuple[str, str, int], list[float]] = {}
        # The last depth that passed, per instrument, when made only of (float, float) pairs: a level of
        # a new quote that is the very same object at the same place was checked then, and an immutable
        # pair of floats cannot have changed, so only the other levels are looked at (see _depth_check).
        self._last_depth: dict[tuple[str, str, int], tuple[tuple[Any, ...], tuple[Any, ...]]] = {}

    def reset_sequence(self, broker: str, account: int | None = None) -> None:
        """A new connection restarts the feed's sequence numbers (every feed of the broker without account)."""
        if account is not None:
            self._last_seq.pop((broker, account), None)
            return
        for key in [k for k in self._last_seq if k[0] == broker]:
            del self._last_seq[key]

    def _reject(self, broker: object, reason: Reason) -> Reason:
        self.counts[reason] += 1
        self.by_broker[(broker if isinstance(broker, str) else "?", str(reason))] += 1
        return reason

    def check(self, quote: Quote) -> Quote | Reason:
        """The quote (its instrument made canonical) if it passes every check, else the reason.

        What feeds send almost always passes, in the types the adapters build: that case is decided
        here in one pass, with no call. Anything else (another type anywhere, a value that fails or
        only might fail a check, a jump) goes to _check, the full checks in their documented order,
        which then decides alone: this pass changes no state before it accepts, so falling back is
        always right, and it accepts only what _check would accept with the same effect (a test runs
        both against a copy of the validator as it was, on generated quotes of every kind).
        """
        broker, instrument, account = quote.broker, quote.instrument, quote.account
        seq, ts_broker, ts_recv = quote.seq, quote.ts_broker, quote.ts_recv
        bid, ask, bid_size, ask_size = quote.bid, quote.ask, quote.bid_size, quote.ask_size
        cfg = self.config
        if not (
            type(broker) is str
            and type(instrument) is str
            and type(account) is int
            and type(seq) is int
            and type(ts_broker) is int
            and type(ts_recv) is int
            and type(bid) is float
            and type(ask) is float
            and type(bid_size) is float
            and type(ask_size) is float
            and broker
            and account >= 0
            # Positive, finite (NaN fails every comparison), in range and not crossed.
            and 0.0 < bid <= ask < _INF
            and ask <= cfg.max_price
            and 0.0 < bid_size < _INF
            and 0.0 < ask_size < _INF
            and bid_size <= cfg.max_size
            and ask_size <= cfg.max_size
            and ts_recv - ts_broker <= cfg.max_age_us
            and ts_broker - ts_recv <= cfg.max_future_us
        ):
            return self._check(quote)
        symbol_map = self.symbols.get(broker)
        canonical = symbol_map.get(instrument) if symbol_map is not None else None
        if canonical is None:
            return self._check(quote)
        feed = (broker, account)
        last_seq = self._last_seq.get(feed)
        if last_seq is not None and seq <= last_seq:
            return self._check(quote)
        key = (broker, canonical, account)
        last = self._last.get(key)
        if last is not None and ts_broker < last[0]:
            return self._check(quote)
        depth = quote.depth
        keep_depth = False  # _depth_check's _GOOD_FLOATS: remembered as the instrument's last depth
        if depth is not None:
            # _depth_check for plain tuples of (float, float) levels; anything else goes to _check.
            if type(depth) is not tuple or len(depth) != 2:
                return self._check(quote)
            before = self._last_depth.get(key) if self._last_depth else None
            bid_side, ask_side = depth
            if (
                before is not None
                and type(bid_side) is tuple
                and type(ask_side) is tuple
                and _SKIP_MIN <= len(bid_side) == len(before[0]) <= 20
                and _SKIP_MIN <= len(ask_side) == len(before[1]) <= 20
            ):
                # The usual book: both sides as long as last time, so the two sides side by side
                # line up with last time's: one pass finds the levels that are new objects.
                keep_depth = True
                levels: Iterable[Any] = bid_side + ask_side
                levels = compress(levels, map(is_not, levels, before[0] + before[1]))
            else:
                levels = ()
                i = 0
                for side in depth:
                    if type(side) is not tuple:
                        return self._check(quote)
                    n = len(side)
                    if n > 20:
                        return self._check(quote)
                    side_levels: Iterable[Any] = side
                    if n >= _SKIP_MIN:
                        keep_depth = True
                        if before is not None:
                            prior = before[i]
                            if side is prior:
                                side_levels = ()
                            elif len(prior) >= n:
                                side_levels = compress(side, map(is_not, side, prior))
                    i += 1
                    for level in side_levels:
                        if type(level) is tuple and len(level) == 2:
                            price, size = level
                            if (
                                type(price) is float
                                and type(size) is float
                                and 0.0 < price < _INF
                                and 0.0 < size < _INF
                            ):
                                continue
                        return self._check(quote)
            for level in levels:
                if type(level) is tuple and len(level) == 2:
                    price, size = level
                    if type(price) is float and type(size) is float and 0.0 < price < _INF and 0.0 < size < _INF:
                        continue
                return self._check(quote)
        mid = (bid + ask) / 2.0
        if last is not None:
            last_mid = last[1]
            if abs(mid - last_mid) > self.jump_limits.get(canonical, cfg.max_jump) * last_mid:
                return self._check(quote)
            if self._jump_run:
                self._jump_run.pop(key, None)
        if keep_depth:
            self._last_depth[key] = depth  # type: ignore[assignment]
        self._last_seq[feed] = seq
        self._last[key] = (ts_broker, mid)
        self.counts["accepted"] += 1
        if canonical == instrument:
            return quote
        return Quote(broker, canonical, bid, ask, bid_size, ask_size, ts_broker, ts_recv, seq, depth, account)

    def _check(self, quote: Quote) -> Quote | Reason:
        """Every check in its documented order, for any quote (check's general path)."""
        broker = quote.broker
        if not isinstance(broker, str) or not broker:
            return self._reject(broker, Reason.BAD_FIELD)
        # Fast paths for what well-behaved feeds send (exact ints and floats); anything else goes through
        # the general converters, which give the same results for these types.
        seq, ts_broker, ts_recv = quote.seq, quote.ts_broker, quote.ts_recv
        if not (type(seq) is int and type(ts_broker) is int and type(ts_recv) is int):
            seq, ts_broker, ts_recv = _int(seq), _int(ts_broker), _int(ts_recv)  # type: ignore[assignment]
            if seq is None or ts_broker is None or ts_recv is None:
                return self._reject(broker, Reason.BAD_FIELD)
        bid, ask, bid_size, ask_size = quote.bid, quote.ask, quote.bid_size, quote.ask_size
        floats = type(bid) is float and type(ask) is float and type(bid_size) is float and type(ask_size) is float
        if floats:
            total = bid + ask + bid_size + ask_size
            # All finite: their sum is too, and x - x is 0.0 only for a finite x. NaN or infinity
            # anywhere (or a sum past the float range) makes it NaN: then each is looked at.
            if total - total != 0.0 and not (
                _NEG_INF < bid < _INF
                and _NEG_INF < ask < _INF
                and _NEG_INF < bid_size < _INF
                and _NEG_INF < ask_size < _INF
            ):  # NaN fails every comparison
                return self._reject(broker, Reason.NOT_NUMERIC)
        else:
            bid, ask, bid_size, ask_size = _num(bid), _num(ask), _num(bid_size), _num(ask_size)  # type: ignore[assignment]
            if bid is None or ask is None or bid_size is None or ask_size is None:
                return self._reject(broker, Reason.NOT_NUMERIC)
        cfg = self.config
        if bid <= 0 or ask <= 0 or bid_size <= 0 or ask_size <= 0:
            return self._reject(broker, Reason.NON_POSITIVE)
        if ask > cfg.max_price or bid_size > cfg.max_size or ask_size > cfg.max_size:
            return self._reject(broker, Reason.NOT_NUMERIC)
        if bid > ask:
            return self._reject(broker, Reason.CROSSED)
        symbol_map = self.symbols.get(broker)
        instrument = (
            symbol_map.get(quote.instrument) if symbol_map is not None and isinstance(quote.instrument, str) else None
        )
        if instrument is None:
            return self._reject(broker, Reason.UNKNOWN_SYMBOL)
        account = quote.account
        if type(account) is not int or account < 0:
            return self._reject(broker, Reason.BAD_FIELD)
        feed = (broker, account)
        last_seq = self._last_seq.get(feed)
        if last_seq is not None:
            if seq == last_seq:
                return self._reject(broker, Reason.DUPLICATE)
            if seq < last_seq:
                return self._reject(broker, Reason.OUT_OF_ORDER)
        if ts_recv - ts_broker > cfg.max_age_us:
            return self._reject(broker, Reason.STALE)
        if ts_broker - ts_recv > cfg.max_future_us:
            return self._reject(broker, Reason.FUTURE)
        key = (broker, instrument, account)
        last = self._last.get(key)
        if last is not None and ts_broker < last[0]:
            return self._reject(broker, Reason.OUT_OF_ORDER)
        depth = quote.depth
        if depth is not None:
            verdict = _depth_check(depth, self._last_depth.get(key) if self._last_depth else None)
            if verdict == _BAD:
                return self._reject(broker, Reason.BAD_FIELD)
            if verdict == _GOOD_FLOATS:
                self._last_depth[key] = depth
        mid = (bid + ask) / 2.0
        if last is not None:
            last_mid = last[1]
            limit = self.jump_limits.get(instrument, cfg.max_jump)
            if abs(mid - last_mid) > limit * last_mid:
                run = self._jump_run.setdefault(key, [])
                # A run of consistent quotes at the new level means the market moved, not the feed broke.
                if run and abs(mid - run[-1]) > limit * run[-1]:
                    run.clear()
                run.append(mid)
                if len(run) < cfg.jump_confirm:
                    self._last_seq[feed] = seq
                    return self._reject(broker, Reason.JUMP)
            if self._jump_run:
                self._jump_run.pop(key, None)
        self._last_seq[feed] = seq
        self._last[key] = (ts_broker, mid)
        self.counts["accepted"] += 1
        if floats and instrument == quote.instrument:
            return quote
        return Quote(broker, instrument, bid, ask, bid_size, ask_size, ts_broker, ts_recv, seq, quote.depth, account)


_BAD, _GOOD, _GOOD_FLOATS = 0, 1, 2
_SKIP_MIN = 4  # a side shorter than this is checked in full: comparing it costs more than checking it


def _depth_check(depth: object, last: tuple[tuple[Any, ...], tuple[Any, ...]] | None) -> int:
    """_depth_ok's verdict (_BAD or not), and whether the depth is fit to be the next check's `last`
    (_GOOD_FLOATS: plain tuples of pairs of floats all through, a side of at least _SKIP_MIN levels).

    `last` is an earlier _GOOD_FLOATS depth of the same instrument: a level that is the very object
    found at the same place in it is a tuple of two floats checked then, and neither a tuple nor a
    float can change, so it is skipped. Books change a few levels at a time: this checks those.
    A subclass of tuple is checked in full, as _depth_ok does (it could iterate differently).
    """
    if type(depth) is not tuple:
        return _GOOD if _depth_ok(depth) else _BAD
    if len(depth) != 2:
        return _BAD
    keep = True  # plain tuples of pairs of floats all through
    long = False  # a side long enough to be compared next time
    i = 0
    for side in depth:
        if not isinstance(side, tuple) or len(side) > 20:
            return _BAD
        levels: Iterable[object] = side
        if type(side) is not tuple:
            keep = False
        elif len(side) >= _SKIP_MIN:
            long = True
            if last is not None:
                before = last[i]
                if side is before:  # the book kept this side as it was: nothing in it changed
                    levels = ()
                elif len(before) >= len(side):  # every level of `side` has its counterpart in `before`
                    levels = compress(side, map(is_not, side, before))
        i += 1
        for level in levels:
            if type(level) is tuple and len(level) == 2:
                price, size = level
                if type(price) is float and type(size) is float and 0.0 < price < _INF and 0.0 < size < _INF:
                    continue
            if not _level_ok(level):
                return _BAD
            keep = False  # good, but not a pair of floats
    return _GOOD_FLOATS if keep and long else _GOOD


def _depth_ok(depth: object) -> bool:
    if not isinstance(depth, tuple) or len(depth) != 2:
        return False
    for side in depth:
        if not isinstance(side, tuple) or len(side) > 20:
            return False
        for level in side:
            # Fast path for what the adapters build (a pair of finite positive floats): the same
            # verdict as _level_ok, without two calls per level (depth is most of a deep quote's check).
            if type(level) is tuple and len(level) == 2:
                price, size = level
                if type(price) is float and type(size) is float and 0.0 < price < _INF and 0.0 < size < _INF:
                    continue
            if not _level_ok(level):
                return False
    return True


def _level_ok(level: object) -> bool:
    if not isinstance(level, tuple) or len(level) != 2:
        return False
    price, size = _num(level[0]), _num(level[1])
    return price is not None and size is not None and price > 0 and size > 0
