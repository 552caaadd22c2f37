"""FIX 4.4 market data: framing and checks, the session layer, and W/X depth.

Outbound messages are built and encoded (BodyLength, CheckSum) by `simplefix`. Inbound frames are cut
and checked here: simplefix's parser walks the buffer one byte at a time in Python and checks neither
BodyLength (9) nor CheckSum (10), which a feed must reject and count; a `split` on SOH is 10x faster.

Session (ours, over asyncio TCP, optional TLS):
- Logon (A) with HeartBtInt and ResetSeqNumFlag, Logout (5) both ways;
- Heartbeat (0) when we have sent nothing for HeartBtInt; TestRequest (1) when we have heard nothing
  for HeartBtInt + 20 %, and a disconnect if that goes unanswered as long again;
- MsgSeqNum (34) both ways: inbound higher than expected -> ResendRequest (2) for the gap, messages
  after it are held and applied in order once the gap is filled; lower with PossDupFlag -> dropped
  as a duplicate; SequenceReset (4) GapFill and Reset handled; their ResendRequests are answered
  with a GapFill (we send no application messages worth resending). A held application message that
  a SequenceReset skips over is still applied, in order: it really arrived, and dropping it (as
  QuickFIX's own initiator would) leaves the book wrong. QuickFIX answers a ResendRequest for
  market data with one GapFill over the whole range, the held message included.
- MarketDataRequest (V) per symbol; W (snapshot) replaces a symbol's book, X (incremental) applies
  MDUpdateAction 0 new / 1 change / 2 delete to levels keyed by price (or MDEntryID when sent).

Reconnects: `connect()` raises FeedDisconnected and the ingestor retries with exponential backoff.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import re
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import simplefix  # type: ignore[import-untyped]

from common.ticks import FeedEventKind, FeedItem, Quote, StatusEvent, now_us
from marketdata.feeds.base import FeedDisconnected, adapter_register
from marketdata.feeds.venue import Book, Parsed, Reject, SymbolMap, SymbolSpec, VenueParser

SOH = b"\x01"
_CHK = b"\x0110="
SESSION_TYPES = frozenset((b"0", b"1", b"2", b"3", b"4", b"5", b"A"))  # admin messages; the rest are application
Fields = list[list[bytes]]  # [tag, value] per field, in order
Entry = tuple[bytes | None, bytes | None, bytes | None, bytes | None, bytes | None, bytes | None]

# An IncrementalRefresh in the plain layout (simplefix's header order, each entry 279 269 55 270 271,
# nothing else): cut by two regular expressions in C instead of field by field. Each tag it names
# appears once, where the general path looks for it, so both read the same values; any other frame
# does not match and takes the general path.
_X_PLAIN = re.compile(
    rb"8=FIX\.4\.4\x019=\d+\x0135=X\x0149=[^\x01]*\x0156=[^\x01]*\x0134=(\d+)\x0152=([^\x01]*)\x01268=[^\x01]*\x01"
    rb"((?:279=[^\x01]*\x01269=[^\x01]*\x0155=[^\x01]*\x01270=[^\x01]*\x01271=[^\x01]*\x01)+)10=[^\x01]*\x01"
)
_X_ENTRY = re.compile(rb"279=([^\x01]*)\x01269=([^\x01]*)\x0155=([^\x01]*)\x01270=([^\x01]*)\x01271=([^\x01]*)\x01")


def frames_cut(buf: bytearray) -> tuple[list[bytes | Reject], int]:
    """Cut complete frames from the head of `buf`; returns (frames or rejects, bytes consumed).

    A frame runs from `8=FIX` to the SOH after `10=xxx`. Its BodyLength must equal the bytes between
    the SOH ending 9= and the SOH before 10=, and its CheckSum the byte sum mod 256 of everything
    before 10=; otherwise it is a Reject (bad_body_length / bad_checksum) and cutting goes on after it.
    """
    out: list[bytes | Reject] = []
    pos = 0
    n = len(buf)
    while pos < n:
        start = buf.find(b"8=FIX", pos)
        if start < 0:
            if n - pos > 5:  # junk without a message start: drop it, keep a possible partial "8=FI"
                out.append(Reject("garbled", bytes(buf[pos : pos + 40]).decode("latin-1")))
                pos = n - 5
            break
        if start > pos:
            out.append(Reject("garbled", bytes(buf[pos:start][:40]).decode("latin-1")))
            pos = start
        chk = buf.find(_CHK, start)
        if chk < 0:
            break
        end = buf.find(SOH, chk + 4)
        if end < 0:
            break
        end += 1
        frame = bytes(buf[start:end])
        pos = end
        out.append(frame_check(frame))
    return out, pos


def frame_check(frame: bytes) -> bytes | Reject:
    """One complete frame (SOH-separated, ends with 10=xxx SOH): itself if BodyLength and CheckSum
    hold, else the Reject."""
    chk = frame.rfind(_CHK)
    bl = frame.find(b"\x019=")
    if chk < 0 or bl < 0:
        return Reject("garbled", frame[:40].decode("latin-1"))
    bl_end = frame.find(SOH, bl + 3)
    try:
        body_length = int(frame[bl + 3 : bl_end])
        checksum = int(frame[chk + 4 : -1])
    except ValueError:
        return Reject("garbled", frame[:40].decode("latin-1"))
    if body_length != chk + 1 - (bl_end + 1):
        return Reject("bad_body_length", f"9={body_length}, body is {chk - bl_end} bytes")
    if byte_sum(frame, chk + 1) & 0xFF != checksum:
        return Reject("bad_checksum", f"10={checksum:03d}")
    return frame


def byte_sum(data: bytes, end: int) -> int:
    """sum(data[:end]), the FIX CheckSum before its modulo, in C rather than byte by byte.

    Adler-32's first half is 1 + the sum of the bytes modulo 65521; over at most 256 bytes that sum is
    at most 65,280, so no modulo happens and it is the plain sum. Longer data goes 256 bytes at a time.
    `end` >= 0.
    """
    adler32 = zlib.adler32
    total = start = 0
    while end - start > 256:
        total += (adler32(data[start : start + 256]) & 0xFFFF) - 1
        start += 256
    return total + (adler32(data[start:end]) & 0xFFFF) - 1


def fields_of(frame: bytes) -> Fields:
    """[tag, value] of each field of a frame ending with SOH: the tag is what comes before the
    field's first "=", the value what follows it (b"" for a field without "=")."""
    tokens = frame[:-1].split(SOH)
    pairs = [f.split(b"=", 1) for f in tokens]
    if min(map(len, pairs)) == 2:  # every field has its "=": the usual case, done
        return pairs
    return [[t, v] for t, _, v in (f.partition(b"=") for f in tokens)]


