"""One WebSocket connection attempt: open, LOGIN, read frames, hand messages to the session.

The session runs one ``Connection`` per attempt on its I/O thread (``run`` blocks until the
connection ends) and learns how it ended from ``outcome``. Other threads may ``send`` and
``abort``. websocket-client traps handled here (PITFALLS.md):

- TCP and TLS are opened here and handed in as a prepared socket, so ``abort`` can shut the
  socket down at any moment (during the handshake too) and the connect has a timeout without
  touching websocket-client's process-wide default.
- ``WebSocketApp.close()`` from another thread blocks for seconds: ``abort`` never calls it; it
  stops the reader and shuts the socket down, and the I/O thread closes the socket afterwards.
- ``run_forever`` sets ``keep_running`` when it starts, so a stop racing the start is checked
  again in ``on_open``.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import websocket

from . import protocol
from .dispatch import FrameBatch
from .errors import ConnectError, FrameTooLargeError, ProtocolError
from .messages import Ping, Unknown
from .transport import OP_TEXT, ChunkedFrameReader

if TYPE_CHECKING:
    from .session import RealtimeSession

__all__ = ["Connection", "Outcome"]

logger = logging.getLogger("kiwoom_rt")

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_REAL_COMPACT = b'"trnm":"REAL"'
_REAL_SPACED = b'"trnm": "REAL"'
_VALUES_KEY = b'"values"'  # one per REAL entry (see dispatch.entries_in)


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


@attrs.define
class Outcome:
    """How a connection ended.

    ``kind``: "closed" (server close frame), "lost" (anything unexpected), "login_refused",
    "kicked" (R10001), "connect_failed" (never opened), "stopped" (the user closed the session).
    """

    kind: str
    code: int | str | None = None
    reason: str = ""
    error: BaseException | None = None
    auth_code: int | None = None  # for login_refused: the auth code worth a fresh-token retry


class Connection:
    """One connection attempt; created and run by the session's I/O thread."""

    def __init__(self, session: RealtimeSession, number: int) -> None:
        self.session = session
        self.number = number
        self.reader = ChunkedFrameReader(self, max_frame_bytes=session.max_frame_bytes)
        self.app: websocket.WebSocketApp | None = None
        self._raw_sock: socket.socket | None = None
        self.opened = False
        self.logged_in = False
        self.logged_in_at: float | None = None
        self.started_at = time.monotonic()
        self.login_sent_at: float | None = None
        self.last_frame_at = self.started_at
        self._chunk_time: float | None = None
        self.pending_events: list[Any] = []  # decoded here (inline mode, unusual spacing)
        self.pending_frames: list[bytes] = []  # raw REAL frames for the dispatch thread
        self.pending_counts: list[int] = []  # the events in each of them
        self._outcome: Outcome | None = None
        self._outcome_lock = threading.Lock()
        self._ended = threading.Event()

    # --- outcome ---------------------------------------------------------------------------

    def set_outcome(self, outcome: Outcome) -> None:
        """Record why the connection ends; the first reason wins."""
        with self._outcome_lock:
            if self._outcome is None:
                self._outcome = outcome

    @property
    def outcome(self) -> Outcome:
        if self._outcome is not None:
            return self._outcome
        error = self.reader.end_error
        if not self.opened:
            return Outcome("connect_failed", reason=str(error or "connection failed"), error=error)
        return Outcome("lost", reason=str(error or "connection lost"), error=error)

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    # --- running ---------------------------------------------------------------------------

    def run(self, token: str) -> None:
        """Open, log in and read until the connection ends (blocks; I/O thread only)."""
        self._token = token
        session = self.session
        try:
            try:
                raw = self._open_socket()
            except OSError as exc:
                self.set_outcome(Outcome("connect_failed", reason=f"cannot connect: {exc}",
                                         error=ConnectError(f"cannot connect to {session.url}: {exc}")))
                return
            if session.stopping:
                self.set_outcome(Outcome("stopped", reason="closed by user"))
                return
            self.app = websocket.WebSocketApp(
                session.url, on_open=self._on_open, on_error=self._on_error, on_close=self._on_close,
                socket=raw,
            )
            host = urlsplit(session.url).hostname or ""
            self.app.run_forever(
                dispatcher=self.reader,
                skip_utf8_validation=True,  # the JSON decoder validates UTF-8, in C
                http_no_proxy=[host] if is_loopback(host) else None,
                ping_interval=0,
            )
        except Exception as exc:  # never let the I/O thread die of a surprise
            self.set_outcome(Outcome("lost", reason=f"{type(exc).__name__}: {exc}", error=exc))
        finally:
            self._ended.set()
            self._close_socket()

    def _open_socket(self) -> socket.socket:
        session = self.session
        parts = urlsplit(session.url)
        host = parts.hostname or ""
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        last_error: OSError | None = None
        for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            self._raw_sock = sock
            try:
                sock.settimeout(session.connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect(address)
                if secure:
                    context = session.ssl_context or ssl.create_default_context()
                    sock = context.wrap_socket(sock, server_hostname=host)
                    self._raw_sock = sock
                return sock  # the handshake runs with connect_timeout; the reader clears it
            except OSError as exc:
                last_error = exc
                sock.close()
                self._raw_sock = None
                if session.stopping:
                    break
        raise last_error or OSError(f"no address for {host}")

    def _close_socket(self) -> None:
        app_sock = self.app.sock if self.app is not None else None
        raw = self._raw_sock
        self._raw_sock = None
        for closer in (getattr(app_sock, "shutdown", None), getattr(raw, "close", None)):
            if closer is not None:
                try:
                    closer()
                except Exception:  # already closed, or half torn down by websocket-client
                    pass

    def abort(self, outcome: Outcome | None = None) -> None:
        """End the connection now, from any thread: no close handshake, no waiting."""
        if outcome is not None:
            self.set_outcome(outcome)
        self.reader.stop()
        raw = self._raw_sock
        if raw is not None:
            if self.opened and not isinstance(raw, ssl.SSLSocket):
                try:  # a polite close frame if it fits in the send buffer right now
                    raw.send(_CLIENT_CLOSE_FRAME, socket.MSG_DONTWAIT)
                except OSError:
                    pass
            try:
                raw.shutdown(socket.SHUT_RDWR)  # wakes the blocked recv; the I/O thread closes it
            except OSError:
                pass

    def send(self, frame: str | bytes) -> bool:
        """Send one text frame; False (and the connection is aborted) if it could not be sent."""
        app = self.app
        ws = app.sock if app is not None else None
        if ws is None:
            return False
        try:
            ws.send(frame, websocket.ABNF.OPCODE_TEXT)
            return True
        except (OSError, AttributeError, websocket.WebSocketException) as exc:
            # AttributeError: the socket went away between two sends during teardown
            self.abort(Outcome("lost", reason=f"send failed: {exc}", error=exc))
            return False

    # --- websocket-client callbacks (I/O thread) ---------------------------------------------

    def _on_open(self, app: websocket.WebSocketApp) -> None:
        self.opened = True
        self.last_frame_at = time.monotonic()
        if self.session.stopping:  # a close() that raced run_forever's start
            self.abort(Outcome("stopped", reason="closed by user"))
            return
        self.session._connection_opened(self)
        self.login_sent_at = time.monotonic()
        self.send(protocol.login(self._token))

    def _on_error(self, app: websocket.WebSocketApp, error: Exception) -> None:
        if not self.opened:
            self.set_outcome(Outcome("connect_failed", reason=f"{type(error).__name__}: {error}",
                                     error=ConnectError(f"cannot open {self.session.url}: {error}")))
        else:
            self.set_outcome(Outcome("lost", reason=f"{type(error).__name__}: {error}", error=error))

    def _on_close(self, app: websocket.WebSocketApp, code: Any, reason: Any) -> None:
        pass  # how it ended is known from the reader and the messages already handled

    # --- FrameHandler (I/O thread) -------------------------------------------------------------

    def on_message(self, payload: bytes, opcode: int) -> None:
        received_at = self._chunk_time
        if received_at is None:
            received_at = self._chunk_time = time.time()
        session = self.session
        if session.frame_hook is not None:
            try:
                session.frame_hook(payload, received_at)
            except Exception as exc:
                logger.exception("frame_hook raised")
                session._notify("on_error", error=exc)
        if opcode != OP_TEXT:
            session._bad_input(ProtocolError("binary frame received (Kiwoom sends text)", payload))
            return
        if session.decode_on_dispatch and (_REAL_COMPACT in payload or _REAL_SPACED in payload):
            # A REAL frame: hand it over raw, the dispatch thread decodes it. (`"trnm":"REAL"` with
            # bare quotes cannot occur inside a JSON string, where quotes are escaped.)
            self.pending_frames.append(payload)
            self.pending_counts.append(payload.count(_VALUES_KEY) or 1)  # events, for the queue bound
            if session._dispatch.idle:
                self.flush_events()  # its wake-up then overlaps with reading the rest
            return
        message = session._decode_frame(payload, received_at, self.pending_events)
        if message is None:  # a REAL frame (its events are pending), or an unusable one (reported)
            return
        if type(message) is Ping:
            self.send(protocol.echo_ping(message))  # at once, before anything else
            session._pings_echoed += 1
            return
        self.flush_events()  # keep data and notices in the order they arrived
        if type(message) is Unknown:
            session._bad_input(ProtocolError(f"unknown message {message.trnm!r}", payload))
        else:
            session._handle_message(self, message)

    def on_chunk_done(self) -> None:
        self.last_frame_at = time.monotonic()
        if self.pending_events or self.pending_frames:
            self.flush_events()
        self._chunk_time = None

    def flush_events(self) -> None:
        if self.pending_frames:
            frames, counts = self.pending_frames, self.pending_counts
            self.pending_frames, self.pending_counts = [], []
            self.session._dispatch.put_frames(FrameBatch(frames, self._chunk_time or time.time(), self, counts))
        if self.pending_events:
            events, self.pending_events = self.pending_events, []
            self.session._dispatch.put_events(events)

    def on_oversized(self, size: int) -> None:
        self.session._bad_input(FrameTooLargeError(size, self.session.max_frame_bytes))

    def on_ws_ping(self, payload: bytes) -> None:
        app = self.app
        if app is not None and app.sock is not None:
            try:
                app.sock.pong(payload)
            except (OSError, AttributeError, websocket.WebSocketException):
                pass

    def on_close_frame(self, code: int, reason: str) -> None:
        self.flush_events()
        self.set_outcome(Outcome("closed", code=code, reason=reason or f"close code {code}"))
        try:  # answer the close handshake; the server closes TCP next
            raw = self._raw_sock
            if raw is not None and not isinstance(raw, ssl.SSLSocket):
                raw.send(_CLIENT_CLOSE_FRAME, socket.MSG_DONTWAIT)
        except OSError:
            pass


def _masked_close_frame(code: int = 1000) -> bytes:
    key = os.urandom(4)
    payload = code.to_bytes(2, "big")
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x88, 0x80 | len(payload)]) + key + masked


_CLIENT_CLOSE_FRAME = _masked_close_frame()
