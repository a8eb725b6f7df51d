"""Recording received frames to a file, and replaying them through the same signals.

A recording is a JSON-lines file (gzip-compressed when its name ends in ``.gz``): a header line
``{"kiwoom_rt_recording": 1, ...}``, then one line per received frame,
``{"t": <receive time, epoch seconds>, "frame": "<the frame's text>"}`` (``"frame_b64"`` for a
frame that is not valid UTF-8).

``Recorder`` is a session's ``frame_hook``: the reading thread only appends to a list; a writer
thread writes and flushes every ``flush_interval`` seconds, so a crash loses at most that much.

``ReplaySession`` has the live session's signals (``on_0e``, ``on_real``, ``signal(type)``,
lifecycle) and dispatchers, so handlers and GUIs run unchanged on recorded data, in real time,
faster (``speed=10``) or as fast as possible (``speed=None``).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import os
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, cast

from . import _json, protocol
from ._delivery import BindableDispatcher, Dispatcher, SessionDelivery
from ._handles import PendingRequest, Subscription
from ._playback import Playback
from ._signals import SessionSignal, SignalAttributes, SignalSet
from ._stats import SessionStats
from .errors import LoginError, RecordingError
from .messages import LoginReply, Message, SystemNotice

__all__ = ["Recorder", "ReplaySession", "read_recording"]

logger = logging.getLogger("kiwoom_rt")
FORMAT_VERSION = 1
_FINISHED = "_replay_finished"  # an internal notice, not a signal

_loads = _json.loads


def _open_text(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return cast(IO[str], gzip.open(path, mode + "t", encoding="utf-8", newline="\n"))
    return open(path, mode, encoding="utf-8", newline="\n")


class Recorder:
    """Writes every frame a session receives, with its receive time, to a recording file."""

    def __init__(self, path: str | os.PathLike[str], *, flush_interval: float = 0.5,
                 meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.flush_interval = flush_interval
        self.frames_written = 0
        self._pending: list[tuple[bytes, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        try:
            self._file = _open_text(self.path, "w")
        except OSError as exc:
            raise RecordingError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        header = {"kiwoom_rt_recording": FORMAT_VERSION, "started": time.time(), **(meta or {})}
        self._file.write(json.dumps(header) + "\n")
        self._thread = threading.Thread(target=self._run, name="kiwoom-rt-recorder", daemon=True)
        self._thread.start()

    def __call__(self, frame: bytes, received_at: float) -> None:
        """The session's frame hook (reading thread): only an append."""
        with self._lock:
            self._pending.append((frame, received_at))

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self._write_pending()
        self._write_pending()

    def _write_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        lines = []
        for frame, received_at in pending:
            try:
                lines.append(json.dumps({"t": received_at, "frame": frame.decode("utf-8")}, ensure_ascii=False))
            except UnicodeDecodeError:
                lines.append(json.dumps({"t": received_at, "frame_b64": base64.b64encode(frame).decode()}))
        self._file.write("\n".join(lines) + "\n")
        self._flush()
        self.frames_written += len(pending)

    def _flush(self) -> None:
        file = self._file
        if isinstance(file, io.TextIOWrapper) and isinstance(file.buffer, gzip.GzipFile):
            file.flush()
            file.buffer.flush(zlib.Z_SYNC_FLUSH)  # a complete, readable gzip block on disk
        else:
            file.flush()
        try:
            os.fsync(file.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def close(self) -> None:
        """Write what is pending and close the file. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self._file.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_recording(path: str | os.PathLike[str]) -> Iterator[tuple[float, bytes]]:
    """Yield (receive time, frame) from a recording. Raises ``RecordingError`` if unreadable.

    A recording cut short by a crash ends at its last complete line.
    """
    path = Path(path)
    try:
        file = _open_text(path, "r")
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from None
    with file:
        try:
            header_line = file.readline()
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
            raise RecordingError(f"{path} is not a kiwoom-rt recording ({exc})") from None
        try:
            header = json.loads(header_line)
        except ValueError:
            header = None
        if not isinstance(header, dict) or "kiwoom_rt_recording" not in header:
            raise RecordingError(f"{path} is not a kiwoom-rt recording (no header line)")
        number = 1
        try:
            for line in file:
                number += 1
                if not line.endswith("\n"):
                    logger.warning("%s: last line is incomplete (the recorder stopped mid-write)", path)
                    return
                try:
                    entry = _loads(line)
                    received_at = float(entry["t"])
                    frame = (entry["frame"].encode("utf-8") if "frame" in entry
                             else base64.b64decode(entry["frame_b64"]))
                except (ValueError, KeyError, TypeError) as exc:
                    raise RecordingError(f"{path}, line {number}: unreadable entry ({exc})") from None
                yield received_at, frame
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
            raise RecordingError(f"{path}, line {number}: {exc}") from None


class ReplaySession(SignalAttributes):
    """Plays a recording through the same decoding and signals as a live session.

    ``speed=1.0`` keeps the recorded timing, ``speed=10`` is ten times faster, ``speed=None``
    as fast as possible. ``start()`` begins on a background thread; ``wait()`` blocks until the
    end; ``close()`` stops. Receivers run on the replay thread, in order, or on a GUI loop with
    ``dispatcher=``. A recording can wait, so a slow receiver slows the replay down: nothing is
    ever dropped.
    """

    def __init__(self, path: str | os.PathLike[str], *, speed: float | None = 1.0, inline: bool = False,
                 queue_size: int = 100_000, dispatcher: BindableDispatcher | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be > 0, or None for as fast as possible")
        if inline and dispatcher is not None:
            raise ValueError("inline=True and a dispatcher exclude each other")
        self.path = Path(path)
        self.speed = speed
        self._signals = SignalSet(self)
        self._signals.attach_to(self)
        self._dispatcher: Dispatcher
        if dispatcher is not None:
            dispatcher.bind(self._signals.deliver_events, self._deliver_notice)
            self._dispatcher = dispatcher
        else:  # inline or not, receivers run on the replay thread: a file has no PINGs to answer
            self._dispatcher = SessionDelivery(self._signals.deliver_events, self._deliver_notice,
                                               max_events=queue_size)
        self._state = "new"
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._playback = Playback(self._dispatcher, self._stop, label=f"replay of {self.path.name}",
                                  batch=min(1000, queue_size // 4), message=self._replay_message)
        self.error: RecordingError | None = None

    def __repr__(self) -> str:
        return f"<ReplaySession {self.path} {self._state}>"

    @property
    def state(self) -> str:
        """"new", "replaying", "finished" or "closed"."""
        return self._state

    def signal(self, type_code: str) -> SessionSignal:
        """The data signal of one realtime type, as on a live session."""
        return self._signals.signal(type_code)

    def start(self) -> ReplaySession:
        """Check the recording and start replaying it. Raises ``RecordingError`` if unreadable."""
        if self._state != "new":
            raise RuntimeError(f"replay already {self._state}")
        first = iter(read_recording(self.path))  # fails here, in the caller, if unreadable
        self._state = "replaying"
        self._dispatcher.start()
        self._thread = threading.Thread(target=self._run, args=(first,), name="kiwoom-rt-replay", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every recorded event was delivered to the receivers; True if so."""
        return self._finished.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop replaying and end the threads. Idempotent; callable from a receiver."""
        if self._state == "closed":
            return
        self._state = "closed"
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._dispatcher.stop(timeout)

    def __enter__(self) -> ReplaySession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, items: Iterable[str] | str, types: Iterable[str] | str = ("0E",), *,
                  grp_no: str = "1", refresh: bool = True) -> Subscription:
        """Accepted for compatibility with live code; a recording plays what it recorded."""
        handle = Subscription(grp_no, tuple(protocol.check_items(items)), tuple(protocol.check_types(types)),
                              self.unsubscribe)
        handle._expect(0)
        return handle

    def unsubscribe(self, items: Iterable[str] | str, types: Iterable[str] | str = ("0E",), *,
                    grp_no: str = "1") -> PendingRequest:
        handle = PendingRequest("REMOVE", grp_no, tuple(protocol.check_items(items)),
                                tuple(protocol.check_types(types)))
        handle._expect(0)
        return handle

    def stats(self) -> SessionStats:
        intake = self._playback.intake
        events = dict(intake.counts)
        return SessionStats(state=self._state, frames=intake.frames, real_frames=intake.real_frames, events=events,
                            events_total=sum(events.values()), decode_errors=intake.decode_errors,
                            dropped=self._dispatcher.dropped, queue_depth=self._dispatcher.depth)

    def _run(self, frames: Iterator[tuple[float, bytes]]) -> None:
        playback = self._playback
        playback.notify("on_connected", {})
        playback.notify("on_login", {"extra": {"replay": str(self.path)}})
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
            playback.notify("on_disconnected", {"code": None, "reason": "end of recording", "will_retry": False})
            playback.notify(_FINISHED, {})  # delivered after every event: then the replay is complete

    def _deliver_notice(self, name: str, kwargs: Mapping[str, Any]) -> None:
        if name == _FINISHED:
            if self._state == "replaying":
                self._state = "finished"
            self._finished.set()
            return
        self._signals.deliver_notice(name, kwargs)

    def _replay_message(self, message: Message) -> None:
        if type(message) is SystemNotice:
            self._playback.notify("on_system", {"code": message.code, "message": message.message})
        elif type(message) is LoginReply and not message.ok:
            self._playback.notify("on_error", {"error": LoginError(message.return_code,
                                                                   f"(recorded) {message.return_msg}")})
        # PINGs, acks and the LOGIN reply were the live session's business: nothing to replay