_DAYS: dict[bytes, int] = {}
_SECONDS: dict[bytes, int] = {}  # b"yyyymmdd-hh:mm:ss" -> µs since the epoch


def _fix_seconds_us(value: bytes) -> int:
    day = value[:8]
    base = _DAYS.get(day)
    if base is None:
        base = calendar.timegm((int(day[0:4]), int(day[4:6]), int(day[6:8]), 0, 0, 0)) * 1_000_000
        if len(_DAYS) > 64:
            _DAYS.clear()
        _DAYS[day] = base
    if value[8:9] != b"-" or value[11:12] != b":":
        raise ValueError(value)
    return base + (int(value[9:11]) * 3600 + int(value[12:14]) * 60 + int(value[15:17])) * 1_000_000


def fix_time_us(value: bytes) -> int:
    """UTCTimestamp yyyymmdd-hh:mm:ss[.sss[sss]] -> µs since the epoch (ValueError if malformed).

    The whole seconds are remembered (many messages share them): a message pays for its fraction only."""
    head = value[:17]
    base = _SECONDS.get(head)
    if base is None:
        base = _fix_seconds_us(value)  # raises on a bad time: only good ones are remembered
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        _SECONDS[head] = base
    if len(value) > 18:
        return base + int((value[18:] + b"000000")[:6])
    return base


