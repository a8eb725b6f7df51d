"""Getting events and notices from the reading thread to the receivers.

``ThreadDispatch`` (the default) hands whole batches to a dispatch thread through a bounded
queue, so a slow receiver never delays the reading thread (and so the PING echo). REAL frames
cross raw (``FrameBatch``) and are decoded on the dispatch thread: the reading thread only reads,
echoes PINGs and does the protocol's bookkeeping. When more than ``max_events`` events wait, the
oldest are dropped, counted and announced by an ``on_overflow`` notice; notices themselves are
never dropped. ``InlineDispatch`` calls receivers on the reading
thread: the lowest latency, but a slow receiver then delays everything, PING echoes included.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["BindableDispatch", "BoundedQueue", "Dispatch", "FrameBatch", "InlineDispatch", "ThreadDispatch",
           "drop_front", "entries_in"]

logger = logging.getLogger("kiwoom_rt")

#: Delivers one batch of events to the data signals (runs on the dispatching thread).
EventSink = Callable[[Sequence[Any]], None]
#: Called with (signal name, kwargs) to emit a lifecycle notice (runs on the dispatching thread).
NoticeSink = Callable[[str, dict[str, Any]], None]


class FrameBatch:
    """Raw REAL frames from one read, decoded later on the dispatch thread.

    ``counts`` holds the events each frame carries, so that queue bounds, depth and drops are
    in events, as documented, without decoding anything.
    """

    __slots__ = ("counts", "events", "frames", "received_at", "source")

    def __init__(self, frames: list[bytes], received_at: float, source: Any,
                 counts: list[int] | None = None) -> None:
        self.frames = frames
        self.counts = counts if counts is not None else [entries_in(frame) for frame in frames]
        self.events = sum(self.counts)
        self.received_at = received_at
        self.source = source

    def __len__(self) -> int:
        return self.events


def entries_in(frame: bytes) -> int:
    """Events in one raw REAL frame, without decoding: each entry has exactly one "values" key
    (a quote inside a JSON string is escaped, so these bytes cannot occur there)."""
    return frame.count(b'"values"') or 1


def drop_front(entry: Any, count: int) -> tuple[Any | None, int]:
    """Drop at least ``count`` events from the front of a queued batch (a list of events or a
    FrameBatch, which drops whole frames): returns (what remains or None, events dropped)."""
    if isinstance(entry, FrameBatch):
        counts = entry.counts
        dropped = taken = 0
        while taken < len(counts) and dropped < count:
            dropped += counts[taken]
            taken += 1
        if taken >= len(counts):
            return None, dropped
        entry.frames, entry.counts = entry.frames[taken:], counts[taken:]
        entry.events -= dropped
        return entry, dropped
    if len(entry) <= count:
        return None, len(entry)
    return entry[count:], count


#: Decodes and delivers one FrameBatch (runs on the dispatching thread).
FrameSink = Callable[[FrameBatch], None]


class Dispatch(Protocol):
    """How a session hands its events and notices to receivers."""

    dropped: int
    decodes_frames: bool

    def start(self) -> None: ...
    def put_events(self, events: Sequence[Any]) -> None: ...
    def put_frames(self, batch: FrameBatch) -> None: ...
    def put_notice(self, name: str, kwargs: dict[str, Any]) -> None: ...
    def stop(self, timeout: float) -> None: ...
    @property
    def depth(self) -> int: ...
    def is_dispatch_thread(self) -> bool: ...
    @property
    def idle(self) -> bool: ...


class BindableDispatch(Dispatch, Protocol):
    """A dispatcher made before its session (``RealtimeSession(dispatcher=...)``)."""

    def bind(self, deliver_events: EventSink, deliver_notice: NoticeSink, deliver_frames: FrameSink) -> None: ...


class InlineDispatch:
    """Receivers run on the reading thread, as soon as each chunk is parsed."""

    decodes_frames = False

    def __init__(self, deliver_events: EventSink, deliver_notice: NoticeSink, deliver_frames: FrameSink) -> None:
        self._deliver_events = deliver_events
        self._deliver_notice = deliver_notice
        self._deliver_frames = deliver_frames
        self.dropped = 0
        self.stopped = False

    def start(self) -> None:
        self.stopped = False

    def put_events(self, events: Sequence[Any]) -> None:
        if not self.stopped:
            self._deliver_events(events)

    def put_frames(self, batch: FrameBatch) -> None:
        if not self.stopped:
            self._deliver_frames(batch)

    def put_notice(self, name: str, kwargs: dict[str, Any]) -> None:
        self._deliver_notice(name, kwargs)

    def stop(self, timeout: float) -> None:
        self.stopped = True

    @property
    def depth(self) -> int:
        return 0

    def is_dispatch_thread(self) -> bool:
        return False

    idle = False


class BoundedQueue:
    """What both queueing dispatchers share: a bound in events and waiting for room below it."""

    max_events: int
    _depth: int
    _room: threading.Event  # set whenever the consumer takes events out

    def _closed(self) -> bool:
        raise NotImplementedError

    def wait_for_room(self, timeout: float | None = None) -> bool:
        """Block while more than half of ``max_events`` wait (for sources that can wait, such as a
        recording, instead of overflowing); False if ``timeout`` passed first."""
        while self._depth > self.max_events // 2 and not self._closed():
            self._room.clear()
            if self._depth <= self.max_events // 2:
                break
            if not self._room.wait(timeout):
                return False
        return True


class _Overflow:
    """A pending ``on_overflow`` notice; drops that happen before it is emitted add to it."""

    __slots__ = ("dropped",)

    def __init__(self) -> None:
        self.dropped = 0


class ThreadDispatch(BoundedQueue):
    """A dispatch thread fed through a bounded queue of batches, order preserved."""

    decodes_frames = True  # REAL frames cross raw and are decoded on the dispatch thread

    def __init__(self, deliver_events: EventSink, deliver_notice: NoticeSink, deliver_frames: FrameSink, *,
                 max_events: int = 100_000, name: str = "kiwoom-rt-dispatch") -> None:
        if max_events < 1:
            raise ValueError("max_events must be >= 1")
        self._deliver_events = deliver_events
        self._deliver_notice = deliver_notice
        self._deliver_frames = deliver_frames
        self.max_events = max_events
        self.name = name
        self.dropped = 0  # events dropped by overflow
        self.discarded_at_stop = 0  # events still queued when the session closed
        self._queue: deque[Any] = deque()
        self._depth = 0
        # A plain lock guards the queue; the dispatch thread sleeps on a SimpleQueue and is woken
        # by one put. Both are C-level: a Condition costs ~15 us more per handoff in Python code.
        self._lock = threading.Lock()
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._sleeping = False
        self._room = threading.Event()  # set whenever the dispatch thread empties the queue
        self._overflow: _Overflow | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Events waiting for the dispatch thread."""
        return self._depth

    def is_dispatch_thread(self) -> bool:
        return threading.current_thread() is self._thread

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def idle(self) -> bool:
        """True while the dispatch thread sleeps waiting for work."""
        return self._sleeping

    def put_events(self, events: Sequence[Any]) -> None:
        with self._lock:
            if self._stopping:
                return
            excess = self._depth + len(events) - self.max_events
            if excess > 0:  # make room first, so the depth never exceeds the bound, even briefly
                excess = self._drop_oldest(excess)
                if excess > 0:  # this batch alone is too big: its oldest go too
                    rest, lost = drop_front(events, excess)
                    self.dropped += lost
                    self._note_overflow(lost)
                    if rest is None:
                        return
                    events = rest
            self._queue.append(events)
            self._depth += len(events)
            wake, self._sleeping = self._sleeping, False
        if wake:
            self._wake.put(None)

    def _closed(self) -> bool:
        return self._stopping

    def put_frames(self, batch: FrameBatch) -> None:
        """Raw REAL frames; depth, bounds and drops count the events they carry."""
        self.put_events(batch)  # type: ignore[arg-type]

    def put_notice(self, name: str, kwargs: dict[str, Any]) -> None:
        with self._lock:
            self._queue.append((name, kwargs))
            wake, self._sleeping = self._sleeping, False
        if wake:
            self._wake.put(None)

    def _drop_oldest(self, count: int) -> int:
        """Drop at least ``count`` queued events, oldest first, keeping notices in place;
        returns how many could not be dropped (the queue held fewer). Lock held."""
        kept: list[Any] = []
        queue = self._queue
        while count > 0 and queue:
            entry = queue.popleft()
            if isinstance(entry, (tuple, _Overflow)):
                kept.append(entry)
                continue
            rest, lost = drop_front(entry, count)
            if rest is not None:
                queue.appendleft(rest)
            count -= lost
            self._depth -= lost
            self.dropped += lost
            self._note_overflow(lost)
        queue.extendleft(reversed(kept))
        return max(0, count)

    def _note_overflow(self, count: int) -> None:
        if self._overflow is None:
            self._overflow = _Overflow()
            self._queue.appendleft(self._overflow)  # announce it before the surviving events
        self._overflow.dropped += count

    def _run(self) -> None:
        # One entry (one read's batch, or a notice) at a time: what still waits stays droppable,
        # and a notice put at the front (on_overflow) is seen after the current batch only.
        queue = self._queue
        while True:
            with self._lock:
                if self._stopping:
                    self._finish_locked()
                    return
                if queue:
                    entry = queue.popleft()
                    if not isinstance(entry, (tuple, _Overflow)):
                        self._depth -= len(entry)
                    if self._depth <= self.max_events // 2:
                        self._room.set()
                else:
                    entry = None
                    self._sleeping = True
                    self._room.set()
            if entry is None:
                self._wake.get()  # a put (or stop) wakes us; a stale token only loops once more
                continue
            self._deliver(entry)

    def _deliver(self, entry: Any) -> None:
        try:
            if isinstance(entry, tuple):
                self._deliver_notice(*entry)
            elif isinstance(entry, _Overflow):
                with self._lock:
                    if self._overflow is entry:
                        self._overflow = None
                self._deliver_notice("on_overflow", {"dropped": entry.dropped})
            elif isinstance(entry, FrameBatch):
                self._deliver_frames(entry)
            else:
                self._deliver_events(entry)
        except Exception:  # the sinks isolate receivers; this is a bug guard, never silent
            logger.exception("dispatching failed")

    def _finish_locked(self) -> None:
        """On stop: notices still queued are delivered, events are counted as discarded."""
        notices = []
        for entry in self._queue:
            if isinstance(entry, tuple):
                notices.append(entry)
            elif not isinstance(entry, _Overflow):
                self.discarded_at_stop += len(entry)
        self._queue.clear()
        self._depth = 0
        self._lock.release()
        try:
            for notice in notices:
                self._deliver(notice)
        finally:
            self._lock.acquire()

    def stop(self, timeout: float) -> None:
        """End the dispatch thread; joins it unless called from it (then it ends right after)."""
        with self._lock:
            self._stopping = True
        self._wake.put(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
