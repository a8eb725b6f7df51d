"""Exception types. Each says whose fault it is and carries the context needed to act on it."""

from __future__ import annotations

from typing import Any

#: How much of an offending frame an error keeps (enough to recognise it, never megabytes).
FRAME_EXCERPT_CHARS = 200


def excerpt(frame: Any, limit: int = FRAME_EXCERPT_CHARS) -> str:
    """A short printable copy of ``frame`` for error messages and logs."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        raw = bytes(frame[: limit + 1])
        text = raw.decode("utf-8", errors="backslashreplace")
        total = len(frame)
    else:
        text = frame if isinstance(frame, str) else repr(frame)
        total = len(text)
    if total > limit:
        return f"{text[:limit]}... ({total} chars/bytes in all)"
    return text


class KiwoomError(Exception):
    """Base class of every error raised by kiwoom_rt."""


class ProtocolError(KiwoomError):
    """The server sent a frame that cannot be understood (the server's fault, or a new format).

    ``frame`` holds a truncated copy of the offending frame; ``reason`` says what was wrong.
    """

    def __init__(self, reason: str, frame: Any = None) -> None:
        self.reason = reason
        self.frame = excerpt(frame) if frame is not None else ""
        super().__init__(f"{reason}: {self.frame!r}" if frame is not None else reason)


class DecodeError(KiwoomError):
    """One entry of a REAL frame could not be decoded; the other entries of the frame still were.

    Carried in ``RealBatch.errors`` (not raised by the decoder). ``type`` and ``item`` are what the
    entry said, when it said it; ``entry`` is a truncated copy of the raw entry.
    """

    def __init__(self, reason: str, entry: Any = None, *, type: str = "", item: str = "") -> None:
        self.reason = reason
        self.type = type
        self.item = item
        self.entry = excerpt(entry) if entry is not None else ""
        where = f" [{type} {item}]" if type or item else ""
        super().__init__(f"{reason}{where}: {self.entry}")


class LoginError(KiwoomError):
    """The server refused the LOGIN (bad or expired token, wrong server, ...)."""

    def __init__(self, return_code: int | None, return_msg: str) -> None:
        self.return_code = return_code
        self.return_msg = return_msg
        super().__init__(f"login refused (return_code={return_code}): {return_msg}")


class AuthError(KiwoomError):
    """Kiwoom refused to issue or revoke a token (bad app key or secret, rate limit, ...)."""

    def __init__(self, return_code: int | None, return_msg: str) -> None:
        self.return_code = return_code
        self.return_msg = return_msg
        super().__init__(f"token request refused (return_code={return_code}): {return_msg}")


class RecordingError(KiwoomError):
    """A recording file cannot be read (missing, not a kiwoom-rt recording, corrupt)."""


class ConnectError(KiwoomError):
    """The WebSocket connection could not be opened or was lost before login."""


class SubscribeError(KiwoomError):
    """A REG or REMOVE request was refused (non-zero return code) or could not be completed."""

    def __init__(self, return_code: int | None, return_msg: str) -> None:
        self.return_code = return_code
        self.return_msg = return_msg
        super().__init__(f"registration failed (return_code={return_code}): {return_msg}")


class SymbolLimitError(SubscribeError):
    """A subscription would take the socket past its item limit (``max_items``): refused before
    anything was sent, and nothing already registered was changed.

    ``registered`` is how many items the socket has now, ``requested`` how many it would have,
    ``limit`` the session's setting."""

    def __init__(self, registered: int, requested: int, limit: int) -> None:
        self.registered = registered
        self.requested = requested
        self.limit = limit
        KiwoomError.__init__(
            self, f"subscription refused: the socket has {registered} realtime items and this request would make "
                  f"{requested}, past the limit of {limit} (max_items; the account types 00/04/F4/F5 do not count); "
                  "nothing was sent")
        self.return_code = None
        self.return_msg = str(self)


class ConditionError(KiwoomError):
    """A condition search request (CNSRLST, CNSRREQ, CNSRCLR) was refused: non-zero return code."""

    def __init__(self, return_code: int | None, return_msg: str, *, trnm: str = "", seq: str = "") -> None:
        self.return_code = return_code
        self.return_msg = return_msg
        self.trnm = trnm
        self.seq = seq
        where = f" {trnm}" + (f" seq {seq}" if seq else "") if trnm else ""
        super().__init__(f"condition search{where} refused (return_code={return_code}): {return_msg}")


class SessionClosedError(KiwoomError):
    """The session was closed (or gave up) before the operation could complete."""


class ReceiverError(KiwoomError):
    """A user receiver raised; sent to ``on_error`` with the original as ``__cause__``."""

    def __init__(self, signal_name: str, receiver: Any, error: BaseException) -> None:
        self.signal_name = signal_name
        self.receiver = receiver
        self.error = error
        name = getattr(receiver, "__qualname__", None) or repr(receiver)
        super().__init__(f"receiver {name} of {signal_name} raised {type(error).__name__}: {error}")


class FrameTooLargeError(KiwoomError):
    """A frame exceeded the session's ``max_frame_bytes``; it was skipped."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"frame of {size} bytes refused (limit {limit} bytes)")


class LateTradeError(KiwoomError):
    """A trade arrived for a bar that was already final (``kiwoom_rt.bars``): it was counted and
    left out, and the final bar was not changed. ``trade`` is the ``LateTrade``."""

    def __init__(self, message: str, trade: Any) -> None:
        super().__init__(message)
        self.trade = trade


class ImplausibleTradeError(KiwoomError):
    """A trade's exchange time was impossibly far ahead of the feed's market clock (``kiwoom_rt.bars``):
    it was left out as unusable, its bar is marked incomplete, and the clock did not move, so no
    other item's bars were closed by it. ``trade`` is the ``LateTrade`` record of it."""

    def __init__(self, message: str, trade: Any) -> None:
        super().__init__(message)
        self.trade = trade
