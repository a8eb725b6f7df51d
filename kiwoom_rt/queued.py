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
from collections import deque
from collections.abc import Sequence
from typing import Any

from .dispatch import BoundedQueue, EventSink, FrameBatch, FrameSink, NoticeSink, drop_front

__all__ = ["QueueDispatcher"]


class _Latest:
    """Marks where the conflated events stand among the queued notices."""


_LATEST = _Latest()


class QueueDispatcher(BoundedQueue):
    """Queue events from the session's threads; run receivers when ``drain()`` is called."""

    #: REAL frames are decoded on the reading thread, so drain() only runs receivers.
    decodes_frames = False

    def __init__(self, *, conflate: bool = False, max_events: int = 100_000) -> None:
        if max_events < 1:
            raise ValueError("max_events must be >= 1")
        self.conflate = conflate
        self.max_events = max_events
        self.dropped = 0
        self.conflated = 0
        self.delivered = 0
        self._lock = threading.Lock()
        self._entries: deque[Any] = deque()
        self._latest: dict[tuple[str, str], Any] = {}
        self._depth = 0
        self._stopped = False
        self._room = threading.Event()  # set by every drain()
        self._drain_thread: threading.Thread | None = None
        self._deliver_events: EventSink | None = None
        self._deliver_notice: NoticeSink | None = None
        self._deliver_frames: FrameSink | None = None

    # --- used by the session ----------------------------------------------------------------

    def bind(self, deliver_events: EventSink, deliver_notice: NoticeSink, deliver_frames: FrameSink) -> None:
        """Called once by ``RealtimeSession(dispatcher=...)``."""
        if self._deliver_events is not None:
            raise RuntimeError("this dispatcher already serves a session")
        self._deliver_events, self._deliver_notice, self._deliver_frames = (
            deliver_events, deliver_notice, deliver_frames)

    def start(self) -> None:
        self._stopped = False

    def stop(self, timeout: float) -> None:
        with self._lock:
            self._stopped = True
            self._entries.clear()
            self._latest.clear()
            self._depth = 0

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def depth(self) -> int:
        """Events waiting for the next ``drain()``."""
        return self._depth

    @property
    def idle(self) -> bool:
        return False

    def is_dispatch_thread(self) -> bool:
        return threading.current_thread() is self._drain_thread

    def put_events(self, events: Sequence[Any]) -> None:
        with self._lock:
            if self._stopped:
                return
            was_empty = not self._entries
            if self.conflate:
                latest = self._latest
                if not latest:
                    self._entries.append(_LATEST)
                for event in events:
                    key = (event.type, event.item)
                    if key in latest:
                        self.conflated += 1
                    else:
                        self._depth += 1
                    latest[key] = event
            else:
                excess = self._depth + len(events) - self.max_events
                if excess > 0:  # make room first: the depth never exceeds the bound, even briefly
                    excess = self._drop_oldest(excess)
                    if excess > 0:
                        rest, lost = drop_front(events, excess)
                        self.dropped += lost
                        self._entries.append(("on_overflow", {"dropped": lost}))
                        events = rest if rest is not None else []
                if events:
                    self._entries.append(events)
                    self._depth += len(events)
        if was_empty:
            self._wake()

    def put_frames(self, batch: FrameBatch) -> None:
        with self._lock:
            if self._stopped:
                return
            was_empty = not self._entries
            self._entries.append(batch)
            self._depth += len(batch)
        if was_empty:
            self._wake()

    def put_notice(self, name: str, kwargs: dict[str, Any]) -> None:
        with self._lock:
            was_empty = not self._entries
            self._entries.append((name, kwargs))
        if was_empty:
            self._wake()

    def _drop_oldest(self, count: int) -> int:
        """Drop at least ``count`` queued events, oldest first (notices and the conflation marker
        stay); returns how many could not be dropped. Lock held."""
        kept: list[Any] = []
        while count > 0 and self._entries:
            entry = self._entries.popleft()
            if isinstance(entry, (tuple, _Latest)):
                kept.append(entry)
                continue
            rest, lost = drop_front(entry, count)
            if rest is not None:
                self._entries.appendleft(rest)
            count -= lost
            self._depth -= lost
            self.dropped += lost
            kept.append(("on_overflow", {"dropped": lost}))
        self._entries.extendleft(reversed(kept))
        return max(0, count)

    def _closed(self) -> bool:
        return self._stopped

    def _wake(self) -> None:
        """Called (outside the lock, on a session thread) when the queue stops being empty."""

    # --- used by the host loop --------------------------------------------------------------

    def drain(self) -> int:
        """Run the receivers of everything queued, on the calling thread; returns events delivered.

        Call it from your loop (a GUI timer, a game loop, a strategy step).
        """
        deliver_events, deliver_notice, deliver_frames = (
            self._deliver_events, self._deliver_notice, self._deliver_frames)
        if deliver_events is None or deliver_notice is None or deliver_frames is None:
            return 0
        with self._lock:
            entries, self._entries = self._entries, deque()
            latest, self._latest = self._latest, {}
            self._depth = 0
        self._room.set()
        self._drain_thread = threading.current_thread()
        delivered = 0
        for entry in entries:
            if self._stopped:
                break
            if entry is _LATEST:
                events: Sequence[Any] = list(latest.values())
                deliver_events(events)
                delivered += len(events)
            elif isinstance(entry, tuple):
                deliver_notice(*entry)
            elif isinstance(entry, FrameBatch):
                deliver_frames(entry)
            else:
                deliver_events(entry)
                delivered += len(entry)
        self.delivered += delivered
        return delivered

