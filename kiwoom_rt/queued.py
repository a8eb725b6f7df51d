"""``QueueDispatcher``: receivers run when your loop says so, on your loop's thread.

For pygame, a custom event loop or a strategy loop: the session queues events (thread-safe) and
your loop calls ``drain()``; every receiver then runs on the thread that called it. The Qt and Tk
dispatchers are this class plus a way to make the GUI loop call ``drain``.

With ``conflate=True`` only the latest event per (type, item) is kept between two drains, so a
burst of 20,000 events/s costs a GUI at most one receiver call per row per tick; ``conflated``
counts the events replaced that way (they were superseded, not lost by accident).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from ._delivery import EventQueue, EventSink, NoticeSink, QueueBacked
from ._notices import Notice

__all__ = ["QueueDispatcher"]


class QueueDispatcher(QueueBacked):
    """Queue events from the session's threads; run receivers when ``drain()`` is called.

    ``overflow``: ``"block"`` (default) makes the session stop reading while ``max_events`` wait,
    so nothing is lost; ``"drop_oldest"`` drops the oldest instead (counted in ``dropped`` and
    announced by ``on_overflow``). With ``conflate=True`` the queue holds at most one event per
    (type, item), so it never fills.
    """

    def __init__(self, *, conflate: bool = False, max_events: int = 100_000, overflow: str = "block") -> None:
        self.queue = EventQueue(max_events, overflow=overflow, conflate=conflate)
        self.delivered = 0
        self._stopped = False
        self._drain_thread: threading.Thread | None = None
        self._deliver_events: EventSink | None = None
        self._deliver_notice: NoticeSink | None = None

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} conflate={self.conflate} depth={self.depth} "
                f"delivered={self.delivered} dropped={self.dropped}>")

    # --- used by the session ----------------------------------------------------------------

    def bind(self, deliver_events: EventSink, deliver_notice: NoticeSink) -> None:
        """Called once by ``RealtimeSession(dispatcher=...)``."""
        if self._deliver_events is not None:
            raise RuntimeError("this dispatcher already serves a session")
        self._deliver_events, self._deliver_notice = deliver_events, deliver_notice

    def start(self) -> None:
        self._stopped = False
        self.queue.reopen()

    def stop(self, timeout: float) -> None:
        """Stop delivering; what is still queued is discarded (the loop is going away)."""
        self._stopped = True
        self.queue.close()

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def conflate(self) -> bool:
        return self.queue.conflate

    @property
    def conflated(self) -> int:
        """Events superseded by a newer one of the same (type, item) before a drain."""
        return self.queue.conflated

    @property
    def delivering_since(self) -> float | None:
        return None  # receivers never run on the session's threads

    @property
    def delivering_thread(self) -> threading.Thread | None:
        return None

    def is_delivering_thread(self) -> bool:
        return threading.current_thread() is self._drain_thread

    def put_events(self, events: Sequence[Any]) -> None:
        was_empty = not len(self.queue)
        self.queue.put_events(events)
        if was_empty:
            self._wake()

    def put_notice(self, notice: Notice) -> None:
        was_empty = not len(self.queue)
        self.queue.put_notice(notice)
        if was_empty:
            self._wake()

    def pump(self) -> None:
        """Nothing to do: the loop is woken when the queue stops being empty."""

    def _wake(self) -> None:
        """Called (on a session thread) when the queue stops being empty."""

    # --- used by the host loop --------------------------------------------------------------

    def drain(self) -> int:
        """Run the receivers of everything queued, on the calling thread; returns events delivered.

        Call it from your loop (a GUI timer, a game loop, a strategy step). Entries queued while
        it runs wait for the next call, so one call never runs forever under a flood.
        """
        deliver_events, deliver_notice = self._deliver_events, self._deliver_notice
        if deliver_events is None or deliver_notice is None:
            return 0
        self._drain_thread = threading.current_thread()
        delivered = 0
        for _ in range(len(self.queue)):
            if self._stopped:
                break
            entry = self.queue.pop()
            if entry is None:
                break
            if isinstance(entry, Notice):
                deliver_notice(entry)
            else:
                deliver_events(entry)
                delivered += len(entry)
        self.delivered += delivered
        return delivered
