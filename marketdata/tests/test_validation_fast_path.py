"""QuoteValidator.check decides the usual quote in one pass and hands everything else to the full
checks: on generated streams of quotes of every kind (every rejection reason, jumps that are
confirmed, depths shared with the last quote or not, hostile types, new connections) it must give
what the validator gave before (tests/validation_reference.py): the same verdicts, counts and state
after every quote."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.ticks import Quote
from marketdata import validation
from marketdata.validation import QuoteValidator, Reason, ValidationConfig

from . import validation_reference as reference

NOW = 1_780_000_000_000_000
SYMBOLS = {"b": {"EURUSD": "EURUSD", "EUR/USD": "EURUSD", "GBPUSD": "GBPUSD"}, "c": {"EURUSD": "EURUSD"}}
JUMPS = {"GBPUSD": 0.01}


class Wide(float):
    pass


class Odd(tuple[Any, ...]):
    pass


ODD: list[Any] = [
    None, True, 0, 1, -1, 2**70, 0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, 1e10, 1e300, "1.1", b"1",
    [1.1], Wide(1.1), (1.1, 2.0),
]  # fmt: skip


def _level(rng: random.Random, price: float) -> Any:
    if rng.random() < 0.995:
        return (price, float(rng.randint(1, 50)))
    return rng.choice([(price, 0.0), (math.nan, 1.0), (price, math.inf), (1, 5), (price,), [price, 1.0], None,
                       Odd((price, 1.0)), (Wide(price), 1.0), (price, 2**80)])  # fmt: skip


class Feed:
    """One broker's stream: a walk of the mid, sequence and time, with the depth a book would keep
    (sides shared with the last quote, or only some of their levels), and every kind of bad quote."""

    def __init__(self, rng: random.Random, account: int) -> None:
        self.rng = rng
        self.account = account
        self.mid = 1.085
        self.seq = 0
        self.ts = NOW
        self.bids: tuple[Any, ...] = ()
        self.asks: tuple[Any, ...] = ()

    def _side(self, side: tuple[Any, ...], sign: float) -> tuple[Any, ...]:
        rng = self.rng
        r = rng.random()
        if r < 0.25 and side:
            return side  # the book did not touch this side: the very tuple
        n = rng.choice([0, 1, 2, 3, 4, 5, 10, 10, 10, 10, 10, 10, 20, 21])
        if r < 0.7 and side:  # some levels changed, the others the very objects they were
            levels = list(side[:n]) + [_level(rng, self.mid + sign * 0.0001 * (i + 1)) for i in range(len(side), n)]
            for _ in range(rng.randint(0, 2)):
                if levels:
                    i = rng.randrange(len(levels))
                    levels[i] = _level(rng, self.mid + sign * 0.0001 * (i + 1))
            return tuple(levels)
        return tuple(_level(rng, self.mid + sign * 0.0001 * (i + 1)) for i in range(n))

    def quote(self) -> Quote:
        rng = self.rng
        r = rng.random()
        if r < 0.02:
            self.mid *= rng.choice([1.2, 0.8])  # the market moves (confirmed by the quotes after)
        self.mid *= 1 + rng.uniform(-0.001, 0.001)
        self.seq += rng.choice([1] * 20 + [2, 0, -1])
        self.ts += rng.choice([1000] * 20 + [0, -1000, 10_000])
        fields: dict[str, Any] = {
            "broker": "b",
            "instrument": rng.choice(["EURUSD", "EURUSD", "EUR/USD", "GBPUSD"]),
            "bid": self.mid - 0.00005,
            "ask": self.mid + 0.00005,
            "bid_size": float(rng.randint(1, 9)),
            "ask_size": float(rng.randint(1, 9)),
            "ts_broker": self.ts,
            "ts_recv": self.ts + rng.choice([0, 500] * 10 + [6_000_000]),
            "seq": self.seq,
            "depth": None,
            "account": self.account,
        }
        if rng.random() < 0.7:
            self.bids, self.asks = self._side(self.bids, -1.0), self._side(self.asks, 1.0)
            fields["depth"] = (self.bids, self.asks)
        r = rng.random()
        if r < 0.15:  # one field of another kind or value (every reason comes from here)
            name = rng.choice(list(fields))
            fields[name] = rng.choice(
                [
                    *ODD,
                    "",
                    "c",
                    "XXX",
                    "GBPUSD",
                    fields["ask"] * 2,
                    fields["bid"] / 2,
                    fields["ts_recv"] + 3_000_000,
                    fields["ts_broker"] - 10_000_000,
                    (self.bids,),
                    (self.bids, self.asks, ()),
                    [self.bids, self.asks],
                    (list(self.bids), self.asks),
                    (Odd(self.bids), self.asks),
                    ((), ()),
                    (self.bids, tuple(reversed(self.asks))),
                ]
            )
        elif r < 0.17:
            fields["bid"], fields["ask"] = fields["ask"], fields["bid"]  # crossed
        elif r < 0.19:
            fields["instrument"] = rng.choice(["EURUSD", "GBPUSD"])
            fields["bid"] = fields["ask"] = rng.choice([fields["bid"], fields["bid"] * 1.5])  # a jump
        return Quote(**fields)


def _state(v: Any) -> tuple[Any, ...]:
    depths = {k: (d, id(d)) for k, d in v._last_depth.items()}  # the very object is what is skipped
    return (dict(v.counts), dict(v.by_broker), v._last_seq, v._last, v._jump_run, depths)


def _validators() -> tuple[QuoteValidator, Any]:
    new = QuoteValidator(symbols=SYMBOLS, jump_limits=JUMPS)
    old = reference.QuoteValidator(symbols=SYMBOLS, jump_limits=JUMPS)
    return new, old


def _same(out_new: object, out_old: object) -> bool:
    if isinstance(out_new, Quote):
        return type(out_old) is Quote and repr(out_new) == repr(out_old)
    return type(out_new) is Reason and str(out_new) == str(out_old)


@pytest.mark.parametrize("seed", range(6))
def test_the_one_pass_check_judges_as_the_validator_did_on_every_kind_of_quote(seed, monkeypatch):
    rng = random.Random(seed)
    new, old = _validators()
    feeds = [Feed(rng, 0), Feed(rng, 1)]
    accepted_by_full_checks = 0
    full_check = QuoteValidator._check

    def counted(self: QuoteValidator, quote: Quote) -> Quote | Reason:
        nonlocal accepted_by_full_checks
        out = full_check(self, quote)
        accepted_by_full_checks += isinstance(out, Quote)
        return out

    monkeypatch.setattr(QuoteValidator, "_check", counted)
    n = 6000
    for i in range(n):
        if rng.random() < 0.01:
            broker, account = rng.choice([("b", None), ("b", 0), ("b", 1), ("c", None)])
            new.reset_sequence(broker, account)
            old.reset_sequence(broker, account)
        q = rng.choice(feeds).quote()
        if rng.random() < 0.02:  # another broker's feed, same instruments
            q = Quote("c", q.instrument, q.bid, q.ask, q.bid_size, q.ask_size, q.ts_broker, q.ts_recv, q.seq, q.depth)
        out_new, out_old = new.check(q), old.check(q)
        assert _same(out_new, out_old), (i, q, out_new, out_old)
        assert (out_new is q) == (out_old is q)  # the quote itself, or a new one with its canonical values
        assert _state(new) == _state(old), (i, q)
    # Every reason was met, and the one pass accepted most of what was accepted (the rest: jumps
    # confirmed, float subclasses, feed symbols made canonical...).
    assert set(new.counts) == {"accepted", *map(str, Reason)}, new.counts
    assert new.counts["accepted"] > n // 3
    assert 0 < accepted_by_full_checks < new.counts["accepted"] // 5


# Finite values, and some at the largest price and size allowed (1e9, 1e12) and beyond.
finite = st.one_of(st.floats(min_value=1e-3, max_value=1e3), st.sampled_from([1e9, 1.5e9, 1e12, 2e12]))
anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3), finite)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["b", "c", ""]),
            st.sampled_from(["EURUSD", "EUR/USD", "GBPUSD", "XXX"]),
            st.one_of(finite, anything),
            st.one_of(finite, anything),
            st.one_of(finite, anything),
            st.integers(-3, 3),
            st.integers(-3, 3),
            st.one_of(st.integers(0, 1), anything),
            st.one_of(
                st.none(),
                st.tuples(
                    st.lists(st.tuples(st.one_of(finite, anything), finite), max_size=6).map(tuple),
                    st.lists(st.tuples(finite, st.one_of(finite, anything)), max_size=6).map(tuple),
                ),
            ),
        ),
        max_size=40,
    )
)
def test_any_stream_of_quotes_is_judged_as_the_validator_did(stream):
    new, old = _validators()
    new.config = old.config = ValidationConfig(max_jump=0.5)
    seq = 0
    for broker, instrument, bid, spread, size, dseq, dts, account, depth in stream:
        seq += dseq
        ask = bid + spread if type(bid) is float and type(spread) is float else spread
        q = Quote(broker, instrument, bid, ask, size, size, NOW + dts * 1_000_000, NOW, seq, depth, account)
        assert _same(new.check(q), old.check(q))
        assert _state(new) == _state(old)


def test_the_full_checks_are_the_reference_s_own():
    """_check is the reference's check as it was, word for word (only the name differs): the one
    pass above it is all that is new."""
    import inspect

    ours = inspect.getsource(validation.QuoteValidator._check).split("\n", 2)[2]
    theirs = inspect.getsource(reference.QuoteValidator.check).split("\n", 1)[1]
    assert ours == theirs
