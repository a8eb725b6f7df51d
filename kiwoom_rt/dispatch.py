"""Getting events and notices from the reading thread to the receivers.

``ThreadDispatch`` (the default) hands whole batches to a dispatch thread through a bounded
queue, so a slow receiver never delays the reading thread (and so the PING echo). REAL frames
cross raw (``FrameBatch``) and are decoded on the dispatch thread: the reading thread only reads,
echoes PINGs and does the protocol's bookkeeping. When more than ``max_events`` frames or events
wait, the oldest are dropped, counted (in events) and announced by an ``on_overflow`` notice;
notices themselves are never dropped. ``InlineDispatch`` calls receivers on the reading
thread: the lowest latency, but a slow receiver then delays everything, PING echoes included.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["BindableDispatch", "Dispatch", "FrameBatch", "InlineDispatch", "ThreadDispatch", "count_entries"]

logger = logging.getLogger("kiwoom_rt")

#: Delivers one batch of events to the data signals (runs on the dispatching thread).
EventSink = Callable[[Sequence[Any]], None]
#: Called with (signal name, kwargs) to emit a lifecycle notice (runs on the dispatching thread).
NoticeSink = Callable[[str, dict[str, Any]], None]


class FrameBatch:
    """Raw REAL frames from one read, decoded later on the dispatch thread."""

    __slots__ = ("frames", "received_at", "source")

    def __init__(self, frames: list[bytes], received_at: float, source: Any) -> None:
        self.frames = frames
        self.received_at = received_at
        self.source = source

    def __len__(self) -> int:
        return len(self.frames)


def count_entries(frames: Sequence[bytes]) -> int:
    """Events in raw REAL frames, without decoding: every entry has exactly one "values" key
    (a quote inside a JSON string is escaped, so these bytes cannot occur there)."""
    return sum(max(1, frame.count(b'"values"')) for frame in frames)


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


class _Overflow:
    """A pending ``on_overflow`` notice; drops that happen before it is emitted add to it."""

    __slots__ = ("dropped",)

    def __init__(self) -> None:
        self.dropped = 0


class ThreadDispatch:
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
            self._queue.append(events)
            self._depth += len(events)
            if self._depth > self.max_events:
                self._drop_oldest(self._depth - self.max_events)
            wake, self._sleeping = self._sleeping, False
        if wake:
            self._wake.put(None)

    def wait_for_room(self, timeout: float | None = None) -> bool:
        """Block while the queue is more than half full (for sources that can wait, e.g. a file)."""
        while self._depth > self.max_events // 2 and not self._stopping:
            self._room.clear()
            if self._depth <= self.max_events // 2:
                break
            if not self._room.wait(timeout):
                return False
        return True

    def put_frames(self, batch: FrameBatch) -> None:
        """Raw REAL frames (depth counts frames; drops count the events they carried)."""
        self.put_events(batch)  # type: ignore[arg-type]

    def put_notice(self, name: str, kwargs: dict[str, Any]) -> None:
        with self._lock:
            self._queue.append((name, kwargs))
            wake, self._sleeping = self._sleeping, False
        if wake:
            self._wake.put(None)

    def _drop_oldest(self, count: int) -> None:
        # Called with the lock held. Walk from the oldest entry, keeping notices in place.
        kept: list[Any] = []
        queue = self._queue
        while count > 0 and queue:
            entry = queue.popleft()
            if isinstance(entry, (tuple, _Overflow)):
                kept.append(entry)
                continue
            size = len(entry)
            if size <= count:
                lost = count_entries(entry.frames) if isinstance(entry, FrameBatch) else size
                count -= size
                self._depth -= size
            else:
                if isinstance(entry, FrameBatch):
                    lost = count_entries(entry.frames[:count])
                    entry.frames = entry.frames[count:]
                    queue.appendleft(entry)
                else:
                    lost = count
                    queue.appendleft(entry[count:])
                self._depth -= count
                count = 0
            self.dropped += lost
            self._note_overflow(lost)
        queue.extendleft(reversed(kept))

    def _note_overflow(self, count: int) -> None:
        if self._overflow is None:
            self._overflow = _Overflow()
            self._queue.appendleft(self._overflow)  # announce it before the surviving events
        self._overflow.dropped += count

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    self._finish_locked()
                    return
                batch, self._queue = self._queue, deque()
                self._depth = 0
                self._room.set()
                if not batch:
                    self._sleeping = True
            if not batch:
                self._wake.get()  # a put (or stop) wakes us; a stale token only loops once more
                continue
            for index, entry in enumerate(batch):
                if self.stopping:  # close() from another thread: finish quickly
                    with self._lock:
                        rest = deque(list(batch)[index:])
                        rest.extend(self._queue)
                        self._queue = rest
                        self._finish_locked()
                    return
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
            elif isinstance(entry, FrameBatch):
                self.discarded_at_stop += count_entries(entry.frames)
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
