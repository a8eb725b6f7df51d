"""Qt (offscreen) and Tk (under Xvfb) delivery: real toolkits, real sockets."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kiwoom_rt import RealtimeSession
from kiwoom_rt.sim import DEFAULT_TOKEN, SimServer

from .helpers import Collector
from .test_session import quote_frame

ROOT = Path(__file__).resolve().parent.parent
ITEMS = [f"{i:06d}" for i in range(1, 21)]


def pump_until(pump: Callable[[], None], predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Run the GUI loop (``pump``) until ``predicate`` holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met while running the GUI loop")
        pump()
        pause.wait(0.002)


def pump_for(pump: Callable[[], None], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    pump_until(pump, lambda: time.monotonic() > deadline, timeout=seconds + 5)


def run_example(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([sys.executable, f"examples/{name}", "--duration", "2", *args], cwd=ROOT,
                            env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def check_board_summary(stdout: str) -> None:
    # "rows 8, rows updated 8, updates 19"
    summary = stdout.strip().splitlines()[-1]
    numbers = [int(part.split()[-1]) for part in summary.split(",")]
    rows, updated, updates = numbers
    assert rows == 8
    assert updated == 8  # every row was fed by the simulator
    assert updates >= updated


# --- Qt -----------------------------------------------------------------------------------------

def qt(name: str) -> Any:
    """A module of the Qt binding kiwoom_rt.qt chose (QT_API picks it in the per-binding runs)."""
    from kiwoom_rt.qt import qt_module

    return qt_module(name)


@pytest.fixture(scope="module")
def qapp() -> Any:
    widgets = qt("QtWidgets")
    return widgets.QApplication.instance() or widgets.QApplication([])


def test_qt_binding_is_the_expected_one(qapp: Any) -> None:
    from kiwoom_rt.qt import QtDispatcher, qt_binding

    expected = os.environ.get("KIWOOM_RT_EXPECT_QT", "PySide6")  # set by the per-binding runs below
    assert qt_binding() == expected
    assert type(qapp).__module__.startswith(expected)
    assert repr(QtDispatcher(conflate=True)).startswith(f"<QtDispatcher {expected} interval_ms=0 conflate=True")


def test_binding_choice_imported_then_qt_api_then_first_installed() -> None:
    from kiwoom_rt.qt import choose_binding

    def everything(name: str) -> bool:
        return True

    def only_pyqt5(name: str) -> bool:
        return name == "PyQt5"

    assert choose_binding({"PyQt5", "sys"}, "pyside6", everything) == "PyQt5"  # already imported wins
    assert choose_binding(set(), "PyQt6", everything) == "PyQt6"  # then QT_API, any case
    assert choose_binding(set(), None, everything) == "PySide6"  # then the first installed
    assert choose_binding(set(), "", only_pyqt5) == "PyQt5"
    with pytest.raises(ImportError, match="PyQt6 is not installed"):
        choose_binding(set(), "pyqt6", only_pyqt5)
    with pytest.raises(ImportError, match="not a binding"):
        choose_binding(set(), "pyside2", everything)
    with pytest.raises(ImportError, match="needs PySide6"):
        choose_binding(set(), None, lambda name: False)


def test_the_binding_the_app_imported_wins_over_qt_api() -> None:
    code = "import PyQt5.QtWidgets; import kiwoom_rt.qt as q; print(q.qt_binding())"
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "QT_API": "pyside6"},
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "PyQt5", result.stderr


@pytest.mark.slow  # about 6 s each: CI runs them with the slow tests, keeping the default run short
@pytest.mark.parametrize("binding", ["PyQt6", "PyQt5"])
def test_qt_tests_pass_under_each_binding(binding: str) -> None:
    """The Qt tests of this file (GUI thread, order, conflation, closing, the board example),
    again in a fresh interpreter with QT_API choosing ``binding``."""
    env = {**os.environ, "QT_API": binding.lower(), "KIWOOM_RT_EXPECT_QT": binding, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                             "-k", "qt and not under_each_binding"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    assert "skipped" not in result.stdout


_FREED_ON_ANOTHER_THREAD = """
import gc, threading
from kiwoom_rt.qt import QtDispatcher, qt_module
widgets = qt_module("QtWidgets")
app = widgets.QApplication.instance() or widgets.QApplication([])
for _ in range(200):
    holder = [QtDispatcher()]
    def worker():
        dispatcher = holder.pop()
        for _ in range(50):
            dispatcher._wake()  # what a session thread does when it queues events
        del dispatcher  # the last reference dies on this thread, wakes still pending
        gc.collect()
    thread = threading.Thread(target=worker)
    thread.start()
    for _ in range(20):
        app.processEvents()
    thread.join()
    app.processEvents()
