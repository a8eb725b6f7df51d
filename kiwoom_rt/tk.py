"""Deliver a session's events on the Tkinter thread, never calling Tk from another thread.

    root = tk.Tk()
    session = RealtimeSession(token, dispatcher=TkDispatcher(root, interval_ms=50, conflate=True))
    session.on_0e.connect(board.update_row)      # runs on the Tk thread: touch widgets freely
    close_with(session, root)                     # closing the window closes the session
    session.start()
    root.mainloop()

The session's threads only put events in a thread-safe queue; a callback scheduled with
``root.after`` drains it every ``interval_ms`` on the Tk thread (Tk is not thread-safe, so no
other thread ever touches it). With ``conflate=True`` each tick delivers only the latest event
per (type, item).

Keep a reference to your Tk root on the Tk thread for as long as the app runs (as ``mainloop``
does anyway): Tcl aborts the process if an interpreter is garbage-collected on another thread.
"""

from __future__ import annotations

import tkinter
import weakref
from typing import Any

from .queued import QueueDispatcher

__all__ = ["TkDispatcher", "close_with"]


class TkDispatcher(QueueDispatcher):
    """Runs receivers on the Tk thread, every ``interval_ms``. Create it on that thread."""

    def __init__(self, root: tkinter.Misc, *, interval_ms: int = 16, conflate: bool = False,
                 max_events: int = 100_000) -> None:
        if interval_ms < 1:
            raise ValueError("interval_ms must be >= 1")
        super().__init__(conflate=conflate, max_events=max_events)
        # Weak: if this dispatcher (or a session holding it) were the last owner of the Tk root, the
        # root could be garbage-collected on a session thread, and Tcl aborts the process when an
        # interpreter is deleted off its own thread. The root's lifetime stays the application's.
        self._root_ref = weakref.ref(root)
        self.interval_ms = interval_ms
        self.ticks = 0
        self._finished = False
        self._after_id: str | None = root.after(interval_ms, self._tick)

    @property
    def root(self) -> tkinter.Misc | None:
        """The Tk widget whose ``after`` drives delivery (None once it is gone)."""
        return self._root_ref()

    def _tick(self) -> None:
        self._after_id = None
        if self._finished:
            return
        try:
            self.drain()
        finally:
            self.ticks += 1
            root = self._root_ref()
            if root is None:
                self._finished = True
            elif not self._finished:
                try:
                    self._after_id = root.after(self.interval_ms, self._tick)
                except tkinter.TclError:  # the window is gone
                    self._finished = True

    def stop(self, timeout: float) -> None:
        # may run on any thread: only flags, no Tk call; the next tick sees it and stops
        super().stop(timeout)
        self._finished = True


def close_with(session: Any, root: tkinter.Misc) -> None:
    """Close ``session`` when ``root`` is destroyed (the window closed, or ``root.destroy()``)."""

    def on_destroy(event: Any) -> None:
        if event.widget is root:
            session.close()

    root.bind("<Destroy>", on_destroy, add="+")
