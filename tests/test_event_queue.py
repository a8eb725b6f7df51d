"""The one bounded queue every dispatcher uses, tested by calling it."""

from __future__ import annotations

import threading

import pytest

from kiwoom_rt._delivery import EventQueue, SessionDelivery
from kiwoom_rt._notices import Disconnected, ErrorReport, LoggedIn, Notice


class E:
    def __init__(self, n: int, item: str = "A", type_: str = "0E") -> None:
        self.n, self.item, self.type = n, item, type_


def drain(queue: EventQueue) -> list[object]:
    out: list[object] = []
    while (entry := queue.pop()) is not None:
        out.extend([("notice", entry.signal, entry.kwargs())] if isinstance(entry, Notice) else
                   [e.n for e in entry])
    return out


def test_events_and_notices_keep_arrival_order() -> None:
    queue = EventQueue(100)
    queue.put_events([E(1), E(2)])
    queue.put_notice(ErrorReport(ValueError("x")))
    queue.put_events([E(3)])
    assert queue.depth == 3
    one, two, (_, signal, kwargs), three = drain(queue)  # type: ignore[misc]
    assert (one, two, three, signal, str(kwargs["error"])) == (1, 2, 3, "on_error", "x")
    assert queue.depth == 0


def test_block_never_drops_and_reports_full() -> None:
    queue = EventQueue(5)
    for n in range(8):
        queue.put_events([E(n)])
    assert queue.full
    assert queue.dropped == 0
    assert not queue.wait_for_room(0.01)
    assert drain(queue) == list(range(8))
    assert not queue.full


def test_wait_for_room_wakes_when_a_consumer_takes() -> None:
    queue = EventQueue(1)
    queue.put_events([E(0)])
    taken = threading.Timer(0.05, queue.pop)
    taken.start()
    assert queue.wait_for_room(5)
    taken.join()


def test_drop_oldest_counts_and_announces_after_earlier_notices() -> None:
    queue = EventQueue(3, overflow="drop_oldest")
    queue.put_notice(LoggedIn({}))
    for n in range(10):
        queue.put_events([E(n)])
    assert not queue.full  # it makes room itself: readers never pause
    assert queue.dropped == 7
    assert drain(queue) == [("notice", "on_login", {"extra": {}}), ("notice", "on_overflow", {"dropped": 7}), 7, 8, 9]


def test_a_batch_larger_than_the_bound_keeps_its_newest() -> None:
    queue = EventQueue(3, overflow="drop_oldest")
    queue.put_events([E(n) for n in range(5)])
    assert drain(queue) == [("notice", "on_overflow", {"dropped": 2}), 2, 3, 4]


def test_conflation_keeps_the_latest_per_type_and_item() -> None:
    queue = EventQueue(10, conflate=True)
    for n in range(100):
        queue.put_events([E(n, item=f"I{n % 3}")])
    assert queue.depth == 3
    assert queue.conflated == 97
    assert sorted(drain(queue)) == [97, 98, 99]  # type: ignore[type-var]


def test_close_discards_events_counts_them_and_returns_notices() -> None:
    queue = EventQueue(10)
    queue.put_events([E(1), E(2)])
    queue.put_notice(Disconnected(None, "", False))
    notices = queue.close()
    assert [n.signal for n in notices] == ["on_disconnected"]
    assert queue.discarded_at_close == 2
    queue.put_events([E(3)])
    assert queue.pop() is None


def test_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="overflow"):
        EventQueue(10, overflow="drop_newest")


def test_session_delivery_runs_on_the_pumping_thread_one_at_a_time() -> None:
    delivered: list[int] = []
    entered, release = threading.Event(), threading.Event()

    def sink(events: object) -> None:
        for event in events:  # type: ignore[attr-defined]
            delivered.append(event.n)
            if event.n == 0:
                entered.set()
                release.wait(5)

    delivery = SessionDelivery(sink, lambda name, kwargs: None)
    delivery.put_events([E(0)])
    first = threading.Thread(target=delivery.pump)
    first.start()
    assert entered.wait(5)
    assert delivery.delivering_thread is first
    assert delivery.delivering_since is not None
    delivery.put_events([E(1)])
    delivery.pump()  # another thread delivers: this returns at once, nothing overtakes
    assert delivered == [0]
    release.set()
    first.join(5)
    assert delivered == [0, 1]  # the delivering thread took the new entry before letting go
    assert delivery.delivering_since is None
