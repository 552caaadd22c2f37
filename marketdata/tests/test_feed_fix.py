"""The FIX 4.4 adapter against a local acceptor speaking FIX over TCP (messages encoded by simplefix)."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest

from common.ticks import FeedEventKind
from marketdata.feeds.fix import FixSession, frames_cut
from marketdata.feeds.venue import SymbolSpec
from marketdata.validation import QuoteValidator, Reason
from testing.support import await_for

from . import wire as w
from .feedservers import Collected, FixPeer, consuming, fix_server

pytestmark = pytest.mark.asyncio

EURUSD = SymbolSpec("EUR/USD", "EURUSD", 5, 0.0001)


def _session(port: int, collected: Collected, *, heartbeat_s: float = 30.0) -> FixSession:
    params = {"host": "127.0.0.1", "port": port, "heartbeat_s": heartbeat_s, "symbols": [EURUSD]}
    return FixSession("fixbroker", params, on_reject=collected.on_reject, credentials={"username": "u"})


async def _logon(peer: FixPeer) -> None:
    logon = await peer.read_type(b"A")
    assert logon.get(34) == b"1" and logon.get(141) == b"Y"
    await peer.send(w.fix_msg("A", 1, [(98, 0), (108, 30), (141, "Y")]))
    md = await peer.read_type(b"V")
    assert md.get(55) == b"EUR/USD" and md.get(263) == b"1"


BOOK_W = ([("1.08500", "1000000"), ("1.08490", "2000000")], [("1.08510", "1000000"), ("1.08520", "3000000")])


async def test_it_logs_on_subscribes_and_keeps_depth_from_a_snapshot_and_increments():
    async def script(peer: FixPeer) -> None:
        await _logon(peer)
        await peer.send(w.fix_snapshot(2, "EUR/USD", *BOOK_W))
        await peer.send(
            w.fix_incremental(
                3,
                [
                    (0, 0, "EUR/USD", "1.08505", "500000"),  # new best bid
                    (1, 1, "EUR/USD", "1.08520", "1500000"),  # change
                    (2, 1, "EUR/USD", "1.08510", "0"),  # delete the best ask
                ],
            )
        )
        await peer.read_type(b"5")
        await peer.send(w.fix_msg("5", 4, []))

    c = Collected()
    async with fix_server(script) as port:
        session = _session(port, c)
        stop = {"now": False}
        async with consuming(c, session.run(logout_after=lambda: stop["now"])):
            await await_for(lambda: len(c.quotes) == 2, what="two quotes")
            stop["now"] = True
            await await_for(c.done.is_set, what="logout")
    assert c.ended is None, c.ended
    assert c.events[0].kind == FeedEventKind.CONNECTED
    first, second = c.quotes
    assert (first.bid, first.ask, first.instrument) == (1.085, 1.0851, "EURUSD")
    assert first.depth == (((1.085, 1e6), (1.0849, 2e6)), ((1.0851, 1e6), (1.0852, 3e6)))
    assert second.depth == (((1.08505, 5e5), (1.085, 1e6), (1.0849, 2e6)), ((1.0852, 1.5e6),))
    assert first.ts_broker <= first.ts_recv and second.seq == first.seq + 1
    assert [m for _, m in session.sent_log] == [b"A", b"V", b"5"]
    assert [s for s, _ in session.sent_log] == [1, 2, 3]
    assert session.next_in == 5 and c.rejects == []


async def test_a_bad_checksum_or_body_length_is_rejected_counted_and_the_next_message_still_applies():
    good = w.fix_incremental(3, [(0, 0, "EUR/USD", "1.08505", "500000")])

    async def script(peer: FixPeer) -> None:
        await _logon(peer)
        await peer.send(w.fix_snapshot(2, "EUR/USD", *BOOK_W))
        await peer.send(w.corrupt_checksum(good), w.corrupt_body_length(good), good)
        await peer.read_type(b"5", timeout=10)

    c = Collected()
    async with fix_server(script) as port:
        session = _session(port, c)
        async with consuming(c, session.run()):
            await await_for(lambda: len(c.quotes) == 2, what="the good increment")
    assert sorted(c.reasons()) == ["bad_body_length", "bad_checksum"]
    assert c.quotes[1].bid == 1.08505
    assert b"2" not in [m for _, m in session.sent_log]  # a rejected frame is no gap


async def test_a_sequence_gap_sends_a_resend_request_and_is_filled_in_order():
    x4 = w.fix_incremental(4, [(0, 0, "EUR/USD", "1.08501", "100")])
    x5 = w.fix_incremental(5, [(0, 0, "EUR/USD", "1.08502", "100")])

    async def script(peer: FixPeer) -> None:
        await _logon(peer)
        await peer.send(w.fix_snapshot(2, "EUR/USD", *BOOK_W))
        await peer.send(x5)  # 3 and 4 are missing
        resend = await peer.read_type(b"2")
        assert (resend.get(7), resend.get(16)) == (b"3", b"0")
        gap_fill = w.fix_msg("4", 3, [(123, "Y"), (36, 4)], poss_dup=True)
        x5_again = w.fix_incremental(5, [(0, 0, "EUR/USD", "1.08502", "100")], poss_dup=True)
        await peer.send(gap_fill, x4, x5_again)  # 3 gap-filled, 4 resent, 5 again (a duplicate now)
        await peer.read_type(b"5", timeout=10)

    c = Collected()
    async with fix_server(script) as port:
        session = _session(port, c)
        async with consuming(c, session.run()):
            await await_for(lambda: session.next_in == 6 and len(c.quotes) == 3, what="the gap filled")
            await await_for(lambda: "duplicate" in c.reasons(), what="the duplicate dropped")
    bids = [q.bid for q in c.quotes]
    assert bids == [1.085, 1.08501, 1.08502]  # 4 before 5, though 5 arrived first
    assert ("seq_gap" in c.reasons()) and session.held == {}
    assert [m for _, m in session.sent_log] == [b"A", b"V", b"2"]


async def test_a_held_increment_that_a_gap_fill_skips_over_is_still_applied_in_order():
    # What QuickFIX does (seen in test_feed_fix_quickfix.py): asked to resend from 3, it gap-fills
    # 3 to 6 in one message, over the increment 5 that we hold. Dropping it would leave the book wrong.
    x5 = w.fix_incremental(5, [(0, 0, "EUR/USD", "1.08502", "100")])
    x6 = w.fix_incremental(6, [(0, 0, "EUR/USD", "1.08503", "100")])

    async def script(peer: FixPeer) -> None:
        await _logon(peer)
        await peer.send(w.fix_snapshot(2, "EUR/USD", *BOOK_W))
        await peer.send(x5)  # 3 and 4 are missing
        await peer.read_type(b"2")
        await peer.send(w.fix_msg("4", 3, [(123, "Y"), (36, 6)], poss_dup=True), x6)
        await peer.read_type(b"5", timeout=10)

    c = Collected()
    async with fix_server(script) as port:
        session = _session(port, c)
        async with consuming(c, session.run()):
            await await_for(lambda: len(c.quotes) == 3, what="the held increment and the next")
    assert [q.bid for q in c.quotes] == [1.085, 1.08502, 1.08503]
    assert session.next_in == 7 and session.held == {}


async def test_a_sequence_reset_moves_the_expected_number_and_a_test_request_is_answered():
    async def script(peer: FixPeer) -> None:
        await _logon(peer)
        await peer.send(w.fix_msg("4", 2, [(36, 10)]))  # SequenceReset-Reset
        await peer.send(w.fix_msg("1", 10, [(112, "PING")]))
        hb = await peer.read_type(b"0")
        assert hb.get(112) == b"PING"
        await peer.send(w.fix_snapshot(11, "EUR/USD", *BOOK_W))
        await peer.read_type(b"5", timeout=10)

    c = Collected()
    async with fix_server(script) as port:
        session = _session(port, c)
        async with consuming(c, session.run()):
            await await_for(lambda: len(c.quotes) == 1, what="the snapshot after the reset")
    assert session.next_in == 12 and "seq_gap" not in c.reasons()


async def test_silence_sends_a_test_request_then_disconnects_when_it_goes_unanswered():
    async def script(peer: FixPeer) -> None:
        await _logon(peer)
        await peer.read_type(b"1", timeout=10)
        await peer.read_type(b"5", timeout=10)  # say nothing: the client gives up

    c = Collected()
    async with fix_server(script) as port:
        session = _session(port, c, heartbeat_s=0.3)
        async with consuming(c, session.run()):
            await await_for(c.done.is_set, timeout=10, what="the heartbeat timeout")
    assert "heartbeat timeout" in str(c.ended)
    assert b"1" in [m for _, m in session.sent_log]


async def test_a_disconnect_in_the_middle_of_a_message_ends_the_connection_without_a_quote():
    async def script(peer: FixPeer) -> None:
        await _logon(peer)
        frame = w.fix_snapshot(2, "EUR/USD", *BOOK_W)
        await peer.send(frame[: len(frame) // 2])

    c = Collected()
    async with fix_server(script) as port, consuming(c, _session(port, c).run()):
        await await_for(c.done.is_set, what="the disconnect")
    assert "closed" in str(c.ended) and c.quotes == []


async def test_unknown_symbols_are_counted_and_a_crossed_book_is_left_to_the_validator():
    async def script(peer: FixPeer) -> None:
        await _logon(peer)
        await peer.send(w.fix_snapshot(2, "ZZZ/ZZZ", *BOOK_W))
        await peer.send(w.fix_snapshot(3, "EUR/USD", [("1.08600", "1")], [("1.08510", "1")]))
        await peer.read_type(b"5", timeout=10)

    c = Collected()
    async with fix_server(script) as port, consuming(c, _session(port, c).run()):
        await await_for(lambda: len(c.quotes) == 1, what="the crossed quote")
    assert c.reasons() == ["unknown_symbol"]
    validator = QuoteValidator(symbols={"fixbroker": {"EURUSD": "EURUSD"}})
    assert validator.check(c.quotes[0]) == Reason.CROSSED


async def test_it_speaks_fix_over_tls_and_checks_the_server_certificate(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def script(peer: FixPeer) -> None:
        await _logon(peer)
        await peer.send(w.fix_snapshot(2, "EUR/USD", *BOOK_W))
        await peer.read_type(b"5", timeout=10)

    c = Collected()
    async with fix_server(script, ssl=server_ctx) as port:
        params = {"host": "127.0.0.1", "port": port, "tls": True, "tls_ca_file": str(cert), "symbols": [EURUSD]}
        async with consuming(c, FixSession("fixbroker", params, on_reject=c.on_reject).run()):
            await await_for(lambda: len(c.quotes) == 1, what="a quote over TLS")
        untrusted = Collected()
        params = {"host": "127.0.0.1", "port": port, "tls": True, "symbols": [EURUSD]}
        async with consuming(untrusted, FixSession("fixbroker", params).run()):
            await await_for(untrusted.done.is_set, what="the refused certificate")
    assert "CERTIFICATE_VERIFY_FAILED" in str(untrusted.ended) and untrusted.quotes == []


async def test_frames_are_cut_from_a_stream_split_anywhere():
    a, b = w.fix_snapshot(2, "EUR/USD", *BOOK_W), w.fix_msg("0", 3, [])
    stream = a + b
    for cut in range(1, len(stream)):
        buf = bytearray(stream[:cut])
        frames, used = frames_cut(buf)
        del buf[:used]
        buf += stream[cut:]
        more, _ = frames_cut(buf)
        assert frames + more == [a, b]
