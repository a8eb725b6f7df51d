"""Recording received frames to a file, and replaying them through the same signals.

A recording is a JSON-lines file (gzip-compressed when its name ends in ``.gz``): a header line
``{"kiwoom_rt_recording": 1, ...}`` (with ``"market": "us"`` for the US socket's frames), then
one line per received frame,
``{"t": <receive time, epoch seconds>, "frame": "<the frame's text>"}`` (``"frame_b64"`` for a
frame that is not valid UTF-8).

``Recorder`` is a session's ``frame_hook``: the reading thread only appends to a list; a writer
thread writes and flushes every ``flush_interval`` seconds, so a crash loses at most that much.

``read_recording`` reads one back, ``read_header`` its header, ``recording_market`` which
socket it came from. ``ReplaySession`` (``kiwoom_rt.replay``, also importable
from here) plays it through the live session's surface.
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
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

from . import _json
from .errors import RecordingError
from .us import MARKETS, market_of_url, parse_us_item

__all__ = ["Recorder", "read_header", "read_recording", "recording_exchanges", "recording_market"]

logger = logging.getLogger("kiwoom_rt")
FORMAT_VERSION = 1

_loads = _json.loads


def _open_text(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return cast(IO[str], gzip.open(path, mode + "t", encoding="utf-8", newline="\n"))
    return open(path, mode, encoding="utf-8", newline="\n")


class Recorder:
    """Writes every frame a session receives, with its receive time, to a recording file.

    ``market="us"`` marks a recording of the US socket (replays then read it as a US session
    would); ``meta`` adds anything else to the header.
    """

    def __init__(self, path: str | os.PathLike[str], *, flush_interval: float = 0.5,
                 meta: dict[str, Any] | None = None, market: str | None = None) -> None:
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
        if market is not None:
            header["market"] = market
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


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header of a recording (``{"kiwoom_rt_recording": 1, "started": ..., ...}``).

    Raises ``RecordingError`` if the file is unreadable or not a recording."""
    path = Path(path)
    try:
        with _open_text(path, "r") as file:
            line = file.readline()
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise RecordingError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or "kiwoom_rt_recording" not in header:
        raise RecordingError(f"{path} is not a kiwoom-rt recording (no header line)")
    return header


def recording_market(header: dict[str, Any]) -> str:
    """``"us"`` or ``"kr"``: the header's ``market``, else the socket its ``url`` names."""
    market = header.get("market")
    if market in MARKETS:
        return str(market)
    url = header.get("url")
    return market_of_url(url) if isinstance(url, str) else "kr"


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
        except EOFError:  # gzip without its end marker: still being written, or the writer died
            logger.warning("%s: ends without gzip's end marker (still recording, or the recorder stopped): "
                           "read up to the last complete line", path)
        except (OSError, UnicodeDecodeError, zlib.error) as exc:
            raise RecordingError(f"{path}, line {number}: {exc}") from None


def recording_exchanges(header: dict[str, Any]) -> dict[str, str] | None:
    """For a recording of the US socket: the exchanges of its recorded items (else None)."""
    if recording_market(header) != "us":
        return None
    exchanges = {}
    for item in header.get("items") or ():
        try:
            parsed = parse_us_item(item)
        except ValueError:
            continue
        exchanges[parsed.symbol] = parsed.exchange
    return exchanges


def __getattr__(name: str) -> Any:
    """``kiwoom_rt.recording.ReplaySession``, the old path, still works (with a warning): its
    home is ``kiwoom_rt.replay`` (or ``kiwoom_rt.ReplaySession``), and importing it from there
    keeps the two modules free of an import cycle."""
    if name == "ReplaySession":
        import warnings

        from .replay import ReplaySession

        warnings.warn("kiwoom_rt.recording.ReplaySession moved: import it from kiwoom_rt or kiwoom_rt.replay",
                      DeprecationWarning, stacklevel=2)
        return ReplaySession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
