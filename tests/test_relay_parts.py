"""The relay's sans-I/O parts (wire format, book) and its outbox, tested by calling them (no Redis, no sockets)."""

from __future__ import annotations

import pytest

pytest.importorskip("redis")

from kiwoom_rt.relay._book import RelayBook
from kiwoom_rt.relay._outbox import Outbox
from kiwoom_rt.relay._wire import (
    RelayKeys,
    control_message,
    feed_frames,
    feed_notice,
    feed_reply,
    read_control,
    read_entry,
)


def test_reference_counts_register_once_and_remove_with_the_last() -> None:
    book = RelayBook(lease=10)
    first = book.subscribe("a", ["005930", "000660"], ["0E", "0B"], now=0)
    assert first.register == {"0B": ["000660", "005930"], "0E": ["000660", "005930"]}
    second = book.subscribe("b", ["005930"], ["0E"], now=0)
    assert not second  # already registered upstream
    assert book.count("005930", "0E") == 2
    assert not book.unsubscribe("a", ["005930"], ["0E"], now=1)
    last = book.unsubscribe("b", ["005930"], ["0E"], now=1)
    assert last.remove == {"0E": ["005930"]}
    assert not book.subscribe("a", ["000660"], ["0E"], now=2)  # asking twice counts once
    assert book.count("000660", "0E") == 1
    assert book.leave("a").remove == {"0B": ["000660", "005930"], "0E": ["000660"]}
    assert book.wanted() == frozenset()
    assert not book.leave("nobody")


def test_conditions_are_counted_like_pairs() -> None:
    book = RelayBook()
    assert book.watch("a", "4", now=0).watch == ["4"]
    assert not book.watch("b", "4", now=0)
    assert not book.unwatch("a", "4", now=0)
    assert book.unwatch("b", "4", now=0).unwatch == ["4"]


def test_leases_expire_and_a_lease_carries_the_whole_state() -> None:
    book = RelayBook(lease=5)
    book.subscribe("a", ["005930"], ["0E"], now=0)
    book.subscribe("b", ["005930", "035720"], ["0E"], now=0)
    book.touch("a", now=4)
    gone, change = book.expire(now=6)  # b was last heard at 0
    assert gone == ["b"]
    assert change.remove == {"0E": ["035720"]}
    assert book.consumers == {"a"}
    # a restarted relay learns a consumer's state from its next lease
    fresh = RelayBook(lease=5)
    change = fresh.sync("a", {("005930", "0E"), ("000660", "0B")}, {"7"}, now=10)
    assert change.register == {"0B": ["000660"], "0E": ["005930"]}
    assert change.watch == ["7"]
    change = fresh.sync("a", {("005930", "0E")}, set(), now=11)
    assert change.remove == {"0B": ["000660"]}
    assert change.unwatch == ["7"]
    with pytest.raises(ValueError, match="lease"):
        RelayBook(lease=0)


def test_feed_entries_round_trip() -> None:
    frames = (b'{"trnm":"REAL","data":[]}', b"", b'{"trnm": "REAL",\n "data": []}')
    entry = read_entry(feed_frames(frames, 1700000000.123456))
    assert (entry.kind, entry.frames, entry.time) == ("real", frames, 1700000000.123456)
    notice = read_entry(feed_notice("on_disconnected", 5.0, relay="r1", kwargs={"code": 1006}))
    assert notice.kind == "notice"
    assert notice.body == {"name": "on_disconnected", "relay": "r1", "kwargs": {"code": 1006}}
    reply = read_entry(feed_reply("c1", 3, 6.0, ok=False, code=1, message="refused", members={"b", "a"}))
    assert reply.body == {"to": "c1", "id": 3, "ok": False, "code": 1, "message": "refused", "members": ["a", "b"]}
    for bad in ({}, {b"k": b"x", b"d": b"1", b"t": b"1"}, {b"k": b"n", b"d": b"[1]", b"t": b"1"},
                {b"k": b"r", b"d": b"{}", b"t": b"noon"}, {b"k": b"r", b"d": b"\0\0\0\x09{}", b"t": b"1"}):
        with pytest.raises(ValueError):  # noqa: PT011 - each bad shape has its own message
            read_entry(bad)