class FixMarketData(VenueParser):
    """Application layer: W and X messages into per-symbol books and quotes. Also the replay parser
    (`parse`: one frame, sequence numbers checked for gaps and duplicates but nothing sent)."""

    name = "fix"

    def __init__(self, broker: str, symbols: SymbolMap) -> None:
        super().__init__(broker, symbols)
        self.entry_ids: dict[bytes, tuple[str, bool, int]] = {}  # MDEntryID -> (venue symbol, is bid, tick)
        self.next_in = 0  # replay only: the next expected MsgSeqNum (0: take the first one seen)

    def parse(self, raw: bytes | str, ts_recv: int) -> list[Parsed]:
        frame = raw.encode("latin-1") if isinstance(raw, str) else raw
        frame = frame.strip(b"\r\n").replace(b"|", SOH)
        if not frame.endswith(SOH):
            frame += SOH
        checked = frame_check(frame)
        if isinstance(checked, Reject):
            return [checked]
        if self.fast:
            plain = _X_PLAIN.fullmatch(checked)
            if plain is not None:
                return self._plain_incremental(plain, ts_recv)
        try:
            fields = fields_of(checked)
            head = dict(fields[:8])
            seq = int(head[b"34"]) if b"34" in head else int(dict(fields)[b"34"])
        except (KeyError, ValueError):
            return [Reject("garbled", "no MsgSeqNum")]
        out: list[Parsed] = []
        msg_type = head.get(b"35")
        if self.next_in and seq < self.next_in and msg_type != b"4":
            return [Reject("duplicate", f"34={seq}")]
        if self.next_in and seq > self.next_in:
            out.append(Reject("seq_gap", f"expected 34={self.next_in}, got {seq}"))
        self.next_in = seq + 1
        if msg_type == b"4":
            new_seq = dict(fields).get(b"36")
            if new_seq is not None and new_seq.isdigit():
                self.next_in = int(new_seq)
            return out
        out.extend(self.apply(fields, ts_recv))
        return out

    def _plain_incremental(self, plain: re.Match[bytes], ts_recv: int) -> list[Parsed]:
        """parse() of an X frame that _X_PLAIN matched: the same steps, on the values it cut."""
        seq = int(plain.group(1))
        out: list[Parsed] = []
        if self.next_in and seq < self.next_in:
            return [Reject("duplicate", f"34={seq}")]
        if self.next_in and seq > self.next_in:
            out.append(Reject("seq_gap", f"expected 34={self.next_in}, got {seq}"))
        self.next_in = seq + 1
        out.extend(self.plain_apply(plain, ts_recv))
        return out

    def plain_apply(self, plain: re.Match[bytes], ts_recv: int) -> list[Parsed]:
        """apply() of an in-sequence X frame that _X_PLAIN matched, on the values it cut."""
        _, sending_time, body = plain.groups()
        try:
            ts = fix_time_us(sending_time)
        except (ValueError, IndexError):
            ts = ts_recv
        return self._apply_plain_entries(_X_ENTRY.findall(body), ts, ts_recv)

    def _apply_plain_entries(self, entries: list[tuple[bytes, ...]], ts: int, ts_recv: int) -> list[Parsed]:
        """_apply_entries for entries that _X_ENTRY cut: every field present, no MDEntryID, so the
        same steps without the entry-id ones (the differential tests run both)."""
        out: list[Parsed] = []
        touched: dict[str, tuple[SymbolSpec, Book]] = {}
        last_symbol: bytes | None = None
        name = ""
        spec: SymbolSpec | None = None
        book: Book | None = None
        set_bid = set_ask = None
        scale = 1
        for action, kind, sym, price, size in entries:
            try:
                if sym != last_symbol:
                    last_symbol = sym
                    name = sym.decode("latin-1")
                    spec = self.symbols.get(name)
                    book = self.book(spec) if spec is not None else None
                    if book is not None:
                        set_bid, set_ask, scale = book.set_bid, book.set_ask, book.scale
                if spec is None or book is None or set_bid is None or set_ask is None:
                    out.append(self.unknown(name))
                    continue
                if kind == b"0":
                    setter = set_bid
                elif kind == b"1":
                    setter = set_ask
                else:
                    continue
                tick = round(float(price) * scale)
                setter(tick, 0.0 if action == b"2" else float(size))
                if name not in touched:
                    touched[name] = (spec, book)
            except (ValueError, OverflowError):  # Overflow: a price like 1e999
                out.append(Reject("garbled", "bad MD entry in X"))
        for spec, book in touched.values():
            q = self.emit(spec, book, ts, ts_recv)
            if q is not None:
                out.append(q)
        return out

    def apply(self, fields: Fields, ts_recv: int) -> list[Parsed]:
        """A validated, in-sequence application message; W and X change books, others are ignored."""
        msg_type = b""
        for t, v in fields[:6]:
            if t == b"35":
                msg_type = v
                break
        if msg_type == b"W":
            return self._snapshot(fields, ts_recv)
        if msg_type == b"X":
            return self._incremental(fields, ts_recv)
        if msg_type == b"Y":
            return [Reject("md_request_rejected", dict(fields).get(b"58", b"").decode("latin-1", "replace"))]
        return []

    def _sending_time(self, fields: Fields, ts_recv: int) -> int:
        for t, v in fields[:10]:
            if t == b"52":
                try:
                    return fix_time_us(v)
                except (ValueError, IndexError):
                    return ts_recv
        return ts_recv

    def _snapshot(self, fields: Fields, ts_recv: int) -> list[Parsed]:
        ts = self._sending_time(fields, ts_recv)
        symbol = b""
        entries: list[dict[bytes, bytes]] = []
        cur: dict[bytes, bytes] | None = None
        for t, v in fields:
            if t == b"269":
                cur = {}
                entries.append(cur)
            if cur is None:
                if t == b"55":
                    symbol = v
            else:
                cur[t] = v
        name = symbol.decode("latin-1")
        spec = self.symbols.get(name)
        if spec is None:
            return [self.unknown(name)]
        book = self.book(spec)
        book.clear()
        try:
            for e in entries:
                kind = e[b"269"]
                if kind not in (b"0", b"1"):
                    continue
                tick = book.tick(e[b"270"].decode())
                side = book.bids if kind == b"0" else book.asks
                book.set(side, tick, float(e.get(b"271", b"0")))
                if b"278" in e:
                    self.entry_ids[e[b"278"]] = (name, kind == b"0", tick)
        except (KeyError, ValueError, OverflowError):  # Overflow: a price like 1e999
            book.clear()
            return [Reject("garbled", "bad MD entry in W")]
        q = self.emit(spec, book, ts, ts_recv)
        return [q] if q is not None else []

    def _incremental(self, fields: Fields, ts_recv: int) -> list[Parsed]:
        ts = self._sending_time(fields, ts_recv)
        # One pass over the fields, no dict per entry: an entry starts at MDUpdateAction (279) and is
        # applied when the next one starts (or at the end). The symbol (55) carries over to the
        # entries after it that do not repeat it.
        entries: list[list[bytes | None]] = []  # action, type, symbol, price, size, entry id
        entry: list[bytes | None] | None = None
        symbol = b""
        for t, v in fields:
            if t == b"279":
                entry = [v, None, symbol, None, None, None]
                entries.append(entry)
            elif entry is not None:
                if t == b"269":
                    entry[1] = v
                elif t == b"55":
                    entry[2] = symbol = v
                elif t == b"270":
                    entry[3] = v
                elif t == b"271":
                    entry[4] = v
                elif t == b"278":
                    entry[5] = v
        return self._apply_entries(entries, ts, ts_recv)  # type: ignore[arg-type]

    def _apply_entries(self, entries: list[Entry], ts: int, ts_recv: int) -> list[Parsed]:
        """X entries (action, type, symbol, price, size, entry id) applied in order; one quote per
        book touched."""
        out: list[Parsed] = []
        touched: dict[str, tuple[SymbolSpec, Book]] = {}
        ids = self.entry_ids
        last_symbol: bytes | None = None  # the previous entry's symbol, spec and book: most share them
        name = ""
        spec: SymbolSpec | None = None
        book: Book | None = None
        set_bid = set_ask = None
        scale = 1
        for action, kind, sym, price, size, entry_id in entries:
            try:
                if action == b"2" and entry_id is not None and price is None and entry_id in ids:
                    id_name, is_bid, tick = ids.pop(entry_id)
                    id_spec = self.symbols.get(id_name)
                    if id_spec is not None:
                        id_book = self.book(id_spec)
                        (id_book.set_bid if is_bid else id_book.set_ask)(tick, 0.0)
                        touched[id_name] = (id_spec, id_book)
                    continue
                if sym != last_symbol:  # not `is not`: the plain path's symbols are new objects
                    last_symbol = sym
                    name = (sym or b"").decode("latin-1")
                    spec = self.symbols.get(name)
                    book = self.book(spec) if spec is not None else None
                    if book is not None:
                        set_bid, set_ask, scale = book.set_bid, book.set_ask, book.scale
                if spec is None or book is None or set_bid is None or set_ask is None:
                    out.append(self.unknown(name))
                    continue
                if kind == b"0":
                    is_bid = True
                elif kind == b"1":
                    is_bid = False
                else:
                    continue
                if price is None:
                    raise ValueError("no MDEntryPx")
                tick = round(float(price) * scale)
                if action == b"2":
                    (set_bid if is_bid else set_ask)(tick, 0.0)
                    if entry_id is not None:
                        ids.pop(entry_id, None)
                else:
                    if size is None:
                        raise ValueError("no MDEntrySize")
                    if entry_id is not None:
                        if action == b"1" and entry_id in ids:
                            old = ids[entry_id][2]
                            if old != tick:
                                (set_bid if is_bid else set_ask)(old, 0.0)
                        ids[entry_id] = (name, is_bid, tick)
                    (set_bid if is_bid else set_ask)(tick, float(size))
                if name not in touched:
                    touched[name] = (spec, book)
            except (ValueError, OverflowError):  # Overflow: a price like 1e999
                out.append(Reject("garbled", "bad MD entry in X"))
        for spec, book in touched.values():
            q = self.emit(spec, book, ts, ts_recv)
            if q is not None:
                out.append(q)
        return out


