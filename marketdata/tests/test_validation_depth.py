"""The validator looks again only at the depth levels that are not the very objects it checked in
the instrument's last depth: its verdicts must be those of checking every level every time."""

from __future__ import annotations

import math
import random
from typing import Any

from common.ticks import Quote
from marketdata.feeds.kraken import KrakenBook
from marketdata.feeds.venue import SymbolSpec
from marketdata.validation import _BAD, _GOOD_FLOATS, QuoteValidator, ValidationConfig, _depth_check, _depth_ok


class Shifty(float):
    """A float whose value as a number can change: a level made of it is never taken as checked."""

    value = 1.0

    def __float__(self) -> float:
        return Shifty.value


class Odd(tuple[Any, ...]):
    pass


def _level(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.85:
        return (rng.uniform(1.0, 2.0), rng.uniform(0.1, 5.0))
    return rng.choice(
        [
            (1.1, 0.0),
            (math.nan, 1.0),
            (1.1, math.inf),
            (-1.0, 1.0),
            (1, 5),
            (True, 1.0),
            ("1.1", 1.0),
            (1.1,),
            [1.1, 2.0],
            None,
            Odd((1.1, 2.0)),
        ]
    )


def _next_side(rng: random.Random, before: tuple[Any, ...]) -> tuple[Any, ...]:
    if rng.random() < 0.2:
        return before  # the side as it was, the very object
    side = list(before)
    for _ in range(rng.randint(0, 3)):
        r = rng.random()
        if r < 0.4 and side:
            side[rng.randrange(len(side))] = _level(rng)  # a level changed in place
        elif r < 0.6:
            side.insert(rng.randint(0, len(side)), _level(rng))  # a new level: the rest shifts
        elif r < 0.8 and side:
            del side[rng.randrange(len(side))]
        else:
            side.append(_level(rng))  # longer than before: the new tail is checked too
    return Odd(side[:22]) if rng.random() < 0.03 else tuple(side[:22])


def test_checking_only_what_changed_gives_the_verdict_of_checking_everything():
    rng = random.Random(16)
    for _run in range(200):
        last = None
        depth: Any = ((), ())
        for _ in range(60):
            depth = (_next_side(rng, depth[0]), _next_side(rng, depth[1]))
            if rng.random() < 0.02:
                depth = Odd(depth)
            verdict = _depth_check(depth, last)
            assert (verdict != _BAD) == _depth_ok(depth), depth
            if verdict == _GOOD_FLOATS:
                last = depth
            elif verdict == _BAD and rng.random() < 0.5:
                depth = ((), ())  # start again from a good book now and then


def test_a_level_whose_value_can_change_is_checked_again_every_time():
    shifty = (Shifty(1.5), 1.0)
    depth = ((shifty, (1.4, 1.0), (1.3, 1.0), (1.2, 1.0)), ((1.6, 1.0), (1.7, 1.0), (1.8, 1.0), (1.9, 1.0)))
    v = QuoteValidator(symbols={"b": {"EURUSD": "EURUSD"}}, config=ValidationConfig(max_age_us=10**15))
    Shifty.value = 1.0
    first = v.check(Quote("b", "EURUSD", 1.5, 1.6, 1.0, 1.0, 10, 10, 1, depth))
    assert isinstance(first, Quote)
    Shifty.value = math.nan
    try:
        again = v.check(Quote("b", "EURUSD", 1.5, 1.6, 1.0, 1.0, 11, 11, 2, depth))
    finally:
        Shifty.value = 1.0
    assert again == "bad_field"


def test_a_validator_fed_by_a_book_judges_as_one_that_remembers_nothing():
    rng = random.Random(7)
    spec = SymbolSpec("BTC/USD", "BTCUSD", 1, 1.0, 8)
    book = KrakenBook(spec)
    cfg = ValidationConfig(max_age_us=10**15, max_future_us=10**15)
    kept = QuoteValidator(symbols={"b": {"BTCUSD": "BTCUSD"}}, config=cfg)
    fresh = QuoteValidator(symbols={"b": {"BTCUSD": "BTCUSD"}}, config=cfg)
    skipped = 0
    for seq in range(1, 3000):
        for _ in range(rng.randint(1, 3)):
            tick = rng.randint(449_980, 450_020)
            (book.set_bid if tick < 450_000 else book.set_ask)(tick, rng.choice([0.0, rng.randint(1, 10**8) / 1e8]))
        q = book.quote("b", "BTCUSD", seq, seq, seq)
        if q is None:
            continue
        fresh._last_depth.clear()  # checks every level every time
        assert repr(kept.check(q)) == repr(fresh.check(q))
        skipped += bool(kept._last_depth)
    assert kept.counts == fresh.counts and skipped > 1000


def test_floats_whose_sum_leaves_the_float_range_are_judged_one_by_one():
    v = QuoteValidator(symbols={"b": {"EURUSD": "EURUSD"}}, config=ValidationConfig(max_age_us=10**15))
    big = 1.7e308
    assert v.check(Quote("b", "EURUSD", -big, -big, 1.0, 1.0, 10, 10, 1)) == "non_positive"
    assert v.check(Quote("b", "EURUSD", 1.0, big, big, 1.0, 10, 10, 2)) == "not_numeric"
    assert v.check(Quote("b", "EURUSD", 1.0, 1.1, math.inf, 1.0, 10, 10, 3)) == "not_numeric"
    assert v.check(Quote("b", "EURUSD", 1.0, 1.1, 1.0, -math.inf, 10, 10, 4)) == "not_numeric"
    assert isinstance(v.check(Quote("b", "EURUSD", 1.0, 1.1, 1e11, 1e11, 10, 10, 5)), Quote)