print("survived")
"""


def test_qt_dispatcher_freed_on_a_session_thread_does_not_crash_the_gui() -> None:
    """A dispatcher whose last reference dies on a session thread while wakes for it are still
    queued on the GUI thread: its bridge used to be deleted there and then, and the GUI thread
    crashed on the pending wakes (a bus error or segfault within 300 rounds). In a fresh
    interpreter, so that a crash fails this test instead of the run."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", _FREED_ON_ANOTHER_THREAD], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "survived" in result.stdout


@pytest.fixture
def qt_session(qapp: Any, no_thread_leak: None) -> Iterator[Callable[..., tuple[RealtimeSession, Any]]]:
    from kiwoom_rt.qt import QtDispatcher

    sessions: list[RealtimeSession] = []

    def make(sim: SimServer, **options: Any) -> tuple[RealtimeSession, Any]:
        dispatcher = QtDispatcher(**options)
        session = RealtimeSession(DEFAULT_TOKEN, url=sim.url, dispatcher=dispatcher)
        sessions.append(session)
        return session, dispatcher

    yield make
    for session in sessions:
        session.close()
    qapp.processEvents()


def test_qt_receivers_run_on_the_gui_thread(qapp: Any, qt_session: Any, sim: SimServer) -> None:
    qtcore = qt("QtCore")
    session, _ = qt_session(sim)
    got = Collector()
    qt_threads: list[bool] = []
    session.on_0e.connect(got)
    session.on_0e.connect(lambda item, event: qt_threads.append(qtcore.QThread.currentThread() is qapp.thread()))
    logins = Collector()
    session.on_login.connect(logins)
    session.start()
    for item in ("005930", "000660", "035720"):
        sim.push(quote_frame(item))
    pump_until(qapp.processEvents, lambda: len(got.calls) == 3 and len(logins.calls) == 1)
    assert all(thread is threading.main_thread() for thread in got.threads + logins.threads)
    assert qt_threads == [True, True, True]


def test_qt_events_arrive_in_order(qapp: Any, qt_session: Any, sim: SimServer) -> None:
    session, _ = qt_session(sim)
    got = Collector()
    session.on_0e.connect(got)
    session.start()
    for n in range(1, 301):
        sim.push(quote_frame("005930", ask=str(n)))
    pump_until(qapp.processEvents, lambda: len(got.calls) == 300)
    assert [e.ask_total for e in got.events] == list(range(1, 301))


def test_qt_conflation_bounds_calls_per_tick_under_a_burst(qapp: Any, qt_session: Any) -> None:
    with SimServer(rate=20_000, batch=20) as sim:
        session, dispatcher = qt_session(sim, conflate=True, interval_ms=50)
        seen: list[tuple[int, float]] = []  # (the dispatcher's tick, when) for every call
        session.on_0e.connect(lambda item, event: seen.append((dispatcher.ticks, time.perf_counter())))
        session.start()
        session.subscribe(ITEMS)
        pump_for(qapp.processEvents, 2.0)
        received = session.stats()["events"].get("0E", 0)
        calls_per_tick: dict[int, list[float]] = {}
        for tick, when in seen:
            calls_per_tick.setdefault(tick, []).append(when)
        tick_seconds = [max(times) - min(times) for times in calls_per_tick.values()]
        assert received > 10_000  # a real burst reached the session
        assert max(len(times) for times in calls_per_tick.values()) <= len(ITEMS)  # the latest per item per tick
        assert dispatcher.conflated > received // 2
        assert len(calls_per_tick) >= 15  # ~20 ticks/s: the loop kept turning
        assert max(tick_seconds) < 0.1  # and no tick froze the window


def test_closing_the_qt_window_closes_the_session(qapp: Any, qt_session: Any, sim: SimServer) -> None:
    from kiwoom_rt.qt import close_with

    session, _ = qt_session(sim)
    window = qt("QtWidgets").QWidget()
    close_with(session, window)
    window.show()
    session.start()
    window.close()
    pump_until(qapp.processEvents, lambda: session.state == "closed")


def test_quitting_the_qt_app_closes_the_session(qapp: Any, qt_session: Any, sim: SimServer) -> None:
    from kiwoom_rt.qt import close_with

    session, _ = qt_session(sim)
    close_with(session, qapp)
    session.start()
    qapp.aboutToQuit.emit()
    assert session.state == "closed"


def test_qt_board_example_shows_rows_and_exits_cleanly() -> None:
    check_board_summary(run_example("qt_board.py", env={"QT_QPA_PLATFORM": "offscreen"}))


def test_candles_example_draws_bars_and_exits_cleanly() -> None:
    # "bars 3, updates 57, late 0": 10-second bars on a simulator running ten times faster
    summary = run_example("candles.py", "--duration", "4", env={"QT_QPA_PLATFORM": "offscreen"}).strip()
    finished, updates, late = (int(part.split()[-1]) for part in summary.splitlines()[-1].split(","))
    assert finished >= 1
    assert updates > finished
    assert late == 0


