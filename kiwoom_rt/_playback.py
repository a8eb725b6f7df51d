"""Delivering frames that a live session received elsewhere: a recording, or a relay's feed.

``ReplaySession`` and ``RelaySession`` both hold frames as received, not a socket. ``Playback``
hands them to the one ``Intake`` (decoding, counting, condition watches, bad input) on the
calling thread and gives its events to the dispatcher in batches. A file or a Redis stream can
wait, so it waits for room in the dispatcher's queue and never drops. A notice is delivered after
the events that came before it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._delivery import Dispatcher
from ._intake import Intake
from ._notices import ErrorReport, Notice
from .errors import KiwoomError
from .messages import Message

__all__ = ["Playback"]

logger = logging.getLogger("kiwoom_rt")


class Playback:
    """Decode frames and deliver their events through ``dispatcher``, in order.

    ``batch`` bounds the events handed over at once; ``hits(events)``, if given, sees the type-02
    events before they are queued (a relay consumer updates its condition watches there);
    ``message(message)`` receives the non-REAL messages among the frames, in their place;
    ``keep(events)`` returns the events to deliver (a relay consumer's own); ``label`` starts the
    log line of a report; ``us``: see ``Intake`` (given when the frames are the US socket's).
    """

    def __init__(self, dispatcher: Dispatcher, stop: threading.Event, *, label: str, batch: int = 1000,
                 hits: Callable[[list[Any]], None] | None = None,
                 message: Callable[[Message], None] | None = None,
                 keep: Callable[[list[Any]], list[Any]] | None = None,
                 us: Mapping[str, str] | None = None) -> None:
        self._dispatcher = dispatcher
        self._stop = stop
        self._label = label
        self._batch = max(1, batch)
        self._pending: list[Any] = []
        self._keep = keep
        self._reader: int | None = None  # the thread that hands frames over
        self._errors_lock = threading.Lock()
        self.decode_errors = 0  # bad input reported (by the reading thread, or a receiver's)
        self.intake = Intake(emit=self._queue, report=self.report, message=message, hits=hits, us=us)

    def frames(self, frames: Sequence[bytes], received_at: float) -> None:
        """Decode frames received together; their events are delivered once a batch is full, or
        at ``flush``."""
        self._reader = threading.get_ident()
        self.intake.decode(frames, received_at)
        if len(self._pending) >= self._batch:
            self.flush()

    def _queue(self, events: list[Any]) -> None:
        kept = events if self._keep is None else self._keep(events)  # (may report, and so flush, first)
        self._pending += kept

    def flush(self) -> None:
        """Hand the queued events over (waiting for room) and deliver what can be delivered."""
        events, self._pending = self._pending, []
        if events:
            while not self._stop.is_set() and not self._dispatcher.wait_for_room(0.25):
                pass
            self._dispatcher.put_events(events)
        self._dispatcher.pump()

    def notify(self, notice: Notice) -> None:
        """A lifecycle notice, after every event queued before it."""
        self.flush()
        self._dispatcher.put_notice(notice)
        self._dispatcher.pump()

    def report(self, error: KiwoomError) -> None:
        """Bad input: counted, logged and signalled through ``on_error`` (any thread)."""
        with self._errors_lock:
            self.decode_errors += 1
        logger.warning("%s: %s", self._label, error)
        if threading.get_ident() == self._reader:
            self.notify(ErrorReport(error))  # in its place among the events read so far
        else:  # found by a receiver reading an event's fields: after what is queued already
            self._dispatcher.put_notice(ErrorReport(error))
            self._dispatcher.pump()
