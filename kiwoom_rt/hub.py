"""Signals and delivery, shared by the live ``RealtimeSession`` and ``ReplaySession``.

A hub owns the per-session blinker signals and the dispatcher that runs their receivers (a
dispatch thread by default, the reading thread with ``inline=True``, or a GUI/host loop).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from . import protocol
from .dispatch import BindableDispatch, Dispatch, FrameBatch, InlineDispatch, ThreadDispatch
from .errors import KiwoomError, ProtocolError, ReceiverError
from .messages import Message, RealBatch
from .signals import SessionSignal

__all__ = ["LIFECYCLE_SIGNALS", "SignalHub"]

logger = logging.getLogger("kiwoom_rt")

LIFECYCLE_SIGNALS = ("on_connected", "on_login", "on_disconnected", "on_reconnecting", "on_gave_up",
                     "on_system", "on_error", "on_overflow")


class SignalHub:
    """Per-instance signals (``on_0e``, ``on_real``, ``signal(type)``, lifecycle) and delivery."""

    on_real: SessionSignal
    on_0e: SessionSignal
    on_connected: SessionSignal
    on_login: SessionSignal
    on_disconnected: SessionSignal
    on_reconnecting: SessionSignal
    on_gave_up: SessionSignal
    on_system: SessionSignal
    on_error: SessionSignal
    on_overflow: SessionSignal

    def __init__(self, *, inline: bool, queue_size: int, dispatcher: BindableDispatch | None) -> None:
        self._lock = threading.RLock()
        # signals: per instance, never blinker's process-wide named ones
        self._type_signals: dict[str, SessionSignal] = {}
        self.on_real = self._make_signal("on_real")
        self.on_0e = self.signal("0E")
        for name in LIFECYCLE_SIGNALS:
            setattr(self, name, self._make_signal(name))

        self._dispatch: Dispatch
        if dispatcher is not None:
            if inline:
                raise ValueError("inline=True and a dispatcher exclude each other")
            dispatcher.bind(self._deliver_events, self._deliver_notice, self._deliver_frames)
            self._dispatch = dispatcher
        elif inline:
            self._dispatch = InlineDispatch(self._deliver_events, self._deliver_notice, self._deliver_frames)
        else:
            self._dispatch = ThreadDispatch(self._deliver_events, self._deliver_notice, self._deliver_frames,
                                            max_events=queue_size)
        #: REAL frames are decoded on the dispatch thread (default) or on the reading one (others)
        self.decode_on_dispatch = self._dispatch.decodes_frames
        self._frames_events: dict[str, int] = {}
        self._batches = 0
        self._decode_errors = 0  # counted on the reading thread
        self._decode_errors_dispatch = 0  # counted on the dispatch thread

    # --- signals ----------------------------------------------------------------------------

    def _make_signal(self, name: str) -> SessionSignal:
        sig = SessionSignal(name)
        sig.report_error = self._receiver_failed
        return sig

    def signal(self, type_code: str) -> SessionSignal:
        """The data signal of one realtime type (case-sensitive: ``"0G"`` is not ``"0g"``).

        Receivers are called as ``receiver(item, event=...)``; connect with ``sender=item`` to
        hear one item only.
        """
        sig = self._type_signals.get(type_code)
        if sig is None:
            protocol.check_types([type_code])
            with self._lock:
                sig = self._type_signals.get(type_code)
                if sig is None:
                    sig = self._type_signals[type_code] = self._make_signal(f"signal({type_code!r})")
        return sig

    # --- delivery (dispatch thread, or the reading thread when inline) ----------------------

    def _deliver_events(self, events: Sequence[Any]) -> None:
        type_signals = self._type_signals
        on_real = self.on_real
        for event in events:
            sig = type_signals.get(event.type)
            if sig is not None and sig.receivers:
                sig.deliver_event(event.item, event)
            if on_real.receivers:
                on_real.deliver_event(event.item, event)

    def _decode_frame(self, payload: bytes, received_at: float, events: list[Any]) -> Message | None:
        """Decode one frame: a REAL frame's events go to ``events`` (its bad entries and an
        unusable frame to ``on_error``); any other message is returned for protocol work."""
        try:
            message = protocol.decode(payload, received_at=received_at)
        except ProtocolError as exc:
            self._bad_input(exc)
            return None
        if type(message) is not RealBatch:
            return message
        self._count_batch(message)
        events += message.events
        for error in message.errors:
            self._bad_input(error)
        return None

    def _deliver_frames(self, batch: FrameBatch) -> None:
        """Decode raw REAL frames and deliver their events (dispatch thread)."""
        for payload in batch.frames:
            events: list[Any] = []
            other = self._decode_frame(payload, batch.received_at, events)
            if events:
                self._deliver_events(events)
            if other is not None:  # not REAL after all (a nested "trnm" key): protocol work
                self._handle_message(batch.source, other)

    def _handle_message(self, source: Any, message: Any) -> None:
        """Protocol work for a decoded non-REAL message (the live session overrides this)."""
        self._bad_input(ProtocolError(f"unexpected message {getattr(message, 'trnm', message)!r}"))

    def _deliver_notice(self, name: str, kwargs: dict[str, Any]) -> None:
        sig: SessionSignal = getattr(self, name)
        if sig.receivers:
            sig.deliver(self, **kwargs)

    def _notify(self, name: str, **kwargs: Any) -> None:
        self._dispatch.put_notice(name, kwargs)

    def _receiver_failed(self, sig: SessionSignal, receiver: Any, error: BaseException) -> None:
        logger.error("receiver %r of %s raised", receiver, sig.name, exc_info=error)
        if sig is self.on_error:
            return  # never loop: an on_error receiver that raises is only logged
        wrapped = ReceiverError(sig.name, receiver, error)
        wrapped.__cause__ = error
        self.on_error.deliver(self, error=wrapped)

    def _bad_input(self, error: KiwoomError) -> None:
        """A frame or entry that could not be used: logged, counted, sent to on_error."""
        logger.warning("%s", error)
        if self._dispatch.is_dispatch_thread():
            self._decode_errors_dispatch += 1
            self._deliver_notice("on_error", {"error": error})  # in order with the events around it
        else:
            self._decode_errors += 1
            self._notify("on_error", error=error)

    def _count_batch(self, batch: RealBatch) -> None:
        self._batches += 1
        counts = self._frames_events
        for event in batch.events:
            counts[event.type] = counts.get(event.type, 0) + 1

    def _delivery_stats(self) -> dict[str, Any]:
        return {
            "real_frames": self._batches,
            "events": dict(self._frames_events),
            "events_total": sum(self._frames_events.values()),
            "decode_errors": self._decode_errors + self._decode_errors_dispatch,
            "dropped": self._dispatch.dropped,
            "queue_depth": self._dispatch.depth,
        }
