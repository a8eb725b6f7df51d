"""Getting events and notices to receivers: one ordered, bounded queue, and who drains it.

Everything a session produces (events, ``on_error`` for a bad frame, lifecycle notices) goes into
one ``EventQueue`` in arrival order, and is delivered from it in that order by exactly one thread
at a time. The queue's bound is in events. What happens when it is full is the application's
choice (``overflow=``):

- ``"block"`` (default): nothing is dropped. The session stops reading the socket while the queue
  is full, so TCP pushes back on the server, and reads again once receivers made room.
- ``"drop_oldest"``: the oldest queued events are dropped, counted and announced by an
  ``on_overflow`` notice placed before the surviving events (for GUIs that only want fresh data).

``conflate=True`` (GUI dispatchers) keeps only the latest event per (type, item) between two
deliveries; ``conflated`` counts what was superseded.

``SessionDelivery`` is the default: the thread that read a chunk delivers it right away (one GIL
acquisition per read, no thread handoff). ``delivering_since`` lets the session's standby thread
see a receiver that runs long and take over reading meanwhile (see ``session.py``); events read
then wait in the queue behind the delivery in progress, so order holds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

from ._notices import Notice, Overflow

__all__ = [
    "OVERFLOW_POLICIES",
    "BindableDispatcher",
    "Dispatcher",
    "EventQueue",
    "EventSink",
    "NoticeSink",
    "QueueBacked",
    "QueueObserver",
    "SessionDelivery",
]

logger = logging.getLogger("kiwoom_rt")

OVERFLOW_POLICIES: Final = ("block", "drop_oldest")

#: Delivers a batch of events to the data signals (runs on the delivering thread).
EventSink = Callable[[Sequence[Any]], None]
#: Emits one lifecycle or error notice (runs on the delivering thread).
NoticeSink = Callable[[Notice], None]


class _Overflow:
    """A pending ``on_overflow`` notice; drops that happen before it is delivered add to it."""

    __slots__ = ("dropped",)

    def __init__(self) -> None:
        self.dropped = 0


class _Latest:
    """Marks where the conflated events stand among the queued notices."""


_LATEST: Final = _Latest()


class EventQueue:
    """Events (one list per read) and notices, in arrival order, bounded in events. Thread-safe.

    ``take()`` returns the next entry: a list of events or a ``Notice``. Depth, bound and drops
    count events; notices are never dropped.
    """

    def __init__(self, max_events: int = 100_000, *, overflow: str = "block", conflate: bool = False) -> None:
        if max_events < 1:
            raise ValueError("max_events must be >= 1")
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, got {overflow!r}")
        self.max_events = max_events
        self.overflow = overflow
        self.conflate = conflate
        self.dropped = 0  # events dropped under overflow="drop_oldest"
        self.conflated = 0  # events superseded by a newer one of the same (type, item)
        self.discarded_at_close = 0  # events still queued when the queue was closed
        self._lock = threading.Lock()
        self._entries: deque[Any] = deque()
        self._latest: dict[tuple[str, str], Any] = {}
        self._depth = 0
        self._overflow: _Overflow | None = None
        self._room = threading.Condition(self._lock)
        self._closed = False
        self._blocks = overflow == "block" and not conflate
        self._observers: tuple[QueueObserver, ...] = ()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def depth(self) -> int:
        """Events waiting."""
        return self._depth

    @property
    def full(self) -> bool:
        """True while producers should wait: only under ``overflow="block"`` (the other policies
        make room themselves), once ``max_events`` wait."""
        return self._blocks and self._depth >= self.max_events

    @property
    def closed(self) -> bool:
        return self._closed

    # --- producers -------------------------------------------------------------------------

    def add_observer(self, observer: QueueObserver) -> None:
        """``observer`` sees every batch of events and every notice as it is queued (see
        ``QueueObserver``)."""
        with self._lock:
            self._observers = (*self._observers, observer)

    def remove_observer(self, observer: QueueObserver) -> None:
        with self._lock:
            self._observers = tuple(o for o in self._observers if o is not observer)

    def put_events(self, events: Sequence[Any]) -> None:
        """Queue a batch of events (a list the caller no longer changes)."""
        if not events:
            return
        self._put_events(events)
        observers = self._observers
        if observers and not self._closed:
            for observer in observers:
                try:
                    observer.queued_events(events)
                except Exception:  # an observer's own bug never stops delivery
                    logger.exception("queue observer %r raised", observer)

    def _put_events(self, events: Sequence[Any]) -> None:
        with self._lock:
            if self._closed:
                return
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
                return
            if self.overflow == "drop_oldest":
                excess = self._depth + len(events) - self.max_events
                if excess > 0:  # make room first: the depth never exceeds the bound, even briefly
                    excess = self._drop_oldest(excess)
                    if excess > 0:  # this batch alone is too big: its oldest go too
                        self._count_drop(min(excess, len(events)))
                        events = events[excess:]
                        if not events:
                            return
            self._entries.append(events)
            self._depth += len(events)

    def put_notice(self, notice: Notice) -> None:
        with self._lock:
            self._entries.append(notice)
        observers = self._observers
        if observers:
            for observer in observers:
                try:
                    observer.queued_notice(notice)
                except Exception:
                    logger.exception("queue observer %r raised", observer)

    def wait_for_room(self, timeout: float | None = None) -> bool:
        """Block while the queue is full; True once there is room (or it was closed)."""
        with self._room:
            return self._room.wait_for(lambda: not self.full or self._closed, timeout)

    # --- consumers -------------------------------------------------------------------------

    def pop(self) -> list[Any] | Notice | None:
        """The next entry (a list of events or a Notice), or None when empty."""
        with self._lock:
            if not self._entries:
                return None
            entry = self._entries.popleft()
            if type(entry) is list:
                self._depth -= len(entry)
                result: list[Any] | Notice = entry
            elif entry is _LATEST:
                result = list(self._latest.values())
                self._latest = {}
                self._depth -= len(result)
            elif type(entry) is _Overflow:
                if self._overflow is entry:
                    self._overflow = None
                result = Overflow(entry.dropped)
            elif isinstance(entry, Notice):
                result = entry
            else:  # a tuple or other sequence of events
                result = list(entry)
                self._depth -= len(result)
            if self._depth < self.max_events:
                self._room.notify_all()
            return result

    def close(self) -> list[Notice]:
        """Stop accepting events; discard (and count) those queued; return the queued notices."""
        with self._lock:
            self._closed = True
            notices = []
            for entry in self._entries:
                if isinstance(entry, Notice):
                    notices.append(entry)
                elif type(entry) is _Overflow:
                    notices.append(Overflow(entry.dropped))
            self.discarded_at_close += self._depth
            self._entries.clear()
            self._latest.clear()
            self._depth = 0
            self._room.notify_all()
            return notices

    def reopen(self) -> None:
        with self._lock:
            self._closed = False

    # --- overflow (lock held) ----------------------------------------------------------------

    def _drop_oldest(self, count: int) -> int:
        """Drop at least ``count`` queued events, oldest first, keeping notices in place; returns
        how many could not be dropped (the queue held fewer)."""
        kept: list[Any] = []
        entries = self._entries
        lost_total = 0
        while count > 0 and entries:
            entry = entries.popleft()
            if isinstance(entry, (Notice, _Overflow)):
                kept.append(entry)
                continue
            lost = min(count, len(entry))
            if lost < len(entry):
                entries.appendleft(entry[lost:])
            count -= lost
            lost_total += lost
        self._depth -= lost_total
        entries.extendleft(reversed(kept))
        if lost_total:
            self._count_drop(lost_total)
        return max(0, count)

    def _count_drop(self, count: int) -> None:
        self.dropped += count
        if self._overflow is None:
            self._overflow = _Overflow()
            # announced after the notices that came before the drop, before the surviving events
            entries = self._entries
            index = 0
            while index < len(entries) and isinstance(entries[index], Notice):
                index += 1
            entries.insert(index, self._overflow)
        self._overflow.dropped += count


class QueueObserver(Protocol):
    """Sees what a session queues for delivery, on the thread that queues it, in order: every
    batch of events before conflation or overflow can drop any, and every notice. It must be
    quick and must not block; it may queue notices of its own (``put_notice``)."""

    def queued_events(self, events: Sequence[Any]) -> None: ...
    def queued_notice(self, notice: Notice) -> None: ...


class Dispatcher(Protocol):
    """How a session hands events and notices to receivers (the session's side)."""

    def put_events(self, events: Sequence[Any]) -> None: ...
    def put_notice(self, notice: Notice) -> None: ...
    def pump(self) -> None:
        """Called by the session's I/O thread after each read: deliver now, or wake the loop."""
    def wait_for_room(self, timeout: float | None = None) -> bool: ...
    @property
    def full(self) -> bool: ...
    @property
    def depth(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def delivering_since(self) -> float | None:
        """When the delivery running on a session thread began (None: none is running)."""
    @property
    def delivering_thread(self) -> threading.Thread | None:
        """The session thread running receivers right now (None: none, or another loop's)."""
    def is_delivering_thread(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self, timeout: float) -> None: ...


class BindableDispatcher(Dispatcher, Protocol):
    """A dispatcher made before its session (``RealtimeSession(dispatcher=...)``)."""

    def bind(self, deliver_events: EventSink, deliver_notice: NoticeSink) -> None: ...


class QueueBacked:
    """What every dispatcher reads from its ``EventQueue``: the bound, the depth and the drops."""

    queue: EventQueue

    @property
    def max_events(self) -> int:
        return self.queue.max_events

    @property
    def depth(self) -> int:
        """Events waiting for a receiver."""
        return self.queue.depth

    @property
    def full(self) -> bool:
        """True while the session should stop reading (``overflow="block"`` only)."""
        return self.queue.full

    @property
    def dropped(self) -> int:
        """Events dropped under ``overflow="drop_oldest"``."""
        return self.queue.dropped

    def wait_for_room(self, timeout: float | None = None) -> bool:
        return self.queue.wait_for_room(timeout)


class SessionDelivery(QueueBacked):
    """The default: receivers run on the session thread that read the events, in order.

    ``pump()`` delivers everything queued on the calling thread, unless another thread is
    delivering right now (then that thread delivers the new entries too, before it lets go).
    """

    def __init__(self, deliver_events: EventSink, deliver_notice: NoticeSink, *, max_events: int = 100_000,
                 overflow: str = "block") -> None:
        self.queue = EventQueue(max_events, overflow=overflow)
        self._deliver_events = deliver_events
        self._deliver_notice = deliver_notice
        self._token = threading.Lock()  # held by the one thread delivering
        self._since: float | None = None
        self._thread: threading.Thread | None = None

    def put_events(self, events: Sequence[Any]) -> None:
        self.queue.put_events(events)

    def put_notice(self, notice: Notice) -> None:
        self.queue.put_notice(notice)

    def pump(self) -> None:
        queue = self.queue
        token = self._token
        while len(queue):  # a hint, read without the lock: the loop below takes under it
            if not token.acquire(False):
                return  # another thread delivers; it re-checks the queue before it lets go
            self._thread = threading.current_thread()
            self._since = time.monotonic()
            try:
                entry = queue.pop()
                while entry is not None:
                    self._deliver(entry)
                    entry = queue.pop()
            finally:
                self._since = None
                self._thread = None
                token.release()

    def _deliver(self, entry: list[Any] | Notice) -> None:
        if isinstance(entry, Notice):
            self._deliver_notice(entry)
        else:
            self._deliver_events(entry)

    @property
    def delivering_since(self) -> float | None:
        return self._since

    @property
    def delivering_thread(self) -> threading.Thread | None:
        return self._thread

    def is_delivering_thread(self) -> bool:
        return self._thread is threading.current_thread()

    def start(self) -> None:
        self.queue.reopen()

    def stop(self, timeout: float) -> None:
        """Discard queued events (counted in ``queue.discarded_at_close``) and deliver the queued
        notices on this thread (after the delivery in progress, if another thread runs one)."""
        notices = self.queue.close()
        if not notices:
            return
        if self.is_delivering_thread():  # close() from a receiver
            for notice in notices:
                self._deliver(notice)
        elif self._token.acquire(timeout=max(0.0, timeout)):
            try:
                for notice in notices:
                    self._deliver(notice)
            finally:
                self._token.release()