def test_control_messages_round_trip_and_bad_ones_are_refused() -> None:
    message = read_control(control_message("c1", "subscribe", 9, items=["005930"], types=["0E", "0B"]))
    assert (message.consumer, message.op, message.request) == ("c1", "subscribe", 9)
    assert (message.items, message.types) == (("005930",), ("0E", "0B"))
    lease = read_control(control_message("c1", "lease", pairs=[("005930", "0E")], seqs=["4"]))
    assert (lease.pairs, lease.seqs) == ({("005930", "0E")}, {"4"})
    with pytest.raises(ValueError, match="unknown relay op"):
        control_message("c1", "format-disk")
    for fields in ({}, {b"m": b"[]"}, {b"m": b'{"c": "", "op": "lease"}'}, {b"m": b'{"c": "x", "op": "boom"}'},
                   {b"m": b'{"c": "x", "op": "subscribe", "types": ["ZZZ"], "items": ["1"]}'}):
        with pytest.raises(ValueError):  # noqa: PT011
            read_control(fields)
    assert (RelayKeys().feed, RelayKeys().control) == ("kiwoom-rt:feed", "kiwoom-rt:control")


def test_outbox_is_bounded_counts_only_lost_frames_and_packs_one_read_per_entry() -> None:
    box = Outbox(limit=3)
    box.put(feed_notice("relay_alive", 0))
    for n in range(4):
        box.put_frame(str(n).encode(), float(n))
    assert len(box) == 3
    assert (box.lost_total, box.lost_notices) == (1, 1)  # frame 0 and the heartbeat went
    batch = box.drain(2)
    assert [read_entry(e).frames for e in batch] == [(b"1",), (b"2",)]
    box.requeue(batch, lost=box.take_lost())  # Redis refused: back in front, gap still owed
    assert [read_entry(e).frames for e in box.drain(10)] == [(b"1",), (b"2",), (b"3",)]
    assert box.take_lost() == 1
    assert box.take_lost() == 0
    read = Outbox(limit=100, frames_per_entry=3)
    for n in range(5):
        read.put_frame(str(n).encode(), 7.0)  # one socket read: one receive time
    read.put_frame(b"5", 8.0)
    entries = [read_entry(e) for e in read.drain(10)]
    assert [(e.frames, e.time) for e in entries] == [((b"0", b"1", b"2"), 7.0), ((b"3", b"4"), 7.0), ((b"5",), 8.0)]
    assert len(read) == 0
    small = Outbox(limit=2)
    for n in range(3):
        small.put_frame(str(n).encode(), 1.0)
    assert [read_entry(e).frames for e in small.drain(5)] == [(b"1", b"2")]  # the oldest of an entry goes
    with pytest.raises(ValueError, match="limit"):
        Outbox(0)


def test_a_batch_put_back_keeps_its_numbers_and_a_loss_is_announced_after_it() -> None:
    """A failed write may have reached Redis: its entries keep their numbers (consumers drop a
    repeat by them) and are never trimmed while newer frames can go; the loss is announced in
    its place, numbered after them, so no consumer takes the retried entries for repeats."""
    from kiwoom_rt.relay._wire import feed_notice, read_entry

    box = Outbox(limit=3, relay="r")
    for n in range(3):
        box.put_frame(b"f%d" % n, float(n))
    first = box.drain(10)
    assert [read_entry(e).seq for e in first] == [1, 2, 3]
    box.requeue(first)  # Redis did not answer
    box.put_frame(b"new", 9.0)  # over the limit: the new frame goes, not the tried ones
    assert box.lost == 1
    again = box.drain(10, lambda lost: feed_notice("gap", 10.0, relay="r", lost=lost))
    read = [read_entry(e) for e in again]
    assert [(e.kind, e.seq) for e in read] == [("real", 1), ("real", 2), ("real", 3), ("notice", 4)]
    assert read[-1].body["lost"] == 1
    assert box.announced == 1
    assert box.lost == 0
