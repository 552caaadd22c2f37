"""The pure core of the live fan-out: conflation, snapshot ordering, slow-client policy, framing."""

from __future__ import annotations

import json

import pytest
from autobahn.websocket.protocol import PreparedMessage

from live.outbox import Decision, Outbox, SlowPolicy, Update, quotes_batch, ws_text_frame


def update(key: str, ts: int) -> Update:
    broker, _, instrument = key.partition(":")
    fragment = json.dumps({"broker": broker, "instrument": instrument, "ts_ingest": ts})
    return Update(fragment=fragment, text=quotes_batch([fragment]), ts=ts)


def test_it_keeps_only_the_latest_update_per_key_and_counts_the_rest():
    box = Outbox()
    for ts in (1, 2, 3):
        box.offer_quote("acme:EURUSD", update("acme:EURUSD", ts))
    box.offer_quote("zeta:EURUSD", update("zeta:EURUSD", 4))
    assert len(box) == 2
    assert box.conflated == 2
    (batch,) = box.take()
    assert isinstance(batch, str)
    assert [q["ts_ingest"] for q in json.loads(batch)["quotes"]] == [3, 4]
    assert len(box) == 0


def test_it_refuses_new_keys_past_its_cap_but_still_replaces_known_ones():
    box = Outbox(SlowPolicy(max_keys=2))
    assert box.offer_quote("a:X", update("a:X", 1))
    assert box.offer_quote("b:X", update("b:X", 1))
    assert not box.offer_quote("c:X", update("c:X", 1))
    assert box.offer_quote("a:X", update("a:X", 2))
    assert len(box) == 2


def test_a_snapshot_discards_pending_updates_it_already_supersedes():
    box = Outbox()
    box.offer_quote("acme:EURUSD", update("acme:EURUSD", 100))  # older than the snapshot's
    box.offer_quote("zeta:EURUSD", update("zeta:EURUSD", 300))  # newer: must still go out
    box.offer_quote("kite:EURUSD", update("kite:EURUSD", 50))  # not in the snapshot at all
    box.offer_status("acme", Update(fragment="{}", text="{}", ts=10))
    box.offer_status("zeta", Update(fragment="{}", text="{}", ts=30))
    discarded = box.discard_older(quotes={"acme:EURUSD": 200, "zeta:EURUSD": 200}, statuses={"acme": 20, "zeta": 20})
    assert discarded == 2
    assert set(box.quotes) == {"zeta:EURUSD", "kite:EURUSD"}
    assert set(box.statuses) == {"zeta"}


def test_a_client_over_the_limit_is_held_then_dropped_unless_it_drains():
    box = Outbox(SlowPolicy(hold_above_bytes=1000, drop_after_s=2.0))
    assert box.decide(backlog_bytes=500, now=0.0) is Decision.SEND
    assert box.decide(backlog_bytes=5000, now=1.0) is Decision.HOLD
    assert box.decide(backlog_bytes=5000, now=2.5) is Decision.HOLD
    assert box.decide(backlog_bytes=10, now=2.9) is Decision.SEND  # drained in time: forgiven
    assert box.decide(backlog_bytes=5000, now=3.0) is Decision.HOLD
    assert box.decide(backlog_bytes=5000, now=5.0) is Decision.DROP
    assert box.max_backlog == 5000


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_frames_match_autobahns_own_framing_at_every_length_boundary(size):
    payload = b"x" * size
    expected = PreparedMessage(payload, False, False, False).payloadHybi
    assert ws_text_frame(payload) == expected


def group(*keyed: tuple[str, int]) -> Update:
    from live.outbox import quote_group

    return quote_group([(key, update(key, ts)) for key, ts in keyed])


def test_a_group_offered_to_a_client_with_nothing_pending_goes_out_as_its_one_shared_frame():
    g = group(("acme:EURUSD", 1), ("zeta:EURUSD", 2))
    boxes = [Outbox(), Outbox()]
    for box in boxes:
        assert box.offer_group("EURUSD", g)
    taken = [box.take() for box in boxes]
    assert taken == [[g], [g]] and all(t[0] is g for t in taken)  # the bytes framed once, shared
    assert [q["ts_ingest"] for q in json.loads(g.text)["quotes"]] == [1, 2]
    assert g.frame == ws_text_frame(g.text.encode())


def test_a_second_group_of_the_same_instrument_before_a_take_keeps_the_latest_per_key():
    box = Outbox()
    box.offer_group("EURUSD", group(("acme:EURUSD", 1), ("zeta:EURUSD", 2)))
    box.offer_group("EURUSD", group(("acme:EURUSD", 3), ("kite:EURUSD", 4)))
    box.offer_group("GBPUSD", group(("acme:GBPUSD", 5)))
    assert box.conflated == 1
    (batch,) = box.take()
    assert isinstance(batch, str)
    got = {(q["broker"], q["instrument"]): q["ts_ingest"] for q in json.loads(batch)["quotes"]}
    assert got == {("acme", "EURUSD"): 3, ("zeta", "EURUSD"): 2, ("kite", "EURUSD"): 4, ("acme", "GBPUSD"): 5}
    assert len(box) == 0


def test_a_single_quote_for_an_instrument_with_a_pending_group_replaces_its_key_without_a_duplicate():
    box = Outbox()
    box.offer_group("EURUSD", group(("acme:EURUSD", 1), ("zeta:EURUSD", 2)))
    box.offer_quote("acme:EURUSD", update("acme:EURUSD", 9))
    (batch,) = box.take()
    assert isinstance(batch, str)
    assert sorted(q["ts_ingest"] for q in json.loads(batch)["quotes"]) == [2, 9]


def test_a_snapshot_discards_what_it_supersedes_inside_pending_groups_too():
    box = Outbox()
    box.offer_group("EURUSD", group(("acme:EURUSD", 100), ("zeta:EURUSD", 300)))
    assert box.discard_older(quotes={"acme:EURUSD": 200, "zeta:EURUSD": 200}, statuses={}) == 1
    assert set(box.pending_quotes()) == {"zeta:EURUSD"}


def test_a_changed_subscription_keeps_only_pending_quotes_it_still_covers():
    box = Outbox()
    box.offer_group("EURUSD", group(("acme:EURUSD", 1), ("zeta:EURUSD", 2)))
    box.offer_group("GBPUSD", group(("acme:GBPUSD", 3)))
    box.keep_only(instruments=frozenset({"EURUSD"}), brokers=frozenset({"zeta"}))
    assert set(box.pending_quotes()) == {"zeta:EURUSD"}
    assert not box.groups


def test_groups_count_towards_the_cap():
    box = Outbox(SlowPolicy(max_keys=2))
    assert box.offer_group("A", group(("x:A", 1)))
    assert box.offer_group("B", group(("x:B", 1)))
    assert not box.offer_group("C", group(("x:C", 1)))
    assert len(box) == 2
