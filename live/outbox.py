"""Per-client conflation and slow-client policy of the live fan-out. Pure: no Django, no I/O.

Every client has one Outbox. The hub offers it each update; the outbox keeps only the latest
quote per broker+instrument (and the latest status per broker), so a burst or a client that
cannot keep up costs at most one entry per key, never a growing queue. When the hub flushes,
the outbox decides from the client's unsent bytes whether to send, hold (keep conflating) or
drop the client.

Quotes arrive in groups: everything one read of Redis brought for one instrument, serialised and
framed once by the hub. A client that keeps up stores the group as one entry and is written the
group's shared frame, so a burst, where every broker quotes an instrument at once, costs one
offer per subscribed client and instrument instead of one per quote (bench.live --burst). Only a
client that already has something pending for the instrument (it is held, or more than one read
came before a flush) unpacks the group into per-key entries, where latest-per-key applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


class Decision(Enum):
    SEND = "send"
    HOLD = "hold"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Update:
    """One quote or status, serialised once by the hub and shared by every outbox it is offered to."""

    fragment: str  # the JSON object on its own, for batches
    text: str  # the whole message for this update alone
    frame: bytes = b""  # the same message as one WebSocket text frame, written as is to every client
    ts: int = 0  # ts_ingest of a quote, `since` of a status: what a snapshot is compared with
    parts: tuple[tuple[str, Update], ...] = ()  # a group: its quotes by key (fragment: theirs, comma-joined)


def quote_group(parts: list[tuple[str, Update]]) -> Update:
    """Quotes of one instrument, each under a different key, as one shared update (see the module doc)."""
    if len(parts) == 1:
        only = parts[0][1]
        return Update(fragment=only.fragment, text=only.text, frame=only.frame, ts=only.ts, parts=(parts[0],))
    fragment = ",".join(u.fragment for _k, u in parts)
    text = '{"type":"quotes","quotes":[' + fragment + "]}"
    return Update(fragment=fragment, text=text, frame=ws_text_frame(text.encode()), ts=0, parts=tuple(parts))


@dataclass(frozen=True, slots=True)
class SlowPolicy:
    hold_above_bytes: int = 256 * 1024  # unsent bytes above which nothing more is written
    drop_after_s: float = 10.0  # held this long without draining: the client is dropped
    max_keys: int = 10_000  # hard cap on pending entries, whatever the feeds send


class Outbox:
    __slots__ = ("conflated", "groups", "held_since", "max_backlog", "policy", "quotes", "statuses")

    def __init__(self, policy: SlowPolicy | None = None) -> None:
        self.policy = policy or SlowPolicy()
        self.quotes: dict[str, Update] = {}  # key (broker:instrument) -> latest quote
        # instrument -> a whole group, kept only while nothing else is pending for that instrument:
        # its keys are never also in `quotes`.
        self.groups: dict[str, Update] = {}
        self.statuses: dict[str, Update] = {}
        self.conflated = 0  # updates replaced before they were sent
        self.held_since: float | None = None
        self.max_backlog = 0

    def __len__(self) -> int:
        return len(self.quotes) + len(self.groups) + len(self.statuses)

    def offer_group(self, instrument: str, group: Update) -> bool:
        """Keep a group of the instrument's quotes (quote_group). Returns False if refused (cap reached)."""
        groups = self.groups
        if not self.quotes and instrument not in groups:  # the usual case: runs per client per group
            if len(groups) + len(self.statuses) >= self.policy.max_keys:
                return False
            groups[instrument] = group
            return True
        refused = False
        for key, update in group.parts:
            refused |= not self.offer_quote(key, update)
        return not refused

    def offer_quote(self, key: str, update: Update) -> bool:
        """Keep the update as the latest for its key. Returns False if it had to be refused (cap reached)."""
        if self.groups:
            self._unpack(key.partition(":")[2])
        # _offer() inlined: this runs once per quote per subscribed client with a broker filter.
        pending = self.quotes
        if key in pending:
            self.conflated += 1
        elif len(pending) + len(self.groups) + len(self.statuses) >= self.policy.max_keys:
            return False
        pending[key] = update
        return True

    def _unpack(self, instrument: str) -> None:
        """Move a pending group's quotes into `quotes`, where a newer quote can replace them key by key."""
        group = self.groups.pop(instrument, None)
        if group is not None:
            self.quotes.update(group.parts)

    def offer_status(self, broker: str, update: Update) -> bool:
        return self._offer(self.statuses, broker, update)

    def _offer(self, pending: dict[str, Update], key: str, update: Update) -> bool:
        if key in pending:
            self.conflated += 1
        elif len(self) >= self.policy.max_keys:
            return False
        pending[key] = update
        return True

    def pending_quotes(self) -> dict[str, Update]:
        """Every pending quote by key, groups included (a look, not a take)."""
        out = {key: update for group in self.groups.values() for key, update in group.parts}
        out.update(self.quotes)
        return out

    def keep_only(self, *, instruments: frozenset[str], brokers: frozenset[str] | None) -> None:
        """Forget pending quotes outside a changed subscription."""
        pending = self.pending_quotes()
        self.groups = {}
        self.quotes = {
            k: u
            for k, u in pending.items()
            if (parts := k.partition(":"))[2] in instruments and (brokers is None or parts[0] in brokers)
        }

    def discard_older(self, *, quotes: dict[str, int], statuses: dict[str, int]) -> int:
        """Forget pending updates that a snapshot just sent has already superseded.

        Updates wait in the outbox while a snapshot is read and sent; one that is not newer than the
        snapshot's value for its key would otherwise arrive after it and briefly show an older state.
        Returns how many were discarded.
        """
        for instrument in list(self.groups):
            self._unpack(instrument)
        before = len(self)
        if quotes:
            self.quotes = {k: u for k, u in self.quotes.items() if u.ts > quotes.get(k, -1)}
        if statuses:
            self.statuses = {k: u for k, u in self.statuses.items() if u.ts > statuses.get(k, -1)}
        return before - len(self)

    def decide(self, *, backlog_bytes: int, now: float) -> Decision:
        """Whether to write now, given the bytes the client has not yet taken off the socket."""
        self.max_backlog = max(self.max_backlog, backlog_bytes)
        if backlog_bytes <= self.policy.hold_above_bytes:
            self.held_since = None
            return Decision.SEND
        if self.held_since is None:
            self.held_since = now
        if now - self.held_since >= self.policy.drop_after_s:
            return Decision.DROP
        return Decision.HOLD

    def take(self) -> list[Update | str]:
        """Everything pending, emptied: shared frames when one update or group is pending, a joined batch
        otherwise."""
        quotes, groups = self.quotes, self.groups
        if not self.statuses and len(quotes) + len(groups) == 1:  # the usual case for a client that keeps up
            self.quotes, self.groups = {}, {}
            return [_framed(next(iter(quotes.values() or groups.values())))]
        out: list[Update | str] = []
        if self.statuses:
            out.extend(self.statuses.values())
            self.statuses = {}
        if len(quotes) + len(groups) == 1:
            out.append(_framed(next(iter(quotes.values() or groups.values()))))
        elif quotes or groups:
            out.append(quotes_batch([*(g.fragment for g in groups.values()), *(u.fragment for u in quotes.values())]))
        self.quotes, self.groups = {}, {}
        return out


def _framed(update: Update) -> Update | str:
    """An update to send alone: itself when framed, else its message (a quote of a larger group is
    framed only if it ever goes out on its own; see quote_part)."""
    return update if update.frame else quotes_batch([update.fragment])


def quote_part(fragment: str, ts: int) -> Update:
    """A quote that goes out in a group: its own message and frame are left to _framed()."""
    return Update(fragment=fragment, text="", ts=ts)


def quotes_batch(fragments: Iterable[str]) -> str:
    """Several already-serialised quotes in one message: string joining, no JSON encoding."""
    return '{"type":"quotes","quotes":[' + ",".join(fragments) + "]}"


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455 5.2), as a server sends it."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload
