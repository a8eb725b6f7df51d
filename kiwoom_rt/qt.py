"""Deliver a session's events on the Qt GUI thread, with PySide6, PyQt6 or PyQt5.

    app = QApplication(sys.argv)
    session = RealtimeSession(token, dispatcher=QtDispatcher(conflate=True))
    session.on_0e.connect(table.update_row)      # runs on the GUI thread: touch widgets freely
    close_with(session, app)                      # quitting the app closes the session
    session.start()

Events are queued by the session's threads; a queued Qt signal wakes a QObject living on the GUI
thread, which drains the queue there. ``interval_ms`` caps how often that happens (a GUI tick);
with ``conflate=True`` each tick delivers only the latest event per (type, item), so a burst of
20,000 events/s never freezes the window. ``import kiwoom_rt`` never imports Qt; this module does.

The binding is chosen as users expect (``qt_binding()`` names it, and so does the dispatcher's
``repr``): the one the application already imported; else the ``QT_API`` environment variable
(``pyside6``, ``pyqt6`` or ``pyqt5``, as qtpy and matplotlib read it); else the first installed of
PySide6, PyQt6, PyQt5. ``qt_module("QtWidgets")`` imports a module from the chosen binding.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
import weakref
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from .queued import QueueDispatcher

__all__ = ["BINDINGS", "QtDispatcher", "choose_binding", "close_with", "qt_binding", "qt_module"]

#: The supported bindings, in the order tried when none is imported and QT_API is unset.
BINDINGS = ("PySide6", "PyQt6", "PyQt5")


def choose_binding(imported: Iterable[str], qt_api: str | None, installed: Callable[[str], bool]) -> str:
    """The binding to use: one already ``imported``, else ``qt_api`` (QT_API), else the first
    ``installed``. Raises ``ImportError`` when QT_API names a binding that is unknown or missing,
    or when none is installed."""
    loaded = set(imported)
    for name in BINDINGS:
        if name in loaded:
            return name
    wanted = (qt_api or "").strip().lower()
    if wanted:
        names = {name.lower(): name for name in BINDINGS}
        if wanted not in names:
            raise ImportError(f"QT_API={qt_api!r} is not a binding kiwoom_rt.qt supports "
                              f"({', '.join(n.lower() for n in BINDINGS)})")
        if not installed(names[wanted]):
            raise ImportError(f"QT_API={qt_api!r} but {names[wanted]} is not installed")
        return names[wanted]
    for name in BINDINGS:
        if installed(name):
            return name
    raise ImportError("kiwoom_rt.qt needs PySide6 (pip install 'kiwoom-rt[qt]'), PyQt6 or PyQt5")


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _load() -> tuple[str, ModuleType, Any]:
    name = choose_binding(sys.modules, os.environ.get("QT_API"), _installed)
    qtcore = importlib.import_module(f"{name}.QtCore")
    signal = getattr(qtcore, "Signal", None) or qtcore.pyqtSignal
    return name, qtcore, signal


_BINDING, QtCore, _Signal = _load()


def qt_module(name: str) -> ModuleType:
    """``name`` (e.g. "QtWidgets") from the binding in use, so code runs on any of them."""
    return importlib.import_module(f"{_BINDING}.{name}")


def qt_binding() -> str:
    """The Qt binding in use: "PySide6", "PyQt6" or "PyQt5"."""
    return _BINDING


def _enum(scope: str, name: str) -> Any:
    """Qt enums are scoped in Qt 6 bindings and flat in PyQt5."""
    scoped = getattr(getattr(QtCore.Qt, scope, None), name, None)
    return scoped if scoped is not None else getattr(QtCore.Qt, name)


class _Bridge(QtCore.QObject):  # type: ignore[misc,name-defined]
    """Lives on the GUI thread; a queued signal from any thread makes it drain there.

    Its parent is the application, so Qt owns it and only the GUI thread deletes it: a bridge
    without a parent was deleted by whichever thread dropped the dispatcher's last reference (a
    session's thread, as a session is freed), while wakes queued for it were still pending on
    the GUI thread, which then crashed the process. ``drain`` is held weakly, and the dispatcher
    asks for the bridge's deletion (``deleteLater``, queued to the GUI thread) when it is freed."""

    wake = _Signal()

    def __init__(self, drain: Callable[[], int], interval_ms: int) -> None:
        super().__init__(QtCore.QCoreApplication.instance())
        self._drain = weakref.WeakMethod(drain)
        self.interval_ms = interval_ms
        self._last = 0.0
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._run)
        self.wake.connect(self._on_wake, _enum("ConnectionType", "QueuedConnection"))

    def _on_wake(self) -> None:
        if self._timer.isActive():
            return  # a tick is already scheduled; it will take these events too
        wait_ms = self.interval_ms - (time.monotonic() - self._last) * 1000
        if wait_ms > 0:
            self._timer.start(int(wait_ms) + 1)
        else:
            self._run()

    def _run(self) -> None:
        self._last = time.monotonic()
        drain = self._drain()
        if drain is not None:  # (None: the dispatcher is gone; a late wake does nothing)
            drain()


class QtDispatcher(QueueDispatcher):
    """Runs receivers on the Qt GUI thread. Create it on that thread, after the QApplication.

    ``interval_ms``: the shortest time between two deliveries (0: as soon as the loop can);
    ``conflate``: deliver only the latest event per (type, item) per delivery. ``ticks`` counts
    deliveries, ``conflated`` the events superseded by a newer one.
    """

    def __init__(self, *, conflate: bool = False, interval_ms: int = 0, max_events: int = 100_000) -> None:
        if QtCore.QCoreApplication.instance() is None:
            raise RuntimeError("create the QApplication before the QtDispatcher")
        super().__init__(conflate=conflate, max_events=max_events)
        self.ticks = 0
        self._bridge = _Bridge(self._tick, interval_ms)
        weakref.finalize(self, _delete_later, self._bridge)  # (thread-safe: the GUI thread deletes it)

    def __repr__(self) -> str:
        details = super().__repr__().split(" ", 1)[1]  # "conflate=... dropped=...>"
        return f"<QtDispatcher {_BINDING} interval_ms={self._bridge.interval_ms} {details}"

    def _tick(self) -> int:
        self.ticks += 1
        return self.drain()

    def _wake(self) -> None:
        try:
            self._bridge.wake.emit()  # from a session thread: queued to the GUI thread
        except RuntimeError:  # the application is gone, and the bridge with it: no GUI runs receivers
            pass


def _delete_later(bridge: Any) -> None:
    try:
        bridge.deleteLater()
    except RuntimeError:  # (the application was destroyed first, and its children with it)
        pass


class _CloseFilter(QtCore.QObject):  # type: ignore[misc,name-defined]
    def __init__(self, parent: Any, on_close: Callable[[], None]) -> None:
        super().__init__(parent)
        self._on_close = on_close

    def eventFilter(self, watched: Any, event: Any) -> bool:
        if event.type() == _close_event_type():
            self._on_close()
        return False


def _close_event_type() -> Any:
    qevent = QtCore.QEvent
    scoped = getattr(getattr(qevent, "Type", None), "Close", None)
    return scoped if scoped is not None else qevent.Close


def close_with(session: Any, obj: Any = None) -> None:
    """Close ``session`` when the application quits (``obj`` None or the app) or when the widget
    ``obj`` is closed or destroyed."""
    app = QtCore.QCoreApplication.instance()
    if obj is None or obj is app:
        if app is None:
            raise RuntimeError("no QApplication")
        app.aboutToQuit.connect(session.close)
        return
    obj.installEventFilter(_CloseFilter(obj, session.close))
    obj.destroyed.connect(lambda *_: session.close())
