"""End to end against a FIX engine none of us wrote: a QuickFIX acceptor plays the broker's
market-data server. Logon, MarketDataRequest, W then X, a forced sequence gap answered by our
ResendRequest, a SequenceReset, logout; both engines must agree on every sequence number and
QuickFIX must send no session-level Reject.

`quickfix` builds from source (C++, several minutes): it is not a runtime requirement. scripts/test.sh
installs it from the wheel cache (~/.cache/brokerwatch/wheels, built once per machine by
scripts/quickfix_wheel.sh or BUILD_QUICKFIX=1 ./scripts/test.sh); without it this test is skipped, saying so.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from marketdata.feeds.fix import FixSession
from marketdata.feeds.venue import SymbolSpec
from testing.support import await_for

from .feedservers import Collected, consuming

fix = pytest.importorskip(
    "quickfix",
    reason="quickfix is not installed: run scripts/quickfix_wheel.sh once (builds it into ~/.cache/brokerwatch/wheels)",
)
fix44 = pytest.importorskip("quickfix44")


# QuickFIX reads repeating groups (the MarketDataRequest's 267/269, the entries of W and X) only with a
# data dictionary; scripts/quickfix_wheel.sh puts the one from quickfix's own sdist beside the wheel.
DICTIONARY = Path(os.environ.get("BW_WHEEL_CACHE", Path.home() / ".cache" / "brokerwatch" / "wheels")) / "FIX44.xml"
if not DICTIONARY.is_file():
    pytest.skip(f"no FIX 4.4 data dictionary at {DICTIONARY}: run scripts/quickfix_wheel.sh", allow_module_level=True)

SESSION = ("FIX.4.4", "MDSERVER", "BROKERWATCH")


class MarketDataServer(fix.Application):  # type: ignore[misc,name-defined]
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.sid = fix.SessionID(*SESSION)
        self.logged_on = threading.Event()
        self.md_request = threading.Event()
        self.logged_out = threading.Event()
        self.received: list[tuple[int, str]] = []  # (MsgSeqNum, MsgType) from the client
        self.sent: list[tuple[int, str]] = []  # what QuickFIX sent

    # QuickFIX callbacks (its threads)
    def onCreate(self, sessionID: Any) -> None:
        pass

    def onLogon(self, sessionID: Any) -> None:
        self.logged_on.set()

    def onLogout(self, sessionID: Any) -> None:
        self.logged_out.set()

    def _record(self, into: list[tuple[int, str]], message: Any) -> None:
        header = message.getHeader()
        with self.lock:
            into.append((int(header.getField(34)), header.getField(35)))

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        self._record(self.sent, message)

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        self._record(self.received, message)

    def toApp(self, message: Any, sessionID: Any) -> None:
        self._record(self.sent, message)

    def fromApp(self, message: Any, sessionID: Any) -> None:
        self._record(self.received, message)
        if message.getHeader().getField(35) == "V":
            self.md_request.set()

    # Driven by the test
    @property
    def session(self) -> Any:
        return fix.Session.lookupSession(self.sid)

    def send_snapshot(self) -> None:
        m = fix44.MarketDataSnapshotFullRefresh()
        m.setField(fix.MDReqID("md-EUR/USD"))
        m.setField(fix.Symbol("EUR/USD"))
        for kind, px, size in (("0", 1.085, 1_000_000), ("0", 1.0849, 2_000_000), ("1", 1.0851, 1_000_000)):
            g = fix44.MarketDataSnapshotFullRefresh.NoMDEntries()
            g.setField(fix.MDEntryType(kind))
            g.setField(fix.MDEntryPx(px))
            g.setField(fix.MDEntrySize(size))
            m.addGroup(g)
        fix.Session.sendToTarget(m, self.sid)

    def send_increment(self, action: str, kind: str, px: float, size: float) -> None:
        m = fix44.MarketDataIncrementalRefresh()
        g = fix44.MarketDataIncrementalRefresh.NoMDEntries()
        g.setField(fix.MDUpdateAction(action))
        g.setField(fix.MDEntryType(kind))
        g.setField(fix.Symbol("EUR/USD"))
        g.setField(fix.MDEntryPx(px))
        g.setField(fix.MDEntrySize(size))
        m.addGroup(g)
        fix.Session.sendToTarget(m, self.sid)

    def skip_sequence_numbers(self, n: int) -> None:
        """Force a gap: the next message goes out n numbers later than it should."""
        session = self.session
        session.setNextSenderMsgSeqNum(session.getExpectedSenderNum() + n)

    def send_sequence_reset(self, jump: int) -> int:
        """SequenceReset-Reset (no GapFill): from now on our numbers start at NewSeqNo."""
        session = self.session
        new_seq = session.getExpectedSenderNum() + jump
        m = fix.Message()
        m.getHeader().setField(fix.MsgType("4"))
        m.setField(fix.GapFillFlag(False))
        m.setField(fix.NewSeqNo(new_seq))
        fix.Session.sendToTarget(m, self.sid)
        session.setNextSenderMsgSeqNum(new_seq)
        return int(new_seq)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _acceptor(tmp_path: Path, port: int, app: MarketDataServer) -> Any:
    cfg = tmp_path / "acceptor.cfg"
    cfg.write_text(
        "[DEFAULT]\n"
        "ConnectionType=acceptor\n"
        f"SocketAcceptPort={port}\n"
        "SocketAcceptHost=127.0.0.1\n"
        "StartTime=00:00:00\nEndTime=00:00:00\n"
        "HeartBtInt=30\n"
        "UseDataDictionary=Y\n"
        f"DataDictionary={DICTIONARY}\n"
        f"FileLogPath={tmp_path / 'log'}\n"
        "[SESSION]\n"
        f"BeginString={SESSION[0]}\nSenderCompID={SESSION[1]}\nTargetCompID={SESSION[2]}\n"
    )
    settings = fix.SessionSettings(str(cfg))
    return fix.SocketAcceptor(app, fix.MemoryStoreFactory(), settings, fix.FileLogFactory(settings))


def test_a_quickfix_acceptor_and_our_session_agree_on_every_sequence_number(tmp_path):
    """Run in a child process: QuickFIX's binding sometimes segfaults while stopping, after both sides
    have logged out (seen in CI with stop(True) too), and that must not take a test worker with it.
    The child writes a marker once every assertion has passed, before it stops the acceptor."""
    import subprocess
    import sys

    marker = tmp_path / "passed"
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-p",
            "no:xdist",
            f"{__file__}::test_in_a_child_process",
        ],
        env={**os.environ, "BW_QUICKFIX_CHILD": str(marker)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert marker.is_file(), (
        f"the QuickFIX run failed (exit {child.returncode}):\n{child.stdout[-6000:]}\n{child.stderr[-3000:]}"
    )
    if child.returncode != 0:
        import warnings

        warnings.warn(f"QuickFIX crashed while stopping after the test passed (exit {child.returncode})", stacklevel=1)


@pytest.mark.asyncio
@pytest.mark.skipif("BW_QUICKFIX_CHILD" not in os.environ, reason="run by the test above, in a child process")
async def test_in_a_child_process(tmp_path):
    port = _free_port()
    app = MarketDataServer()
    acceptor = _acceptor(tmp_path, port, app)
    acceptor.start()
    c = Collected()
    stop = {"now": False}
    params = {
        "host": "127.0.0.1",
        "port": port,
        "heartbeat_s": 30,
        "symbols": [SymbolSpec("EUR/USD", "EURUSD", 5, 0.0001)],
    }
    session = FixSession("quickfix", params, on_reject=c.on_reject)
    try:
        async with consuming(c, session.run(logout_after=lambda: stop["now"])):
            await await_for(app.md_request.is_set, 15, what="the MarketDataRequest at QuickFIX")
            app.send_snapshot()
            await await_for(lambda: len(c.quotes) == 1, 10, what="the W snapshot")
            app.send_increment("0", "0", 1.08505, 500_000)
            await await_for(lambda: len(c.quotes) == 2, 10, what="an X increment")
            app.skip_sequence_numbers(2)
            app.send_increment("1", "1", 1.0851, 750_000)
            await await_for(lambda: len(c.quotes) == 3 and not session.held, 15, what="the gap filled")
            new_seq = app.send_sequence_reset(5)
            app.send_increment("2", "0", 1.08505, 0)
            await await_for(lambda: len(c.quotes) == 4, 10, what="an increment after the reset")
            assert session.next_in == new_seq + 1
            stop["now"] = True
            await await_for(c.done.is_set, 15, what="our logout")
        await await_for(app.logged_out.is_set, 10, what="QuickFIX's logout")
        expected_from_us, next_from_them = app.session.getExpectedTargetNum(), app.session.getExpectedSenderNum()
    except BaseException:
        acceptor.stop(True)
        raise
    try:
        _check(tmp_path, app, session, c, expected_from_us, next_from_them)
    except BaseException:
        acceptor.stop(True)
        raise
    Path(os.environ["BW_QUICKFIX_CHILD"]).write_text("passed")
    # Last, forced (both sides have logged out; a plain stop() segfaults inside the binding, and even
    # this one sometimes does: the test above runs this one in a child process for that reason).
    acceptor.stop(True)


def _check(tmp_path: Path, app: Any, session: Any, c: Any, expected_from_us: int, next_from_them: int) -> None:
    # The gap was answered by our ResendRequest for exactly the missing numbers onwards.
    sent_types = [m for _, m in session.sent_log]
    assert sent_types.count(b"2") == 1 and "seq_gap" in c.reasons()
    # Every message we sent reached QuickFIX under the number we gave it, and the other way round.
    ours_out = [(s, m.decode()) for s, m in session.sent_log]
    assert sorted(app.received) == sorted(ours_out)
    assert {s for s, _ in session.received_log} <= {s for s, _ in app.sent}
    assert (session.next_out, session.next_in) == (expected_from_us, next_from_them)
    # QuickFIX sent no session-level Reject (35=3) and logged none.
    assert "3" not in [m for _, m in app.sent]
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "log").glob("*.log"))
    assert "\x0135=3\x01" not in logs
    book = c.quotes[-1]
    assert (book.bid, book.ask) == (1.085, 1.0851) and book.ask_size == 750_000
