"""The typed fast paths (msgspec decoding for the JSON venues, a regular expression for plain FIX
IncrementalRefresh frames) must give exactly what the general path gives: the same quotes (to the
sign of a zero), the same rejects, the same state after every message, on generated streams in
which most messages are mangled (wrong types, missing and extra keys, numbers out of range, cut
messages, sequence gaps and repeats)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from common.ticks import Quote
from marketdata.feeds import fix, venue
from marketdata.feeds.base import parser_create
from marketdata.feeds.venue import VenueParser
from marketdata.validation import QuoteValidator, ValidationConfig
from simulator.instruments import SPECS

from . import wire as w

ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -0.0,
    1,
    1.5,
    -1,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    10**30,
    -(2**63) - 1,
    1e308,
    "",
    "0",
    "-0",
    "-0.0",
    "1e999",
    "nan",
    "inf",
    " 1.5",
    "1_0",
    "abc",
    "2026-11-30",
    "2026-11-30T12:00:00Z",
    "snapshot",
    "update",
    "bid",
    "offer",
    "BTC-USD",
    "BTCUSDT",
    "BTC/USD",
    "EUR_USD",
    "ZZZ/USD",
    "PRICE",
    "HEARTBEAT",
    "depthUpdate",
    "book",
    "l2_data",
    [],
    {},
    ["1", "2"],
    ["1", "2", "3"],
    [1.5, 2],
    {"price": 1.5, "qty": 1},
    {"price": "1.5", "liquidity": 5},
    {"side": "bid", "price_level": "1.5", "new_quantity": "1"},
]


def _mangle(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """The value with one random change somewhere inside it."""
    if isinstance(value, dict) and value and depth < 6:
        key = rng.choice(list(value))
        r = rng.random()
        out = dict(value)
        if r < 0.15:
            del out[key]
        elif r < 0.25:
            out[rng.choice(["data", "extra", "type", "timestamp", "checksum", "E", "time", "sequence_num"])] = (
                rng.choice(ODD_VALUES)
            )
        elif r < 0.55:
            out[key] = rng.choice(ODD_VALUES)
        else:
            out[key] = _mangle(value[key], rng, depth + 1)
        return out
    if isinstance(value, list) and value and depth < 6:
        out_list = list(value)
        i = rng.randrange(len(out_list))
        r = rng.random()
        if r < 0.15:
            del out_list[i]
        elif r < 0.3:
            out_list.append(rng.choice(ODD_VALUES))
        elif r < 0.5:
            out_list[i] = rng.choice(ODD_VALUES)
        else:
            out_list[i] = _mangle(value[i], rng, depth + 1)
        return out_list
    if isinstance(value, int | float) and not isinstance(value, bool) and rng.random() < 0.5:
        return value + rng.choice([-2, -1, 1, 2, 10**6])
    return rng.choice(ODD_VALUES)


def _resync(first: bytes, raw: bytes) -> bytes:
    """The stream's snapshot again, fit to be followed by `raw` (Binance: lastUpdateId just before
    its U), so that a book lost to a mangled message is synced again and the fast path is exercised."""
    snap = orjson.loads(first)
    if "lastUpdateId" in snap:
        event = orjson.loads(raw).get("data") or {}
        snap["lastUpdateId"] = int(event.get("U", 1)) - 1
    return orjson.dumps(snap)


def _json_corpus(stream: list[bytes], rng: random.Random) -> list[bytes]:
    out: list[bytes] = []
    for raw in stream:
        if rng.random() < 0.08:
            out.append(_resync(stream[0], raw))
        r = rng.random()
        if r < 0.45:
            out.append(raw)
            continue
        msg = orjson.loads(raw)
        if isinstance(msg.get("data"), dict) and rng.random() < 0.5:
            msg = msg["data"]  # Binance: a raw event rather than the combined stream's wrapper
        if r < 0.55:  # a field that sends an otherwise good message elsewhere on the general path
            msg["data" if "e" in msg else "time"] = rng.choice([{}, {"e": "depthUpdate"}, "", None])
            msg["timestamp"] = "2026-11-30T12:00:00.25Z"
            out.append(json.dumps(msg).encode())
        elif r < 0.8:
            out.append(json.dumps(_mangle(msg, rng)).encode())  # json: integers of any size
        elif r < 0.85:
            out.append(raw[: rng.randrange(len(raw))])  # cut short
        elif r < 0.9:  # the same key twice: the last one counts
            text = raw.decode()
            key = rng.choice(['"price"', '"qty"', '"s"', '"u"', '"sequence_num"', '"bids"', '"symbol"', '"time"'])
            if key in text:
                text = text.replace(key + ":", key + ':"x",' + key + ":", 1).replace(
                    key + ": ", key + ': "x", ' + key + ": ", 1
                )
            out.append(text.encode())
        elif r < 0.95:
            out.append(raw)  # the same message again: a repeat
            out.append(raw)
        else:
            out.append(rng.choice([b"", b"[]", b"null", b"{}", b'{"channel":"heartbeat"}', b"\xff\xfe", b'"x"']))
    return out


def _fix_frame(fields: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(t + b"=" + v + b"\x01" for t, v in fields)
    head = b"8=FIX.4.4\x019=" + str(len(body)).encode() + b"\x01"
    return head + body + b"10=" + f"{sum(head + body) % 256:03d}".encode() + b"\x01"


def _fix_corpus(stream: list[bytes], rng: random.Random) -> list[bytes]:
    out: list[bytes] = []
    for raw in stream:
        r = rng.random()
        if r < 0.4:
            out.append(raw)
            continue
        fields = [tuple(f.split(b"=", 1)) for f in raw[:-1].split(b"\x01")][2:-1]  # without 8, 9 and 10
        i = rng.randrange(len(fields))
        if r < 0.6:
            tag = fields[i][0]
            fields[i] = (
                tag,
                rng.choice(
                    [b"", b"0", b"1", b"2", b"3", b"-0", b"1e999", b"nan", b"abc", b"X", b"W", b"EUR/USD", b"ZZZ"]
                ),
            )
        elif r < 0.7:
            del fields[i]
        elif r < 0.8:
            fields.insert(i, rng.choice([(b"278", b"id1"), (b"55", b"EUR/USD"), (b"34", b"7"), (b"272", b"20261130")]))
        elif r < 0.85:
            j = rng.randrange(len(fields))
            fields[i], fields[j] = fields[j], fields[i]
        elif r < 0.9:
            seq = [k for k, f in enumerate(fields) if f[0] == b"34"]
            if seq:
                fields[seq[0]] = (b"34", str(int(fields[seq[0]][1]) + rng.choice([-3, -1, 0, 2, 50])).encode())
        elif r < 0.95:
            out.append(raw[: rng.randrange(len(raw))])
            continue
        else:
            out.append(raw.replace(b"\x01", b"|"))
            continue
        out.append(_fix_frame(fields))  # type: ignore[arg-type]
    return out


def _run(parser: VenueParser, corpus: list[bytes]) -> list[str]:
    validator = QuoteValidator(
        symbols={"b": {s: s for s in SPECS}}, config=ValidationConfig(max_age_us=10**15, max_future_us=10**15)
    )
    seen = []
    for raw in corpus:
        try:
            items = parser.parse(raw, w.NOW_MS * 1000 - 1)
        except Exception as exc:  # a raise must be the same raise on both paths (none is seen)
            seen.append(f"raised {type(exc).__name__}")
            continue
        verdicts = [repr(validator.check(x)) for x in items if type(x) is Quote]
        state = {k: v for k, v in vars(parser).items() if k not in ("books", "_routes", "symbols", "_combined", "fast")}
        books = {k: (b.bids, b.asks) for k, b in parser.books.items()}
        seen.append(repr((items, verdicts, state, books)))
    return seen


STREAMS: dict[str, Callable[[list[bytes], random.Random], list[bytes]]] = {
    "oanda": _json_corpus,
    "binance": _json_corpus,
    "kraken": _json_corpus,
    "coinbase": _json_corpus,
    "fix": _fix_corpus,
}


@pytest.mark.parametrize("adapter", list(STREAMS))
@pytest.mark.parametrize("seed", range(4))
def test_the_fast_path_gives_what_the_general_path_gives_on_mangled_streams(adapter, seed):
    rng = random.Random(seed)
    stream = w.STREAMS[adapter](400, rng)
    corpus = STREAMS[adapter](stream, rng)
    fast, general = parser_create(adapter, broker="b", params={}), parser_create(adapter, broker="b", params={})
    general.fast = False
    got, expected = _run(fast, corpus), _run(general, corpus)
    raised = [(x, corpus[i]) for i, x in enumerate(expected) if x.startswith("raised")]
    assert not raised, raised[:3]
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, (i, corpus[i])


def test_the_fast_path_is_taken_for_the_usual_messages(monkeypatch):
    """Only the snapshots of Binance (REST) and FIX (W) take the general path in the benchmark's
    streams (against a fast path that never matches, which the differential test would pass)."""
    general: dict[str, int] = {}
    loads, cut = orjson.loads, fix.fields_of

    def counted(real: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def call(arg: Any) -> Any:
            general["n"] += 1
            return real(arg)

        return call

    monkeypatch.setattr(venue, "orjson", SimpleNamespace(loads=counted(loads), JSONDecodeError=orjson.JSONDecodeError))
    monkeypatch.setattr(fix, "fields_of", counted(cut))
    taken = {}
    for adapter in STREAMS:
        general["n"] = 0
        parser = parser_create(adapter, broker="b", params={})
        for raw in w.STREAMS[adapter](50, random.Random(1)):
            parser.parse(raw, 1)
        taken[adapter] = general["n"]
    assert taken == {"oanda": 0, "binance": 1, "kraken": 0, "coinbase": 0, "fix": 1}, taken


def test_fix_frames_with_another_header_order_or_entry_ids_take_the_general_path():
    parser = parser_create("fix", broker="b", params={})
    general = parser_create("fix", broker="b", params={})
    general.fast = False
    snap = w.fix_snapshot(1, "EUR/USD", [("1.08500", "1000000")], [("1.08510", "1000000")])
    x = _fix_frame(
        [(b"35", b"X"), (b"34", b"2"), (b"49", b"S"), (b"52", b"20261130-12:00:00.5"), (b"56", b"T")]
        + [(b"268", b"1"), (b"279", b"0"), (b"269", b"0"), (b"278", b"a"), (b"55", b"EUR/USD")]
        + [(b"270", b"1.08505"), (b"271", b"5")]
    )
    assert repr([parser.parse(m, 1) for m in (snap, x)]) == repr([general.parse(m, 1) for m in (snap, x)])


def _session_run(session: fix.FixSession, corpus: list[bytes]) -> list[str]:
    """Each frame of the corpus that passes the frame checks, through the live session's on_frame
    (as FixSession.run hands it frames), and what it returned or raised and its state after it.
    A ResendRequest is answered one frame later (the message missed may just have been overtaken)
    as QuickFIX answers it for market data: one GapFill from the first message missed to the
    counterparty's next (after the last one held)."""
    seen = []
    answered = 0
    waited = False
    frames = [raw.replace(b"|", b"\x01") for raw in corpus]
    while frames:
        resends = sum(kind == b"2" for _, kind in session.sent_log)
        if resends > answered and session.held and waited:
            answered, waited = resends, False
            frame = w.fix_msg("4", session.next_in, [(123, "Y"), (36, max(session.held) + 1)], poss_dup=True)
        else:
            waited = resends > answered and bool(session.held)
            frame = frames.pop(0)
        if isinstance(fix.frame_check(frame), venue.Reject):
            continue
        try:
            items: Any = session.on_frame(frame, w.NOW_MS * 1000 - 1)
        except Exception as exc:  # FeedDisconnected: a sequence number too low, a logout
            items = f"raised {type(exc).__name__}: {exc}"
        state = (session.next_in, session.held, session.resend_until, session.sent_log, session.received_log)
        md = session.md
        books = {k: (b.bids, b.asks) for k, b in md.books.items()}
        seen.append(repr((items, state, session.logged_on, md.seq, md.entry_ids, books)))
    return seen


