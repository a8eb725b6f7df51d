"""Delivering frames that a live session received elsewhere: a recording, or a relay's feed.

``ReplaySession`` and ``RelaySession`` both hold frames as received, not a socket. ``Playback``
decodes them on the calling thread, counts them, hands their events to the dispatcher in
batches and reports bad input through ``on_error``. A file or a Redis stream can wait, so it
waits for room in the dispatcher's queue and never drops. A notice is delivered after the
events that came before it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from . import protocol
from ._delivery import Dispatcher
from .errors import KiwoomError, ProtocolError
from .messages import Message, RealBatch

__all__ = ["Playback"]

logger = logging.getLogger("kiwoom_rt")


class Playback:
    """Decode frames and deliver their events through ``dispatcher``, in order.

    ``batch`` bounds the events handed over at once; ``inspect(event)``, if given, sees every
    event before it is queued (a relay consumer updates condition watches there); ``label``
    starts the log line of a report.
    """

    def __init__(self, dispatcher: Dispatcher, stop: threading.Event, *, label: str, batch: int = 1000,
                 inspect: Callable[[Any], None] | None = None) -> None:
        self.counts: dict[str, int] = {}  # events per realtime type
        self.real_frames = 0
        self.decode_errors = 0
        self._dispatcher = dispatcher
        self._stop = stop
        self._label = label
        self._batch = max(1, batch)
        self._inspect = inspect
        self._pending: list[Any] = []

    def frame(self, frame: bytes, received_at: float) -> Message | None:
        """Decode one frame. A REAL frame's events are queued (and delivered once a batch is
        full, or at ``flush``); any other message is returned for the caller to act on."""
        try:
            message = protocol.decode(frame, received_at=received_at)
        except ProtocolError as exc:
            self.report(exc)
            return None
        if type(message) is not RealBatch:
            return message
        self.real_frames += 1
        counts, inspect = self.counts, self._inspect
        for event in message.events:
            counts[event.type] = counts.get(event.type, 0) + 1
            if inspect is not None:
                inspect(event)
        self._pending += message.events
        for error in message.errors:
            self.report(error)  # after this frame's good events, as a live session reports them
        if len(self._pending) >= self._batch:
            self.flush()
        return None

    def flush(self) -> None:
        """Hand the queued events over (waiting for room) and deliver what can be delivered."""
        events, self._pending = self._pending, []
        if events:
            while not self._stop.is_set() and not self._dispatcher.wait_for_room(0.25):
                pass
            self._dispatcher.put_events(events)
        self._dispatcher.pump()

    def notify(self, name: str, kwargs: dict[str, Any]) -> None:
        """A lifecycle notice, after every event queued before it."""
        self.flush()
        self._dispatcher.put_notice(name, kwargs)
        self._dispatcher.pump()

    def report(self, error: KiwoomError) -> None:
        """Bad input: logged, counted and signalled through ``on_error``."""
        logger.warning("%s: %s", self._label, error)
        self.decode_errors += 1
        self.notify("on_error", {"error": error})
