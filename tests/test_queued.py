"""QueueDispatcher: receivers run on the thread that calls drain()."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kiwoom_rt import RealtimeSession
from kiwoom_rt._notices import LoggedIn
from kiwoom_rt.queued import QueueDispatcher
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import Collector, wait_until
from .test_session import quote_frame


class Event:
    def __init__(self, type_: str, item: str, n: int) -> None:
        self.type, self.item, self.n = type_, item, n


def bound(dispatcher: QueueDispatcher) -> tuple[list[Any], list[tuple[str, dict[str, Any]]]]:
    events: list[Any] = []
    notices: list[tuple[str, dict[str, Any]]] = []
    dispatcher.bind(events.extend, lambda notice: notices.append((notice.signal, notice.kwargs())))
    return events, notices


def test_drain_delivers_in_order_on_the_calling_thread() -> None:
    dispatcher = QueueDispatcher()
    events, notices = bound(dispatcher)
    worker = threading.Thread(target=lambda: [dispatcher.put_events([Event("0E", "A", i)]) for i in range(100)])
    worker.start()
    worker.join()
    dispatcher.put_notice(LoggedIn({}))
    assert dispatcher.depth == 100
    assert events == []  # nothing runs until the host drains
    assert dispatcher.drain() == 100
    assert [e.n for e in events] == list(range(100))
    assert notices == [("on_login", {"extra": {}})]


def test_conflation_keeps_the_latest_per_type_and_item() -> None:
    dispatcher = QueueDispatcher(conflate=True)
    events, _ = bound(dispatcher)
    for i in range(1000):
        dispatcher.put_events([Event("0E", f"I{i % 10}", i), Event("0B", "I0", i)])
    assert dispatcher.drain() == 11
    assert sorted(e.n for e in events if e.type == "0E") == list(range(990, 1000))
    assert dispatcher.conflated == 2000 - 11


def test_overflow_drops_oldest_counts_and_announces() -> None:
    dispatcher = QueueDispatcher(max_events=10, overflow="drop_oldest")
    events, notices = bound(dispatcher)
    dispatcher.put_notice(LoggedIn({}))
    for i in range(25):
        dispatcher.put_events([Event("0E", "A", i)])
    dispatcher.drain()
    assert [e.n for e in events] == list(range(15, 25))
    assert dispatcher.dropped == 15
    assert notices[0] == ("on_login", {"extra": {}})
    assert sum(kwargs["dropped"] for name, kwargs in notices if name == "on_overflow") == 15


def test_a_session_delivers_through_drain(sim: SimServer, no_thread_leak: None) -> None:
    dispatcher = QueueDispatcher()
    session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, dispatcher=dispatcher)
    got = Collector()
    session.on_0e.connect(got)
    session.start()
    try:
        sim.push(quote_frame("005930"))
        wait_until(lambda: dispatcher.depth >= 1)
        assert got.calls == []
        dispatcher.drain()
        assert got.threads == [threading.current_thread()]
        assert got.events[0].item == "005930"
    finally:
        session.close()


def test_dispatcher_serves_one_session() -> None:
    dispatcher = QueueDispatcher()
    RealtimeSession(DEFAULT_TOKEN, url="ws://127.0.0.1:9/x", dispatcher=dispatcher)
    with pytest.raises(RuntimeError):
        RealtimeSession(DEFAULT_TOKEN, url="ws://127.0.0.1:9/x", dispatcher=dispatcher)


def test_importing_kiwoom_rt_never_imports_a_gui_toolkit() -> None:
    import subprocess
    import sys

    code = ("import sys, kiwoom_rt, kiwoom_rt.session, kiwoom_rt.queued, kiwoom_rt.recording, kiwoom_rt.cli; "
            "loaded = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt6', 'PyQt5', 'tkinter')]; "
            "print(loaded); sys.exit(1 if loaded else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