@pytest.mark.parametrize("seed", range(4))
def test_the_live_fix_session_s_fast_path_gives_what_its_general_path_gives(seed, monkeypatch):
    monkeypatch.setattr(fix, "_fix_now", lambda: "20261130-12:00:00.000")  # what the session sends
    rng = random.Random(seed)
    stream = w.fix_stream(400, rng)
    if seed % 2:  # a logon first (it sets the expected sequence number from its own)
        stream.insert(0, w.fix_msg("A", 1, [(98, 0), (108, 30), (141, "Y")]))
    corpus = _fix_corpus(stream, rng)
    for i in range(len(corpus) - 1):  # a message overtaken by the next one: held until it comes
        if rng.random() < 0.03:
            corpus[i], corpus[i + 1] = corpus[i + 1], corpus[i]
    fast, general = fix.FixSession("b", {}), fix.FixSession("b", {})
    general.md.fast = False
    got, expected = _session_run(fast, corpus), _session_run(general, corpus)
    assert len(got) > 300
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, (i, g, e)
    # The fast path was taken: for every X of the plain stream (only the W is cut field by field),
    # and for a good part of the mangled one (after a gap, the frames sent before the GapFill's
    # NewSeqNo are too low and end the session: the general path).
    calls = {"n": 0}
    real = fix.fields_of

    def counted(frame: bytes) -> Any:
        calls["n"] += 1
        return real(frame)

    monkeypatch.setattr(fix, "fields_of", counted)
    _session_run(fix.FixSession("b", {}), w.fix_stream(50, rng))
    assert calls["n"] == 1
    calls["n"] = 0
    _session_run(fix.FixSession("b", {}), corpus)
    assert calls["n"] < len(got) * 0.8, (calls["n"], len(got))
