"""The one intake: received frames in, events and messages out, in arrival order (sans-I/O).

Live sessions, replays, relay consumers and ``frames.export`` all hand their frames to an
``Intake``. For each batch of frames (the frames of one socket read, one recorded line, one relay
entry) it:

- offers every frame to the ``frame_hook``, which may take a REAL frame undecoded;
- decodes the rest (``protocol.decode_frames``), counts frames, REAL frames and events per type;
- lets condition watches see condition hits (type 02, S2) before they are delivered (``hits``);
- hands events to ``emit`` and everything else, in its place among them, to ``message`` (a
  non-REAL message to act on) or ``report`` (bad input: the owner counts, logs and signals it). A
  lazily typed event whose values turn out to be unusable reports through the same ``report``,
  once per entry, when its first bad field is read, on whichever thread reads it: so the owner's
  ``report`` must be thread-safe.

Nothing here touches a socket, a thread or a clock: the receive time is passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import protocol
from ._catalogue import CONDITION_TYPES
from .errors import KiwoomError, ProtocolError
from .messages import Message

__all__ = ["FrameHook", "Intake"]

logger = logging.getLogger("kiwoom_rt")

#: ``hook(frame, received_at)``: sees every text frame first; True takes a REAL frame undecoded.
FrameHook = Callable[[bytes, float], "bool | None"]

_decode_frames = protocol.decode_frames


class Intake:
    """Frames to deliveries, counted, in order. ``decode`` and ``decode_binary`` run on one thread at
    a time (the reading thread).

    - ``emit(events)``: a list of decoded events, in order (the list is the callee's to keep);
    - ``message(message)``: a non-REAL message (LOGIN reply, PING, ack, SYSTEM, condition reply,
      unknown), after every event that came before it was emitted;
    - ``report(error)``: bad input, after the events before it (the owner counts, logs and
      signals it; any thread, see the module docstring);
    - ``hits(events)``: the condition hits (02, S2) of a batch, before they are emitted;
    - ``frame_hook``: see ``FrameHook``; a hook that raises is reported and the frame decoded;
    - ``us``: on the US socket, the exchange of each subscribed symbol (``{"NVDA": "NASDAQ"}``)
      for entries that do not name theirs (the owner may replace it, or update it in place).
    """

    def __init__(self, *, emit: Callable[[list[Any]], None], report: Callable[[KiwoomError], None],
                 message: Callable[[Message], None] | None = None,
                 hits: Callable[[list[Any]], None] | None = None,
                 frame_hook: FrameHook | None = None, us: Mapping[str, str] | None = None) -> None:
        self.frames = 0  # frames received (text and binary)
        self.real_frames = 0
        self.counts: dict[str, int] = {}  # events per realtime type
        self.frame_hook = frame_hook
        self.us = us
        self._emit = emit
        self._report = report
        self._message = message
        self._hits = hits

    def decode(self, frames: Sequence[bytes], received_at: float) -> None:
        """Decode and hand on the text frames received together at ``received_at``."""
        self.frames += len(frames)
        hook = self.frame_hook
        if hook is not None:
            frames = self._offer(frames, received_at, hook)
            if not frames:
                return
        counts = self.counts
        hits_before = counts.get("02", 0) + counts.get("S2", 0)
        events: list[Any] = []
        real, found = _decode_frames(frames, events, received_at=received_at, counts=counts, report=self._report,
                                     us=self.us)
        self.real_frames += real
        if self._hits is not None and counts.get("02", 0) + counts.get("S2", 0) != hits_before:
            self._hits([event for event in events if event.type in CONDITION_TYPES])
        if found is None:
            self._emit(events)
            return
        done = 0
        for position, thing in found:
            if position > done:
                self._emit(events[done:position])
                done = position
            if isinstance(thing, KiwoomError):
                self._report(thing)
            elif self._message is not None:
                self._message(thing)
        if done < len(events):
            self._emit(events[done:])

    def decode_binary(self, frame: bytes) -> None:
        """A binary frame (Kiwoom sends text only): counted and reported."""
        self.frames += 1
        self._report(ProtocolError("binary frame received (Kiwoom sends text)", frame))

    def _offer(self, frames: Sequence[bytes], received_at: float, hook: FrameHook) -> list[bytes]:
        """The frames the hook did not take (it may take REAL frames only)."""
        kept = []
        for frame in frames:
            try:
                taken = hook(frame, received_at)
            except Exception as exc:
                logger.exception("frame_hook raised")
                self._report(ProtocolError(f"frame_hook raised {type(exc).__name__}: {exc}"))
                taken = None
            if taken is True and protocol.is_real_frame(frame):
                self.real_frames += 1  # forwarded as received; nobody reads it here
            else:
                kept.append(frame)
        return kept