# --- Tk -----------------------------------------------------------------------------------------

@pytest.fixture
def tk_root(x_display: str) -> Iterator[Any]:
    import gc
    import tkinter

    root = tkinter.Tk()
    yield root
    try:
        root.destroy()
    except tkinter.TclError:
        pass
    del root
    gc.collect()  # free Tk objects here, on the Tk thread: Tcl aborts if a session thread does it


def tk_session(root: Any, sim: SimServer, **options: Any) -> tuple[RealtimeSession, Any]:
    from kiwoom_rt.tk import TkDispatcher

    dispatcher = TkDispatcher(root, **options)
    return RealtimeSession(DEFAULT_TOKEN, url=sim.url, dispatcher=dispatcher), dispatcher


def test_tk_receivers_run_on_the_tk_thread_in_order(tk_root: Any, sim: SimServer, no_thread_leak: None) -> None:
    session, _ = tk_session(tk_root, sim, interval_ms=5)
    got = Collector()
    session.on_0e.connect(got)
    try:
        session.start()
        for n in range(1, 201):
            sim.push(quote_frame("005930", ask=str(n)))
        pump_until(tk_root.update, lambda: len(got.calls) == 200)
        assert all(thread is threading.main_thread() for thread in got.threads)
        assert [e.ask_total for e in got.events] == list(range(1, 201))
    finally:
        session.close()


def test_tk_never_called_from_another_thread(tk_root: Any, sim: SimServer, no_thread_leak: None) -> None:
    """Every Tcl call (the dispatcher's ``after`` and the receivers' widget updates alike) goes
    through ``root.tk``; a recording proxy there proves they all come from the Tk thread."""
    import tkinter

    class RecordingTcl:
        def __init__(self, real: Any) -> None:
            self.real = real
            self.threads: set[str] = set()

        def call(self, *args: Any) -> Any:
            self.threads.add(threading.current_thread().name)
            return self.real.call(*args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    recorder = RecordingTcl(tk_root.tk)
    tk_root.tk = recorder
    label = tkinter.Label(tk_root, text="")
    label.pack()
    session, dispatcher = tk_session(tk_root, sim, interval_ms=5)
    session.on_0e.connect(lambda item, event: label.configure(text=f"{item} {event.ask_total}"))
    try:
        session.start()
        session.subscribe(ITEMS[:3])
        sim.set_rate(500)
        pump_for(tk_root.update, 1.0)
        sim.drop_all()
        pump_for(tk_root.update, 0.5)
    finally:
        session.close()
    assert dispatcher.ticks > 50
    assert label.cget("text").split()[0] in ITEMS[:3]
    assert recorder.threads == {threading.main_thread().name}
    tk_root.tk = recorder.real


def test_tk_conflation_bounds_calls_per_tick_under_a_burst(tk_root: Any, no_thread_leak: None) -> None:
    with SimServer(rate=20_000, batch=20) as sim:
        session, dispatcher = tk_session(tk_root, sim, interval_ms=50, conflate=True)
        counter = [0]
        per_tick: list[int] = []
        session.on_0e.connect(lambda item, event: counter.__setitem__(0, counter[0] + 1))
        original = dispatcher.drain

        def measured() -> int:
            before = counter[0]
            delivered = original()
            per_tick.append(counter[0] - before)
            return delivered

        dispatcher.drain = measured  # type: ignore[method-assign]
        try:
            session.start()
            session.subscribe(ITEMS)
            pump_for(tk_root.update, 2.0)
            received = session.stats()["events"].get("0E", 0)
        finally:
            session.close()
        assert received > 10_000
        assert max(per_tick) <= len(ITEMS)
        assert dispatcher.conflated > received // 2
        assert len(per_tick) >= 15


def test_closing_the_tk_window_closes_the_session(tk_root: Any, sim: SimServer, no_thread_leak: None) -> None:
    from kiwoom_rt.tk import close_with

    session, _ = tk_session(tk_root, sim)
    close_with(session, tk_root)
    session.start()
    tk_root.destroy()
    assert session.state == "closed"


def test_tk_board_example_shows_rows_and_exits_cleanly(x_display: str) -> None:
    check_board_summary(run_example("tk_board.py", env={"DISPLAY": x_display}))


def test_many_items_example_subscribes_2000_items() -> None:
    result = subprocess.run([sys.executable, "examples/many_items.py", "--duration", "2"], cwd=ROOT,
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    assert "2,000 items subscribed" in result.stdout
    lines = [line for line in result.stdout.splitlines() if "events/s" in line]
    assert lines
    assert "items seen 2,000" in lines[-1]