def _fix_now() -> str:
    t = time.time()
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}"


class FixSession:
    """The session layer over one TCP connection. Params: host, port, tls (bool), tls_ca_file, sender_comp_id,
    target_comp_id, heartbeat_s, symbols (mapping); credentials: username, password (optional)."""

    def __init__(
        self,
        broker: str,
        params: dict[str, Any],
        *,
        on_reject: Callable[[str, str], None] | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.broker = broker
        self.host = str(params.get("host", "127.0.0.1"))
        self.port = int(params.get("port", 9878))
        self.tls = bool(params.get("tls", False))
        self.tls_ca_file = params.get("tls_ca_file")  # a private CA of the broker (default: the system's)
        self.sender = str(params.get("sender_comp_id", "BROKERWATCH"))
        self.target = str(params.get("target_comp_id", "MDSERVER"))
        self.heartbeat_s = float(params.get("heartbeat_s", 30))
        self.connect_timeout_s = float(params.get("connect_timeout_s", 10))
        self.symbols = SymbolMap.from_params(params)
        self.credentials = credentials or {}
        self.on_reject = on_reject
        self.md = FixMarketData(broker, self.symbols)
        self.next_out = 1
        self.next_in = 1
        self.held: dict[int, Fields] = {}  # messages after a gap, applied once it is filled
        self.resend_until = 0  # a ResendRequest is out for inbound up to this seq (0: none)
        self.sent_log: list[tuple[int, bytes]] = []  # (seq, MsgType) of what we sent, for the tests
        self.received_log: list[tuple[int, bytes]] = []
        self.rejects: dict[str, int] = {}
        self.logged_on = False
        self.logout_sent = False
        self._writer: asyncio.StreamWriter | None = None
        self._last_sent = 0.0
        self._pending: list[Parsed] = []

    # -- outbound ----------------------------------------------------------------------------------
    def _message(self, msg_type: str, seq: int | None = None, *, poss_dup: bool = False) -> Any:
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4", header=True)
        m.append_pair(35, msg_type, header=True)
        m.append_pair(49, self.sender, header=True)
        m.append_pair(56, self.target, header=True)
        m.append_pair(34, seq if seq is not None else self.next_out, header=True)
        if poss_dup:
            m.append_pair(43, "Y", header=True)
        m.append_pair(52, _fix_now(), header=True)
        return m

    def _send(self, m: Any, msg_type: bytes) -> None:
        seq = int(m.get(34))
        if seq == self.next_out:
            self.next_out += 1
        self.sent_log.append((seq, msg_type))
        if self._writer is not None:
            self._writer.write(m.encode())
        self._last_sent = time.monotonic()

    def send_logon(self) -> None:
        m = self._message("A")
        m.append_pair(98, 0)
        m.append_pair(108, int(self.heartbeat_s))
        m.append_pair(141, "Y")
        if self.credentials.get("username"):
            m.append_pair(553, self.credentials["username"])
        if self.credentials.get("password"):
            m.append_pair(554, self.credentials["password"])
        self._send(m, b"A")

    def send_md_request(self, venue_symbol: str) -> None:
        m = self._message("V")
        m.append_pair(262, f"md-{venue_symbol}")
        m.append_pair(263, 1)  # snapshot + updates
        m.append_pair(264, 0)  # full book
        m.append_pair(265, 1)  # incremental refresh
        m.append_pair(267, 2)
        m.append_pair(269, 0)
        m.append_pair(269, 1)
        m.append_pair(146, 1)
        m.append_pair(55, venue_symbol)
        self._send(m, b"V")

    def send_heartbeat(self, test_req_id: bytes | None = None) -> None:
        m = self._message("0")
        if test_req_id is not None:
            m.append_pair(112, test_req_id)
        self._send(m, b"0")

    def send_test_request(self) -> None:
        m = self._message("1")
        m.append_pair(112, f"TEST-{int(time.time())}")
        self._send(m, b"1")

    def send_resend_request(self, begin: int) -> None:
        m = self._message("2")
        m.append_pair(7, begin)
        m.append_pair(16, 0)  # to infinity: everything after the gap
        self._send(m, b"2")

    def send_gap_fill(self, begin: int) -> None:
        # We only ever send session messages and subscriptions, which are not resent: one GapFill
        # from the requested seq to our next seq.
        m = self._message("4", seq=begin, poss_dup=True)
        m.append_pair(123, "Y")
        m.append_pair(36, self.next_out)
        self._send(m, b"4")

    def send_logout(self, text: str = "") -> None:
        m = self._message("5")
        if text:
            m.append_pair(58, text)
        self._send(m, b"5")
        self.logout_sent = True

    # -- inbound -----------------------------------------------------------------------------------
    def _reject(self, reason: str, detail: str) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + 1
        if self.on_reject is not None:
            self.on_reject(reason, detail)

    def on_frame(self, frame: bytes, ts_recv: int) -> list[Parsed]:
        """One checked frame: sequence handling, session messages answered, application applied."""
        md = self.md
        if md.fast:
            # The usual frame, an IncrementalRefresh in the plain layout and in sequence, is applied
            # from the values _X_PLAIN cut, as FixMarketData.parse does: the same steps as below for
            # it (logged, next_in advanced, applied, then what it let through). Anything else goes
            # the general way (a test runs both on mangled sessions).
            plain = _X_PLAIN.fullmatch(frame)
            if plain is not None:
                seq = int(plain.group(1))
                if seq == self.next_in:
                    self.received_log.append((seq, b"X"))
                    self.next_in += 1
                    return self._in_sequence_done(md.plain_apply(plain, ts_recv), ts_recv)
        try:
            fields = fields_of(frame)
            head = dict(fields[:10])
            seq = int(head[b"34"])
            msg_type = head[b"35"]
        except (KeyError, ValueError):
            return [Reject("garbled", "no MsgSeqNum or MsgType")]
        self.received_log.append((seq, msg_type))
        out: list[Parsed] = []
        if msg_type == b"4" and dict(fields).get(b"123", b"N") != b"Y":
            # SequenceReset-Reset: whatever its own seq, the next expected becomes NewSeqNo.
            return self._sequence_reset(fields, ts_recv)
        if (msg_type == b"A" and head.get(b"141") == b"Y") or (msg_type == b"A" and not self.logged_on):
            self.next_in = seq
        if seq < self.next_in:
            if head.get(b"43") == b"Y":
                return [Reject("duplicate", f"34={seq} again (PossDup)")]
            if msg_type == b"5":
                raise FeedDisconnected(f"logout with a sequence number too low (34={seq})")
            raise FeedDisconnected(f"MsgSeqNum too low: expected {self.next_in}, got {seq}")
        if seq > self.next_in:
            self.held[seq] = fields
            if not self.resend_until:
                out.append(Reject("seq_gap", f"expected 34={self.next_in}, got {seq}"))
                self.resend_until = seq
                self.send_resend_request(self.next_in)
            return out
        out.extend(self._process(fields, msg_type, ts_recv))
        return self._in_sequence_done(out, ts_recv)

    def _in_sequence_done(self, out: list[Parsed], ts_recv: int) -> list[Parsed]:
        """After an in-sequence message: the held ones it lets through, in order; the resend is over
        once everything it asked for has come."""
        while self.next_in in self.held:
            held = self.held.pop(self.next_in)
            out.extend(self._process(held, dict(held[:10])[b"35"], ts_recv))
        if self.resend_until and self.next_in > self.resend_until:
            self.resend_until = 0
        return out

    def _sequence_reset(self, fields: Fields, ts_recv: int) -> list[Parsed]:
        body = dict(fields)
        try:
            new_seq = int(body[b"36"])
        except (KeyError, ValueError):
            return []
        if new_seq > self.next_in:
            self.next_in = new_seq
        out: list[Parsed] = []
        for s in sorted(s for s in self.held if s < self.next_in):
            held = self.held.pop(s)
            if dict(held[:10])[b"35"] not in SESSION_TYPES:  # session messages in a skipped range are void
                out.extend(self.md.apply(held, ts_recv))
        return out

    def _process(self, fields: Fields, msg_type: bytes, ts_recv: int) -> list[Parsed]:
        """An in-sequence message (next_in advances unless it is a GapFill, which sets it)."""
        if msg_type == b"4":
            return self._sequence_reset(fields, ts_recv)
        self.next_in += 1
        if msg_type == b"A":
            self.logged_on = True
            return []
        if msg_type == b"0":
            return []
        if msg_type == b"1":
            self.send_heartbeat(dict(fields).get(b"112"))
            return []
        if msg_type == b"2":
            try:
                begin = int(dict(fields)[b"7"])
            except (KeyError, ValueError):
                return []
            self.send_gap_fill(begin)
            return []
        if msg_type == b"3":
            return [Reject("session_reject", dict(fields).get(b"58", b"").decode("latin-1", "replace"))]
        if msg_type == b"5":
            if not self.logout_sent:
                self.send_logout()
            raise FeedDisconnected("logout")
        return self.md.apply(fields, ts_recv)

    # -- the connection ----------------------------------------------------------------------------
    async def run(self, *, logout_after: Callable[[], bool] | None = None) -> AsyncIterator[FeedItem]:
        ctx = ssl.create_default_context(cafile=self.tls_ca_file) if self.tls else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=ctx), self.connect_timeout_s
            )
        except (OSError, TimeoutError) as exc:
            raise FeedDisconnected(f"FIX connect to {self.host}:{self.port} failed: {exc}") from exc
        self._writer = writer
        self.next_out, self.next_in = 1, 1
        self.held.clear()
        self.resend_until = 0
        self.logged_on = self.logout_sent = False
        buf = bytearray()
        try:
            self.send_logon()
            await writer.drain()
            test_sent = False
            last_heard = time.monotonic()
            while True:
                if logout_after is not None and logout_after():
                    await self.logout(reader)
                    return
                now = time.monotonic()
                if now - self._last_sent >= self.heartbeat_s:
                    self.send_heartbeat()
                silence = now - last_heard
                limit = self.heartbeat_s * 1.2
                if silence >= limit * (2 if test_sent else 1):
                    if test_sent:
                        raise FeedDisconnected(f"FIX heartbeat timeout ({silence:.1f} s silent)")
                    self.send_test_request()
                    test_sent = True
                await writer.drain()
                try:
                    data = await asyncio.wait_for(
                        reader.read(65536), timeout=min(0.25, max(0.05, self.heartbeat_s / 4))
                    )
                except TimeoutError:
                    continue
                if not data:
                    raise FeedDisconnected("FIX connection closed by the server")
                last_heard = time.monotonic()
                test_sent = False
                buf += data
                cut, used = frames_cut(buf)
                del buf[:used]
                ts_recv = now_us()
                for frame in cut:
                    items = [frame] if isinstance(frame, Reject) else self.on_frame(frame, ts_recv)
                    for item in items:
                        if isinstance(item, Reject):
                            self._reject(item.reason, item.detail)
                        else:
                            yield item
                    if not isinstance(frame, Reject) and self.logged_on and frame.find(b"\x0135=A\x01") > 0:
                        yield StatusEvent(self.broker, FeedEventKind.CONNECTED, ts_recv, "FIX logon")
                        for venue_symbol in self.symbols.venue_symbols():
                            self.send_md_request(venue_symbol)
                    elif not isinstance(frame, Reject) and frame.find(b"\x0135=0\x01") > 0:
                        yield StatusEvent(self.broker, FeedEventKind.HEARTBEAT, ts_recv)
        except ConnectionError as exc:
            raise FeedDisconnected(f"FIX connection lost: {exc}") from exc
        finally:
            self._writer = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def logout(self, reader: asyncio.StreamReader, timeout: float = 5.0) -> None:
        """Send Logout and wait for the counterparty's (its seq is checked like any other)."""
        self.send_logout()
        assert self._writer is not None
        await self._writer.drain()
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(reader.read(65536), timeout=deadline - time.monotonic())
            except TimeoutError:
                return
            if not data:
                return
            buf += data
            cut, used = frames_cut(buf)
            del buf[:used]
            for frame in cut:
                if isinstance(frame, Reject):
                    continue
                try:
                    self.on_frame(frame, now_us())
                except FeedDisconnected:
                    return  # their Logout
            await self._writer.drain()


class FixFeed:
    """Feed adapter: one FIX session per connect()."""

    def __init__(
        self,
        broker: str,
        params: dict[str, Any],
        *,
        on_reject: Callable[[str, str], None] | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.broker = broker
        self.params = params
        self.on_reject = on_reject
        self.credentials = credentials
        self.session: FixSession | None = None

    def connect(self) -> AsyncIterator[FeedItem]:
        self.session = FixSession(self.broker, self.params, on_reject=self.on_reject, credentials=self.credentials)
        return self.session.run()


def _factory(broker: str, params: dict[str, Any]) -> FixFeed:
    return FixFeed(broker, params, on_reject=params.get("on_reject"), credentials=params.get("credentials"))


adapter_register("fix", _factory)

__all__ = ["FixFeed", "FixMarketData", "FixSession", "Quote", "frames_cut"]
