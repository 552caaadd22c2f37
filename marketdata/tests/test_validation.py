"""The validator rejects malformed and hostile quotes with a counted reason and never raises."""

from __future__ import annotations

import itertools
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from common.ticks import Quote
from marketdata.validation import QuoteValidator, Reason, ValidationConfig

NOW = 1_780_000_000_000_000
SYMBOLS = {"b": {"EURUSD": "EURUSD", "EURUSD.x": "EURUSD"}}


def _q(**kw: Any) -> Quote:
    base: dict[str, Any] = dict(
        broker="b", instrument="EURUSD", bid=1.1, ask=1.1002, bid_size=1e6, ask_size=1e6,
        ts_broker=NOW, ts_recv=NOW + 1000, seq=1,
    )  # fmt: skip
    base.update(kw)
    return Quote(**base)


def _v(**cfg):
    return QuoteValidator(symbols=SYMBOLS, config=ValidationConfig(**cfg))


def test_it_accepts_a_good_quote_and_maps_the_feed_symbol_to_the_canonical_one():
    v = _v()
    out = v.check(_q(instrument="EURUSD.x"))
    assert isinstance(out, Quote) and out.instrument == "EURUSD"
    assert v.counts["accepted"] == 1


def test_it_rejects_each_kind_of_bad_quote_with_its_reason():
    cases = [
        (_q(bid=math.nan), Reason.NOT_NUMERIC),
        (_q(ask="1.2"), Reason.NOT_NUMERIC),
        (_q(bid=math.inf), Reason.NOT_NUMERIC),
        (_q(bid=True), Reason.NOT_NUMERIC),
        (_q(bid=0.0), Reason.NON_POSITIVE),
        (_q(ask_size=-1.0), Reason.NON_POSITIVE),
        (_q(bid=1.2, ask=1.1), Reason.CROSSED),
        (_q(instrument="XXXYYY"), Reason.UNKNOWN_SYMBOL),
        (_q(broker="nobody"), Reason.UNKNOWN_SYMBOL),
        (_q(ts_recv=NOW + 10_000_000), Reason.STALE),
        (_q(ts_broker=NOW + 10_000_000), Reason.FUTURE),
        (_q(seq="7"), Reason.BAD_FIELD),
        (_q(ts_broker=1.5), Reason.BAD_FIELD),
        (_q(depth=(((1.0, -5.0),), ())), Reason.BAD_FIELD),
    ]
    for quote, reason in cases:
        assert _v().check(quote) == reason, quote


def test_depth_levels_are_checked_one_by_one_whatever_their_types():
    good = (1.1, 5.0)
    for level, ok in [
        ((1.1, 5.0), True),
        ((1, 5), True),  # exact ints are numbers too
        ((math.nan, 5.0), False),
        ((1.1, math.inf), False),
        ((1.1, 0.0), False),
        ((-1.1, 5.0), False),
        ((True, 5.0), False),
        (("1.1", 5.0), False),
        ((1.1, 5.0, 1.0), False),
        ((1.1,), False),
        ([1.1, 5.0], False),
        (None, False),
    ]:
        for depth in ((((good, level), ())), ((), (level, good))):  # last on one side, first on the other
            out = _v().check(_q(depth=depth))
            assert isinstance(out, Quote) if ok else out == Reason.BAD_FIELD, (level, depth)


def test_it_rejects_duplicate_and_out_of_order_sequences_until_the_feed_reconnects():
    v = _v()
    assert isinstance(v.check(_q(seq=5)), Quote)
    assert v.check(_q(seq=5)) == Reason.DUPLICATE
    assert v.check(_q(seq=4)) == Reason.OUT_OF_ORDER
    assert v.check(_q(seq=6, ts_broker=NOW - 1)) == Reason.OUT_OF_ORDER  # broker time went backwards
    v.reset_sequence("b")
    assert isinstance(v.check(_q(seq=1, ts_broker=NOW + 5)), Quote)
    assert v.counts == {"accepted": 2, "duplicate": 1, "out_of_order": 2}
    assert v.by_broker[("b", "duplicate")] == 1


def test_it_rejects_an_absurd_jump_but_follows_a_market_that_really_moved():
    v = _v(jump_confirm=3)
    assert isinstance(v.check(_q(seq=1)), Quote)
    assert v.check(_q(seq=2, bid=2.2, ask=2.2002)) == Reason.JUMP  # one wild quote: rejected
    assert isinstance(v.check(_q(seq=3, bid=1.1001, ask=1.1003)), Quote)
    for seq in (4, 5):
        assert v.check(_q(seq=seq, bid=1.3, ask=1.3002)) == Reason.JUMP
    assert isinstance(v.check(_q(seq=6, bid=1.3, ask=1.3002)), Quote)  # third in a row: the market moved
    assert isinstance(v.check(_q(seq=7, bid=1.3001, ask=1.3003)), Quote)


anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.binary(max_size=8), st.lists(st.integers(), max_size=3),
)  # fmt: skip
prices = st.one_of(st.floats(allow_nan=True, allow_infinity=True), anything)


@settings(max_examples=400, deadline=None)
@given(
    broker=st.one_of(st.just("b"), anything),
    instrument=st.one_of(st.sampled_from(["EURUSD", "EURUSD.x", "GBPUSD"]), anything),
    bid=prices, ask=prices, bid_size=prices, ask_size=prices,
    ts_broker=st.one_of(st.integers(NOW - 10**8, NOW + 10**8), anything),
    ts_recv=st.one_of(st.just(NOW), anything),
    seq=st.one_of(st.integers(-5, 10**12), anything),
    depth=st.one_of(st.none(), anything, st.tuples(st.tuples(st.tuples(prices, prices)), st.tuples())),
)  # fmt: skip
def test_hostile_input_never_raises_and_every_quote_is_counted_once(**fields):
    v = _v()
    out = v.check(Quote(**fields))
    assert sum(v.counts.values()) == 1
    if isinstance(out, Quote):
        assert v.counts["accepted"] == 1
        assert math.isfinite(out.bid) and math.isfinite(out.ask) and 0 < out.bid <= out.ask
        assert out.bid_size > 0 and out.ask_size > 0 and out.instrument == "EURUSD"
    else:
        assert isinstance(out, Reason) and v.counts[str(out)] == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.floats(0.5, 2.0), st.floats(0, 0.01), st.integers(0, 5)), max_size=60))
def test_accepted_sequences_and_timestamps_only_move_forward(stream):
    v = _v()
    accepted = []
    for seq, mid, spread, dt in stream:
        out = v.check(_q(seq=seq, bid=mid, ask=mid + spread, ts_broker=NOW + dt * 1000))
        if isinstance(out, Quote):
            accepted.append(out)
    assert all(a.seq < b.seq for a, b in itertools.pairwise(accepted))
    assert all(a.ts_broker <= b.ts_broker for a, b in itertools.pairwise(accepted))
    assert sum(v.counts.values()) == len(stream)
