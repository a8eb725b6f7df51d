"""``ReplaySession``: a recording played through the live session's surface.

A recording (``kiwoom_rt.recording``) holds every frame a session received, with its receive
time. Played back, its frames go through the same intake, signals and dispatchers as live ones,
so handlers and GUIs run unchanged on recorded data, in real time, faster (``speed=10``) or as
fast as possible (``speed=None``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._conditions import apply_hit
from ._delivery import BindableDispatcher
from ._handles import ConditionRequest, ConditionWatch, PendingRequest, Subscription
from ._notices import Connected, Disconnected, ErrorReport, LoggedIn, Notice, SystemMessage
from ._playback import Playback
from ._state import SessionState
from ._stats import SessionStats
from ._surface import CLOSE_WAIT, SessionBase
from .errors import ConditionError, LoginError, RecordingError
from .messages import LoginReply, Message, SystemNotice
from .options import DeliveryOptions
from .recording import read_header, read_recording, recording_market
from .us import parse_us_item

__all__ = ["ReplaySession"]

logger = logging.getLogger("kiwoom_rt")


class _Finished(Notice):
    """Delivered after every recorded event: then the replay is complete (no signal)."""


class ReplaySession(SessionBase):
    """Plays a recording through the same decoding and signals as a live session.

    ``speed=1.0`` keeps the recorded timing, ``speed=10`` is ten times faster, ``speed=None``
    as fast as possible. ``start()`` begins on a background thread; ``wait()`` blocks until the
    end; ``close()`` stops. Receivers run on the replay thread, in order, or on a GUI loop with
    ``dispatcher=``. A recording can wait, so a slow receiver slows the replay down: nothing is
    ever dropped.

    ``state`` is ``CONNECTED`` while it plays and ``FINISHED`` once every event was delivered.
    Requests are accepted as live (a recording plays what it recorded): ``subscribe`` and
    ``unsubscribe`` are done at once, a watch starts empty and follows the recorded hits, and
    ``conditions()``/``search()``, which would have to ask Kiwoom, raise ``ConditionError``.

    ``market`` is the socket the recording came from, as its header says (a recording of a US
    session replays as a US session: ``UsItem``s, S2 hits); pass it to override.
    """

    live = False  # the time is the recording's (``Session.live``)

    def __init__(self, path: str | os.PathLike[str], *, speed: float | None = 1.0,
                 queue_size: int = 100_000, dispatcher: BindableDispatcher | None = None,
                 market: str | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be > 0, or None for as fast as possible")
        header: dict[str, Any] = {}
        if market is None:
            try:
                header = read_header(path)
            except RecordingError:
                pass  # start() says so, in the caller
        # receivers run on the replay thread (a file has no PINGs to answer: there is no inline mode)
        super().__init__(delivery=DeliveryOptions(dispatcher=dispatcher, queue_size=queue_size),
                         market=market if market is not None else recording_market(header))
        if self.market == "us":  # the recorded subscriptions name their exchanges
            for item in header.get("items") or ():
                try:
                    parsed = parse_us_item(item)
                except ValueError:
                    continue
                self._us_exchanges[parsed.symbol] = parsed.exchange
        self.path = Path(path)
        self.speed = speed
        self._state = SessionState.NEW
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._playback = Playback(self._dispatcher, self._stop, label=f"replay of {self.path.name}",
                                  batch=min(1000, queue_size // 4), message=self._replay_message,
                                  hits=self._condition_hits,
                                  us=self._us_exchanges if self.market == "us" else None)
        self.error: RecordingError | None = None

    def __repr__(self) -> str:
        return f"<ReplaySession {self.path} {self._state}>"

    @property
    def state(self) -> SessionState:
        """NEW, CONNECTED (playing), FINISHED or CLOSED."""
        return self._state

    def start(self, timeout: float = 10.0) -> ReplaySession:
        """Check the recording and start replaying it. Raises ``RecordingError`` if unreadable."""
        if self._state is not SessionState.NEW:
            raise RuntimeError(f"replay already {self._state}")
        first = iter(read_recording(self.path))  # fails here, in the caller, if unreadable
        self._state = SessionState.CONNECTED
        self._dispatcher.start()
        self._thread = threading.Thread(target=self._run, args=(first,), name="kiwoom-rt-replay", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every recorded event was delivered to the receivers; True if so."""
        return self._finished.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop replaying and end the threads. Idempotent; callable from a receiver. Returns
        within about a second; after it returns no receiver is called (one still running
        finishes on its own daemonic thread)."""
        if self._state is SessionState.CLOSED:
            return
        self._state = SessionState.CLOSED
        self._stop.set()
        self._closing()
        timeout = min(timeout, CLOSE_WAIT)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._dispatcher.stop(timeout)
        self._closed()

    def stats(self) -> SessionStats:
        intake = self._playback.intake
        events = dict(intake.counts)
        return SessionStats(state=self._state.value, frames=intake.frames, real_frames=intake.real_frames,
                            events=events, events_total=sum(events.values()),
                            decode_errors=self._playback.decode_errors, dropped=self._dispatcher.dropped,
                            queue_depth=self._dispatcher.depth, **self._health_counts())

    # --- requests: a recording plays what it recorded ------------------------------------------

    def _submit_subscribe(self, handle: Subscription, refresh: bool) -> None:
        handle.set_result()

    def _submit_unsubscribe(self, handle: PendingRequest) -> None:
        handle.set_result()

    def _submit_watch(self, watch: ConditionWatch) -> None:
        watch.set_members(frozenset())  # then the recorded hits of its seq move it

    def _submit_cancel_watch(self, seq: str) -> None:
        pass

    def _submit_query(self, handle: ConditionRequest[Any]) -> None:
        handle.set_error(ConditionError(None, f"a replay cannot ask Kiwoom ({self.path.name} is a recording)",
                                        trnm=handle.trnm, seq=handle.seq))

    def _condition_hits(self, hits: list[Any]) -> None:
        for event in hits:
            watch = self._watches.get(event.seq or "")
            if watch is not None and watch.ready:
                members = apply_hit(watch.members, event)
                if members is not None:
                    watch.set_members(members)

    # --- playing -----------------------------------------------------------------------------------

    def _run(self, frames: Iterator[tuple[float, bytes]]) -> None:
        playback = self._playback
        playback.notify(Connected())
        playback.notify(LoggedIn({"replay": str(self.path)}))
        started = time.monotonic()
        first_time: float | None = None
        try:
            for received_at, frame in frames:
                if self._stop.is_set():
                    break
                if self.speed is not None:
                    if first_time is None:
                        first_time = received_at
                    delay = (received_at - first_time) / self.speed - (time.monotonic() - started)
                    if delay > 0:
                        playback.flush()
                        if self._stop.wait(delay):
                            break
                playback.frames((frame,), received_at)
        except RecordingError as exc:
            self.error = exc
            playback.report(exc)
        finally:
            playback.notify(Disconnected(None, "end of recording", False))
            playback.notify(_Finished())  # delivered after every event: then the replay is complete

    def _deliver_notice(self, notice: Notice) -> None:
        if isinstance(notice, _Finished):
            if self._state is SessionState.CONNECTED:
                self._state = SessionState.FINISHED
            self._finished.set()
            return
        super()._deliver_notice(notice)

    def _replay_message(self, message: Message) -> None:
        if isinstance(message, SystemNotice):
            self._playback.notify(SystemMessage(message.code, message.message))
        elif isinstance(message, LoginReply) and not message.ok:
            self._playback.notify(ErrorReport(LoginError(message.return_code, f"(recorded) {message.return_msg}")))
        # PINGs, acks and the LOGIN reply were the live session's business: nothing to replay
